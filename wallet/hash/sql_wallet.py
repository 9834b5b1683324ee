"""SqlHashWallet: the Hash rules of wallet/hash/orders.py on SQL, against wallet/hash/schema.py.

The storage primitives of HashWallet written with SQLAlchemy Core; every balance change goes
through wallet/core/ledger.py, in the transaction of wallet/core/db.py. Written against this
project's tables, it is a model for the primitives you write against your own, not a file to copy
(docs/porting.md, "What to take").
"""
from sqlalchemy import and_, bindparam, delete, insert, select, update

from ..core import db, ledger
from ..core.claims import claim, insert_unless_taken
from ..core.schema import players, sessions, utcnow, wallets
from .orders import AppliedRequest, HashWallet, Order, Session, Wallet
from .schema import hash_applied_requests, hash_orders

# The statements, built once (SQLAlchemy caches their compiled form).
_SESSION_COLUMNS = (sessions.c.player_id, players.c.name, players.c.status, sessions.c.expires_at,
                    sessions.c.closed_at)
SESSION = (select(*_SESSION_COLUMNS).select_from(sessions.join(players))
           .where(sessions.c.token == bindparam("token")))
# A bet's wallet lock: the session's wallet in the bet's currency (as YourCasino's, FOR UPDATE OF;
# MariaDB, which has no OF, locks the joined rows too; SQLite is locked whole by BEGIN IMMEDIATE).
SESSION_WALLET_LOCKED = (
    select(*_SESSION_COLUMNS, wallets.c.id, wallets.c.currency, wallets.c.balance)
    .select_from(sessions.join(players).join(wallets, and_(
        wallets.c.player_id == sessions.c.player_id, wallets.c.currency == bindparam("currency"))))
    .where(sessions.c.token == bindparam("token")).with_for_update(of=wallets))
WALLET_IN = select(wallets).where(wallets.c.player_id == bindparam("player_id"),
                                  wallets.c.currency == bindparam("currency"))
WALLET = select(wallets).where(wallets.c.id == bindparam("wallet_id"))
PLAYER_EXISTS = select(players.c.id).where(players.c.id == bindparam("player_id"))
ORDER = select(*(hash_orders.c[name] for name in Order._fields)).where(
    hash_orders.c.order_no == bindparam("order_no"))
ADD_ORDER = insert(hash_orders)
# An order and its wallet, both locked (FOR UPDATE of every table joined), so that each is read as
# it is once locked: PostgreSQL reads a locked row again after waiting for it, but a row it did not
# lock as it was before the wait. MySQL / MariaDB lock the order first (wallet/hash/orders.py, Locks).
ORDER_AND_WALLET_LOCKED = (
    select(*(hash_orders.c[name] for name in Order._fields), *(wallets.c[name] for name in Wallet._fields))
    .select_from(hash_orders.join(wallets, wallets.c.id == hash_orders.c.wallet_id))
    .where(hash_orders.c.order_no == bindparam("order_no")).with_for_update())
# The order and the request_id claimed by their INSERT, or nothing if taken (wallet/core/claims.py).
# MySQL's IGNORE would cut a bad value to fit: every value is checked before
# (wallet/hash/fields.py: the columns' lengths and 6 places; a stake over every balance is refused
# 2002, which rolls it back), and the wallet is locked.
CLAIM_ORDER = insert_unless_taken(hash_orders, ["order_no"])
CLOSE_ORDER = (
    update(hash_orders).where(hash_orders.c.order_no == bindparam("order")).values(
        status=bindparam("new_status"), payout=bindparam("credited"), prize=bindparam("new_prize"),
        tax=bindparam("new_tax"), bonus=bindparam("new_bonus"), bet_info=bindparam("info"),
        updated_at=bindparam("at")))
_REQUEST = and_(hash_applied_requests.c.endpoint == bindparam("endpoint"),
                hash_applied_requests.c.request_id == bindparam("id"))
APPLIED_REQUEST = select(hash_applied_requests.c.digest, hash_applied_requests.c.seen_at).where(_REQUEST)
ADD_REQUEST = insert(hash_applied_requests)
CLAIM_REQUEST = insert_unless_taken(hash_applied_requests, ["endpoint", "request_id"])
FORGET_ONE = delete(hash_applied_requests).where(_REQUEST)
# The purge's rows: the oldest, at most `limit`, none that another transaction holds (SKIP LOCKED on
# PostgreSQL and MariaDB; SQLite's writer holds the whole database already), so it never waits.
OLD_REQUESTS = (select(hash_applied_requests.c.endpoint, hash_applied_requests.c.request_id)
                .where(hash_applied_requests.c.seen_at < bindparam("before"))
                .order_by(hash_applied_requests.c.seen_at).limit(bindparam("limit"))
                .with_for_update(skip_locked=True))

