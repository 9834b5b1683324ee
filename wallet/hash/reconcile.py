"""`flask --app app hash-reconcile`: our Hash orders against Hash's own records (docs/hash.md §5.3,
§5.4, §6.3, §8.4). Two modes, both safe from cron while traffic flows:

- open orders (the default). Hash's order/update stops after 10 tries, a minute apart, and "a
  merchant that has been down should reconcile with order/details" (§4.4). Each order still open
  here and unchanged for longer than that window is looked up, and Hash's record, held to the
  field rules of a live order/update (wallet/hash/fields.py), is passed through the same
  `order_update`: settled or refunded. `order_update` locks the wallet and is idempotent on
  order_no, so two runs at once, or a run and Hash's own late retry, move the money once. Each
  order's outcome is printed as it is reached, and one order that cannot be written (a wallet busy
  past the deadline, a record the rules refuse) is that order's outcome: the run goes on.
- `--settled`: the books compared, order by order and in totals per currency, for a range of
  days (wallet/hash/books.py). It changes nothing.

Refunding an order Hash does not return is a guess unless Hash has said it never recorded it: its
error codes are not published (§7), so only an answer the operator has declared to mean that
(HASH_NOT_FOUND_CODES, empty by default) refunds (status 2, FAILED). Anything else (a timeout, an
HTTP error, an unreadable answer, another code, a success with no record) leaves the order open,
reported as needing Hash's word (docs/hash.md §11.4). Exit status: 0 done, 1 some order left open
(on an answer we cannot act on, or one we could not write; or, with --settled, the books differ),
2 Hash could not be reached.
"""
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from ..core import db
from ..core.schema import utcnow, wallets
from . import fields as live_rules  # the field rules of a live order/update, not a second copy
from . import books as hash_books
from . import orders as hash_orders
from .client import HashClient, HashServiceError
from .orders import FAILED, FINAL, HashError
from .schema import hash_orders as orders_table

DONE, LEFT_OPEN, UNREACHABLE = 0, 1, 2  # the exit statuses
log = logging.getLogger(__name__)


def says_not_found(code, not_found_codes) -> bool:
    """Whether Hash's order/details answer declares "Hash never recorded this order": only an
    error code the operator listed in HASH_NOT_FOUND_CODES (empty by default: Hash has not
    published its table, so ask it which code means that, and set it). Not a timeout, an HTTP
    error, an unreadable envelope, any other code, nor a success without a record: those say
    nothing about the order, and a refund on them is a guess (docs/hash.md §11.4)."""
    return code != 0 and code in not_found_codes


def order_at_hash(client: HashClient, order_no: str, not_found_codes) -> dict | None:
    """Hash's record of the order (§5.4), or None when Hash declares it has none. NeedsHashsWord
    for any other answer from Hash; HashServiceError (`code` None) when Hash could not be reached
    or read."""
    try:
        data = client.order_details(order_no)
    except HashServiceError as exc:
        if exc.code is None:
            raise
        if says_not_found(exc.code, not_found_codes):
            return None
        raise hash_books.NeedsHashsWord(f"order/details answered code {exc.code}, which HASH_NOT_FOUND_CODES"
                                        f" does not declare \"never recorded\" ({exc})") from None
    if data is None or data in ({}, [], ""):
        raise hash_books.NeedsHashsWord("order/details answered success with no order record")
    if not isinstance(data, dict):
        raise HashServiceError(f"order/details for {order_no}: the answer is not an order record")
    return data


def update_fields(record: dict, ours) -> dict:
    """What Hash's record gives the order/update: status, prize, tax, bonus and bet_info, read by
    the live order/update's own field readers (a result past 6 places rounded toward the house as
    there, docs/hash.md §11.5), so a value a live update could not carry (a
    bet_info over 64 KB, a lone surrogate) is refused here too (HashError 1001) before it reaches
    the database. prize, tax and bonus may be absent (0); without a bet_info, ours is kept."""
    fields = {"prize": 0, "tax": 0, "bonus": 0, **record}
    if fields.get("bet_info") in (None, ""):
        fields["bet_info"] = ours.bet_info
    return {"status": live_rules.status(fields), **live_rules.result(fields),
            "bet_info": live_rules.bet_info(fields)}


