"""Hash Game no-transfer wallet rules (docs/hash.md §4, §6): users, balances and the order lifecycle.

`HashWallet` holds the rules every Hash wallet shares, as 100HP's Casino does; a subclass supplies
the storage primitives (the abstract methods): SqlHashWallet (wallet/hash/sql_wallet.py) keeps
them in SQL, MemoryHashWallet (wallet/hash/memory_wallet.py) in memory, for the tests' model and
for porting.

Idempotent on `order_no` (§6.3): order/add debits once (a repeat is a success only while the order
holds its stake: for an order refunded, or cancelled before it came, it is 3001); order/update
status 1 credits the payout once, 2 and 4 refund the stake once, 0 and 3 move no money; a final
order never changes state.
The error codes are ours: Hash has not published its table (§7). docs/operations.md repeats it.

The rules, as a call meets them (each is ours unless a section is named):
- request_id (§3.8 asks for "a unique ID"; the rule is ours, docs/hash.md §11.2): the wallet
  remembers each request it APPLIED (answered 0, or committed and then answered 5000), keyed by
  (endpoint, request_id), with a digest of the endpoint and the decrypted body as the wallet reads
  it (request_digest: numbers by value, user_id and round_id as text, the timestamp left out, so a
  re-encrypted, re-stamped or re-encoded re-send is the same request). The request is claimed
  first, by inserting its memory row unless (endpoint, request_id) is taken (claim_request), in
  the call's transaction: only a call that succeeds is remembered (a refusal, a 5000 before COMMIT
  leave the request_id free), and a twin in flight waits on the key for the first, then meets
  case 1 or 2. The check order:
  1. the same endpoint and request_id applied before, same digest: Hash's retry of a request whose
     answer it did not get. Answered as the retry it is: success with the order's current state,
     nothing moved, whatever the request's timestamp (a byte-identical re-send keeps the first
     one's). An order/add whose order was refunded since is 3001, as any add for it.
  2. the same, another digest: 1005, an ERROR log line and the alarm metric. Hash never sends two
     bodies under one request_id; a copy rewritten without the key (the envelope has no MAC,
     wallet/hash/envelope.py) does.
  3. else (claimed now, or remembered too long ago to be a re-send) the timestamp must be in the
     window (1004, which rolls the claim back: nothing is remembered): HASH_TIMESTAMP_WINDOW_MS
     either way, and for order/update up to RETRY_SPAN more in the past, since Hash re-sends an
     update for 10 minutes (§6.3) and may re-send the very first body: an update first sent 9
     minutes ago and never applied is applied. A row remembered too long ago is replaced by this
     request's.
  4. the call runs.
  A request to one endpoint never uses up another's request_id. Rows are kept for the window plus
  RETRY_SPAN (RequestId.remembered_since) after the later of our clock and the request's timestamp, so
  no re-send that could still pass step 3 finds its row gone; each PURGE_EVERY-th call of a process
  deletes up to PURGE_BATCH older rows inside its own transaction, skipping rows another
  transaction holds: housekeeping never waits, and never runs outside the call's deadline.
- sessions: a token whose session is closed (close-session) or past its expires_at
  (SESSION_LIFETIME_MINUTES) is no token: 2001 for user/info, user/balance and order/add. A
  blocked player still gets user/info and user/balance; order/add is refused 2001 "player is
  blocked"; order/update applies as for anyone, so a pending win is never lost.
- order/update must describe the stored bet: user_id, amount, currency, round_id and entry_key as
  order/add stored them (bet_info may change: results are added at settle), else 3001. A repeated
  final status must repeat its prize, tax and bonus, else 3001. Both write an ERROR log line
  naming what differs. These stop an update rewritten without the key (the envelope has no MAC,
  wallet/hash/envelope.py) from being applied to another order, or as a second, different result.
- a settle pays at most what the stored bet could win (docs/hash.md §6.5, §11.4): where the
  add's bet_info lists its sub-bets, each with an `amount` and integer `odds` (× 100, at least 100)
  and the amounts add up to the stake, the sum of amount × odds / 100 plus HASH_BONUS_ALLOWANCE
  stakes for a bonus; else HASH_MAX_PAYOUT_MULTIPLE (default 1000) times the stake. Above it: 3001, an
  ERROR log line and the alarm metric. An update before the final one never replaces the add's
  bet_info, so the bound is the add's.
- a credit that would take a balance to 1e18 or more (wallet/core/ledger.py BalanceLimit) is refused
  1001 "amount would take the balance over the wallet's limit", nothing written.

Locks: the request_id row first, in every call (a twin in flight waits there holding nothing).
Then order/add locks the wallet row and claims the order; order/update locks its order and the
order's wallet together (lock_order: one statement in SQL, each database taking the two rows in
its own order). One wait cycle follows, on MySQL / MariaDB only, which take the order first: an
update holding its order waits for the wallet that a repeated add of that order holds while it
waits for the order's key. The database ends it as a deadlock and atomically runs the loser again
(PostgreSQL's insert-or-nothing does not wait for a locked row). The purge takes only rows nobody
holds.

Alarms (a refusal that looks like tampering, or an amount changed by the precision rule) are log
lines with an `alarm` field, which wallet/metrics.py counts as wallet_alarms_total{reason}.
"""
import hashlib
import itertools
import json
import logging
from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from ..core.clock import utcnow
from ..core.money import BALANCE_LIMIT, AmountError, format_hash, parse_hash_amount

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
DEFAULT_BONUS_ALLOWANCE = 1  # HASH_BONUS_ALLOWANCE: stakes a settle may pay above what its sub-bets could win
RETRY_SPAN = timedelta(minutes=11)  # Hash re-sends an update for 10 minutes (§6.3), and a minute more
PURGE_EVERY = 10    # calls of one process between two bounded purges of old request_ids
PURGE_BATCH = 50    # rows one purge deletes at most: 5 a call, more than the 1 a call adds


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
    received_at: datetime  # when the blueprint opened it
    window: timedelta      # HASH_TIMESTAMP_WINDOW_MS
    endpoint: str = ""     # "order/update", ...: a request_id is remembered per endpoint
    digest: str = ""       # request_digest(endpoint, plaintext)

    @property
    def seen_at(self) -> datetime:
        """From when it is remembered: a timestamp ahead of our clock passes the window check longer."""
        return max(self.received_at, self.timestamp)

    @property
    def oldest_accepted(self) -> datetime:
        """The oldest timestamp a request not applied before may carry (§6.3: updates are re-sent
        for RETRY_SPAN)."""
        span = RETRY_SPAN if self.endpoint == "order/update" else timedelta(0)
        return self.received_at - self.window - span

    @property
    def remembered_since(self) -> datetime:
        """Rows seen before this are no longer needed: no re-send of theirs passes the window."""
        return self.received_at - self.window - RETRY_SPAN


