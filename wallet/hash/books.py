"""`flask --app app hash-reconcile --settled`: our Hash books compared with Hash's (docs/hash.md §5.3,
§5.4, §5.5). It changes nothing.

Hash's order/list for a range of UTC days is paged through, and each order compared with our
hash_orders row: user, currency, amount, status, and for an order settled on both sides prize,
tax, bonus and the payout we credited (HASH_PAYOUT, `hash_orders.payout`). Our own orders of those
days that are settled or open here but missing from the list are asked for one by one with
order/details: the list's range may not fall where our clock put the order. The report names
each difference by kind:

- `differ`: both books have the order and disagree, on the fields named;
- `not_booked_here`: Hash holds a bet (open or settled) that we never booked;
- `open_here`: Hash has it final, or no record of it, and we hold it open: the fix is
  `flask --app app hash-reconcile`, which settles or refunds it through the live update's path;
- `not_at_hash`: we settled an order that Hash has no record of;
- `unreadable`: a record of Hash's that we cannot read;
- `ask_hash`: an order/details answer that is neither a record nor a declared "never recorded"
  (HASH_NOT_FOUND_CODES): whether Hash has the order needs Hash's word;

and the totals of settled orders per currency on both sides. An order that changed on either side
within Hash's retry window (--older-than) is pending, not a difference: its update may be on its
way. Pending (0) and pending settlement (3) count as one state: neither moves money.
"""
import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import click
from sqlalchemy import select

from ..core import db
from ..core.money import (HASH_RESULT_ROUNDING, AmountError, TooPrecise, hash_amount_rounded,
                          parse_hash_amount)
from ..core.schema import utcnow, wallets
from .client import HashClient, HashServiceError
from .orders import CANCELLED, FAILED, PENDING, PENDING_SETTLEMENT, SUCCESS, payout
from .schema import hash_orders as orders_table

OPEN = (PENDING, PENDING_SETTLEMENT)
STATUS_NAMES = {0: "pending", 1: "settled", 2: "failed", 3: "pending settlement", 4: "cancelled"}
FIX = "flask --app app hash-reconcile"
PAGE_SIZE = 100
BATCH = 500  # order_nos per IN (...) query


class Day(click.ParamType):
    """A UTC day: YYYY-MM-DD, `today` or `yesterday`."""
    name = "day"

    def convert(self, value, param, ctx):
        if isinstance(value, date):
            return value
        today = utcnow().date()
        named = {"today": today, "yesterday": today - timedelta(days=1)}
        if value in named:
            return named[value]
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not YYYY-MM-DD, today or yesterday", param, ctx)


class NeedsHashsWord(Exception):
    """Hash answered order/details, but with neither a record nor a declared "never recorded"
    (wallet/hash/reconcile.py, order_at_hash): a person must ask Hash."""


@dataclass(frozen=True)
class HashOrder:
    """The fields of one of Hash's order records (§5.5) that we compare."""
    order_no: str
    user_id: str
    currency: str
    amount: Decimal
    status: int
    prize: Decimal
    tax: Decimal
    bonus: Decimal
    changed_at: datetime | None  # the later of bet_time and reckon_time


def read_record(record: dict) -> HashOrder:
    """A §5.5 record as a HashOrder; ValueError says what cannot be read. prize, tax and bonus
    may be absent (0), and past 6 places are read as a live order/update books them (rounded
    toward the house, docs/hash.md §11.5); amount may not be absent."""
    status = record.get("status")
    if isinstance(status, bool) or status not in STATUS_NAMES:
        raise ValueError(f"status {status!r} is not one of docs/hash.md §6.1")
    money = {}
    for name in ("amount", "prize", "tax", "bonus"):
        value = record.get(name, None if name == "amount" else 0)
        try:
            money[name] = parse_hash_amount(value)
        except TooPrecise as exc:
            if name not in HASH_RESULT_ROUNDING:  # an amount past 6 places is no order we booked
                raise ValueError(f"{name} {value!r}: {exc}") from None
            money[name] = hash_amount_rounded(exc.value, HASH_RESULT_ROUNDING[name])  # as booked live
        except AmountError as exc:
            raise ValueError(f"{name} {value!r}: {exc}") from None
    return HashOrder(order_no=str(record.get("order_no", "")), user_id=str(record.get("user_id")),
                     currency=str(record.get("currency")), status=status,
                     changed_at=_changed_at(record), **money)


