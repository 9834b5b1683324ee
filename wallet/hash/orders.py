"""Hash Game no-transfer wallet rules (docs/hash.md §4, §6): users, balances and the order lifecycle.

`HashWallet` holds the rules every Hash wallet shares, as 100HP's Casino does; a subclass supplies
the storage primitives (the abstract methods): SqlHashWallet (wallet/hash/sql_wallet.py) keeps
them in SQL, MemoryHashWallet (wallet/hash/memory_wallet.py) in memory, for the tests' model and
for porting.

Idempotent on `order_no` (§6.3): order/add debits once; order/update status 1 credits the payout
once, 2 and 4 refund the stake once, 0 and 3 move no money; a final order never changes state.
The error codes are ours: Hash has not published its table (§7). The README repeats this table.

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
  wallet/hash/envelope.py) from being applied to another order, or as a second, different result.
- a settle pays at most HASH_MAX_PAYOUT_MULTIPLE (default 1000) times the stake, else 3001 and an
  ERROR log line. Only the top-level amount and payout are used: bet_info's odds are not, since
  the doc's own example (§6.5: amount 1, odds 200 meaning 2.00x, prize 200) does not agree with
  itself on their units.
- a credit that would take a balance to 1e18 or more (wallet/core/ledger.py BalanceLimit) is refused
  1001 "amount would take the balance over the wallet's limit", nothing written.

Lock order, in every transaction: the request_id row (a twin in flight waits there holding
nothing), then the wallet row, then the order.
"""
import itertools
import logging
from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from ..core.clock import utcnow
from ..core.money import BALANCE_LIMIT, format_hash

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

PENDING, SUCCESS, FAILED, PENDING_SETTLEMENT, CANCELLED = 0, 1, 2, 3, 4  # §6.1
FINAL = (SUCCESS, FAILED, CANCELLED)
DEFAULT_MAX_PAYOUT_MULTIPLE = 1000  # HASH_MAX_PAYOUT_MULTIPLE
PURGE_EVERY = 100  # calls of one process between two purges of old request_ids


class HashError(Exception):
    def __init__(self, code: int, detail: str = ""):
        self.code = code
        self.msg = f"{CODES[code]}: {detail}" if detail else CODES[code]
        super().__init__(self.msg)


class Session(NamedTuple):
    player_id: int
    name: str
    player_status: str     # active | blocked
    expires_at: datetime   # naive UTC
    closed: bool


class Wallet(NamedTuple):
    id: int
    player_id: int
    currency: str
    balance: Decimal


class Order(NamedTuple):
    order_no: str
    wallet_id: int
    amount: Decimal
    status: int
    debited: bool          # False: a cancel that arrived before any add
    payout: Decimal | None
    prize: Decimal | None
    tax: Decimal | None
    bonus: Decimal | None
    entry_key: str
    round_id: str
    bet_info: str


class RequestId(NamedTuple):
    """What the request_id rule needs to know of a call from Hash (all times naive UTC)."""
    value: str
    timestamp: datetime    # the request's own `timestamp`
    received_at: datetime  # when the blueprint checked that timestamp
    window: timedelta      # HASH_TIMESTAMP_WINDOW_MS

    @property
    def seen_at(self) -> datetime:
        """From when it is remembered: a timestamp ahead of our clock passes the window check longer."""
        return max(self.received_at, self.timestamp)


def payout(prize: Decimal, tax: Decimal, bonus: Decimal, formula: str = "prize+bonus") -> Decimal:
    """What a settled (status 1) order pays. Ours (§11.4): `prize` is "tax included", so by
    default we credit prize + bonus and keep tax for reporting; HASH_PAYOUT=prize-tax+bonus if Hash
    confirms that prize is gross. Never negative."""
    amount = prize + bonus - (tax if formula == "prize-tax+bonus" else 0)
    return max(amount, Decimal(0))



