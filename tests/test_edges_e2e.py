"""Money at the edges, on real gunicorn and real databases: a rollback that overtakes its
withdrawal, lock waits that end, a database restart, the audit under traffic, reads that never
block a bet, database errors that never log a token, and which failures are retried."""
import fcntl
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from conftest import (HASH_SECRET, HP_SECRET, MERCHANT_ID, audit, gunicorn, ledger_rows, new_player,
                      parallel, post_json, tx, wait_until_a_call_waits_for_a_lock,
                      wallet_on_a_server_of_its_own)

from wallet.app import create_app
from wallet.core import db, schema
from wallet.hash.envelope import encrypt


def hp(base, endpoint, **fields):
    return post_json(base, f"/100hp/{endpoint}", {"secret": HP_SECRET, **fields})


def lock_the_wallet(database_url, user_id):
    """A connection holding the player's wallet row (SQLite: the database write lock and the
    writers' queue), as a long transaction of another call would. Roll it back to release."""
    engine = sa.create_engine(database_url)
    conn = engine.connect()
    if engine.dialect.name == "sqlite":
        queue = open(f"{engine.url.database}.lock", "w")
        fcntl.flock(queue, fcntl.LOCK_EX)
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        conn.info["queue"] = queue  # closed, and so released, with the connection's rollback
        return conn
    conn.begin()
    conn.execute(sa.select(schema.wallets).where(schema.wallets.c.player_id == int(user_id)).with_for_update())
    return conn


def release(conn):
    conn.rollback()
    queue = conn.info.pop("queue", None)
    if queue:
        queue.close()
    conn.close()


