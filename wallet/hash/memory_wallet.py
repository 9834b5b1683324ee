"""MemoryHashWallet: the Hash rules of wallet/hash/orders.py on plain dicts and one lock.

Small enough to read in one sitting: the tests hold SqlHashWallet to it (tests/test_models.py), and
it is the shape to port the rules from. It imports nothing from the SQL side. Not for production:
nothing survives a restart.
"""
import threading
from datetime import timedelta
from decimal import Decimal

from ..core.money import BALANCE_LIMIT
from .orders import AppliedRequest, HashWallet, Session, Wallet, utcnow


class MemoryHashWallet(HashWallet):
    def __init__(self, **rules):
        super().__init__(**rules)
        self._lock = threading.RLock()  # held by `atomically`; a purge inside a call takes it too
        self.players = {}    # player_id -> [name, status]
        self.wallets = {}    # wallet_id -> Wallet
        self.sessions = {}   # token -> [player_id, expires_at, closed]
        self.orders = {}     # order_no -> Order
        self.requests = {}   # (endpoint, request_id) -> AppliedRequest
        self.ledger = []     # (wallet_id, op, order_no, amount, balance_after)

    # ---- sandbox set-up ----
    def add_player(self, name: str, balances: dict, player_id: int | None = None) -> int:
        """A player with a wallet per currency: {"USDT": Decimal(100)}."""
        player_id = player_id or len(self.players) + 1
        self.players[player_id] = [name, "active"]
        for currency, balance in balances.items():
            wallet_id = len(self.wallets) + 1
            self.wallets[wallet_id] = Wallet(wallet_id, player_id, currency, Decimal(balance))
        return player_id

    def open_session(self, player_id: int, token: str, lifetime=timedelta(days=1)) -> str:
        self.sessions[token] = [player_id, utcnow() + lifetime, False]
        return token

    def close_session(self, token: str) -> None:
        self.sessions[token][2] = True

    def set_status(self, player_id: int, status: str) -> None:
        self.players[player_id][1] = status

    # ---- storage primitives ----
    def atomically(self, work, write=True):
        with self._lock:
            saved = dict(self.wallets), dict(self.orders), dict(self.requests), len(self.ledger)
            try:
                return work(None)
            except BaseException:
                self.wallets, self.orders, self.requests = dict(saved[0]), dict(saved[1]), dict(saved[2])
                del self.ledger[saved[3]:]
                raise

    def find_session(self, _store, token):
        if token not in self.sessions:
            return None
        player_id, expires_at, closed = self.sessions[token]
        name, status = self.players[player_id]
        return Session(player_id, name, status, expires_at, closed)

    def lock_session_wallet(self, store, token, currency):  # the one lock is held already
        session = self.find_session(store, token)
        wallet = session and self.find_wallet(store, session.player_id, currency)
        return None if wallet is None else (session, wallet)

    def find_wallet(self, _store, player_id, currency):
        return next((w for w in self.wallets.values()
                     if w.player_id == player_id and w.currency == currency), None)

    def lock_wallet(self, _store, wallet_id):
        return self.wallets[wallet_id]

    def wallet_by_id(self, _store, wallet_id):
        return self.wallets[wallet_id]

    def player_exists(self, _store, player_id):
        return player_id in self.players

    def find_order(self, _store, order_no):
        return self.orders.get(order_no)

    def insert_order(self, _store, order):
        self.orders[order.order_no] = order

    def close_order(self, _store, order_no, status, payout, prize, tax, bonus, bet_info):
        self.orders[order_no] = self.orders[order_no]._replace(
            status=status, payout=payout, prize=prize, tax=tax, bonus=bonus, bet_info=bet_info)

    def move(self, _store, wallet, amount, op, order_no):
        balance = self.wallets[wallet.id].balance + amount
        if not 0 <= balance < BALANCE_LIMIT:  # the rules refuse these first; as ledger.post does
            raise ValueError(f"balance {balance} out of range")
        self.wallets[wallet.id] = wallet._replace(balance=balance)
        self.ledger.append((wallet.id, op, order_no, amount, balance))
        return balance

    def applied_request(self, _store, endpoint, request_id):
        return self.requests.get((endpoint, request_id))

    def remember_request(self, _store, request):
        self.requests[request.endpoint, request.value] = AppliedRequest(request.digest, request.seen_at)

    def forget_request(self, _store, endpoint, request_id):
        del self.requests[endpoint, request_id]

    def forget_requests(self, _store, before, limit):
        old = sorted((seen.seen_at, key) for key, seen in self.requests.items() if seen.seen_at < before)
        for _, key in old[:limit]:
            del self.requests[key]
        return len(old[:limit])
