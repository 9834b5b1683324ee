"""TestCasino: the 100HP Casino in memory (the guide names a TestCasino; this one is ours).

The storage primitives of wallet/hp100/casino.py on plain dicts and one lock: small enough to read in one
sitting, used by the tests as the model the SQL YourCasino must agree with. Not for production:
nothing survives a restart.
"""
import threading
import uuid
from datetime import timedelta
from decimal import Decimal

from ..core.money import BALANCE_LIMIT
from .casino import OPEN, WITHDRAWAL, Bet, Casino, Session, Wallet, utcnow


class TestCasino(Casino):
    __test__ = False  # not a pytest test class

    def __init__(self):
        self._lock = threading.Lock()
        self.players = {}   # user_id -> [name, status, type]
        self.wallets = {}   # wallet_id -> Wallet
        self.sessions = {}  # session_id -> [wallet_id, expires_at, closed]
        self.bets = {}      # tx_id -> Bet
        self.booked = {}    # tx_id -> when the bet was booked
        self.ledger = []    # (wallet_id, op, tx_id, amount, balance_after)

    # ---- sandbox set-up ----
    def add_player(self, name: str, currency: str = "USD", balance: Decimal = Decimal(0)) -> str:
        user_id = str(len(self.players) + 1)
        self.players[user_id] = [name, "active", "real"]
        wallet_id = len(self.wallets) + 1
        self.wallets[wallet_id] = Wallet(wallet_id, user_id, currency, Decimal(balance))
        return user_id

    def open_session(self, user_id: str, lifetime: timedelta = timedelta(days=1)) -> str:
        session_id = str(uuid.uuid4())
        wallet_id = next(w.id for w in self.wallets.values() if w.user_id == user_id)
        self.sessions[session_id] = [wallet_id, utcnow() + lifetime, False]
        return session_id

    def close_session(self, session_id: str) -> None:
        self.sessions[session_id][2] = True

    def set_status(self, user_id: str, status: str) -> None:
        """active | blocked"""
        self.players[user_id][1] = status

    # ---- storage primitives ----
    def atomically(self, work, write=True):
        with self._lock:
            saved = dict(self.wallets), dict(self.bets), len(self.ledger)
            try:
                return work(None)
            except BaseException:
                self.wallets, self.bets = dict(saved[0]), dict(saved[1])
                del self.ledger[saved[2]:]
                raise

    def find_session(self, _store, session_id, lock=False):  # the one lock is held already
        if session_id not in self.sessions:
            return None
        wallet_id, expires_at, closed = self.sessions[session_id]
        wallet = self.wallets[wallet_id]
        name, status, player_type = self.players[wallet.user_id]
        return Session(session_id, wallet, name, status, player_type, expires_at, closed)

    def lock_wallet(self, _store, wallet_id):
        return self.wallets[wallet_id]  # the one lock of `atomically` is held

    def find_bet(self, _store, tx_id):
        return self.bets.get(tx_id)

    def add_bet(self, _store, bet: Bet):
        self.bets[bet.tx_id] = bet
        self.booked[bet.tx_id] = utcnow()

    def close_bet(self, _store, tx_id, status, win_amount=None):
        self.bets[tx_id] = self.bets[tx_id]._replace(status=status)

    def open_withdrawals(self, created_before):
        with self._lock:
            return [tx_id for tx_id, bet in self.bets.items() if bet.kind == WITHDRAWAL
                    and bet.status == OPEN and self.booked[tx_id] < created_before]

    def move(self, _store, wallet, amount, op, tx_id):
        balance = self.wallets[wallet.id].balance + amount
        if not 0 <= balance < BALANCE_LIMIT:  # the rules refuse these first; as ledger.post does
            raise ValueError(f"balance {balance} out of range")
        self.wallets[wallet.id] = wallet._replace(balance=balance)
        self.ledger.append((wallet.id, op, tx_id, amount, balance))
        return balance
