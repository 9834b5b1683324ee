"""The only code that changes a balance (docs/architecture.md).

`post` moves money on a wallet the caller has locked (db.lock_wallet) and appends the ledger row,
in the caller's transaction, so the balance and its history commit together or not at all.
It knows nothing of providers' error codes: it raises InsufficientFunds and lets them translate.
"""
from decimal import Decimal

from sqlalchemy import bindparam, insert, update

from .money import BALANCE_LIMIT
from .schema import ledger, utcnow, wallets

SET_BALANCE = update(wallets).where(wallets.c.id == bindparam("wallet")).values(
    balance=bindparam("new_balance"))
# inline(): the new row's id is not fetched back (PostgreSQL would add RETURNING ledger.id, a row
# to send and read on every balance change that nothing uses).
APPEND = insert(ledger).inline()


class InsufficientFunds(Exception):
    """The debit would take the balance below zero."""


class BalanceLimit(Exception):
    """The credit would take the balance past the column's 18 integer digits."""


def post(conn, wallet, amount: Decimal, *, provider: str, op: str, ref: str) -> Decimal:
    """Add `amount` (negative for a debit) to the locked `wallet` row; return the new balance.

    (provider, op, ref) is unique in the ledger: booking the same operation twice raises
    IntegrityError and rolls the whole transaction back.
    """
    balance = wallet.balance + amount
    # The providers' rules refuse these first, with their own codes; this is the second line of
    # defence (and the CHECK (balance >= 0) constraints the third).
    if balance < 0:
        raise InsufficientFunds()
    if balance >= BALANCE_LIMIT:
        raise BalanceLimit()
    conn.execute(SET_BALANCE, {"wallet": wallet.id, "new_balance": balance})
    conn.execute(APPEND, {"wallet_id": wallet.id, "provider": provider, "op": op, "ref": ref,
                          "amount": amount, "balance_after": balance, "created_at": utcnow()})
    return balance
