"""`flask --app app hash-reconcile`: our Hash orders against Hash's own records (docs/hash.md §5.3,
§5.4, §6.3, §8.4). Two modes, both safe from cron while traffic flows:

- open orders (the default). Hash's order/update stops after 10 tries, a minute apart, and "a
  merchant that has been down should reconcile with order/details" (§4.4). Each order still open
  here past that window is looked up and passed through the same `order_update` as a live
  order/update: settled, refunded, or, when Hash answers that it never recorded the order (its
  order/add timed out, or our COMMIT failed after the debit, so no update will ever come),
  refunded as FAILED (2). `order_update` locks the wallet and is idempotent on order_no, so two
  runs at once, or a run and Hash's own late retry, move the money once.
- `--settled`: the books compared, order by order and in totals per currency, for a range of
  days (wallet/hash/books.py). It changes nothing.

Hash's error codes are not published (§7): which answers mean "no such order" is the one
predicate `says_not_found`, and anything else (a timeout, an HTTP error, an unreadable answer,
another code) leaves the order open. Exit status: 0 done, 1 some order left open on an answer we
cannot act on (or, with --settled, the books differ), 2 Hash could not be reached.
"""
import json
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from ..core import db
from ..core.schema import utcnow, wallets
from . import books as hash_books
from . import orders as hash_orders
from .client import HashClient, HashServiceError
from .orders import FAILED, FINAL, HashError
from .schema import hash_orders as orders_table

DONE, LEFT_OPEN, UNREACHABLE = 0, 1, 2  # the exit statuses
NOT_FOUND_CODES = "3002"  # the default of HASH_NOT_FOUND_CODES: our own table's "order not found"


def says_not_found(code, data, not_found_codes) -> bool:
    """Whether Hash's order/details answer means "Hash has no such order". Only two answers do:
    a non-zero code the operator listed in HASH_NOT_FOUND_CODES (3002 by default: Hash has not
    published its table; ask it which code it uses and set it), or success (code 0) with an
    empty `data` (null, {}, [] or ""). Not a timeout, an HTTP error, an unreadable envelope or
    any other code: those say nothing about the order."""
    if code == 0:
        return data is None or data in ({}, [], "")
    return code in not_found_codes


def order_at_hash(client: HashClient, order_no: str, not_found_codes) -> dict | None:
    """Hash's record of the order (§5.4), or None when Hash says it has none. HashServiceError
    for everything else: `code` None means Hash could not be reached or read."""
    try:
        data = client.order_details(order_no)
    except HashServiceError as exc:
        if exc.code is not None and says_not_found(exc.code, None, not_found_codes):
            return None
        raise
    if says_not_found(0, data, not_found_codes):
        return None
    if not isinstance(data, dict):
        raise HashServiceError(f"order/details for {order_no}: the answer is not an order record")
    return data


@dataclass
class Outcome:
    line: str
    status: int = DONE  # DONE, LEFT_OPEN or UNREACHABLE


def order_status(engine, order_no: str) -> int | None:
    return db.transaction(engine, lambda conn: conn.execute(
        select(orders_table.c.status).where(orders_table.c.order_no == order_no)).scalar(), write=False)


def open_orders(engine, older_than: timedelta):
    def read(conn):
        return conn.execute(
            select(orders_table.c.order_no, orders_table.c.amount, orders_table.c.entry_key,
                   orders_table.c.round_id, orders_table.c.bet_info, wallets.c.player_id,
                   wallets.c.currency)
            .join(wallets)
            .where(orders_table.c.debited.is_(True),
                   orders_table.c.status.in_([hash_orders.PENDING, hash_orders.PENDING_SETTLEMENT]),
                   orders_table.c.created_at <= utcnow() - older_than)
            .order_by(orders_table.c.created_at)).all()
    return db.transaction(engine, read, write=False)


def reconcile_order(engine, merchant, client: HashClient, order, not_found_codes) -> Outcome:
    """Ask Hash about one open order and apply its answer."""
    try:
        record = order_at_hash(client, order.order_no, not_found_codes)
    except HashServiceError as exc:
        return Outcome(f"{order.order_no}: left open: {exc}", UNREACHABLE if exc.code is None else LEFT_OPEN)
    if record is None:  # never recorded at Hash: no update will come, give the stake back
        status, verb, bet_info = FAILED, "refunded: unknown at Hash", order.bet_info
        money = dict(prize=Decimal(0), tax=Decimal(0), bonus=Decimal(0))
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
        status, money = theirs.status, dict(prize=theirs.prize, tax=theirs.tax, bonus=theirs.bonus)
        verb = f"{'settled' if status == hash_orders.SUCCESS else 'refunded'} (Hash status {status})"
        settled_info = record.get("bet_info")  # with each item's is_win and prize once settled (§6.5)
        bet_info = settled_info if isinstance(settled_info, str) and settled_info else order.bet_info
    try:  # the order's own stored values, as a live order/update must carry them
        answer = merchant.order_update(
            user_id=order.player_id, order_no=order.order_no, currency=order.currency,
            amount=order.amount, status=status, bet_info=bet_info, entry_key=order.entry_key,
            round_id=order.round_id, **money)
    except HashError as exc:
        now = order_status(engine, order.order_no)
        if now in FINAL:  # Hash's own update (or another run) got there first
            return Outcome(f"{order.order_no}: already final here (status {now}), nothing moved")
        return Outcome(f"{order.order_no}: left open: {exc}", LEFT_OPEN)
    return Outcome(f"{order.order_no}: {verb}, balance {answer['balance']}")


def reconcile_open_orders(engine, merchant, client: HashClient, older_than: timedelta,
                          not_found_codes) -> list[Outcome]:
    """Each open order older than `older_than`, looked up at Hash and passed to `merchant` (the
    app's HashWallet) as the order/update Hash would have sent."""
    return [reconcile_order(engine, merchant, client, order, not_found_codes)
            for order in open_orders(engine, older_than)]


def _codes(ctx, param, value: str) -> frozenset:
    try:
        codes = frozenset(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        codes = None
    if not codes or 0 in codes:
        raise click.BadParameter(f"HASH_NOT_FOUND_CODES must be non-zero integer codes, comma-separated "
                                 f"(e.g. {NOT_FOUND_CODES}), not {value!r}")
    return codes


@click.command("hash-reconcile")
@with_appcontext
@click.option("--older-than", type=click.IntRange(min=0), default=10, show_default=True,
              help="Minutes: younger orders are still inside Hash's own retries.")
@click.option("--not-found-codes", envvar="HASH_NOT_FOUND_CODES", default=NOT_FOUND_CODES,
              show_default=True, show_envvar=True, callback=_codes,
              help="Hash's codes for \"no such order\" in order/details (its table is not published).")
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
    outcomes = reconcile_open_orders(engine, current_app.extensions["hash_wallet"], client, window,
                                     not_found_codes)
    for outcome in outcomes:
        click.echo(outcome.line)
    left = sum(1 for outcome in outcomes if outcome.status != DONE)
    click.echo(f"hash-reconcile: {len(outcomes)} open order(s) looked up, {left} left open on an error")
    ctx.exit(max([DONE] + [outcome.status for outcome in outcomes]))
