"""Hash Game no-transfer wallet rules (spec/hash.md §5, §7): users, balances and the order lifecycle.

Idempotent on `order_no` (§7.3): order/add debits once; order/update status 1 credits the payout
once, 2 and 4 refund the stake once, 0 and 3 move no money; a final order never changes state.
The error codes are ours: the provider's table was NOT FOUND (§10). The README repeats this table.

The rules, as a call meets them (each is ours unless a section is named):
- request_id (§3.8 asks for "a unique ID"): a request_id seen within the timestamp window
  (HASH_TIMESTAMP_WINDOW_MS) is refused 1005 "duplicate request_id", with no effect. It counts as
  seen from the later of our clock and the request's own timestamp, so it is remembered for as
  long as a replay's timestamp could still pass the window check. It is claimed in the same
  transaction as the call's operation, so only a call that succeeds claims it: a call refused by a
  rule below, or one that gets no answer (5000: deadline passed, database down), leaves it free.
  Why: §3.8 warns that Hash's order/update retries may reuse the request_id, and a retry after a
  5000 must go through; and a copy of Hash's request rewritten without the key and sent first
  (refused by a rule below) must not use up the request_id of Hash's own. The price: a refused
  request replayed within the window is judged again (a bet refused 2002 could be taken after a
  top-up; Hash counts it as failed, and hash-reconcile refunds what Hash does not know). A retry
  after a success whose answer was lost gets 1005 until the window has passed (the money moved
  once, on the first); with a fresh request_id it answers success again. Old entries are purged
  every PURGE_EVERY calls of a process, outside the money transactions.
- sessions: a token whose session is closed (close-session) or past its expires_at
  (SESSION_LIFETIME_MINUTES) is no token: 2001 for user/info, user/balance and order/add. A
  blocked player still gets user/info and user/balance; order/add is refused 2001 "player is
  blocked"; order/update applies as for anyone, so a pending win is never lost.
- order/update must describe the stored bet: user_id, amount, currency, round_id and entry_key as
  order/add stored them (bet_info may change: results are added at settle), else 3001. A repeated
  final status must repeat its prize, tax and bonus, else 3001. Both write an ERROR log line
  naming what differs. These stop an update rewritten without the key (the envelope has no MAC,
  wallet/hash_crypto.py) from being applied to another order, or as a second, different result.
- a settle pays at most HASH_MAX_PAYOUT_MULTIPLE (default 1000) times the stake, else 3001 and an
  ERROR log line. Only the top-level amount and payout are used: bet_info's odds are not, since
  the doc's own example (§7.5: amount 1, odds 200 meaning 2.00x, prize 200) does not agree with
  itself on their units.
- a credit that would take a balance to 1e18 or more (wallet/ledger.py BalanceLimit) is refused
  1001 "amount would take the balance over the wallet's limit", nothing written.

Lock order, in every transaction: the request_id row (a twin in flight waits there holding
nothing), then the wallet row, then the order. The SQL is in the small functions at the end.
"""
import itertools
import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import and_, bindparam, delete, insert, select, update
from sqlalchemy.exc import DBAPIError

from ..core import db, ledger
from ..core.money import format_hash
from ..core.schema import players, sessions, utcnow, wallets
from .schema import hash_orders, hash_requests

log = logging.getLogger(__name__)

