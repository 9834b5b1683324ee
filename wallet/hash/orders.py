"""Hash Game no-transfer wallet rules (spec/hash.md §5, §7): users, balances and the order lifecycle.

Idempotent on `order_no` (§7.3): order/add debits once; order/update status 1 credits the payout
once, 2 and 4 refund the stake once, 0 and 3 move no money; a final order never changes state.
Every money call locks the wallet row first, then reads the order (DESIGN.md, lock order).
The error codes are ours: the provider's table was NOT FOUND (§10). The README repeats this table.
"""
from decimal import Decimal

from sqlalchemy import and_, bindparam, insert, select, update

from ..core import db, ledger
from ..core.money import format_hash
from ..core.schema import players, sessions, utcnow, wallets
from .schema import hash_orders

CODES = {
    0: "SUCCESS",
    1001: "invalid parameters",
    1002: "cannot decrypt x",
    1003: "unknown merchant-id",
    1004: "timestamp out of window",
    2001: "invalid token or user",
    2002: "insufficient balance",
    2003: "unsupported currency",
    3001: "order_no already used with different data",
    3002: "order not found",
    3003: "illegal status transition",
    5000: "internal error",
}

PENDING, SUCCESS, FAILED, PENDING_SETTLEMENT, CANCELLED = 0, 1, 2, 3, 4  # Hash §7.1
FINAL = (SUCCESS, FAILED, CANCELLED)

# The statements, built once (SQLAlchemy caches their compiled form).
_LIVE_SESSION = and_(sessions.c.token == bindparam("token"), sessions.c.closed_at.is_(None))
PLAYER = select(players).select_from(sessions.join(players)).where(_LIVE_SESSION)
# A bet's first lock: the session's wallet in the bet's currency (as YourCasino's, FOR UPDATE OF).
SESSION_WALLET_LOCKED = (
    select(wallets).select_from(sessions.join(wallets, and_(
        wallets.c.player_id == sessions.c.player_id, wallets.c.currency == bindparam("currency"))))
    .where(_LIVE_SESSION).with_for_update(of=wallets))
WALLET = select(wallets).where(wallets.c.player_id == bindparam("player_id"),
                               wallets.c.currency == bindparam("currency"))
PLAYER_EXISTS = select(players.c.id).where(players.c.id == bindparam("player_id"))
ORDER = select(hash_orders).where(hash_orders.c.order_no == bindparam("order_no"))
ADD_ORDER = insert(hash_orders)
UPDATE_ORDER = (
    update(hash_orders).where(hash_orders.c.order_no == bindparam("order")).values(
        status=bindparam("new_status"), payout=bindparam("credited"), prize=bindparam("new_prize"),
        tax=bindparam("new_tax"), bonus=bindparam("new_bonus"), bet_info=bindparam("info"),
        updated_at=bindparam("at")))


class HashError(Exception):
    def __init__(self, code: int, detail: str = ""):
        self.code = code
        self.msg = f"{CODES[code]}: {detail}" if detail else CODES[code]
        super().__init__(self.msg)


def payout(prize: Decimal, tax: Decimal, bonus: Decimal, formula: str = "prize+bonus") -> Decimal:
    """What a settled (status 1) order pays. INFERRED (§7.2): `prize` is "tax included", so by
    default we credit prize + bonus and keep tax for reporting; HASH_PAYOUT=prize-tax+bonus if Hash
    confirms that prize is gross. Never negative."""
    amount = prize + bonus - (tax if formula == "prize-tax+bonus" else 0)
    return max(amount, Decimal(0))


def user_info(engine, token: str) -> dict:
    """§5.1. Errors: 2001."""
    player = db.transaction(engine, lambda conn: _player(conn, token), write=False)
    return {"user_id": player.id, "username": player.name, "avatar": ""}


def user_balance(engine, token: str, currency: str) -> dict:
    """§5.2. Errors: 2001, 2003."""
    def work(conn):
        return _wallet(conn, _player(conn, token).id, currency)
    wallet = db.transaction(engine, work, write=False)
    return {"user_id": wallet.player_id, "balance": format_hash(wallet.balance), "currency": currency}