def test_a_rollback_that_overtakes_its_withdrawal_leaves_no_stake_held(app, database_url):
    """100HP timed out on a withdrawal still waiting for the wallet lock and sent its rollback:
    the rollback answers 605 and is remembered; the withdrawal then books nothing (608)."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite runs one write at a time: a rollback cannot overtake a waiting withdrawal")
    user_id, session = new_player(app, "100")
    bet = tx()
    patient = {"LOCK_TIMEOUT_MS": "20000", "CALL_DEADLINE_MS": "25000"}  # the wait is the subject
    with gunicorn(database_url, workers=2, extra_env=patient) as base, ThreadPoolExecutor(1) as pool:
        holder = lock_the_wallet(database_url, user_id)
        try:
            late = pool.submit(hp, base, "withdrawal", sessionId=session, txId=bet, amount="10")
            wait_until_a_call_waits_for_a_lock(database_url, late)
            assert hp(base, "rollback", txId=bet)[0] == 605
        finally:
            release(holder)
        assert late.result() == (608, {"data": "txId was rolled back before this withdrawal arrived",
                                       "message": "Transaction already refunded", "errCode": 608})
        assert hp(base, "balance", sessionId=session)[1]["balance"] == "100.00"
    assert [row.op for row in ledger_rows(app, user_id)] == ["topup"]
    assert audit(app.extensions["engine"]) == []


def test_no_call_waits_past_its_deadline(app, database_url):
    """A wallet held by a transaction that never ends: the bet answers 702 (Hash: 5000) by the
    deadline, with nothing written; once the lock is gone the same txId books normally."""
    user_id, session = new_player(app, "100", extra_currencies=("USDT",))
    limits = {"LOCK_TIMEOUT_MS": "300", "CALL_DEADLINE_MS": "800"}
    bet = tx()
    with gunicorn(database_url, workers=2, extra_env=limits) as base:
        holder = lock_the_wallet(database_url, user_id)
        try:
            started = time.monotonic()
            assert hp(base, "withdrawal", sessionId=session, txId=bet, amount="10")[0] == 702
            assert time.monotonic() - started < 0.8 + 1.0  # the deadline, plus a generous second
            plain = {"token": session, "user_id": int(user_id), "order_no": "held-1", "amount": 1,
                     "currency": "USDT", "entry_key": "k", "round_id": "r", "bet_info": "[]",
                     "timestamp": int(time.time() * 1000), "request_id": tx()}
            x = encrypt(json.dumps(plain).encode(), HASH_SECRET)
            answer = post_json(base, "/api/v2/order/add", {"x": x}, {"merchant-id": MERCHANT_ID})
            assert answer[1]["code"] == 5000
        finally:
            release(holder)
        assert hp(base, "withdrawal", sessionId=session, txId=bet, amount="10")[1]["balance"] == "90.00"
    assert [row.op for row in ledger_rows(app, user_id)] == ["topup", "topup", "withdrawal"]


def test_reads_never_block_a_bet(app, client):
    """SQLite: a long read (audit, console, health check) takes no write lock."""
    _, session = new_player(app, "100")
    with db.read_snapshot(app.extensions["engine"]) as reader:
        reader.execute(sa.select(schema.ledger)).all()
        assert client.get("/healthz").status_code == 200
        answer = client.post("/100hp/withdrawal", json={"secret": HP_SECRET, "sessionId": session,
                                                        "txId": tx(), "amount": "1"})
        assert answer.status_code == 200


def test_the_audit_sees_one_snapshot_under_live_traffic(app, database_url):
    players = [new_player(app, "1000") for _ in range(4)]

    def play(session, rounds=40):
        for _ in range(rounds):
            bet = tx()
            assert hp(base, "withdrawal", sessionId=session, txId=bet, amount="1")[0] == 200
            assert hp(base, "deposit", txId=bet, amount="2")[0] == 200

    with gunicorn(database_url, workers=4) as base, ThreadPoolExecutor(4) as pool:
        traffic = [pool.submit(play, session) for _, session in players]
        audits = 0
        while not all(job.done() for job in traffic):
            assert audit(app.extensions["engine"]) == []
            audits += 1
        for job in traffic:
            job.result()
    assert audits >= 1 and audit(app.extensions["engine"]) == []


@pytest.mark.parametrize("kind", ["postgres", "mariadb"])
def test_after_a_database_restart_no_call_fails(kind):
    """Every pooled connection is dead after the restart: the first call to meet one invalidates
    the pool and is retried on a fresh connection, before anything was written."""
    with wallet_on_a_server_of_its_own(kind, "restart") as (server, url, app):
        _, session = new_player(app, "100")
        with gunicorn(url, workers=2) as base:
            # warm every worker's pool with several connections at once
            assert all(answer[0] == 200 for answer in parallel(
                [lambda: hp(base, "balance", sessionId=session)] * 8))
            server.stop(remove=False)
            server.start()
            answers = [hp(base, "withdrawal", sessionId=session, txId=tx(), amount="1")
                       for _ in range(12)]
            assert [status for status, _ in answers] == [200] * 12
            assert answers[-1][1]["balance"] == "88.00"


def test_a_database_error_never_logs_a_token(app, client, caplog):
    """The session lookup fails (its table is gone): 702, and the log line holds no bound value."""
    _, session = new_player(app, "100")
    engine = app.extensions["engine"]
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE sessions RENAME TO sessions_gone")
    try:
        with caplog.at_level(logging.INFO):
            answer = client.post("/100hp/balance", json={"secret": HP_SECRET, "sessionId": session})
        assert answer.status_code == 702
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE sessions_gone RENAME TO sessions")
    logged = caplog.text + "".join(str(r.exc_info) for r in caplog.records)
    assert "sessions" in caplog.text and session not in logged and HP_SECRET not in logged


def test_only_failures_a_second_run_can_get_past_are_retried(app):
    engine = app.extensions["engine"]
    user_id, _ = new_player(app, "5")
    wallet_id = engine.connect().execute(sa.select(schema.wallets.c.id).where(
        schema.wallets.c.player_id == int(user_id))).scalar()
    runs = []

    def break_a_check(conn):  # a balance below zero: the CHECK constraint refuses it every time
        runs.append("check")
        conn.execute(sa.update(schema.wallets).where(schema.wallets.c.id == wallet_id).values(balance=-1))

    with pytest.raises(sa.exc.DBAPIError):
        db.transaction(engine, break_a_check)
    assert runs == ["check"]

    def book_twice(conn):  # the same ledger key twice: a unique violation, retried as a lost race
        runs.append("unique")
        row = {"wallet_id": wallet_id, "provider": "admin", "op": "topup", "ref": "same",
               "amount": 0, "balance_after": 5, "created_at": schema.utcnow()}
        conn.execute(sa.insert(schema.ledger), [row, row])

    with pytest.raises(sa.exc.IntegrityError):
        db.transaction(engine, book_twice)
    assert runs.count("unique") == db.MAX_ATTEMPTS


def test_preload_leaves_no_connection_of_the_masters(tmp_path):
    """`gunicorn --preload` builds the app before forking: no SQLite connection may be inherited."""
    url = f"sqlite:///{tmp_path}/wallet.db"
    sandbox = {"WALLET_ENV": "sandbox", "DATABASE_URL": url, "HP_SECRET": HP_SECRET}
    app = create_app(sandbox)  # a sandbox start: schema, demo seeding
    assert app.extensions["engine"].pool.checkedin() == 0
    user_id, session = new_player(app, "100")
    with gunicorn(url, workers=4, extra_env=sandbox, args=["--preload"]) as base:
        answers = parallel([lambda: hp(base, "withdrawal", sessionId=session, txId=tx(), amount="1")
                            for _ in range(40)], workers=8)
    assert [status for status, _ in answers] == [200] * 40
    assert audit(app.extensions["engine"]) == []
