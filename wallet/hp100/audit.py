"""The audit's 100HP check (wallet/core/audit.py): each txId booked exactly as its state says: a
bet has its debit, a settled bet its one deposit, a refunded bet its one refund, an open bet
neither (docs/100hp.md §2.4), each on the bet's own wallet (its player's, in its currency)."""
from sqlalchemy import select

from ..core.audit import ops_text, rows_on_another_wallet
from .schema import hp_transactions

# What the ledger must hold for a 100HP transaction in each state: {op: sign}.
EXPECTED = {
    ("withdrawal", "open"): {"withdrawal": -1},
    ("withdrawal", "settled"): {"withdrawal": -1, "deposit": +1},
    ("withdrawal", "refunded"): {"withdrawal": -1, "rollback": +1},
    ("bonusWin", "settled"): {"bonusWin": +1},
    ("rollback", "refunded"): {},  # a rollback before its withdrawal: nothing was ever booked
}


def check_bets(conn, booked) -> list[str]:
    problems = rows_on_another_wallet(conn, "100hp", hp_transactions, hp_transactions.c.tx_id, "bet")
    for bet in conn.execution_options(yield_per=10000).execute(select(hp_transactions)):
        ops = booked.pop(("100hp", bet.tx_id), {})
        want = {op: sign * (bet.win_amount if op == "deposit" else bet.amount)
                for op, sign in EXPECTED.get((bet.kind, bet.status), {}).items()}
        if bet.status == "refunded" and "expire" in ops:  # refunded by expire-withdrawals
            want["expire"] = want.pop("rollback")
        if ops != want:
            problems.append(f"100HP txId {bet.tx_id} ({bet.kind}, {bet.status}): ledger has "
                            f"{ops_text(ops)}, expected {ops_text(want)}")
    return problems
