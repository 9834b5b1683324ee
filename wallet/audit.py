"""`flask --app app audit`: the books checked against every invariant the schema cannot enforce.

- each wallet's balance equals the sum of its ledger rows, and each row's balance_after is the
  running sum at that row (the ledger is append-only: nothing was altered or removed);
- each 100HP txId and Hash order_no is booked exactly as its state says: a bet has its debit, a
  settled bet its one deposit, a refunded bet its one refund, an open bet neither
  (spec/100hp.md §2.3, spec/hash.md §7.2);
- no ledger row refers to a transaction or order that does not exist.
All of it is read in one snapshot, so it can run under live traffic.
Sums are taken in Python over Decimals: SQLite's SUM would go through floating point.
"""
from collections import defaultdict
from decimal import Decimal

from sqlalchemy import select

from .db import hash_orders, hp_transactions, ledger, read_snapshot, wallets

# What the ledger must hold for a 100HP transaction / a Hash order in each state: {op: sign}.
HP_EXPECTED = {
    ("withdrawal", "open"): {"withdrawal": -1},
    ("withdrawal", "settled"): {"withdrawal": -1, "deposit": +1},
    ("withdrawal", "refunded"): {"withdrawal": -1, "rollback": +1},
    ("bonusWin", "settled"): {"bonusWin": +1},
    ("rollback", "refunded"): {},  # a rollback before its withdrawal: nothing was ever booked
}


def audit(engine) -> list[str]:
    """Every problem found, as one line each; an empty list means the books are right."""
    problems = []
    with read_snapshot(engine) as conn:  # one view: a bet committing meanwhile is not half-seen
        totals, running, refs = defaultdict(Decimal), defaultdict(Decimal), defaultdict(dict)
        for row in conn.execution_options(yield_per=10000).execute(
                select(ledger).order_by(ledger.c.id)):
            totals[row.wallet_id] += row.amount
            running[row.wallet_id] += row.amount
            if row.balance_after != running[row.wallet_id]:
                problems.append(f"ledger row {row.id}: balance_after {_amount(row.balance_after)} but "
                                f"the rows before it sum to {_amount(running[row.wallet_id])}")
                running[row.wallet_id] = row.balance_after  # report each break once
            refs[row.provider, row.ref][row.op] = row.amount
        for wallet in conn.execute(select(wallets)):
            if wallet.balance != totals[wallet.id]:
                problems.append(f"wallet {wallet.id}: balance {_amount(wallet.balance)} but its "
                                f"ledger sums to {_amount(totals[wallet.id])}")
        for bet in conn.execution_options(yield_per=10000).execute(select(hp_transactions)):
            ops = refs.pop(("100hp", bet.tx_id), {})
            expected = HP_EXPECTED.get((bet.kind, bet.status), {})
            want = {op: sign * (bet.win_amount if op == "deposit" else bet.amount)
                    for op, sign in expected.items()}
            if bet.status == "refunded" and "expire" in ops:  # refunded by expire-withdrawals
                want["expire"] = want.pop("rollback")
            if ops != want:
                problems.append(f"100HP txId {bet.tx_id} ({bet.kind}, {bet.status}): ledger has "
                                f"{_fmt(ops)}, expected {_fmt(want)}")
        for order in conn.execution_options(yield_per=10000).execute(select(hash_orders)):
            ops = refs.pop(("hash", order.order_no), {})
            want = {"order_add": -order.amount} if order.debited else {}
            if order.status == 1:
                want["order_settle"] = order.payout
            elif order.status in (2, 4) and order.debited:
                want["order_refund"] = order.amount
            if ops != want:
                problems.append(f"Hash order {order.order_no} (status {order.status}): ledger has "
                                f"{_fmt(ops)}, expected {_fmt(want)}")
    for (provider, ref), ops in refs.items():
        if provider != "admin":
            problems.append(f"ledger rows for unknown {provider} reference {ref}: {_fmt(ops)}")
    return problems


def _fmt(ops: dict) -> str:
    return ", ".join(f"{op} {_amount(amount)}" for op, amount in sorted(ops.items())) or "nothing"


def _amount(value) -> str:
    return "None" if value is None else format(value.normalize(), "f")  # 90.000000 -> 90
