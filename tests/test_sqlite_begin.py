"""SQLite's BEGIN, sent by the engine's dialect (wallet/core/db.py `_sqlite_begin`): a writer's
transaction holds the database write lock from its first statement (BEGIN IMMEDIATE), a reader's
takes none; and no Connection event is set on the engine, whose dispatch would run on every
statement (tests/bench/README.md)."""
import sqlite3

from wallet.core import db


def _someone_else_can_write(path) -> bool:
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    finally:
        other.close()


def test_a_writer_holds_the_write_lock_from_its_begin_a_reader_does_not(tmp_path):
    path = tmp_path / "begin.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.init_schema(engine)
    assert db.transaction(engine, lambda conn: _someone_else_can_write(path)) is False
    assert db.transaction(engine, lambda conn: _someone_else_can_write(path), write=False) is True
    with engine.begin() as conn:  # any other transaction: a plain BEGIN, so a read one
        conn.exec_driver_sql("SELECT 1")
        assert conn.connection.driver_connection.in_transaction
        assert _someone_else_can_write(path)
    assert db.transaction(engine, lambda conn: _someone_else_can_write(path)) is False  # still
    engine.dispose()


def test_the_engine_has_no_connection_events(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'events.db'}")
    assert not engine._has_events  # SQLAlchemy's flag: set, every execute runs the Connection events
    engine.dispose()