class HashWallet(ABC):
    """One method per merchant endpoint; each returns the answer's `data` or raises HashError."""

    def __init__(self, formula: str = "prize+bonus",
                 max_payout_multiple: int = DEFAULT_MAX_PAYOUT_MULTIPLE):
        self.formula, self.max_payout_multiple = formula, max_payout_multiple  # HASH_PAYOUT, ...
        self._calls = itertools.count(1)

    # ---- storage primitives, supplied by an implementation -------------------------------------
    @abstractmethod
    def atomically(self, work, write: bool = True):
        """Run `work(store)` as one transaction and return its result; on an exception, change
        nothing. A lost race on a unique key is run again (it then meets the winner's row)."""

    @abstractmethod
    def find_session(self, store, token: str) -> Session | None:
        """The token's session, closed or expired ones included (the rules refuse those), or None.
        No lock."""

    @abstractmethod
    def lock_session_wallet(self, store, token: str, currency: str) -> tuple[Session, Wallet] | None:
        """The session and its player's wallet in `currency`, locked until the transaction ends;
        None if either is missing (a bet's first lock: the wallet, before the order)."""

    @abstractmethod
    def find_wallet(self, store, player_id: int, currency: str) -> Wallet | None:
        """The player's wallet in `currency`, or None (no such player, or no wallet in it). No lock."""

    @abstractmethod
    def lock_wallet(self, store, wallet_id: int) -> Wallet:
        """The wallet, locked until the transaction ends, with its current balance; it exists (the
        id comes from a stored order or from find_wallet)."""

    @abstractmethod
    def wallet_by_id(self, store, wallet_id: int) -> Wallet:
        """The wallet, without a lock: only read, to compare an update with its order's owner."""

    @abstractmethod
    def player_exists(self, store, player_id: int) -> bool:
        """Whether the player exists at all: tells 2001 (no such user) from 2003 (no such currency)."""

    @abstractmethod
    def find_order(self, store, order_no: str) -> Order | None:
        """The order as insert_order / close_order left it, or None. No lock of its own: the rules
        read it again after locking its wallet."""

    @abstractmethod
    def insert_order(self, store, order: Order) -> None:
        """Insert it under order_no as a unique key: a twin racing us fails on that key (and
        atomically runs it again), so an order is booked once. Its wallet is locked."""

    @abstractmethod
    def close_order(self, store, order_no: str, status: int, payout, prize, tax, bonus,
                    bet_info: str) -> None:
        """Store the order's new status, what was credited (`payout`, None if nothing), the
        update's prize, tax, bonus and bet_info. Its wallet is locked; the order is not final."""

    @abstractmethod
    def move(self, store, wallet: Wallet, amount: Decimal, op: str, order_no: str) -> Decimal:
        """Add `amount` (negative: debit) to the locked wallet, append its ledger row; new balance."""

    @abstractmethod
    def request_seen_at(self, store, request_id: str) -> datetime | None:
        """When the request_id was remembered (remember_request's `seen_at`), or None. No lock."""

    @abstractmethod
    def remember_request(self, store, request_id: str, seen_at: datetime) -> None:
        """Insert it under a unique key: a twin in flight waits for us, then loses the race."""

    @abstractmethod
    def forget_requests(self, store, before: datetime, request_id: str | None = None) -> None:
        """Forget the request_ids seen before `before` (only `request_id`, if given)."""

    # ---- the merchant endpoints (§4.1-§4.4) --------------------------------------------------------
    def user_info(self, token: str, request_id: RequestId | None = None) -> dict:
        """§4.1. Errors: 1005, 2001."""
        def work(store):
            self._claim(store, request_id)
            return _may_play(self._session(store, token))
        session = self._run(work, request_id)
        return {"user_id": session.player_id, "username": session.name, "avatar": ""}

    def user_balance(self, token: str, currency: str, request_id: RequestId | None = None) -> dict:
        """§4.2. Errors: 1005, 2001, 2003."""
        def work(store):
            self._claim(store, request_id)
            return self._wallet(store, _may_play(self._session(store, token)).player_id, currency)
        wallet = self._run(work, request_id)
        return {"user_id": wallet.player_id, "balance": format_hash(wallet.balance),
                "currency": currency}

    def order_add(self, *, token, user_id, order_no, currency, amount, entry_key, round_id, bet_info,
            request_id: RequestId | None = None) -> dict:
        """§4.3 order/add: debit a bet once. A repeat with the same data answers success again
        without a second debit; a repeat with other data is 3001. Errors: 1005, 2001, 2002, 2003,
        3001."""
        def work(store):
            self._claim(store, request_id)
            found = self.lock_session_wallet(store, token, currency)  # the lock order's wallet row
            if found is None:
                raise self._refusal(store, token, user_id)
            session, wallet = found
            _may_play(session, user_id, betting=True)
            order = self.find_order(store, order_no)
            if order is not None:
                if order.debited and order.wallet_id == wallet.id and order.amount == amount:
                    return _answer(order_no, wallet.balance, currency)  # a retried add: no second debit
                raise HashError(3001)  # other data, or an order cancelled before we ever saw it
            if wallet.balance < amount:
                raise HashError(2002)
            balance = self._move(store, wallet, -amount, "order_add", order_no)
            self.insert_order(store, Order(order_no, wallet.id, amount, PENDING, True, None, None,
                                           None, None, entry_key, round_id, bet_info))
            return _answer(order_no, balance, currency)
        return self._run(work, request_id)

    def order_update(self, *, user_id, order_no, currency, amount, status, prize, tax, bonus, bet_info,
               entry_key, round_id, request_id: RequestId | None = None) -> dict:
        """§4.4 order/update: apply a status change once (Hash retries every minute, up to 10
        times, §6.3). Errors: 1001 (balance limit), 1005, 2001, 2003, 3001, 3002, 3003."""
        sent = {"user_id": user_id, "currency": currency, "amount": amount, "round_id": round_id,
                "entry_key": entry_key}

        def work(store):
            self._claim(store, request_id)
            known = self.find_order(store, order_no)
            wallet_id = known.wallet_id if known else self._wallet(store, user_id, currency).id
            wallet = self.lock_wallet(store, wallet_id)
            order = self.find_order(store, order_no)  # again, under the lock: a racing call may have changed it
            if order is None:
                if status not in (FAILED, CANCELLED):
                    raise HashError(3002)
                # §6.2 advice: a cancel for an order never debited is a no-op, recorded so that a
                # late order/add with this order_no is refused (3001) instead of taking a bet Hash
                # dropped.
                self.insert_order(store, Order(order_no, wallet.id, amount, status, False, None,
                                               prize, tax, bonus, entry_key, round_id, bet_info))
                return _answer(order_no, wallet.balance, currency)
            owner = wallet if order.wallet_id == wallet.id else self.wallet_by_id(store, order.wallet_id)
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
                credited = payout(prize, tax, bonus, self.formula)
                _check_payout_limit(order_no, order.amount, credited, self.max_payout_multiple)
                balance = self._move(store, wallet, credited, "order_settle", order_no)
            elif status in (FAILED, CANCELLED) and order.debited:
                balance = self._move(store, wallet, order.amount, "order_refund", order_no)
            self.close_order(store, order_no, status, credited, prize, tax, bonus, bet_info)
            return _answer(order_no, balance, currency)
        return self._run(work, request_id)

    # ---- the rules --------------------------------------------------------------------------------
    def _run(self, work, request_id: RequestId | None):
        """`work` (which claims the request_id first) in one transaction; now and then a purge."""
        self._purge_now_and_then(request_id)
        return self.atomically(work)

    def _claim(self, store, request_id: RequestId | None) -> None:
        """A request_id seen within the window is 1005; else this transaction claims it. A twin in
        flight inserts the same key, waits for us, and loses with a unique-key error: it is run
        again, and answers 1005. None: a call of our own (hash-reconcile), not from Hash."""
        if request_id is None:
            return
        cutoff = request_id.received_at - request_id.window
        seen_at = self.request_seen_at(store, request_id.value)
        if seen_at is not None and seen_at >= cutoff:
            raise HashError(1005)
        if seen_at is not None:  # older than the window, not purged yet
            self.forget_requests(store, cutoff, request_id.value)
        self.remember_request(store, request_id.value, request_id.seen_at)

    def _purge_now_and_then(self, request_id: RequestId | None) -> None:
        """Every PURGE_EVERY-th call of this process forgets the request_ids older than the window,
        in a transaction of its own, so the table holds about one window of calls (plus
        PURGE_EVERY per process). A purge that fails is logged and left to the next one."""
        if request_id is None or next(self._calls) % PURGE_EVERY:
            return
        cutoff = request_id.received_at - request_id.window
        try:
            self.atomically(lambda store: self.forget_requests(store, cutoff))
        except Exception as exc:  # the call goes on whatever the purge met
            log.warning("Hash request_id purge failed, left to the next one: %s", exc)

    def _session(self, store, token: str) -> Session:
        session = self.find_session(store, token)
        if session is None:
            raise HashError(2001)
        return session

    def _refusal(self, store, token: str, user_id: int) -> HashError:
        """Why a bet found no wallet: the token or its session (2001), else the currency (2003)."""
        _may_play(self._session(store, token), user_id, betting=True)
        return HashError(2003)

    def _wallet(self, store, player_id: int, currency: str) -> Wallet:
        wallet = self.find_wallet(store, player_id, currency)
        if wallet is None:
            raise HashError(2003 if self.player_exists(store, player_id) else 2001)
        return wallet

    def _move(self, store, wallet: Wallet, amount: Decimal, op: str, order_no: str) -> Decimal:
        if wallet.balance + amount >= BALANCE_LIMIT:  # ours: the column's 18 integer digits
            raise HashError(1001, "amount would take the balance over the wallet's limit")
        return self.move(store, wallet, amount, op, order_no)


def _may_play(session: Session, user_id: int | None = None, *, betting=False) -> Session:
    """The session, if its token still counts: not closed, not expired, the user_id's (2001)."""
    if session.closed:
        raise HashError(2001, "session is closed")
    if session.expires_at <= utcnow():
        raise HashError(2001, "session has expired")
    if user_id is not None and session.player_id != user_id:
        raise HashError(2001, "user_id is not the token's user")
    if betting and session.player_status == "blocked":
        raise HashError(2001, "player is blocked")  # no new stakes; its orders still settle
    return session


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


def _answer(order_no: str, balance: Decimal, currency: str) -> dict:
    return {"order_no": order_no, "balance": format_hash(balance), "currency": currency}
