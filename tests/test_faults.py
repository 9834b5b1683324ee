"""Faults: the database going away, a worker killed in the middle of a withdrawal, a client that
disconnects. Nothing may be lost or doubled, and the provider's retry must get the right answer."""
import json
import os
import signal
import socket
import subprocess
import threading
import time
from decimal import Decimal

import pytest
import sqlalchemy as sa
from conftest import HP_SECRET, audit, gunicorn, new_player, post_json, tx, wallet_on_a_server_of_its_own

from wallet.core import schema
from wallet.hp100 import schema as hp_schema


def hp(base, endpoint, **fields):
    return post_json(base, f"/100hp/{endpoint}", {"secret": HP_SECRET, **fields})


@pytest.mark.parametrize("kind", ["postgres", "mariadb"])
def test_database_outage_answers_702_writes_nothing_and_recovers(kind):
    with wallet_on_a_server_of_its_own(kind, "outage") as (server, url, app):
        _, session = new_player(app, "100")
        with gunicorn(url, workers=2, allow_errors=True) as base:
            assert hp(base, "withdrawal", sessionId=session, txId=tx(), amount="10")[0] == 200
            server.stop(remove=False)
            during = tx()
            assert hp(base, "withdrawal", sessionId=session, txId=during, amount="10") == (
                702, {"data": "", "message": "Internal Server Error", "errCode": 702})
            assert hp(base, "balance", sessionId=session)[0] == 702
            assert post_json(base, "/healthz", {})[0] in (405, 503)
            assert json.loads(subprocess.run(["curl", "-s", f"{base}/healthz"], capture_output=True,
                                             text=True).stdout) == {"status": "database unavailable"}
            server.start()  # the same data, the same port: no restart of the wallet needed
            assert hp(base, "withdrawal", sessionId=session, txId=during, amount="10")[0] == 200
            assert hp(base, "balance", sessionId=session)[1]["balance"] == "80.00"


def worker_pids(base):
    master = open(f"/tmp/gunicorn-{base.rsplit(':', 1)[1]}.log.pid").read().strip()
    found = subprocess.run(["pgrep", "-P", master], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in found]


def hold_the_booking(app, database_url, bet):
    """A transaction that makes a withdrawal of `bet` wait in the middle, after its debit: it has
    claimed the txId's key (uncommitted). SQLite has no row locks: there it holds the write lock, so
    the withdrawal waits before it writes. Returns the connection to roll back."""
    engine = sa.create_engine(database_url)
    conn = engine.connect()
    if engine.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        return conn
    other_user, _ = new_player(app, "0")  # another wallet: its foreign-key lock must not block ours
    conn.begin()
    wallet_id = conn.execute(sa.select(schema.wallets.c.id).where(
        schema.wallets.c.player_id == int(other_user))).scalar()
    conn.execute(sa.insert(hp_schema.hp_transactions).values(
        tx_id=bet, kind="withdrawal", wallet_id=wallet_id, session_id="x", amount=1, status="open",
        created_at=schema.utcnow()))
    return conn


def test_worker_killed_mid_withdrawal_leaves_no_trace(app, database_url):
    _, session = new_player(app, "100")
    bet = tx()
    with gunicorn(database_url, workers=1, allow_errors=True) as base:
        blocker = hold_the_booking(app, database_url, bet)
        answers = []
        sender = threading.Thread(target=lambda: answers.append(_try(
            lambda: hp(base, "withdrawal", sessionId=session, txId=bet, amount="30"))))
        sender.start()
        time.sleep(1.5)  # the worker is now waiting inside the withdrawal
        for pid in worker_pids(base):
            os.kill(pid, signal.SIGKILL)
        sender.join(30)
        blocker.rollback()
        blocker.close()
        assert isinstance(answers[0], OSError)  # the provider got no answer: it will retry
        for _ in range(100):  # until the master has started a new worker
            if not isinstance(_try(lambda: hp(base, "balance", sessionId=session)), OSError):
                break
            time.sleep(0.1)
        assert hp(base, "balance", sessionId=session)[1]["balance"] == "100.00"  # no trace
        assert hp(base, "withdrawal", sessionId=session, txId=bet, amount="30")[0] == 200  # the retry
        assert hp(base, "withdrawal", sessionId=session, txId=bet, amount="30")[0] == 607
        assert hp(base, "balance", sessionId=session)[1]["balance"] == "70.00"
    assert audit(app.extensions["engine"]) == []


def _try(call):
    try:
        return call()
    except OSError as exc:
        return exc


def raw_request(base, path, body: bytes, declared_length: int, read_answer=False):
    host, port = base.rsplit("/", 1)[1].split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {declared_length}\r\n\r\n".encode() + body)
        if read_answer:
            return sock.recv(65536)
    return None


def test_client_disconnects(app, database_url):
    user_id, session = new_player(app, "100")
    with gunicorn(database_url, workers=2) as base:
        # the body never arrives whole: nothing happens
        cut = tx()
        body = json.dumps({"secret": HP_SECRET, "sessionId": session, "txId": cut, "amount": "10"}).encode()
        raw_request(base, "/100hp/withdrawal", body[: len(body) // 2], declared_length=len(body))
        time.sleep(0.5)
        assert hp(base, "rollback", txId=cut)[0] == 605
        # the whole request arrives, the client leaves before the answer: it is booked once, and
        # the provider's rollback (100HP §4.5: no answer -> rollback) refunds it
        gone = tx()
        body = json.dumps({"secret": HP_SECRET, "sessionId": session, "txId": gone, "amount": "10"}).encode()
        raw_request(base, "/100hp/withdrawal", body, declared_length=len(body))
        for _ in range(100):  # wait until it is booked: a rollback sent before would spend the txId
            if hp(base, "balance", sessionId=session)[1]["balance"] == "90.00":
                break
            time.sleep(0.05)
        assert hp(base, "rollback", txId=gone) == (200, {"balance": "100.00", "currency": "USD",
                                                          "sessionId": session, "userId": user_id})
        assert hp(base, "withdrawal", sessionId=session, txId=gone, amount="10")[0] == 607
    assert audit(app.extensions["engine"]) == []
    assert Decimal(app.test_client().post("/100hp/balance", json={
        "secret": HP_SECRET, "sessionId": session}).get_json()["balance"]) == 100