def _changed_at(record: dict) -> datetime | None:
    """§5.5 bet_time and reckon_time (0 when unsettled) are milliseconds, though documented as
    seconds; a value under 10^12 is taken as seconds (ours)."""
    stamps = [value for value in (record.get("bet_time"), record.get("reckon_time"))
              if isinstance(value, int) and not isinstance(value, bool) and value > 0]
    if not stamps:
        return None
    latest_ms = max(value if value >= 10**12 else value * 1000 for value in stamps)
    return datetime.fromtimestamp(latest_ms / 1000, timezone.utc).replace(tzinfo=None)


def identity_differences(ours, theirs: HashOrder) -> list[str]:
    """The fields on which Hash's record names another order than the one we booked (a record
    without an order_no, as order/details may send, is taken to be the one asked for)."""
    return [name for name, (mine, hash_value) in _identity(ours, theirs).items() if mine != hash_value]


def _identity(ours, theirs: HashOrder) -> dict[str, tuple]:
    return {"order_no": (ours.order_no, theirs.order_no or ours.order_no),
            "user_id": (str(ours.player_id), theirs.user_id), "currency": (ours.currency, theirs.currency),
            "amount": (ours.amount, theirs.amount)}


def credited(ours) -> Decimal:
    """The winnings we paid on the order (a refund gives back the stake; it is not a payout)."""
    return ours.payout if ours.status == SUCCESS else Decimal(0)


def hash_payout(theirs: HashOrder, formula: str) -> Decimal:
    """What Hash's record says we should have paid, by the configured rule (HASH_PAYOUT)."""
    return payout(theirs.prize, theirs.tax, theirs.bonus, formula) if theirs.status == SUCCESS else Decimal(0)


def differences(ours, theirs: HashOrder, formula: str) -> dict[str, tuple]:
    """field -> (ours, Hash's), for each field on which the books disagree."""
    pairs = {**_identity(ours, theirs), "status": (ours.status, theirs.status),
             "payout": (credited(ours), hash_payout(theirs, formula))}
    if ours.status == SUCCESS == theirs.status:
        pairs.update(prize=(ours.prize, theirs.prize), tax=(ours.tax, theirs.tax),
                     bonus=(ours.bonus, theirs.bonus))
    both_open = ours.status in OPEN and theirs.status in OPEN
    return {name: pair for name, pair in pairs.items()
            if pair[0] != pair[1] and not (name == "status" and both_open)}


@dataclass
class Finding:
    order_no: str
    kind: str
    what: str
    fields: dict = field(default_factory=dict)  # name -> (ours, Hash's)
    fix: str | None = None


def judge(order_no: str, ours, theirs: HashOrder | None, formula: str) -> Finding | None:
    """The difference between our row and Hash's record of one order (None: Hash has no
    record), or None when the books agree."""
    if ours is None:
        if theirs.status in (FAILED, CANCELLED):
            return None  # a bet Hash dropped before we saw it: no money moved on either side
        return Finding(order_no, "not_booked_here",
                       f"Hash has it {STATUS_NAMES[theirs.status]}; we never booked it")
    if theirs is None:
        if ours.status == SUCCESS:
            return Finding(order_no, "not_at_hash", "we settled it; Hash has no record of it")
        if ours.status in OPEN:
            return Finding(order_no, "open_here", "we hold it open; Hash has no record of it", fix=FIX)
        return None  # refunded here, unknown there: nothing is owed either way
    fields = differences(ours, theirs, formula)
    if not fields:
        return None
    if ours.status in OPEN and theirs.status not in OPEN and not identity_differences(ours, theirs):
        return Finding(order_no, "open_here", f"Hash has it {STATUS_NAMES[theirs.status]}; we hold it "
                       "open", fields, FIX)
    return Finding(order_no, "differ", "the books disagree", fields)


def is_pending(ours, theirs: HashOrder | None, cutoff: datetime) -> bool:
    """Changed on either side after `cutoff`: inside Hash's retry window, its update may be coming."""
    stamps = [ours.created_at, ours.updated_at] if ours is not None else []
    if theirs is not None and theirs.changed_at is not None:
        stamps.append(theirs.changed_at)
    return any(stamp > cutoff for stamp in stamps)


