"""YourCasino: the 100HP Casino on SQL, in the place of the guide's template (docs/100hp.md §7.1).

The storage primitives of wallet/hp100/casino.py written with SQLAlchemy Core against the schema
in ddl/<dialect>.sql and wallet/hp100/ddl/: the rules stay in Casino, the queries are here, and
every balance change goes through wallet/core/ledger.py. Written against this project's tables, it
is a model for the primitives you write against your own, not a file to copy (docs/porting.md).
"""
from sqlalchemy import and_, bindparam, insert, select, update

from ..core import db, ledger
from ..core.claims import claim, insert_unless_taken
from ..core.schema import players, sessions, utcnow, wallets
from .casino import OPEN, WITHDRAWAL, Bet, Casino, Session, Wallet
from .schema import hp_transactions

# The statements, built once (SQLAlchemy caches their compiled form).
_SESSION = (
    select(sessions.c.token, sessions.c.expires_at, sessions.c.closed_at, players.c.name,
           players.c.status, players.c.type,
           wallets.c.id, wallets.c.player_id, wallets.c.currency, wallets.c.balance)
    .select_from(sessions.join(players).join(wallets, and_(
        wallets.c.player_id == sessions.c.player_id, wallets.c.currency == sessions.c.currency)))
    .where(sessions.c.token == bindparam("token")))
SESSION = _SESSION
# PostgreSQL and MySQL 8 lock the wallet row only; MariaDB (no FOR UPDATE OF) the joined rows too;
# SQLite is locked whole by BEGIN IMMEDIATE.
SESSION_LOCKING_WALLET = _SESSION.with_for_update(of=wallets)
# The columns in Bet's order.
BET = (select(hp_transactions.c.tx_id, hp_transactions.c.kind, hp_transactions.c.wallet_id,
              hp_transactions.c.session_id, hp_transactions.c.amount, hp_transactions.c.status,
              hp_transactions.c.promo_id)
       .where(hp_transactions.c.tx_id == bindparam("tx_id")))
ADD_BET = insert(hp_transactions)
# The txId claimed by its INSERT, or nothing if it is taken (wallet/core/claims.py). MySQL's IGNORE
# would cut a bad value to fit: the values are checked before (fields.py: the txId's form, 2
# places; the session is the one just locked).
CLAIM_BET = insert_unless_taken(hp_transactions, ["tx_id"])
CLOSE_BET = (update(hp_transactions).where(hp_transactions.c.tx_id == bindparam("tx"))
             .values(status=bindparam("new_status"), win_amount=bindparam("win"),
                     closed_at=bindparam("at")))
OPEN_WITHDRAWALS = (select(hp_transactions.c.tx_id)
                    .where(hp_transactions.c.status == OPEN, hp_transactions.c.kind == WITHDRAWAL,
                           hp_transactions.c.created_at < bindparam("before"))
                    .order_by(hp_transactions.c.created_at))


class YourCasino(Casino):
    def __init__(self, engine):
        self.engine = engine
        self._claim_bet = CLAIM_BET[engine.dialect.name]

    def atomically(self, work, write=True):
        return db.transaction(self.engine, work, write=write)

    def find_session(self, conn, session_id, lock=False):
        row = conn.execute(SESSION_LOCKING_WALLET if lock else SESSION, {"token": session_id}).first()
        if row is None:
            return None
        return Session(row.token, _wallet(row), row.name, row.status, row.type, row.expires_at,
                       row.closed_at is not None)

    def lock_wallet(self, conn, wallet_id):
        return _wallet(db.lock_wallet(conn, wallet_id))

    def find_bet(self, conn, tx_id):
        row = conn.execute(BET, {"tx_id": tx_id}).first()
        return None if row is None else Bet(*row)

    def add_bet(self, conn, bet):
        conn.execute(ADD_BET, {**bet._asdict(), "created_at": utcnow()})

    def claim_bet(self, conn, bet):
        return claim(conn, self._claim_bet, {**bet._asdict(), "created_at": utcnow()},
                     lambda: self.find_bet(conn, bet.tx_id))

    def close_bet(self, conn, tx_id, status, win_amount=None):
        conn.execute(CLOSE_BET, {"tx": tx_id, "new_status": status, "win": win_amount, "at": utcnow()})

    def open_withdrawals(self, created_before):
        with self.engine.connect() as conn:
            return list(conn.execute(OPEN_WITHDRAWALS, {"before": created_before}).scalars())

    def move(self, conn, wallet, amount, op, tx_id):
        return ledger.post(conn, wallet, amount, provider="100hp", op=op, ref=tx_id)


def _wallet(row) -> Wallet:
    return Wallet(row.id, str(row.player_id), row.currency, row.balance)