@dataclass
class Outcome:
    line: str
    status: int = DONE  # DONE, LEFT_OPEN or UNREACHABLE


def order_status(engine, order_no: str) -> int | None:
    return db.transaction(engine, lambda conn: conn.execute(
        select(orders_table.c.status).where(orders_table.c.order_no == order_no)).scalar(), write=False)


def open_orders(engine, unchanged_for: timedelta):
    """Our debited orders still open, whose last change (order/add, or an update to 0 or 3) is
    older than `unchanged_for`: Hash's update for them is no longer coming."""
    def read(conn):
        return conn.execute(
            select(orders_table.c.order_no, orders_table.c.amount, orders_table.c.entry_key,
                   orders_table.c.round_id, orders_table.c.bet_info, wallets.c.player_id,
                   wallets.c.currency)
            .join(wallets)
            .where(orders_table.c.debited.is_(True),
                   orders_table.c.status.in_([hash_orders.PENDING, hash_orders.PENDING_SETTLEMENT]),
                   orders_table.c.updated_at <= utcnow() - unchanged_for)
            .order_by(orders_table.c.updated_at, orders_table.c.order_no)).all()
    return db.transaction(engine, read, write=False)


def reconcile_order(engine, merchant, client: HashClient, order, not_found_codes) -> Outcome:
    """Ask Hash about one open order and apply its answer. Whatever fails is this order's outcome,
    never the end of the run."""
    try:
        return _reconcile_order(engine, merchant, client, order, not_found_codes)
    except db.DatabaseUnavailable as exc:  # the wallet busy past CALL_DEADLINE_MS, or the database away
        return Outcome(f"{order.order_no}: left open: the wallet could not be written ({exc}); "
                       "run again", LEFT_OPEN)
    except Exception as exc:  # anything else this one order met: reported, and on to the next
        log.exception("hash-reconcile: order %s failed", order.order_no)
        return Outcome(f"{order.order_no}: left open: {type(exc).__name__}: {exc}", LEFT_OPEN)


def _reconcile_order(engine, merchant, client: HashClient, order, not_found_codes) -> Outcome:
    try:
        record = order_at_hash(client, order.order_no, not_found_codes)
    except hash_books.NeedsHashsWord as exc:
        return Outcome(f"{order.order_no}: left open, needs Hash's word: {exc}", LEFT_OPEN)
    except HashServiceError as exc:  # Hash not reached, or its answer not readable
        return Outcome(f"{order.order_no}: left open: {exc}", UNREACHABLE)
    if record is None:  # declared never recorded at Hash: no update will come, give the stake back
        verb = "refunded: never recorded at Hash"
        fields = dict(status=FAILED, prize=Decimal(0), tax=Decimal(0), bonus=Decimal(0),
                      bet_info=order.bet_info)
    else:
        try:
            theirs = hash_books.read_record(record)
        except ValueError as exc:
            return Outcome(f"{order.order_no}: left open: Hash's record: {exc}", LEFT_OPEN)
        if theirs.status not in FINAL:
            return Outcome(f"{order.order_no}: still open at Hash (status {theirs.status})")
        differing = hash_books.identity_differences(order, theirs)
        if differing:  # not the order we booked: settle nothing, a person must look
            return Outcome(f"{order.order_no}: left open: Hash's record differs from ours on "
                           f"{', '.join(differing)}", LEFT_OPEN)
        try:
            fields = update_fields(record, order)  # with each item's is_win and prize once settled (§6.5)
        except HashError as exc:
            return Outcome(f"{order.order_no}: left open: Hash's record breaks a rule of order/update: "
                           f"{exc.msg}", LEFT_OPEN)
        verb = f"{'settled' if theirs.status == hash_orders.SUCCESS else 'refunded'} (Hash status {theirs.status})"
    try:  # the order's own stored values, as a live order/update must carry them
        answer = merchant.order_update(
            user_id=order.player_id, order_no=order.order_no, currency=order.currency,
            amount=order.amount, entry_key=order.entry_key, round_id=order.round_id, **fields)
    except HashError as exc:
        now = order_status(engine, order.order_no)
        if now in FINAL:  # Hash's own update (or another run) got there first
            return Outcome(f"{order.order_no}: already final here (status {now}), nothing moved")
        return Outcome(f"{order.order_no}: left open: {exc}", LEFT_OPEN)
    return Outcome(f"{order.order_no}: {verb}, balance {answer['balance']}")


