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


def test_a_connection_given_back_mid_transaction_is_rolled_back(app):
    """The pool ends whatever a borrower left open, so the next transaction on that connection
    cannot commit a stranger's half-done write (db._rollback_only_open_transactions on MySQL)."""
    user_id, _ = new_player(app, "10")
    engine = app.extensions["engine"]
    with engine.connect() as conn:
        wallet = accounts.player_wallets(conn, int(user_id))[0]
    with db.Driver(engine) as driver:
        driver.begin()
        ledger.SET_BALANCE.run(driver, wallet=wallet.id, new_balance=Decimal(0))
        # given back with neither commit nor rollback
    db.transaction(engine, lambda conn: None, driver=True)  # commits, on the same pooled connection
    with engine.connect() as conn:
        assert accounts.player_wallets(conn, int(user_id))[0].balance == Decimal(10)


def test_mysql_pool_sends_no_rollback_after_a_finished_transaction(app):
    """PyMySQL sends every ROLLBACK to the server, so the pool's reset would cost a round trip per
    call: after a commit it is skipped."""
    engine = app.extensions["engine"]
    if engine.dialect.name not in ("mysql", "mariadb"):
        pytest.skip("sqlite3 and psycopg skip a ROLLBACK with no transaction open themselves")

    def count() -> int:  # calls one after another reuse the pool's one connection
        with db.Driver(engine) as driver:
            driver.transaction_cursor.execute("SHOW SESSION STATUS LIKE 'Com_rollback'")
            rollbacks = int(driver.transaction_cursor.fetchone()[1])
            driver.commit()
        return rollbacks
    before = count()
    db.transaction(engine, lambda conn: None, driver=True)
    assert count() == before