def add_order(engine, *, token, user_id, order_no, currency, amount, entry_key, round_id, bet_info):
    """§5.3: debit a bet once. A repeat with the same data answers success again without a second
    debit; a repeat with other data is 3001. Errors: 2001, 2002, 2003, 3001."""
    def work(conn):
        wallet = conn.execute(SESSION_WALLET_LOCKED, dict(token=token, currency=currency)).first()
        if wallet is None or wallet.player_id != user_id:
            raise _refusal(conn, token, user_id)
        order = _order(conn, order_no)
        if order is not None:
            if order.debited and order.wallet_id == wallet.id and order.amount == amount:
                return _answer(order_no, wallet.balance, currency)  # a retried add: no second debit
            raise HashError(3001)  # other data, or an order cancelled before we ever saw it
        if wallet.balance < amount:
            raise HashError(2002)
        balance = ledger.post(conn, wallet, -amount, provider="hash", op="order_add", ref=order_no)
        now = utcnow()
        conn.execute(ADD_ORDER, dict(order_no=order_no, wallet_id=wallet.id, amount=amount,
                                     status=PENDING, debited=True, entry_key=entry_key,
                                     round_id=round_id, bet_info=bet_info, created_at=now,
                                     updated_at=now))
        return _answer(order_no, balance, currency)
    return db.transaction(engine, work)


def update_order(engine, *, user_id, order_no, currency, amount, status, prize, tax, bonus,
                 bet_info, entry_key="", round_id="", formula="prize+bonus"):
    """§5.4: apply a status change once (Hash retries every minute, up to 10 times, §7.3).
    Errors: 2001, 2003, 3001, 3002, 3003."""
    def work(conn):
        known = _order(conn, order_no)
        wallet_id = known.wallet_id if known else _wallet(conn, user_id, currency).id
        wallet = db.lock_wallet(conn, wallet_id)
        order = _order(conn, order_no)  # again, under the lock: a racing call may have changed it
        if order is None:
            if status not in (FAILED, CANCELLED):
                raise HashError(3002)
            # §7.2 advice: a cancel for an order never debited is a no-op, recorded so that a late
            # order/add with this order_no is refused (3001) instead of taking a bet Hash dropped.
            now = utcnow()
            conn.execute(ADD_ORDER, dict(order_no=order_no, wallet_id=wallet.id, amount=amount,
                                         status=status, debited=False, entry_key=entry_key,
                                         round_id=round_id, bet_info=bet_info, created_at=now,
                                         updated_at=now))
            return _answer(order_no, wallet.balance, currency)
        if wallet.player_id != user_id or wallet.currency != currency or order.amount != amount:
            raise HashError(3001, "user_id, currency or amount differ from the order")
        if order.status in FINAL:
            if order.status == status:
                return _answer(order_no, wallet.balance, currency)  # a retry: already applied
            raise HashError(3003, f"order is final ({order.status})")  # never settle twice
        balance, credited = wallet.balance, None
        if status == SUCCESS:
            credited = payout(prize, tax, bonus, formula)
            balance = ledger.post(conn, wallet, credited, provider="hash", op="order_settle",
                                  ref=order_no)
        elif status in (FAILED, CANCELLED) and order.debited:
            balance = ledger.post(conn, wallet, order.amount, provider="hash", op="order_refund",
                                  ref=order_no)
        conn.execute(UPDATE_ORDER, dict(order=order_no, new_status=status, credited=credited,
                                        new_prize=prize, new_tax=tax, new_bonus=bonus,
                                        info=bet_info, at=utcnow()))
        return _answer(order_no, balance, currency)
    return db.transaction(engine, work)


def _answer(order_no: str, balance: Decimal, currency: str) -> dict:
    return {"order_no": order_no, "balance": format_hash(balance), "currency": currency}


def _refusal(conn, token: str, user_id: int) -> HashError:
    """Why a bet found no wallet: the token (`_player` raises 2001), the user_id (2001), else the
    currency (2003)."""
    if _player(conn, token).id != user_id:
        return HashError(2001, "user_id is not the token's user")
    return HashError(2003)


def _player(conn, token: str):
    player = conn.execute(PLAYER, dict(token=token)).first()
    if player is None:
        raise HashError(2001)
    return player


def _wallet(conn, player_id: int, currency: str):
    wallet = conn.execute(WALLET, dict(player_id=player_id, currency=currency)).first()
    if wallet is None:
        raise HashError(2003 if conn.execute(PLAYER_EXISTS, dict(player_id=player_id)).first() else 2001)
    return wallet


def _order(conn, order_no: str):
    return conn.execute(ORDER, dict(order_no=order_no)).first()
