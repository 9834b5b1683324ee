"""The ported example (examples/port_sqlite3): the 100HP rules on the standard library's sqlite3,
against an existing users table, passes the standalone kit (a subprocess that sees no wallet), and
its books agree: every balance change has its ledger row, and no bet is left open; its own schema
refuses a second booking of one operation, as the reference's ledger does."""
import importlib
import sqlite3
from decimal import Decimal

import pytest
from conftest import HP_SECRET
from test_conformance import serve
from test_conformance_standalone import isolated_kit  # noqa: F401 (a fixture of that module)

from examples.port_sqlite3.port_casino import PortCasino
from wallet.hp100.casino import Wallet

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