def reconcile_open_orders(engine, merchant, client: HashClient, unchanged_for: timedelta,
                          not_found_codes) -> Iterator[Outcome]:
    """Each open order unchanged for longer than `unchanged_for`, looked up at Hash and passed to
    `merchant` (the app's HashWallet) as the order/update Hash would have sent; each outcome
    yielded as soon as it is known."""
    for order in open_orders(engine, unchanged_for):
        yield reconcile_order(engine, merchant, client, order, not_found_codes)


def _codes(ctx, param, value: str) -> frozenset:
    try:
        codes = frozenset(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        codes = None
    if codes is None or 0 in codes:
        raise click.BadParameter(f"HASH_NOT_FOUND_CODES must be non-zero integer codes, comma-separated, "
                                 f"or empty, not {value!r}")
    return codes


@click.command("hash-reconcile")
@with_appcontext
@click.option("--older-than", type=click.IntRange(min=0), default=10, show_default=True,
              help="Minutes: orders changed more recently are still inside Hash's own retries.")
@click.option("--not-found-codes", envvar="HASH_NOT_FOUND_CODES", default="", show_envvar=True,
              callback=_codes,
              help="order/details codes Hash has confirmed mean \"never recorded this order\" (its table "
                   "is not published): only these refund. Empty by default: nothing is refunded on a guess.")
@click.option("--settled", is_flag=True, help="Compare the books with Hash's order/list instead.")
@click.option("--from", "first_day", type=hash_books.Day(),
              help="With --settled: the first UTC day, YYYY-MM-DD, today or yesterday [default: today].")
@click.option("--to", "last_day", type=hash_books.Day(),
              help="With --settled: the last UTC day, included [default: today].")
@click.option("--json", "as_json", is_flag=True, help="With --settled: the report as JSON.")
@click.pass_context
def hash_reconcile(ctx, older_than, not_found_codes, settled, first_day, last_day, as_json):
    """Settle or refund open Hash orders from Hash's order/details; with --settled, compare the
    books with Hash's order/list (exit 0 agree, 1 differ, 2 Hash not reached)."""
    config, engine = current_app.config, current_app.extensions["engine"]
    if not settled and (first_day or last_day or as_json):
        raise click.UsageError("--from, --to and --json go with --settled")
    try:
        client = HashClient.from_config(config)
    except HashServiceError as exc:
        click.echo(json.dumps({"error": str(exc)}) if as_json else f"hash-reconcile: {exc}", err=not as_json)
        ctx.exit(UNREACHABLE)
    window = timedelta(minutes=older_than)
    if settled:
        today = utcnow().date()
        ctx.exit(hash_books.settled_command(
            engine, client, first_day or today, last_day or today, window, config["HASH_PAYOUT"],
            lambda order_no: order_at_hash(client, order_no, not_found_codes), as_json))
    looked_up = left = 0
    worst = DONE
    for outcome in reconcile_open_orders(engine, current_app.extensions["hash_wallet"], client, window,
                                         not_found_codes):
        click.echo(outcome.line)  # flushed at once: each order's outcome is seen as it is reached
        looked_up, left = looked_up + 1, left + (outcome.status != DONE)
        worst = max(worst, outcome.status)
    click.echo(f"hash-reconcile: {looked_up} open order(s) looked up, {left} left open")
    ctx.exit(worst)