CODES = {
    0: "SUCCESS",
    1001: "invalid parameters",
    1002: "cannot decrypt x",
    1003: "unknown merchant-id",
    1004: "timestamp out of window",
    1005: "duplicate request_id",
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
DEFAULT_MAX_PAYOUT_MULTIPLE = 1000  # HASH_MAX_PAYOUT_MULTIPLE
PURGE_EVERY = 100  # calls of one process between two purges of old request_ids


class HashError(Exception):
    def __init__(self, code: int, detail: str = ""):
        self.code = code
        self.msg = f"{CODES[code]}: {detail}" if detail else CODES[code]
        super().__init__(self.msg)


class RequestId(NamedTuple):
    """What the request_id rule needs to know of a call from Hash (all times naive UTC)."""
    value: str
    timestamp: datetime    # the request's own `timestamp`
    received_at: datetime  # when wallet/hash.py checked that timestamp
    window: timedelta      # HASH_TIMESTAMP_WINDOW_MS

    @property
    def seen_at(self) -> datetime:
        """From when it is remembered: a timestamp ahead of our clock passes the window check longer."""
        return max(self.received_at, self.timestamp)


def payout(prize: Decimal, tax: Decimal, bonus: Decimal, formula: str = "prize+bonus") -> Decimal:
    """What a settled (status 1) order pays. INFERRED (§7.2): `prize` is "tax included", so by
    default we credit prize + bonus and keep tax for reporting; HASH_PAYOUT=prize-tax+bonus if Hash
    confirms that prize is gross. Never negative."""
    amount = prize + bonus - (tax if formula == "prize-tax+bonus" else 0)
    return max(amount, Decimal(0))


# ---- the four endpoints -------------------------------------------------------------------------
def user_info(engine, token: str, request_id: RequestId | None = None) -> dict:
    """§5.1. Errors: 1005, 2001."""
    def work(conn):
        _claim(conn, request_id)
        return _may_play(_find_session(conn, token))
    session = _run(engine, work, request_id)
    return {"user_id": session.player_id, "username": session.name, "avatar": ""}


def user_balance(engine, token: str, currency: str, request_id: RequestId | None = None) -> dict:
    """§5.2. Errors: 1005, 2001, 2003."""
    def work(conn):
        _claim(conn, request_id)
        return _wallet(conn, _may_play(_find_session(conn, token)).player_id, currency)
    wallet = _run(engine, work, request_id)
    return {"user_id": wallet.player_id, "balance": format_hash(wallet.balance), "currency": currency}


def add_order(engine, *, token, user_id, order_no, currency, amount, entry_key, round_id, bet_info,
              request_id: RequestId | None = None):
    """§5.3: debit a bet once. A repeat with the same data answers success again without a second
    debit; a repeat with other data is 3001. Errors: 1005, 2001, 2002, 2003, 3001."""
    def work(conn):
        _claim(conn, request_id)
        wallet = _lock_session_wallet(conn, token, currency)  # the lock order's wallet row
        if wallet is None:
            raise _refusal(conn, token, user_id)
        _may_play(wallet, user_id, betting=True)
        order = _find_order(conn, order_no)
        if order is not None:
            if order.debited and order.wallet_id == wallet.id and order.amount == amount:
                return _answer(order_no, wallet.balance, currency)  # a retried add: no second debit
            raise HashError(3001)  # other data, or an order cancelled before we ever saw it
        if wallet.balance < amount:
            raise HashError(2002)
        balance = _move(conn, wallet, -amount, "order_add", order_no)
        _insert_order(conn, order_no=order_no, wallet_id=wallet.id, amount=amount, status=PENDING,
                      debited=True, entry_key=entry_key, round_id=round_id, bet_info=bet_info)
        return _answer(order_no, balance, currency)
    return _run(engine, work, request_id)


def update_order(engine, *, user_id, order_no, currency, amount, status, prize, tax, bonus,
                 bet_info, entry_key, round_id, formula="prize+bonus",
                 max_payout_multiple=DEFAULT_MAX_PAYOUT_MULTIPLE, request_id: RequestId | None = None):
    """§5.4: apply a status change once (Hash retries every minute, up to 10 times, §7.3).
    Errors: 1001 (balance limit), 1005, 2001, 2003, 3001, 3002, 3003."""
    sent = {"user_id": user_id, "currency": currency, "amount": amount, "round_id": round_id,
            "entry_key": entry_key}

    def work(conn):
        _claim(conn, request_id)
        known = _find_order(conn, order_no)
        wallet_id = known.wallet_id if known else _wallet(conn, user_id, currency).id
        wallet = db.lock_wallet(conn, wallet_id)
        order = _find_order(conn, order_no)  # again, under the lock: a racing call may have changed it
        if order is None:
            if status not in (FAILED, CANCELLED):
                raise HashError(3002)
            # §7.2 advice: a cancel for an order never debited is a no-op, recorded so that a late
            # order/add with this order_no is refused (3001) instead of taking a bet Hash dropped.
            _insert_order(conn, order_no=order_no, wallet_id=wallet.id, amount=amount, status=status,
                          debited=False, entry_key=entry_key, round_id=round_id, bet_info=bet_info,
                          prize=prize, tax=tax, bonus=bonus)
            return _answer(order_no, wallet.balance, currency)
        owner = wallet if order.wallet_id == wallet.id else _find_wallet(conn, order.wallet_id)
        _check_as_stored(order_no, stored={"user_id": owner.player_id, "currency": owner.currency,
                                          "amount": order.amount, "round_id": order.round_id,
                                          "entry_key": order.entry_key}, sent=sent)
        if order.status in FINAL:
            if order.status != status:
                raise HashError(3003, f"order is final ({order.status})")  # never settle twice
            _check_as_stored(order_no, stored={"prize": order.prize, "tax": order.tax,
                                              "bonus": order.bonus},
                            sent={"prize": prize, "tax": tax, "bonus": bonus})
            return _answer(order_no, wallet.balance, currency)  # a retry: already applied
        balance, credited = wallet.balance, None
        if status == SUCCESS:
            credited = payout(prize, tax, bonus, formula)
            _check_payout_limit(order_no, order.amount, credited, max_payout_multiple)
            balance = _move(conn, wallet, credited, "order_settle", order_no)
        elif status in (FAILED, CANCELLED) and order.debited:
            balance = _move(conn, wallet, order.amount, "order_refund", order_no)
        _update_order(conn, order_no, status=status, payout=credited, prize=prize, tax=tax,
                      bonus=bonus, bet_info=bet_info)
        return _answer(order_no, balance, currency)
    return _run(engine, work, request_id)


# ---- the rules ----------------------------------------------------------------------------------
def _run(engine, work, request_id: RequestId | None):
    """`work` (which claims the request_id first) in one transaction; now and then a purge."""
    _purge_now_and_then(engine, request_id)
    return db.transaction(engine, work)


def _claim(conn, request_id: RequestId | None) -> None:
    """A request_id seen within the window is 1005; else this transaction claims it. A twin in
    flight inserts the same key, waits for us, and loses with a unique-key error: db.transaction
    runs it again, and it answers 1005. None: a call of our own (hash-reconcile), not from Hash."""
    if request_id is None:
        return
    cutoff = request_id.received_at - request_id.window
    seen_at = _request_seen_at(conn, request_id.value)
    if seen_at is not None and seen_at >= cutoff:
        raise HashError(1005)
    if seen_at is not None:
        _forget_request(conn, request_id.value, cutoff)  # older than the window, not purged yet
    _insert_request(conn, request_id.value, request_id.seen_at)


_calls = itertools.count(1)


def _purge_now_and_then(engine, request_id: RequestId | None) -> None:
    """Every PURGE_EVERY-th call of this process deletes the request_ids older than the window, in
    a transaction of its own, so the table holds about one window of calls (plus PURGE_EVERY per
    process). A purge that fails is logged and left to the next one: the call goes on."""
    if request_id is None or next(_calls) % PURGE_EVERY:
        return
    cutoff = request_id.received_at - request_id.window
    try:
        db.transaction(engine, lambda conn: _delete_requests_before(conn, cutoff))
    except (db.DatabaseUnavailable, DBAPIError) as exc:
        log.warning("Hash request_id purge failed, left to the next one: %s", exc)


def _may_play(session, user_id: int | None = None, *, betting=False):
    """The session, if its token still counts: not closed, not expired, the user_id's (2001)."""
    if session.closed_at is not None:
        raise HashError(2001, "session is closed")
    if session.expires_at <= utcnow():
        raise HashError(2001, "session has expired")
    if user_id is not None and session.player_id != user_id:
        raise HashError(2001, "user_id is not the token's user")
    if betting and session.player_status == "blocked":
        raise HashError(2001, "player is blocked")  # no new stakes; its orders still settle
    return session


def _refusal(conn, token: str, user_id: int) -> HashError:
    """Why a bet found no wallet: the token or its session (2001), else the currency (2003)."""
    _may_play(_find_session(conn, token), user_id, betting=True)
    return HashError(2003)


def _check_as_stored(order_no: str, *, stored: dict, sent: dict) -> None:
    """3001 unless `sent` says what `stored` says; the ERROR line names what differs."""
    differ = [name for name in stored if stored[name] != sent[name]]
    if differ:
        log.error("Hash order/update refused for order_no %r: %s", order_no,
                  ", ".join(f"{name} {sent[name]!r} (stored {stored[name]!r})" for name in differ))
        verb = "differs" if len(differ) == 1 else "differ"
        raise HashError(3001, f"{', '.join(differ)} {verb} from the stored order")


def _check_payout_limit(order_no: str, stake: Decimal, credited: Decimal, multiple: int) -> None:
    if credited > stake * multiple:
        log.error("Hash order/update refused for order_no %r: payout %s is over %s times the "
                  "stake %s (HASH_MAX_PAYOUT_MULTIPLE)", order_no, credited, multiple, stake)
        raise HashError(3001, f"payout is more than {multiple} times the amount")


def _move(conn, wallet, amount: Decimal, op: str, order_no: str) -> Decimal:
    """ledger.post, its balance limit answered as Hash's 1001."""
    try:
        return ledger.post(conn, wallet, amount, provider="hash", op=op, ref=order_no)
    except ledger.BalanceLimit:
        raise HashError(1001, "amount would take the balance over the wallet's limit") from None


def _wallet(conn, player_id: int, currency: str):
    wallet = _find_wallet_in(conn, player_id, currency)
    if wallet is None:
        raise HashError(2003 if _player_exists(conn, player_id) else 2001)
    return wallet


def _answer(order_no: str, balance: Decimal, currency: str) -> dict:
    return {"order_no": order_no, "balance": format_hash(balance), "currency": currency}


# ---- storage: every statement, built once (SQLAlchemy caches their compiled form) ----------------
_SESSION_COLUMNS = (sessions.c.player_id, sessions.c.closed_at, sessions.c.expires_at,
                    players.c.status.label("player_status"))
SESSION = (select(*_SESSION_COLUMNS, players.c.name).select_from(sessions.join(players))
           .where(sessions.c.token == bindparam("token")))
# A bet's wallet lock: the session's wallet in the bet's currency (as YourCasino's, FOR UPDATE OF;
# MariaDB, which has no OF, locks the joined rows too).
SESSION_WALLET_LOCKED = (
    select(wallets.c.id, wallets.c.currency, wallets.c.balance, *_SESSION_COLUMNS)
    .select_from(sessions.join(players).join(wallets, and_(
        wallets.c.player_id == sessions.c.player_id, wallets.c.currency == bindparam("currency"))))
    .where(sessions.c.token == bindparam("token")).with_for_update(of=wallets))
WALLET_IN = select(wallets).where(wallets.c.player_id == bindparam("player_id"),
                                  wallets.c.currency == bindparam("currency"))
WALLET = select(wallets).where(wallets.c.id == bindparam("wallet_id"))
PLAYER_EXISTS = select(players.c.id).where(players.c.id == bindparam("player_id"))
ORDER = select(hash_orders).where(hash_orders.c.order_no == bindparam("order_no"))
ADD_ORDER = insert(hash_orders)
UPDATE_ORDER = (
    update(hash_orders).where(hash_orders.c.order_no == bindparam("order")).values(
        status=bindparam("new_status"), payout=bindparam("credited"), prize=bindparam("new_prize"),
        tax=bindparam("new_tax"), bonus=bindparam("new_bonus"), bet_info=bindparam("info"),
        updated_at=bindparam("at")))
REQUEST_SEEN = select(hash_requests.c.seen_at).where(hash_requests.c.request_id == bindparam("id"))
ADD_REQUEST = insert(hash_requests)
FORGET_REQUEST = delete(hash_requests).where(hash_requests.c.request_id == bindparam("id"),
                                             hash_requests.c.seen_at < bindparam("cutoff"))
PURGE_REQUESTS = delete(hash_requests).where(hash_requests.c.seen_at < bindparam("cutoff"))


def _find_session(conn, token: str):
    session = conn.execute(SESSION, {"token": token}).first()
    if session is None:
        raise HashError(2001)
    return session


def _lock_session_wallet(conn, token: str, currency: str):
    """The session's player's wallet in `currency`, locked, with the session's columns; or None."""
    return conn.execute(SESSION_WALLET_LOCKED, {"token": token, "currency": currency}).first()


def _find_wallet_in(conn, player_id: int, currency: str):
    return conn.execute(WALLET_IN, {"player_id": player_id, "currency": currency}).first()


def _find_wallet(conn, wallet_id: int):
    return conn.execute(WALLET, {"wallet_id": wallet_id}).first()


def _player_exists(conn, player_id: int) -> bool:
    return conn.execute(PLAYER_EXISTS, {"player_id": player_id}).first() is not None


def _find_order(conn, order_no: str):
    return conn.execute(ORDER, {"order_no": order_no}).first()


def _insert_order(conn, **order) -> None:
    now = utcnow()
    conn.execute(ADD_ORDER, {**order, "created_at": now, "updated_at": now})


def _update_order(conn, order_no: str, *, status, payout, prize, tax, bonus, bet_info) -> None:
    conn.execute(UPDATE_ORDER, {"order": order_no, "new_status": status, "credited": payout,
                                "new_prize": prize, "new_tax": tax, "new_bonus": bonus,
                                "info": bet_info, "at": utcnow()})


def _request_seen_at(conn, request_id: str) -> datetime | None:
    return conn.execute(REQUEST_SEEN, {"id": request_id}).scalar()


def _insert_request(conn, request_id: str, seen_at: datetime) -> None:
    conn.execute(ADD_REQUEST, {"request_id": request_id, "seen_at": seen_at})


def _forget_request(conn, request_id: str, cutoff: datetime) -> None:
    conn.execute(FORGET_REQUEST, {"id": request_id, "cutoff": cutoff})


def _delete_requests_before(conn, cutoff: datetime) -> None:
    conn.execute(PURGE_REQUESTS, {"cutoff": cutoff})