class SqlHashWallet(HashWallet):
    def __init__(self, engine, **rules):
        super().__init__(**rules)
        self.engine = engine
        self._claim_order = CLAIM_ORDER[engine.dialect.name]
        self._claim_request = CLAIM_REQUEST[engine.dialect.name]

    def atomically(self, work, write=True):
        return db.transaction(self.engine, work, write=write)

    def find_session(self, conn, token):
        row = conn.execute(SESSION, {"token": token}).first()
        return None if row is None else _session(row)

    def lock_session_wallet(self, conn, token, currency):
        row = conn.execute(SESSION_WALLET_LOCKED, {"token": token, "currency": currency}).first()
        return None if row is None else (_session(row), _wallet(row))

    def find_wallet(self, conn, player_id, currency):
        row = conn.execute(WALLET_IN, {"player_id": player_id, "currency": currency}).first()
        return None if row is None else _wallet(row)

    def lock_wallet(self, conn, wallet_id):
        return _wallet(db.lock_wallet(conn, wallet_id))

    def wallet_by_id(self, conn, wallet_id):
        return _wallet(conn.execute(WALLET, {"wallet_id": wallet_id}).first())

    def player_exists(self, conn, player_id):
        return conn.execute(PLAYER_EXISTS, {"player_id": player_id}).first() is not None

    def find_order(self, conn, order_no):
        row = conn.execute(ORDER, {"order_no": order_no}).first()
        return None if row is None else Order(*row)

    def insert_order(self, conn, order):
        now = utcnow()
        conn.execute(ADD_ORDER, {**order._asdict(), "created_at": now, "updated_at": now})

    def claim_order(self, conn, order):
        now = utcnow()
        return claim(conn, self._claim_order, {**order._asdict(), "created_at": now, "updated_at": now},
                     lambda: self.find_order(conn, order.order_no))

    def lock_order(self, conn, order_no):
        row = conn.execute(ORDER_AND_WALLET_LOCKED, {"order_no": order_no}).first()
        return None if row is None else (Order(*row[:len(Order._fields)]), _wallet(row))

    def close_order(self, conn, order_no, status, payout, prize, tax, bonus, bet_info):
        conn.execute(CLOSE_ORDER, {"order": order_no, "new_status": status, "credited": payout,
                                   "new_prize": prize, "new_tax": tax, "new_bonus": bonus,
                                   "info": bet_info, "at": utcnow()})

    def move(self, conn, wallet, amount, op, order_no):
        return ledger.post(conn, wallet, amount, provider="hash", op=op, ref=order_no)

    def applied_request(self, conn, endpoint, request_id):
        row = conn.execute(APPLIED_REQUEST, {"endpoint": endpoint, "id": request_id}).first()
        return None if row is None else AppliedRequest(row.digest, row.seen_at)

    def remember_request(self, conn, request):
        conn.execute(ADD_REQUEST, _request_row(request))

    def claim_request(self, conn, request):
        return claim(conn, self._claim_request, _request_row(request),  # READ COMMITTED: a twin's row
                     lambda: self.applied_request(conn, request.endpoint, request.value))

    def forget_request(self, conn, endpoint, request_id):
        conn.execute(FORGET_ONE, {"endpoint": endpoint, "id": request_id})

    def forget_requests(self, conn, before, limit):
        keys = [{"endpoint": endpoint, "id": request_id} for endpoint, request_id
                in conn.execute(OLD_REQUESTS, {"before": before, "limit": limit})]
        if keys:  # by primary key, one by one: a row-value IN scans (and waits) on MariaDB
            conn.execute(FORGET_ONE, keys)
        return len(keys)

def _request_row(request) -> dict:
    return {"endpoint": request.endpoint, "request_id": request.value, "digest": request.digest,
            "seen_at": request.seen_at}


def _session(row) -> Session:
    return Session(row.player_id, row.name, row.status, row.expires_at, row.closed_at is not None)


def _wallet(row) -> Wallet:
    return Wallet(row.id, row.player_id, row.currency, row.balance)