def listed_orders(client: HashClient, start_ms: int, end_ms: int) -> tuple[dict, dict]:
    """§5.3, every order Hash lists for the range: ({order_no: HashOrder}, {order_no: why it is
    unreadable}). Paged with `page`, the documented parameter (`max_id` is only inferred to be a
    cursor, and sending both could skip orders); it ends at an empty page, not a short one, since
    Hash may serve fewer than page_size. A page of orders all seen already means Hash ignores
    `page`: an error, not a silently short list."""
    listed, unreadable, seen = {}, {}, set()
    page = 1
    while True:
        data = client.order_list(page=page, page_size=PAGE_SIZE, start_time=start_ms, end_time=end_ms)
        items = data.get("list") if isinstance(data, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) and i.get("order_no") for i in items):
            raise HashServiceError(f"order/list page {page}: not a list of order records")
        if not items:
            return listed, unreadable
        new = {str(item["order_no"]): item for item in items if str(item["order_no"]) not in seen}
        if not new:
            raise HashServiceError(f"order/list page {page} repeats orders already listed: "
                                   "Hash's paging is not as documented (docs/hash.md §5.3)")
        seen.update(new)  # an order listed again on a later page (the list moved) is read once
        for order_no, item in new.items():
            try:
                listed[order_no] = read_record(item)
            except ValueError as exc:
                unreadable[order_no] = str(exc)
        page += 1


COLUMNS = (orders_table.c.order_no, orders_table.c.amount, orders_table.c.status, orders_table.c.debited,
           orders_table.c.payout, orders_table.c.prize, orders_table.c.tax, orders_table.c.bonus,
           orders_table.c.created_at, orders_table.c.updated_at, wallets.c.player_id, wallets.c.currency)


def our_orders(engine, start: datetime, end: datetime, also: set) -> dict:
    """Our orders booked in [start, end), and those named in `also` whenever we booked them."""
    def read(conn):
        query = select(*COLUMNS).join(wallets)
        booked = orders_table.c.created_at
        rows = conn.execute(query.where(booked >= start, booked < end)).all()
        names = sorted(also)
        for first in range(0, len(names), BATCH):
            rows += conn.execute(query.where(orders_table.c.order_no.in_(names[first:first + BATCH]))).all()
        return {row.order_no: row for row in rows}
    return db.transaction(engine, read, write=False)


@dataclass
class Side:
    orders: int = 0
    stakes: Decimal = Decimal(0)
    payout: Decimal = Decimal(0)

    def add(self, stake: Decimal, paid: Decimal) -> None:
        self.orders, self.stakes, self.payout = self.orders + 1, self.stakes + stake, self.payout + paid

    def minus(self, other: "Side") -> "Side":
        return Side(self.orders - other.orders, self.stakes - other.stakes, self.payout - other.payout)


@dataclass
class Report:
    first_day: date
    last_day: date
    window: timedelta
    listed: int = 0
    ours: int = 0
    differences: list = field(default_factory=list)
    pending: list = field(default_factory=list)
    totals: dict = field(default_factory=dict)  # currency -> {"ours": Side, "hash": Side}

    def count(self, currency: str, side: str, stake: Decimal, paid: Decimal) -> None:
        self.totals.setdefault(currency, {"ours": Side(), "hash": Side()})[side].add(stake, paid)


