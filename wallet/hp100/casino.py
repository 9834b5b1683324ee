"""100HP Game Flow operations: the rules every wallet shares (the guide's `Casino` base class).

Implements docs/100hp.md §4.1-§4.6 (auth, balance, withdrawal, deposit, rollback, bonusWin) with the
repeat rules of §3.7 (607, 608, 609) and the decisions of §9.2-§9.4. Inputs arrive validated
by wallet/hp100/fields.py; amounts are Decimals already truncated to cents.

A subclass supplies the storage primitives (the abstract methods): YourCasino keeps them in SQL,
TestCasino in memory. Every operation runs in one `atomically` call, and follows one lock order:
the wallet row first, then the txId (docs/100hp.md §7.2).
"""
from abc import ABC, abstractmethod
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from ..core.clock import utcnow
from ..core.money import BALANCE_LIMIT, format_hp

# §3.6: errCode -> exact message. The errCode is also the HTTP status.
MESSAGES = {
    400: "Validation error",
    601: "Invalid secret key",
    603: "Insufficient balance",
    604: "Session not found",
    605: "Transaction not found",
    607: "Transaction already exists",
    608: "Transaction already refunded",
    609: "Transaction already settled",
    702: "Internal Server Error",
}

WITHDRAWAL, BONUS_WIN = "withdrawal", "bonusWin"
EARLY_ROLLBACK = "rollback"  # a rollback that arrived before its withdrawal: the txId is spent
OPEN, SETTLED, REFUNDED = "open", "settled", "refunded"


class CasinoError(Exception):
    """A 100HP error answer: errCode, its message, and `data` (the rule text for a 400)."""

    def __init__(self, err_code: int, data: str = ""):
        super().__init__(f"{err_code} {MESSAGES[err_code]} {data}".strip())
        self.err_code, self.message, self.data = err_code, MESSAGES[err_code], data


class Wallet(NamedTuple):
    id: int
    user_id: str   # 100HP userId: the player's id as a string
    currency: str
    balance: Decimal


class Session(NamedTuple):
    session_id: str
    wallet: Wallet  # the wallet in the session's currency
    user_name: str
    status: str     # the player's: active | blocked
    type: str       # real | test
    expires_at: datetime  # naive UTC: SESSION_LIFETIME_MINUTES after it was opened
    closed: bool    # ended by close-session


class Bet(NamedTuple):
    tx_id: str      # lower case (canonical)
    kind: str       # withdrawal | bonusWin | rollback (EARLY_ROLLBACK)
    wallet_id: int | None  # None for an EARLY_ROLLBACK
    session_id: str | None
    amount: Decimal
    status: str     # open | settled | refunded
    promo_id: str | None = None


