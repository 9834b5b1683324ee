"""The ported example (examples/port_sqlite3): the 100HP rules on the standard library's sqlite3,
against an existing users table, passes the standalone kit (a subprocess that sees no wallet), and
its books agree: every balance change has its ledger row, and no bet is left open; its own schema
refuses a second booking of one operation, as the reference's ledger does; and a call that loses a
race or meets a locked database is run again within its deadline (docs/porting.md)."""
import importlib
import sqlite3
import time
from contextlib import contextmanager
from decimal import Decimal

import pytest
from conftest import HP_SECRET
from test_conformance import serve
from test_conformance_standalone import isolated_kit  # noqa: F401 (a fixture of that module)

from examples.port_sqlite3 import port_casino
from examples.port_sqlite3.port_casino import PortCasino
from wallet.hp100.casino import CasinoError, Wallet

TX = "0190a6e0-0000-7000-8000-000000000001"
USERS = ("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, "
         "balance_cents INTEGER NOT NULL CHECK (balance_cents >= 0))")


def test_the_port_passes_the_standalone_kit(isolated_kit, tmp_path, monkeypatch):  # noqa: F811
    path = tmp_path / "casino.db"
    with sqlite3.connect(path) as conn:  # the casino's own table, before the port
        conn.execute(USERS)
        conn.executemany("INSERT INTO users VALUES (?, ?, ?)", [(7, "alice", 100000), (8, "bob", 2500)])
    monkeypatch.setenv("CASINO_DB", str(path))
    monkeypatch.setenv("HP_SECRET", HP_SECRET)
    wsgi = importlib.reload(importlib.import_module("examples.port_sqlite3.wsgi"))
    casino = wsgi.casino
    session, second, closed = casino.open_session(7), casino.open_session(8), casino.open_session(7)
    casino.close_session(closed)

    with serve(wsgi.app) as base:
        result = isolated_kit("100hp", "--url", f"{base}/100hp", "--secret", HP_SECRET, "--session", session,
                              "--second-session", second, "--closed-session", closed)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "39 passed, 0 failed, 0 warnings, 1 skipped" in result.stdout  # no blocked players in this port
    assert "SKIP  a blocked player" in result.stdout

    with sqlite3.connect(path) as conn:
        balances = dict(conn.execute("SELECT id, balance_cents FROM users"))
        ledger = dict(conn.execute("SELECT user_id, SUM(amount_cents) FROM ledger GROUP BY user_id"))
        last = dict(conn.execute("SELECT user_id, balance_cents FROM ledger WHERE id IN "
                                 "(SELECT MAX(id) FROM ledger GROUP BY user_id)"))
        open_bets = conn.execute("SELECT COUNT(*) FROM bets WHERE status = 'open'").fetchone()[0]
    assert balances == {7: 100000 + ledger[7], 8: 2500 + ledger.get(8, 0)}
    assert last == {user: balance for user, balance in balances.items() if user in ledger}
    assert balances[7] == 100004  # five bonusWin cents, less the lost round's cent
    assert open_bets == 0


def test_the_ports_own_schema_refuses_a_second_booking_of_one_operation(tmp_path):
    path = tmp_path / "casino.db"
    with sqlite3.connect(path) as conn:
        conn.execute(USERS)
        conn.execute("INSERT INTO users VALUES (7, 'alice', 1000)")
    casino = PortCasino(str(path))
    casino.init()
    alice = Wallet(7, "7", "USD", Decimal("10.00"))
    casino.atomically(lambda conn: casino.move(conn, alice, Decimal("2.50"), "deposit", "t1"))

    def deposit_again(conn):  # what a bug above the ledger would do: book the same deposit twice
        return casino.move(conn, alice._replace(balance=Decimal("12.50")), Decimal("2.50"), "deposit", "t1")
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        casino.atomically(deposit_again)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT balance_cents FROM users").fetchone() == (1250,)
        assert conn.execute("SELECT COUNT(*) FROM ledger").fetchone() == (1,)


class LosesTheFirstRace(PortCasino):
    """Its next run's look-up misses the txId, and its twin's row is committed already: the race a
    database that lets two writers in at once shows (on SQLite, BEGIN IMMEDIATE lets one in)."""
    misses = 0

    def find_bet(self, conn, tx_id):
        if self.misses:
            self.misses -= 1
            return None
        return super().find_bet(conn, tx_id)


def a_casino(path, casino_class=PortCasino):
    with sqlite3.connect(path) as conn:
        conn.execute(USERS)
        conn.execute("INSERT INTO users VALUES (7, 'alice', 1000)")
    casino = casino_class(str(path))
    casino.init()
    return casino


def test_a_lost_unique_race_is_run_again_and_answered_as_the_duplicate(tmp_path):
    casino = a_casino(tmp_path / "casino.db", LosesTheFirstRace)
    session = casino.open_session(7)
    casino.withdrawal(session, TX, Decimal("2.50"))  # the twin that won
    casino.misses = 1
    with pytest.raises(CasinoError) as duplicate:  # not "UNIQUE constraint failed": a 702
        casino.withdrawal(session, TX, Decimal("2.50"))
    assert duplicate.value.err_code == 607
    with sqlite3.connect(tmp_path / "casino.db") as conn:
        assert conn.execute("SELECT balance_cents FROM users").fetchone() == (750,)
        assert conn.execute("SELECT COUNT(*) FROM ledger").fetchone() == (1,)


@contextmanager
def database_locked(path):
    """Another writer (an operator's sqlite3 shell, a backup) holds the database lock."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()


def test_a_locked_database_is_waited_for_and_the_call_run_again(tmp_path, monkeypatch):
    casino = a_casino(tmp_path / "casino.db")
    session = casino.open_session(7)
    monkeypatch.setattr(port_casino, "LOCK_TIMEOUT", 0)  # the first run's lock wait runs out at once
    connect, runs = casino.connect, []

    def run(lock_timeout):
        runs.append(lock_timeout)
        if len(runs) == 2:
            other.execute("ROLLBACK")  # the other writer is done before the second run
        return connect(lock_timeout)
    monkeypatch.setattr(casino, "connect", run)
    with database_locked(tmp_path / "casino.db") as other:
        assert casino.withdrawal(session, TX, Decimal("2.50"))["balance"] == "7.50"
    assert len(runs) == 2


def test_a_database_locked_past_the_deadline_is_702_with_the_lock_named(tmp_path, monkeypatch):
    casino = a_casino(tmp_path / "casino.db")
    session = casino.open_session(7)
    monkeypatch.setattr(port_casino, "CALL_DEADLINE", 0.3)
    monkeypatch.setattr(port_casino, "LOCK_TIMEOUT", 0.1)
    with database_locked(tmp_path / "casino.db"):
        started = time.monotonic()
        with pytest.raises(TimeoutError) as timeout:  # 702: the blueprint answers any other failure so
            casino.withdrawal(session, TX, Decimal("2.50"))
        assert time.monotonic() - started < 2  # the call's deadline bounds it
    assert "database is locked" in str(timeout.value.__cause__)  # not "no transaction is active"
    with sqlite3.connect(tmp_path / "casino.db") as conn:
        assert conn.execute("SELECT balance_cents FROM users").fetchone() == (1000,)
