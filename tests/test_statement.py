"""wallet/statement.py: the money path's statements run on the driver behave as SQLAlchemy's would."""
from decimal import Decimal

import pytest
import sqlalchemy as sa

from conftest import new_player
from wallet import accounts, db, ledger
from wallet.your_casino import SESSION


def test_rows_come_back_typed_and_named(app):
    user_id, session = new_player(app, "1000.000001")
    with app.extensions["engine"].connect() as conn:
        row = SESSION.first(conn, token=session)
        assert SESSION.first(conn, token="no such session") is None
    assert (row.token, row.player_id, row.currency) == (session, int(user_id), "USD")
    assert row.balance == Decimal("1000.000001") and isinstance(row.balance, Decimal)  # exact, never float


def test_a_booked_operation_booked_again_is_sqlalchemys_integrity_error(app):
    """db.transaction retries a lost unique race on IntegrityError: the driver's own error would
    not be recognised."""
    user_id, _ = new_player(app, "10")
    engine = app.extensions["engine"]

    def book(conn):
        wallet = db.lock_wallet(conn, accounts.player_wallets(conn, int(user_id))[0].id)
        ledger.post(conn, wallet, Decimal(-1), provider="100hp", op="withdrawal", ref="same")
    db.transaction(engine, book)
    with pytest.raises(sa.exc.IntegrityError):
        db.transaction(engine, book, attempts=1)
    with engine.connect() as conn:
        assert accounts.player_wallets(conn, int(user_id))[0].balance == Decimal(9)  # rolled back