class AppliedRequest(NamedTuple):
    digest: str
    seen_at: datetime


def request_digest(endpoint: str, plain: dict) -> str:
    """SHA-256 of the endpoint and the decrypted body as the wallet reads it, so that every way
    Hash may re-send one request has one digest: a fresh encryption (keys sorted), a fresh
    `timestamp` under the kept request_id (left out: it is the send's, not the request's), a number
    written another way (10, 10.0 and 1e1 are one amount), and the fields read as text whichever
    JSON type they come in (user_id, round_id: docs/hash.md §4.4, §4.5). A body the wallet would read
    differently still has another digest."""
    read = {name: _as_read(name, value) for name, value in plain.items() if name != "timestamp"}
    body = _DIGEST_JSON.encode(read)
    return hashlib.sha256(f"{endpoint}\n{body}".encode()).hexdigest()


# json.dumps(read, sort_keys=True, ...), its encoder built once: the digests stored stay the same
_DIGEST_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=True, separators=(",", ":"), default=str)
READ_AS_TEXT = ("user_id", "round_id")  # a number or a numeric string, read alike


def _as_read(name: str, value):
    if type(value) is str:  # most fields: read as they are (str() and _by_value keep a str)
        return value
    return str(value) if name in READ_AS_TEXT and not isinstance(value, bool) else _by_value(value)