def compare_books(engine, client: HashClient, first_day: date, last_day: date, window: timedelta,
                  formula: str, look_up) -> Report:
    """The report for the UTC days first_day..last_day. `look_up(order_no)` is Hash's record of one
    order, or None when Hash declares it has none; it raises NeedsHashsWord for an answer that is
    neither. Raises HashServiceError when Hash cannot answer."""
    start, end = datetime.combine(first_day, time()), datetime.combine(last_day + timedelta(days=1), time())
    epoch = datetime(1970, 1, 1)
    listed, unreadable = listed_orders(client, (start - epoch) // timedelta(milliseconds=1),
                                       (end - epoch) // timedelta(milliseconds=1) - 1)
    report = Report(first_day, last_day, window, listed=len(listed) + len(unreadable))
    ours = our_orders(engine, start, end, listed.keys() | unreadable.keys())
    report.ours, theirs = len(ours), dict(listed)
    unanswered = {order_no: ("unreadable", f"Hash's record: {why}") for order_no, why in unreadable.items()}
    for order_no, order in ours.items():
        if order_no not in theirs and order_no not in unanswered and order.status in (SUCCESS, *OPEN):
            try:
                record = look_up(order_no)
                theirs[order_no] = None if record is None else read_record(record)
            except NeedsHashsWord as exc:
                unanswered[order_no] = ("ask_hash", f"Hash's answer: {exc}")
            except ValueError as exc:
                unanswered[order_no] = ("unreadable", f"Hash's record: {exc}")
    cutoff = utcnow() - window
    for order_no, (kind, why) in sorted(unanswered.items()):  # ours changed within the window: may settle yet
        pending = is_pending(ours.get(order_no), None, cutoff)
        (report.pending if pending else report.differences).append(Finding(order_no, kind, why))
    for order_no in sorted((ours.keys() | theirs.keys()) - unanswered.keys()):
        mine, hash_order = ours.get(order_no), theirs.get(order_no)
        finding = judge(order_no, mine, hash_order, formula)
        if finding is not None and is_pending(mine, hash_order, cutoff):
            finding.fix = None  # nothing to fix yet (plain hash-reconcile skips it too)
            report.pending.append(finding)  # left out of the totals: it may agree in a minute
            continue
        if finding is not None:
            report.differences.append(finding)
        if mine is not None and mine.status == SUCCESS:
            report.count(mine.currency, "ours", mine.amount, credited(mine))
        if hash_order is not None and hash_order.status == SUCCESS:
            report.count(hash_order.currency, "hash", hash_order.amount, hash_payout(hash_order, formula))
    return report


def _text(value) -> str:
    return format(value.normalize(), "f") if isinstance(value, Decimal) else str(value)


def report_text(report: Report) -> str:
    lines = [f"hash-reconcile --settled: {report.first_day} to {report.last_day} (UTC days), "
             f"{report.listed} order(s) listed by Hash, {report.ours} of ours compared"]

    def table(findings):
        for finding in findings:
            what = "; ".join([finding.what] + [f"{name} {_text(mine)} here, {_text(theirs)} at Hash"
                                               for name, (mine, theirs) in finding.fields.items()])
            fix = f" -> run: {finding.fix}" if finding.fix else ""
            lines.append(f"  {finding.order_no:<32} {finding.kind:<16} {what}{fix}")
    if report.differences:
        lines.append("differences:")
        table(report.differences)
    if report.pending:
        lines.append(f"pending (changed within the last {report.window // timedelta(minutes=1)} minutes: "
                     "Hash may still be retrying; not differences, look again later):")
        table(report.pending)
    lines.append("settled orders per currency:")
    lines.append(f"  {'currency':<10} {'side':<6} {'orders':>8} {'stakes':>20} {'payout':>20}")
    for currency, sides in sorted(report.totals.items()):
        for name, side in (("ours", sides["ours"]), ("Hash", sides["hash"]),
                           ("diff", sides["hash"].minus(sides["ours"]))):
            lines.append(f"  {currency:<10} {name:<6} {side.orders:>8} {_text(side.stakes):>20} "
                         f"{_text(side.payout):>20}")
    verdict = f"{len(report.differences)} difference(s)" if report.differences else "the books agree"
    lines.append(f"hash-reconcile --settled: {verdict}, {len(report.pending)} pending")
    return "\n".join(lines)


def report_json(report: Report) -> str:
    def value(v):
        return _text(v) if isinstance(v, Decimal) else v  # amounts as exact decimal strings

    def finding(f: Finding) -> dict:
        return {"order_no": f.order_no, "kind": f.kind, "what": f.what, "fix": f.fix,
                "fields": {name: {"ours": value(mine), "hash": value(theirs)}
                           for name, (mine, theirs) in f.fields.items()}}

    def side(s: Side) -> dict:
        return {"orders": s.orders, "stakes": _text(s.stakes), "payout": _text(s.payout)}
    totals = {currency: {"ours": side(sides["ours"]), "hash": side(sides["hash"]),
                         "difference": side(sides["hash"].minus(sides["ours"]))}
              for currency, sides in sorted(report.totals.items())}
    return json.dumps({
        "from": report.first_day.isoformat(), "to": report.last_day.isoformat(),
        "older_than_minutes": report.window // timedelta(minutes=1), "listed_by_hash": report.listed,
        "ours_compared": report.ours, "agree": not report.differences,
        "differences": [finding(f) for f in report.differences],
        "pending": [finding(f) for f in report.pending], "totals": totals}, indent=2)


def settled_command(engine, client: HashClient, first_day: date, last_day: date, window: timedelta,
                    formula: str, look_up, as_json: bool) -> int:
    """Print the report; the exit status: 0 the books agree, 1 they differ, 2 Hash not reached."""
    if first_day > last_day:
        raise click.BadParameter(f"--from {first_day} is after --to {last_day}")
    try:
        report = compare_books(engine, client, first_day, last_day, window, formula, look_up)
    except HashServiceError as exc:
        message = f"Hash could not be reached or read, nothing compared: {exc}"
        click.echo(json.dumps({"error": message}) if as_json else f"hash-reconcile --settled: {message}",
                   err=not as_json)
        return 2
    click.echo(report_json(report) if as_json else report_text(report))
    return 1 if report.differences else 0
