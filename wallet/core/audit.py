"""`flask --app app audit`: the books checked against every invariant the schema cannot enforce.

Here, for every provider: each wallet's balance equals the sum of its ledger rows, and each row's
balance_after is the running sum at that row (the ledger is append-only: nothing was altered or
removed). Each provider adds a check that its own transactions are booked exactly as their state
says, and each of their ledger rows on the wallet (so the player and currency) of the bet or order
it belongs to (wallet/hp100/audit.py, wallet/hash/audit.py, with `rows_on_another_wallet`); a
ledger row no check claims is reported.
All of it is read in one snapshot, so it can run under live traffic.
Sums are taken in Python over Decimals: SQLite's SUM would go through floating point.
"""
from collections import defaultdict
from decimal import Decimal

from sqlalchemy import select

from .db import read_snapshot
from .schema import ledger, wallets


def audit(engine, provider_checks=()) -> list[str]:
    """Every problem found, as one line each; an empty list means the books are right.

    A provider check is `check(conn, booked) -> list[str]`; `booked[(provider, ref)]` is
    {op: amount} of the ledger, and a check pops the references it accounts for."""
    problems = []
    with read_snapshot(engine) as conn:  # one view: a bet committing meanwhile is not half-seen
        totals, running, booked = defaultdict(Decimal), defaultdict(Decimal), defaultdict(dict)
        for row in conn.execution_options(yield_per=10000).execute(
                select(ledger).order_by(ledger.c.id)):
            totals[row.wallet_id] += row.amount
            running[row.wallet_id] += row.amount
            if row.balance_after != running[row.wallet_id]:
                problems.append(f"ledger row {row.id}: balance_after {amount_text(row.balance_after)} "
                                f"but the rows before it sum to {amount_text(running[row.wallet_id])}")
                running[row.wallet_id] = row.balance_after  # report each break once
            booked[row.provider, row.ref][row.op] = row.amount
        for wallet in conn.execute(select(wallets)):
            if wallet.balance != totals[wallet.id]:
                problems.append(f"wallet {wallet.id}: balance {amount_text(wallet.balance)} but its "
                                f"ledger sums to {amount_text(totals[wallet.id])}")
        for check in provider_checks:
            problems += check(conn, booked)
    for (provider, ref), ops in booked.items():
        if provider != "admin":
            problems.append(f"ledger rows for unknown {provider} reference {ref}: {ops_text(ops)}")
    return problems


def ops_text(ops: dict) -> str:
    return ", ".join(f"{op} {amount_text(amount)}" for op, amount in sorted(ops.items())) or "nothing"


def amount_text(value) -> str:
    return "None" if value is None else format(value.normalize(), "f")  # 90.000000 -> 90


def rows_on_another_wallet(conn, provider: str, table, key, belongs_to: str) -> list[str]:
    """Each `provider` ledger row that is not on the wallet of the `belongs_to` (bet, order) it is
    booked for: the row of `table` whose `key` column is the ledger row's ref. A settle booked on
    the player's wallet in another currency, or on another player's, leaves every balance summing
    to its ledger: only this finds it."""
    booked_on, owner = wallets.alias("booked_on"), wallets.alias("owner")
    rows = conn.execute(
        select(ledger.c.id, ledger.c.op, ledger.c.ref,
               booked_on.c.id.label("on_id"), booked_on.c.player_id.label("on_player"),
               booked_on.c.currency.label("on_currency"), owner.c.id.label("owner_id"),
               owner.c.player_id.label("owner_player"), owner.c.currency.label("owner_currency"))
        .select_from(ledger.join(table, key == ledger.c.ref)
                     .join(booked_on, booked_on.c.id == ledger.c.wallet_id)
                     .join(owner, owner.c.id == table.c.wallet_id))
        .where(ledger.c.provider == provider, ledger.c.wallet_id != table.c.wallet_id)
        .order_by(ledger.c.id))
    return [f"ledger row {row.id} ({provider} {row.op} {row.ref}) is on wallet {row.on_id} (player "
            f"{row.on_player}, {row.on_currency}), not on its {belongs_to}'s wallet {row.owner_id} "
            f"(player {row.owner_player}, {row.owner_currency})" for row in rows]