def _by_value(value):
    """A JSON value with each number (int or Decimal) written by its value, not its writing."""
    if isinstance(value, dict):
        return {name: _by_value(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_by_value(item) for item in value]
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return {"number": str(Decimal(value).normalize())}
    return value  # a string, true/false/null, or a LongNumber (written by its length)


def payout(prize: Decimal, tax: Decimal, bonus: Decimal, formula: str = "prize+bonus") -> Decimal:
    """What a settled (status 1) order pays. Ours (§11.4): `prize` is "tax included", so by
    default we credit prize + bonus and keep tax for reporting; HASH_PAYOUT=prize-tax+bonus if Hash
    confirms that prize is gross. Never negative."""
    amount = prize + bonus - (tax if formula == "prize-tax+bonus" else 0)
    return max(amount, Decimal(0))



class HashWallet(ABC):
    """One method per merchant endpoint; each returns the answer's `data` or raises HashError."""

    def __init__(self, formula: str = "prize+bonus",
                 max_payout_multiple: int = DEFAULT_MAX_PAYOUT_MULTIPLE,
                 bonus_allowance: int = DEFAULT_BONUS_ALLOWANCE):
        self.formula, self.max_payout_multiple = formula, max_payout_multiple  # HASH_PAYOUT, ...
        self.bonus_allowance = bonus_allowance  # HASH_BONUS_ALLOWANCE
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
    def applied_request(self, store, endpoint: str, request_id: str) -> AppliedRequest | None:
        """The request applied under (endpoint, request_id): its digest and when it was seen, or
        None. No lock: a twin in flight is stopped by remember_request's unique key."""

    @abstractmethod
    def remember_request(self, store, request: RequestId) -> None:
        """Insert it under the unique key (endpoint, request_id): a twin in flight waits for us, then
        loses the race."""

    # ---- primitives with a default built from those above: override each with one statement ---
    def claim_request(self, store, request: RequestId) -> AppliedRequest | None:
        """Remember `request` unless its (endpoint, request_id) is taken: None if it is remembered
        now, else the request applied under that key. A twin in flight holds the key until its
        transaction ends: wait for it, then return its row (or claim the key if it rolled back).
        Here applied_request then remember_request (a twin fails on the key and atomically runs
        it again); SqlHashWallet inserts unless the key is taken, one statement."""
        applied = self.applied_request(store, request.endpoint, request.value)
        if applied is None:
            self.remember_request(store, request)
        return applied

    def claim_order(self, store, order: Order) -> Order | None:
        """Book `order` unless its order_no is taken: None if booked, else the order already there.
        Its wallet is locked. Here find_order then insert_order; SqlHashWallet inserts unless the
        key is taken, one statement."""
        found = self.find_order(store, order.order_no)
        if found is None:
            self.insert_order(store, order)
        return found

    def lock_order(self, store, order_no: str) -> tuple[Order, Wallet] | None:
        """The stored order `order_no` and its wallet, locked until the transaction ends (the wallet
        as by lock_wallet) and read as they are once locked, not as they were before a wait; None if
        there is no such order (nothing locked). Here find_order, lock_wallet, then find_order
        again under the wallet's lock; SqlHashWallet locks both rows in one statement."""
        order = self.find_order(store, order_no)
        if order is None:
            return None
        wallet = self.lock_wallet(store, order.wallet_id)
        return self.find_order(store, order_no), wallet  # every change to an order holds its wallet

    @abstractmethod
    def forget_request(self, store, endpoint: str, request_id: str) -> None:
        """Forget that one request (it is past the window and may be applied again)."""

    @abstractmethod
    def forget_requests(self, store, before: datetime, limit: int) -> int:
        """Forget at most `limit` requests seen before `before`, skipping any row another transaction
        holds (never waiting for one); how many were forgotten."""

    # ---- the merchant endpoints (§4.1-§4.4) --------------------------------------------------------
    def user_info(self, token: str, request_id: RequestId | None = None) -> dict:
        """§4.1. Errors: 1004, 1005, 2001."""
        def work(store):
            self._recall(store, request_id)  # a retry of a read is read again
            return _may_play(self._session(store, token))
        session = self._run(work, request_id)
        return {"user_id": session.player_id, "username": session.name, "avatar": ""}

    def user_balance(self, token: str, currency: str, request_id: RequestId | None = None) -> dict:
        """§4.2. Errors: 1004, 1005, 2001, 2003."""
        def work(store):
            self._recall(store, request_id)
            return self._wallet(store, _may_play(self._session(store, token)).player_id, currency)
        wallet = self._run(work, request_id)
        return {"user_id": wallet.player_id, "balance": format_hash(wallet.balance),
                "currency": currency}

    def order_add(self, *, token, user_id, order_no, currency, amount, entry_key, round_id, bet_info,
            request_id: RequestId | None = None) -> dict:
        """§4.3 order/add: debit a bet once. A repeat for an order that still holds its stake
        answers success again without a second debit; a repeat with other data, or for an order
        refunded or cancelled before it came, is 3001. Errors: 1004, 1005, 2001, 2002, 2003, 3001."""
        def work(store):
            if self._recall(store, request_id):
                return self._current_state(store, order_no, currency, adding=True)
            found = self.lock_session_wallet(store, token, currency)  # the lock order's wallet row
            if found is None:
                raise self._refusal(store, token, user_id)
            session, wallet = found
            _may_play(session, user_id, betting=True)
            # the order second, booked unless taken; a refusal below takes the booking back
            order = self.claim_order(store, Order(order_no, wallet.id, amount, PENDING, True, None,
                                                  None, None, None, entry_key, round_id, bet_info))
            if order is not None:
                if holds_stake(order) and order.wallet_id == wallet.id and order.amount == amount:
                    return _answer(order_no, wallet.balance, currency)  # a retried add: no second debit
                raise HashError(3001, _why_not_a_retry(order))
            if wallet.balance < amount:
                raise HashError(2002)
            balance = self._move(store, wallet, -amount, "order_add", order_no)
            return _answer(order_no, balance, currency)
        return self._run(work, request_id)

    def order_update(self, *, user_id, order_no, currency, amount, status, prize, tax, bonus, bet_info,
               entry_key, round_id, request_id: RequestId | None = None) -> dict:
        """§4.4 order/update: apply a status change once (Hash retries every minute, up to 10
        times, §6.3). Errors: 1001 (balance limit), 1004, 1005, 2001, 2003, 3001, 3002, 3003."""
        sent = {"user_id": user_id, "currency": currency, "amount": amount, "round_id": round_id,
                "entry_key": entry_key}

        def work(store):
            if self._recall(store, request_id):
                return self._current_state(store, order_no, currency)
            found = self.lock_order(store, order_no)  # the order and its wallet, as they are once locked
            if found is not None:
                order, wallet = found
            else:  # the user's wallet, then the order again: an add in flight may have booked it since
                wallet = self.lock_wallet(store, self._wallet(store, user_id, currency).id)
                order = self.find_order(store, order_no)
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
                _check_payout_limit(order, credited, self.max_payout_multiple, self.bonus_allowance)
                balance = self._move(store, wallet, credited, "order_settle", order_no)
            elif status in (FAILED, CANCELLED) and order.debited:
                balance = self._move(store, wallet, order.amount, "order_refund", order_no)
            # the add's bet_info is kept until the final status: the payout bound is read from it
            self.close_order(store, order_no, status, credited, prize, tax, bonus,
                             bet_info if status in FINAL else order.bet_info)
            return _answer(order_no, balance, currency)
        return self._run(work, request_id)

    # ---- the rules --------------------------------------------------------------------------------
    def _run(self, work, request_id: RequestId | None):
        """`work` (which recalls or claims the request_id first) in one transaction, now and then
        after a bounded purge of old request_ids in the same transaction."""
        if request_id is None or next(self._calls) % PURGE_EVERY:
            return self.atomically(work)

        def purge_then_work(store):
            self.forget_requests(store, request_id.remembered_since, PURGE_BATCH)  # never waits
            return work(store)
        return self.atomically(purge_then_work)

    def _recall(self, store, request: RequestId | None) -> bool:
        """Claim the request in this transaction, then: True if this very request was applied
        before (answer it as a retry); 1005 if another body was applied under its request_id; 1004
        if its timestamp is out of the window (the claim is rolled back with the call); else False.
        None: a call of our own (hash-reconcile)."""
        if request is None:
            return False
        applied = self.claim_request(store, request)
        if applied is not None and applied.seen_at >= request.remembered_since:
            if applied.digest == request.digest:
                return True
            log.error("Hash %s refused: request_id %r was applied before with another body: a "
                      "rewritten copy of Hash's request? (docs/hash.md §11.2)", request.endpoint,
                      request.value, extra={"alarm": "hash_request_id_reused"})
            raise HashError(1005)  # the ERROR line says why; the answer stays the plain 1005
        if not request.oldest_accepted <= request.timestamp <= request.received_at + request.window:
            raise HashError(1004)
        if applied is not None:  # remembered too long ago to be re-sent, not purged yet: a new request now
            self.forget_request(store, request.endpoint, request.value)
            self.remember_request(store, request)
        return False

    def _current_state(self, store, order_no: str, currency: str, *, adding=False) -> dict:
        """The answer to a retry of an applied order/add or order/update: the order's balance now.
        An add whose order was refunded since is refused as any add for it is (3001)."""
        order = self.find_order(store, order_no)
        if adding and not holds_stake(order):
            raise HashError(3001, _why_not_a_retry(order))
        return _answer(order_no, self.wallet_by_id(store, order.wallet_id).balance, currency)

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


def holds_stake(order: Order) -> bool:
    """Whether the order's stake was taken and not given back: only then is a repeated add a retry."""
    return order.debited and order.status not in (FAILED, CANCELLED)


def _why_not_a_retry(order: Order) -> str:
    if not order.debited:
        return "the order was cancelled before it was placed"
    if order.status in (FAILED, CANCELLED):
        return "the order was refunded"
    return ""


def max_payout(order: Order, multiple: int, bonus_allowance: int = DEFAULT_BONUS_ALLOWANCE
               ) -> tuple[Decimal, str]:
    """The most a settle of `order` may pay, and what bounds it, as the 3001's detail says it
    (docs/hash.md §11.4)."""
    sub_bets = _sub_bets(order.bet_info)
    if sub_bets and sum(amount for amount, _ in sub_bets) == order.amount:
        could_win = sum(amount * odds / 100 for amount, odds in sub_bets)
        return (could_win + order.amount * bonus_allowance,
                f"its bet_info could win plus {bonus_allowance} stake(s) of bonus (HASH_BONUS_ALLOWANCE)")
    return order.amount * multiple, f"{multiple} times the amount"


def _sub_bets(bet_info: str) -> list[tuple[Decimal, int]] | None:
    """(amount, odds × 100) of each item of a §6.5 bet_info, or None unless every item has a
    positive number `amount` and integer `odds` of at least 100 (1.00×)."""
    try:
        items = json.loads(bet_info, parse_float=Decimal)
    except (ValueError, RecursionError):
        return None
    sub_bets = []
    for item in items if isinstance(items, list) else ():
        amount, odds = (item.get("amount"), item.get("odds")) if isinstance(item, dict) else (0, 0)
        try:
            amount = parse_hash_amount(amount)  # float64 artefacts too: 0.1 + 0.2 is 0.3 here as well
        except AmountError:
            return None
        if not amount > 0 or type(odds) is not int or odds < 100:
            return None
        sub_bets.append((amount, odds))
    return sub_bets or None


def _check_payout_limit(order: Order, credited: Decimal, multiple: int, bonus_allowance: int) -> None:
    bound, source = max_payout(order, multiple, bonus_allowance)
    if credited > bound:
        log.error("Hash order/update refused for order_no %r: payout %s is over %s (%s; the stake %s, "
                  "HASH_MAX_PAYOUT_MULTIPLE %s)", order.order_no, credited, bound, source,
                  order.amount, multiple, extra={"alarm": "hash_payout_over_bound"})
        raise HashError(3001, f"payout is more than {source}")


def _answer(order_no: str, balance: Decimal, currency: str) -> dict:
    return {"order_no": order_no, "balance": format_hash(balance), "currency": currency}
