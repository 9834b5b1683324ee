"""YourCasino: the 100HP Casino on SQL (the Python port of YourCasino.js and the DDL examples).

The storage primitives of wallet/casino.py written with SQLAlchemy Core against the schema in
ddl/<dialect>.sql. This is the file to copy into your own stack: the rules stay in Casino, the
queries are here, and every balance change goes through wallet/ledger.py.
"""
from sqlalchemy import and_, insert, select, update

from . import db, ledger
from .casino import OPEN, WITHDRAWAL, Bet, Casino, Session, Wallet
from .db import hp_transactions, players, sessions, utcnow, wallets


class YourCasino(Casino):
    def __init__(self, engine):
        self.engine = engine

    def atomically(self, work, write=True):
        return db.transaction(self.engine, work, write=write)

    def find_session(self, conn, session_id):
        row = conn.execute(
            select(sessions.c.token, players.c.name, players.c.status, players.c.type,
                   wallets.c.id, wallets.c.player_id, wallets.c.currency, wallets.c.balance)
            .select_from(sessions.join(players).join(wallets, and_(
                wallets.c.player_id == sessions.c.player_id,
                wallets.c.currency == sessions.c.currency)))
            .where(sessions.c.token == session_id, sessions.c.closed_at.is_(None))).first()
        if row is None:
            return None
        return Session(row.token, _wallet(row), row.name, row.status, row.type)

    def lock_wallet(self, conn, wallet_id):
        return _wallet(db.lock_wallet(conn, wallet_id))

    def find_bet(self, conn, tx_id):
        row = conn.execute(select(hp_transactions).where(hp_transactions.c.tx_id == tx_id)).first()
        if row is None:
            return None
        return Bet(row.tx_id, row.kind, row.wallet_id, row.session_id, row.amount, row.status,
                   row.promo_id)

    def add_bet(self, conn, bet):
        conn.execute(insert(hp_transactions).values(
            tx_id=bet.tx_id, kind=bet.kind, wallet_id=bet.wallet_id, session_id=bet.session_id,
            amount=bet.amount, status=bet.status, promo_id=bet.promo_id, created_at=utcnow()))

    def close_bet(self, conn, tx_id, status, win_amount=None):
        conn.execute(update(hp_transactions).where(hp_transactions.c.tx_id == tx_id)
                     .values(status=status, win_amount=win_amount, closed_at=utcnow()))

    def open_withdrawals(self, created_before) -> list[str]:
        """txIds of withdrawals still open that were booked before `created_before` (for expire)."""
        with self.engine.connect() as conn:
            return list(conn.execute(
                select(hp_transactions.c.tx_id).where(
                    hp_transactions.c.status == OPEN, hp_transactions.c.kind == WITHDRAWAL,
                    hp_transactions.c.created_at < created_before)
                .order_by(hp_transactions.c.created_at)).scalars())

    def move(self, conn, wallet, amount, op, tx_id):
        return ledger.post(conn, wallet, amount, provider="100hp", op=op, ref=tx_id)


def _wallet(row) -> Wallet:
    return Wallet(row.id, str(row.player_id), row.currency, row.balance)