class Casino(ABC):
    """One method per Game Flow operation; each returns the success body or raises CasinoError."""

    # ---- storage primitives, supplied by an implementation -------------------------------------
    @abstractmethod
    def atomically(self, work, write: bool = True):
        """Run `work(store)` as one transaction and return its result; on an exception, change nothing.
        Run it again when it lost a unique-key race or a deadlock (the second run meets the winner's
        row); `write=False`: a read (auth, balance) that takes no write lock."""

    @abstractmethod
    def find_session(self, store, session_id: str, lock: bool = False) -> Session | None:
        """The session, closed or expired ones included, or None. With `lock`, its wallet is locked
        as by lock_wallet, in the same query (a bet's first lock: the wallet, before the txId)."""

    @abstractmethod
    def lock_wallet(self, store, wallet_id: int) -> Wallet:
        """The wallet, locked until the transaction ends, with its current balance."""

    @abstractmethod
    def find_bet(self, store, tx_id: str) -> Bet | None:
        """The txId's row (lower case, as add_bet stored it), or None; no lock of its own: the
        rules call it after locking the wallet, or read, lock the wallet and read it again."""

    @abstractmethod
    def add_bet(self, store, bet: Bet) -> None:
        """Insert the row under the txId as a unique key: a twin racing us fails on that key (and
        atomically runs it again), so a txId is booked once whatever runs in parallel."""

    def claim_bet(self, store, bet: Bet) -> Bet | None:
        """Book `bet` unless its txId is taken: None if booked, else the bet already there. Here
        find_bet then add_bet; YourCasino claims the key by the INSERT itself, one statement."""
        found = self.find_bet(store, bet.tx_id)
        if found is None:
            self.add_bet(store, bet)
        return found

    @abstractmethod
    def close_bet(self, store, tx_id: str, status: str, win_amount: Decimal | None = None) -> None:
        """Set the open bet's status (settled, with the deposit's `win_amount`, or refunded); its
        wallet is locked and the rules have checked that the bet is still open."""

    @abstractmethod
    def move(self, store, wallet: Wallet, amount: Decimal, op: str, tx_id: str) -> Decimal:
        """Add `amount` (negative: debit) to the locked wallet, append its ledger row; new balance."""

    @abstractmethod
    def open_withdrawals(self, created_before: datetime) -> list[str]:
        """txIds of withdrawals still open that were booked before `created_before` (for expire)."""

    # ---- Game Flow API ---------------------------------------------------------------------------
    def auth(self, session_id: str) -> dict:
        """§4.1. Errors: 604 (also for a closed or expired session)."""
        session = self.atomically(lambda store: self._live_session(store, session_id), write=False)
        return {**_answer(session.wallet, session.wallet.balance), "userName": session.user_name,
                "status": session.status, "type": session.type}

    def balance(self, session_id: str) -> dict:
        """§4.2. Errors: 604 (also for a closed or expired session)."""
        session = self.atomically(lambda store: self._live_session(store, session_id), write=False)
        return _answer(session.wallet, session.wallet.balance)

    def withdrawal(self, session_id: str, tx_id: str, amount: Decimal, user_id: str | None = None):
        """§4.3: debit a bet. Errors: 604 (also: session closed or expired, player blocked), 607,
        608 (the txId was rolled back before the withdrawal arrived), 603."""
        key = tx_id.lower()  # ours: a UUID is one transaction whatever its case
        def work(store):
            session = self._live_session(store, session_id, user_id, lock=True)
            if session.status == "blocked":
                raise CasinoError(604, "player is blocked")  # ours: no new stakes; wins still settle
            wallet = session.wallet
            # The txId's key second (§7.2); an error below takes the claim back with the rest.
            bet = self.claim_bet(store, Bet(key, WITHDRAWAL, wallet.id, session_id, amount, OPEN))
            if bet is not None and bet.kind == EARLY_ROLLBACK:  # ours: the late bet never books
                raise CasinoError(608, "txId was rolled back before this withdrawal arrived")
            if bet is not None:
                raise CasinoError(607)  # §3.7: a txId is booked once, whatever happened to it
            if wallet.balance < amount:
                raise CasinoError(603)
            balance = self.move(store, wallet, -amount, WITHDRAWAL, key)
            return {**_answer(wallet, balance), "txId": tx_id, "sessionId": session_id}
        return self.atomically(work)

    def deposit(self, tx_id: str, amount: Decimal, session_id: str | None = None,
                user_id: str | None = None) -> dict:
        """§4.4: settle a bet with its win; amount 0 settles a lost round. No session needed (late
        deposits come from 100HP's resolver, §6.6). Errors: 605, 608, 609; 400 if the win would take
        the balance past what the wallet can hold."""
        key = tx_id.lower()
        def work(store):
            wallet, bet = self._lock_open_bet(store, key, user_id)
            _check_room(wallet, amount)
            balance = self.move(store, wallet, amount, "deposit", key)
            self.close_bet(store, key, SETTLED, amount)
            return {**_answer(wallet, balance), "sessionId": session_id or bet.session_id}
        return self.atomically(work)

    def rollback(self, tx_id: str, session_id: str | None = None, user_id: str | None = None):
        """§4.5: refund a bet. The amount is the stored withdrawal's, never the request's. No session
        needed. Errors: 605, 608, 609.

        A rollback of a txId never seen answers 605 as documented, and is remembered: 100HP sends it
        when a withdrawal timed out, and that withdrawal may still be on its way (ours, see the
        Decisions); it then finds the txId spent and books nothing."""
        key = tx_id.lower()
        def work(store):
            bet = self.find_bet(store, key)
            if bet is None:
                self.add_bet(store, Bet(key, EARLY_ROLLBACK, None, session_id, Decimal(0), REFUNDED))
                return None  # commit the tombstone, then answer 605
            wallet, bet = self._lock_open_bet(store, key, user_id, bet)
            balance = self.move(store, wallet, bet.amount, "rollback", key)
            self.close_bet(store, key, REFUNDED)
            return {**_answer(wallet, balance), "sessionId": session_id or bet.session_id}
        answer = self.atomically(work)
        if answer is None:
            raise CasinoError(605)
        return answer

    def bonus_win(self, session_id: str, tx_id: str, amount: Decimal, promo_id: str,
                  user_id: str | None = None) -> dict:
        """§4.6: credit a promo / free-bet win, with no withdrawal before it. A win, not a stake: it
        is paid on a closed or expired session and to a blocked player too (ours: a win is never
        lost). Errors: 604, 607; 608 (the txId was rolled back before the bonusWin arrived: 100HP
        cancelled it, nothing is credited, docs/100hp.md §9.3); 400 if it would take the balance
        past what the wallet can hold."""
        key = tx_id.lower()
        def work(store):
            wallet = self._session(store, session_id, user_id, lock=True).wallet
            # the txId's key second, as the withdrawal's; an error below takes the claim back
            bet = self.claim_bet(store, Bet(key, BONUS_WIN, wallet.id, session_id, amount, SETTLED,
                                            promo_id))
            if bet is not None and bet.kind == EARLY_ROLLBACK:  # ours: 607 would say "already paid"
                raise CasinoError(608, "txId was rolled back before this bonusWin arrived")
            if bet is not None:
                raise CasinoError(607)
            _check_room(wallet, amount)
            balance = self.move(store, wallet, amount, BONUS_WIN, key)
            return {**_answer(wallet, balance), "sessionId": session_id}
        return self.atomically(work)

    def expire(self, tx_id: str) -> Decimal:
        """§4.3 recommendation, §6.7: refund a withdrawal that got neither deposit nor rollback within
        2 weeks (the casino's own rollback). A later deposit or rollback then answers 608.
        Errors: 605, 608, 609 (a deposit or rollback got there first)."""
        def work(store):
            wallet, bet = self._lock_open_bet(store, tx_id, None)
            balance = self.move(store, wallet, bet.amount, "expire", tx_id)
            self.close_bet(store, tx_id, REFUNDED)
            return balance
        return self.atomically(work)

    # ---- shared rules ----------------------------------------------------------------------------
    def _session(self, store, session_id: str, user_id: str | None = None, lock=False) -> Session:
        session = self.find_session(store, session_id, lock)
        # ours (§9.2): a userId that is not the session's player is no session of theirs.
        if session is None or (user_id is not None and user_id != session.wallet.user_id):
            raise CasinoError(604)
        return session

    def _live_session(self, store, session_id: str, user_id: str | None = None, lock=False):
        """The session, if it may still play: not closed and not past its lifetime (ours)."""
        session = self._session(store, session_id, user_id, lock)
        if session.closed:
            raise CasinoError(604, "session is closed")
        if session.expires_at <= utcnow():
            raise CasinoError(604, "session has expired")
        return session

    def _lock_open_bet(self, store, tx_id: str, user_id: str | None,
                       bet: Bet | None = None) -> tuple[Wallet, Bet]:
        """The withdrawal `tx_id` and its wallet, locked, if the bet is still open. `bet`: the
        caller's first read of it, if it made one."""
        bet = bet or self.find_bet(store, tx_id)
        if bet is None or bet.kind != WITHDRAWAL:
            raise CasinoError(605)
        wallet = self.lock_wallet(store, bet.wallet_id)
        bet = self.find_bet(store, tx_id)  # again, under the lock: a racing call may have closed it
        if user_id is not None and user_id != wallet.user_id:
            raise CasinoError(605)  # ours (§9.2): not this player's transaction
        if bet.status == REFUNDED:
            raise CasinoError(608)  # §3.7: deposit (or rollback) after a rollback
        if bet.status == SETTLED:
            raise CasinoError(609)  # §3.7: rollback (or deposit) after a deposit
        return wallet, bet


def _check_room(wallet: Wallet, credit: Decimal) -> None:
    """Ours: a credit may not take the balance past the column's 18 integer digits."""
    if wallet.balance + credit >= BALANCE_LIMIT:
        raise CasinoError(400, "amount would take the balance over the wallet's limit")



def _answer(wallet: Wallet, balance: Decimal) -> dict:
    """The fields every success body starts with; the balance truncated to cents (§3.3)."""
    return {"userId": wallet.user_id, "currency": wallet.currency, "balance": format_hp(balance)}
