"""No call outlives its deadline, whatever the database does (wallet/core/db.py, "Bounded waits").

Real gunicorn, real databases, a short CALL_DEADLINE_MS (1 s) so that the module stays fast:
- a lock held from outside the wallet (an operator's sqlite3 shell, a migration's LOCK TABLE /
  LOCK TABLES) on each table the money path touches, with the console's call log on and off: a
  100HP withdrawal, a 100HP /balance read and a Hash order/add each answer by the deadline plus
  MARGIN, 702 / 5000 with nothing written when they needed the locked table; once it is released
  the same calls succeed, once;
- a database link that stops passing bytes without closing (a TCP proxy of this module's that
  freezes, then resumes): the call answers 702 by the deadline plus MARGIN, the log and /metrics
  say why, and after the link resumes the next call on the same worker succeeds;
- a start with LOCK_TIMEOUT_MS > CALL_DEADLINE_MS is refused, naming both.
"""
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import (HASH_SECRET, HP_SECRET, MERCHANT_ID, TEST_CONFIG, audit, gunicorn, new_player,
                      post_json, prepare_database, tx)

from app import create_app
from test_edges_e2e import lock_the_wallet, release
from wallet.hash.envelope import encrypt
from wallet.settings import SettingsError

DEADLINE = 1.0  # s: CALL_DEADLINE_MS below
MARGIN = 1.0    # s a 702 / 5000 may take beyond it: the socket cut-off's grace (0.25 s), HTTP and
#                 gunicorn, on a 2-core machine shared with other work
LIMITS = {"LOCK_TIMEOUT_MS": "400", "CALL_DEADLINE_MS": str(int(DEADLINE * 1000))}

# The tables each call reads or writes (the console's call_log is written after any of them, in
# what is left of the same budget). A call blocked on one of these answers 702 / 5000.
WITHDRAWAL = {"sessions", "players", "wallets", "hp_transactions", "ledger"}
BALANCE = {"sessions", "players", "wallets"}
ORDER_ADD = {"sessions", "players", "wallets", "hash_orders", "hash_applied_requests", "ledger"}
MONEY_TABLES = sorted(WITHDRAWAL | BALANCE | ORDER_ADD | {"call_log"})


def hp(base, endpoint, **fields):
    return post_json(base, f"/100hp/{endpoint}", {"secret": HP_SECRET, **fields})


def order_add(base, token, user_id, order_no):
    plain = {"token": token, "user_id": int(user_id), "order_no": order_no, "amount": 1,
             "currency": "USDT", "entry_key": "k", "round_id": "r", "bet_info": "[]",
             "timestamp": int(time.time() * 1000), "request_id": uuid.uuid4().hex}
    return post_json(base, "/api/v2/order/add", {"x": encrypt(json.dumps(plain).encode(), HASH_SECRET)},
                     {"merchant-id": MERCHANT_ID})


def timed(call):
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


# ---- a lock held from outside the wallet -----------------------------------------------------------
class OutsideLock:
    """A lock on `table` held by a connection of its own, as a person or a migration would take it:
    SQLite `BEGIN IMMEDIATE` in the sqlite3 shell (the whole database; the shell knows nothing of
    the wallet's writers' queue), PostgreSQL `LOCK TABLE ... IN ACCESS EXCLUSIVE MODE` (ALTER TABLE's),
    MariaDB `LOCK TABLES ... WRITE` (a metadata lock, like ALTER TABLE's). `release()` ends it."""

    def __init__(self, database_url, table):
        url = sa.engine.make_url(database_url)
        self.shell = None
        if url.get_backend_name() == "sqlite" and shutil.which("sqlite3"):
            self.shell = subprocess.Popen(["sqlite3", url.database], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, text=True, bufsize=1)
            self.shell.stdin.write("BEGIN IMMEDIATE;\nSELECT 'held';\n")
            assert self.shell.stdout.readline().strip() == "held"
        elif url.get_backend_name() == "sqlite":  # no sqlite3 shell installed: the same, in Python
            self.conn = sqlite3.connect(url.database, isolation_level=None)
            self.conn.execute("BEGIN IMMEDIATE")
            self.release_sql = "ROLLBACK"
        elif url.get_backend_name() == "postgresql":
            self.conn = sa.create_engine(database_url).raw_connection()
            self.conn.cursor().execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            self.release_sql = None  # the transaction's rollback
        else:
            self.conn = sa.create_engine(database_url).raw_connection()
            self.conn.cursor().execute(f"LOCK TABLES {table} WRITE")
            self.release_sql = "UNLOCK TABLES"

    def release(self):
        if self.shell:
            self.shell.communicate("ROLLBACK;\n.quit\n", timeout=10)
            return
        if self.release_sql:
            self.conn.cursor().execute(self.release_sql)
        self.conn.rollback()
        self.conn.close()


@pytest.fixture(scope="module", params=["console off", "console on"])
def console(request):
    return {"CONSOLE": "1" if request.param == "console on" else "0"}


def test_a_lock_held_from_outside_never_holds_a_call_past_its_deadline(app, database_url, console):
    sqlite = database_url.startswith("sqlite")
    tables = ["the whole database"] if sqlite else MONEY_TABLES
    with gunicorn(database_url, workers=3, extra_env={**LIMITS, **console}) as base, \
            ThreadPoolExecutor(3) as pool:
        for table in tables:
            needs = (lambda call: True) if sqlite else (lambda call: table in call)
            user_id, session = new_player(app, "100", extra_currencies=("USDT",))
            bet, order_no = tx(), f"o-{uuid.uuid4().hex[:12]}"
            lock = OutsideLock(database_url, table)
            try:
                withdrawal, balance, add = (pool.submit(timed, call) for call in (
                    lambda: hp(base, "withdrawal", sessionId=session, txId=bet, amount="10"),
                    lambda: hp(base, "balance", sessionId=session),
                    lambda: order_add(base, session, user_id, order_no)))
                (w_status, _), w_took = withdrawal.result()
                (b_status, b_body), b_took = balance.result()
                (_, a_body), a_took = add.result()
            finally:
                lock.release()
            where = f"{table} locked"
            assert max(w_took, b_took, a_took) <= DEADLINE + MARGIN, (where, w_took, b_took, a_took)
            # a call needing the locked table cannot answer; another may (MariaDB: a change to a
            # wallet row also needs the metadata lock of each table whose foreign key names it)
            assert w_status in ((702,) if needs(WITHDRAWAL) else (200, 702)), where
            assert a_body["code"] in ((5000,) if needs(ORDER_ADD) else (0, 5000)), where
            # SQLite: a read never waits for a writer (WAL), so /balance answers
            assert b_status == (702 if needs(BALANCE) and not sqlite else 200), where
            # nothing was written by a call answered 702 / 5000: sent again, each books once
            # (one that succeeded under the lock is a duplicate now: 607, or Hash's retry answer)
            assert hp(base, "withdrawal", sessionId=session, txId=bet, amount="10")[0] == (
                200 if w_status == 702 else 607), where
            assert hp(base, "balance", sessionId=session)[1]["balance"] == "90.00", where
            answer = order_add(base, session, user_id, order_no)[1]
            assert answer["code"] == 0 and Decimal(answer["data"]["balance"]) == 99, (where, answer)
    assert audit(app.extensions["engine"]) == []


# ---- a database link that stops passing bytes -------------------------------------------------------
class FreezingProxy:
    """A TCP proxy on loopback to `upstream` (host, port): threads pass the bytes both ways until
    `freeze()`, then hold them (the sockets stay open: no FIN, no RST, as a partition or a hung
    pooler does) until `resume()`."""

    def __init__(self, upstream):
        self.upstream, self.flowing = upstream, threading.Event()
        self.flowing.set()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(self.upstream)
            self.sockets += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source, target):
        try:
            while data := source.recv(65536):
                self.flowing.wait()
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def freeze(self):
        self.flowing.clear()

    def resume(self):
        self.flowing.set()

    def close(self):
        self.resume()
        self.listener.close()
        for sock in self.sockets:
            sock.close()


@pytest.mark.parametrize("kind", ["postgres", "mariadb"])
def test_a_database_that_stops_answering_mid_call_answers_702_by_the_deadline(kind, tmp_path):
    url = sa.engine.make_url(prepare_database(kind, tmp_path))
    proxy = FreezingProxy((url.host, url.port))
    through_proxy = url.set(port=proxy.port).render_as_string(hide_password=False)
    app = create_app({**TEST_CONFIG, "DATABASE_URL": through_proxy})
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    try:
        _, session = new_player(app, "100")
        with gunicorn(through_proxy, workers=1,
                      extra_env={**LIMITS, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}) as base:
            assert hp(base, "withdrawal", sessionId=session, txId=tx(), amount="10")[0] == 200
            proxy.freeze()  # the worker's pooled connection now leads nowhere
            during = tx()
            (status, body), took = timed(
                lambda: hp(base, "withdrawal", sessionId=session, txId=during, amount="10"))
            assert status == 702 and body["errCode"] == 702
            assert took <= DEADLINE + MARGIN, took
            proxy.resume()
            # the same worker takes the next call; the withdrawal answered 702 was not booked
            assert hp(base, "withdrawal", sessionId=session, txId=during, amount="10")[1]["balance"] == "80.00"
            text = urllib.request.urlopen(f"{base}/metrics", timeout=30).read().decode()
            passed = [line for line in text.splitlines() if line.startswith("wallet_db_deadline_passed_total")]
            assert passed and float(passed[0].split()[-1]) >= 1, passed
        log = Path(os.environ.get("TMPDIR", "/tmp")) / f"gunicorn-{base.rsplit(':', 1)[1]}.log"
        assert "deadline passed" in log.read_text()
    finally:
        app.extensions["engine"].dispose()
        proxy.close()


# ---- settings that cannot be kept ---------------------------------------------------------------
@pytest.mark.parametrize("env", ["sandbox", "production"])
def test_a_lock_timeout_longer_than_the_deadline_is_refused_at_start(env):
    with pytest.raises(SettingsError) as refused:
        create_app({**TEST_CONFIG, "WALLET_ENV": env, "DATABASE_URL": "sqlite://",
                    "LOCK_TIMEOUT_MS": "2000", "CALL_DEADLINE_MS": "1000"})
    assert "LOCK_TIMEOUT_MS" in str(refused.value) and "CALL_DEADLINE_MS" in str(refused.value)
    create_app({**TEST_CONFIG, "DATABASE_URL": "sqlite://", "LOCK_TIMEOUT_MS": "1000",
                "CALL_DEADLINE_MS": "1000"}).extensions["engine"].dispose()  # equal fits


# ---- nothing of a call's bounds stays on the pooled connection -------------------------------------
def test_a_shortened_lock_wait_does_not_stay_on_the_pooled_connection(database_url):
    """A withdrawal waits for a row held from outside, times out, and its retry waits only for
    what is left of the deadline. Afterwards the pooled connection has the lock timeout it was
    given at connect, for the next call and for reads outside a transaction (the audit)."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite sets busy_timeout before every BEGIN")
    app = create_app({**TEST_CONFIG, "DATABASE_URL": database_url,
                      "LOCK_TIMEOUT_MS": "2000", "CALL_DEADLINE_MS": "2500"})
    engine = app.extensions["engine"]
    engine.pool = engine.pool.recreate()  # one pooled connection, used by both calls below
    user_id, session = new_player(app, "100")
    holder = lock_the_wallet(database_url, user_id)
    try:
        answer = app.test_client().post("/100hp/withdrawal", json={
            "secret": HP_SECRET, "sessionId": session, "txId": tx(), "amount": "1"})
        assert answer.status_code == 702
    finally:
        release(holder)
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            assert conn.exec_driver_sql("SHOW lock_timeout").scalar() == "2s"
        else:
            assert tuple(conn.exec_driver_sql(
                "SELECT @@session.innodb_lock_wait_timeout, @@session.lock_wait_timeout, "
                "@@session.max_statement_time").one()) == (2, 86400, 0)
    engine.dispose()
