"""Outgrowing one database server: a PostgreSQL failover under traffic, a COMMIT whose outcome is
unknown, a MariaDB Galera cluster taking one player's bets on two nodes, PgBouncer in front of
PostgreSQL, and the /metrics that show it all.

The clusters are started here, on loopback, from the Debian packages (tests/cluster/clusters.py);
a test whose packages are missing, or whose database is left out by WALLET_TEST_DATABASES, is
skipped and says why. Every loop is bounded in count and time.

Like the benchmark (tests/bench/), these proofs serve the project's own claims about scaling
(docs/scaling.md): nothing in the wallet needs them.
"""
import fcntl
import http.client
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import NamedTuple

import psycopg
import pytest
import sqlalchemy as sa
from conftest import (HP_SECRET, ROOT, TEST_CONFIG, _wanted, gunicorn, new_player, parallel, post_json,
                      prepare_database, tx)
from prometheus_client.parser import text_string_to_metric_families

import clusters
import dbservers
import test_100hp_e2e as hp_e2e
import test_hash_e2e as hash_e2e
from test_hash_e2e import add as hash_add, update as hash_update
from wallet.app import create_app
from wallet.core import accounts, db, schema
from wallet.hp100 import schema as hp_schema
from conftest import audit, init_schema

DEADLINE = 2.5     # CALL_DEADLINE_MS, the default
MARGIN = 2.5       # what a 702 / 5000 may take beyond it: HTTP, gunicorn, a loaded 2-core machine
OPENING = Decimal("100000")
STAKE, WIN = Decimal("3.33"), Decimal("5.01")
HASH_STAKE, HASH_PRIZE = 10, 25


def hp(base, endpoint, **fields):
    return post_json(base, f"/100hp/{endpoint}", {"secret": HP_SECRET, **fields})


def hp_local(app, endpoint, **fields):
    """A 100HP call through the app in-process: (status, body)."""
    response = app.test_client().post(f"/100hp/{endpoint}", json={"secret": HP_SECRET, **fields})
    return response.status_code, response.get_json()


def wallet_app(url, **config):
    app = create_app({**TEST_CONFIG, "DATABASE_URL": url, **config})
    db.init_schema(app.extensions["engine"], app.extensions["wallet.ddl"])
    return app


def need(kind):
    if kind not in _wanted():
        pytest.skip(f"{kind}: not in WALLET_TEST_DATABASES")


def started_or_skip(started):
    cluster, reason = started
    if cluster is None:
        pytest.skip(reason)
    return cluster


# ---- /metrics ------------------------------------------------------------------------------------
def scrape(base) -> list:
    """GET /metrics from a running server: its samples, parsed."""
    host, port = base.rsplit("/", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        assert response.status == 200
        text = response.read().decode()
    finally:
        conn.close()
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def local_scrape(app, address="127.0.0.1"):
    response = app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": address})
    if response.status_code != 200:
        return response.status_code
    return [sample for family in text_string_to_metric_families(response.get_data(as_text=True))
            for sample in family.samples]


def total(samples, name, **labels) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    return sum(s.value for s in samples if s.name == name
               and all(s.labels.get(k) == v for k, v in labels.items()))


def multiprocess_env(tmp_path, name):
    """A gunicorn's PROMETHEUS_MULTIPROC_DIR: an empty directory of its own."""
    path = tmp_path / f"metrics-{name}"
    path.mkdir()
    return {"PROMETHEUS_MULTIPROC_DIR": str(path)}


@pytest.fixture
def sqlite_app(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="wallet.core.db")  # pytest leaves the root logger at WARNING
    app = create_app({**TEST_CONFIG, "DATABASE_URL": prepare_database("sqlite", tmp_path),
                      "LOCK_TIMEOUT_MS": "200", "CALL_DEADLINE_MS": "300"})
    yield app
    app.extensions["engine"].dispose()


def test_metrics_count_calls_by_provider_operation_and_result(sqlite_app):
    app = sqlite_app
    _, session = new_player(app, "100")
    before = local_scrape(app)
    assert hp_local(app, "withdrawal", sessionId=session, txId=tx(), amount="5")[0] == 200
    assert hp_local(app, "balance", sessionId=session, secret="wrong")[0] == 601
    assert app.test_client().post("/100hp/no-such-endpoint", json={}).status_code == 404
    answer = app.test_client().post("/api/v2/user/balance", json={"x": "not base64"},
                                    headers={"merchant-id": TEST_CONFIG["HASH_MERCHANT_ID"]}).get_json()
    assert answer["code"] == 1002
    after = local_scrape(app)

    def added(**labels):
        return total(after, "wallet_calls_total", **labels) - total(before, "wallet_calls_total", **labels)
    assert added(provider="100hp", operation="withdrawal", result="200") == 1
    assert added(provider="100hp", operation="balance", result="601") == 1
    assert added(provider="100hp", operation="other", result="404") == 1  # no series per random path
    assert added(provider="hash", operation="user/balance", result="1002") == 1  # Hash's code, not HTTP 200
    assert (total(after, "wallet_call_duration_seconds_count", operation="withdrawal")
            - total(before, "wallet_call_duration_seconds_count", operation="withdrawal")) == 1
    assert total(after, "wallet_open_bets", provider="100hp", older_than_seconds="0") == 1
    assert total(after, "wallet_database_up") == 1


def test_metrics_count_retries_and_passed_deadlines(sqlite_app):
    """A lock held past the deadline: the lock timeout is retried once, then the deadline passes
    (702); both counted from wallet/core/db.py's log records."""
    app = sqlite_app
    _, session = new_player(app, "100")
    before = local_scrape(app)
    with open(f"{app.extensions['engine'].url.database}.lock", "w") as queue:
        fcntl.flock(queue, fcntl.LOCK_EX)  # the SQLite writers' queue, held as a long call would
        assert hp_local(app, "withdrawal", sessionId=session, txId=tx(), amount="5")[0] == 702
    after = local_scrape(app)
    assert (total(after, "wallet_db_retries_total", reason="lock timeout")
            - total(before, "wallet_db_retries_total", reason="lock timeout")) == 1
    assert (total(after, "wallet_db_deadline_passed_total")
            - total(before, "wallet_db_deadline_passed_total")) == 1
    assert (total(after, "wallet_calls_total", operation="withdrawal", result="702")
            - total(before, "wallet_calls_total", operation="withdrawal", result="702")) == 1


def test_metrics_open_bets_by_age(sqlite_app):
    app = sqlite_app
    user_id, session = new_player(app, "100")
    old, recent = tx(), tx()
    for bet in (old, recent):
        assert hp_local(app, "withdrawal", sessionId=session, txId=bet, amount="1")[0] == 200
    hash_user, token = new_player(app, "100", currency="USDT")
    app.extensions["hash_wallet"].order_add(token=token, user_id=int(hash_user),
                                            order_no=uuid.uuid4().hex, currency="USDT",
                                            amount=Decimal(10), entry_key="pc28-1", round_id="1",
                                            bet_info="[]")
    with app.extensions["engine"].begin() as conn:
        conn.execute(sa.update(hp_schema.hp_transactions).where(hp_schema.hp_transactions.c.tx_id == old)
                     .values(created_at=schema.utcnow() - timedelta(hours=2)))
    samples = local_scrape(app)
    assert [total(samples, "wallet_open_bets", provider="100hp", older_than_seconds=age)
            for age in ("0", "60", "600", "3600", "86400")] == [2, 1, 1, 1, 0]
    assert [total(samples, "wallet_open_bets", provider="hash", older_than_seconds=age)
            for age in ("0", "60")] == [1, 0]


def test_metrics_allow_list(tmp_path):
    url = prepare_database("sqlite", tmp_path)
    default = create_app({**TEST_CONFIG, "DATABASE_URL": url})
    assert isinstance(local_scrape(default, "127.0.0.1"), list)
    assert isinstance(local_scrape(default, "::1"), list)
    assert local_scrape(default, "203.0.113.9") == 403
    office = create_app({**TEST_CONFIG, "DATABASE_URL": url, "METRICS_ALLOWED_IPS": "10.1.0.0/16"})
    assert isinstance(local_scrape(office, "10.1.2.3"), list)
    assert local_scrape(office, "127.0.0.1") == 403
    with pytest.raises(RuntimeError, match="METRICS_ALLOWED_IPS"):
        create_app({**TEST_CONFIG, "DATABASE_URL": url, "METRICS_ALLOWED_IPS": "not-an-address"})


# ---- PostgreSQL: a primary and a synchronous standby ----------------------------------------------
@pytest.fixture
def pg_pair():
    need("postgres")
    pair = started_or_skip(clusters.start_postgres_pair())
    pair.primary.admin("CREATE DATABASE wallet")
    yield pair
    pair.stop()


def test_a_commit_whose_outcome_is_unknown_answers_702_and_is_never_retried(pg_pair, caplog):
    """The COMMIT waits for the synchronous standby, which is down; the connection is cut while it
    waits. PostgreSQL has committed locally, the wallet cannot know: it answers 702, does not
    retry, and 100HP's retry of the txId gets the answer the database holds (607), never a second
    debit."""
    caplog.set_level(logging.INFO, logger="wallet.core.db")
    app = wallet_app(pg_pair.url("wallet"))
    _, session = new_player(app, "100")
    pg_pair.standby.stop(remove=False)  # from now on every COMMIT waits for it
    bet, answers = tx(), []
    sender = threading.Thread(target=lambda: answers.append(
        hp_local(app, "withdrawal", sessionId=session, txId=bet, amount="30")))
    sender.start()
    waiting = []
    for _ in range(200):  # until the withdrawal's COMMIT waits for the standby
        waiting = pg_pair.primary.query("SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep'")
        if waiting:
            break
        time.sleep(0.05)
    assert len(waiting) == 1, "the withdrawal never waited at COMMIT"
    pg_pair.primary.query(f"SELECT pg_terminate_backend({waiting[0][0]})")
    sender.join(30)
    assert answers[0] == (702, {"data": "", "message": "Internal Server Error", "errCode": 702})
    assert not [r for r in caplog.records if getattr(r, "retry_reason", None)], "the COMMIT was retried"
    assert any("COMMIT failed, outcome unknown" in r.getMessage() for r in caplog.records)

    held = pg_pair.primary.query(f"SELECT count(*) FROM hp_transactions WHERE tx_id = '{bet}'",
                                 "wallet")[0][0]
    assert held == 1  # PostgreSQL committed it locally before the wait for the standby
    pg_pair.standby.start()  # the standby catches up; commits are acknowledged again
    status, _ = hp_local(app, "withdrawal", sessionId=session, txId=bet, amount="30")
    assert status == (607 if held else 200)
    assert hp_local(app, "balance", sessionId=session)[1]["balance"] == "70.00"  # debited once
    assert hp_local(app, "rollback", txId=bet)[1]["balance"] == "100.00"  # 100HP's refund of a 702
    assert audit(app.extensions["engine"]) == []
    app.extensions["engine"].dispose()


class Call(NamedTuple):
    """One call of the provider's, as its own books would keep it."""
    server: str
    provider: str
    op: str       # withdrawal, deposit, rollback / add, settle, cancel
    ref: str      # txId / order_no
    player: str   # the session / token
    result: int | None  # 100HP errCode or HTTP status, Hash code; None: no answer at all
    started: float
    ended: float


class Journal:
    """Every call a test sent and what it got back: the providers' view of the books."""

    def __init__(self):
        self.calls, self.lock = [], threading.Lock()

    def send(self, server, provider, op, ref, player, request) -> int | None:
        started = time.monotonic()
        try:
            status, body = request()
            result = body["code"] if provider == "hash" else status
        except OSError:
            result = None
        with self.lock:
            self.calls.append(Call(server, provider, op, ref, player, result, started, time.monotonic()))
        return result

    def of(self, ref):
        return [call for call in self.calls if call.ref == ref]


def bet_100hp(bases, session, journal, stop, limit=400):
    """A 100HP table: a withdrawal, then its deposit (2 in 3) or rollback on the other server."""
    for i in range(limit):
        if stop.is_set():
            return
        bet, here, there = tx(), bases[i % 2], bases[(i + 1) % 2]
        if journal.send(here, "100hp", "withdrawal", bet, session, lambda: hp(
                here, "withdrawal", sessionId=session, txId=bet, amount=str(STAKE))) != 200:
            time.sleep(0.05)  # a provider's pause before its next round
            continue
        if i % 3:
            journal.send(there, "100hp", "deposit", bet, session,
                         lambda: hp(there, "deposit", txId=bet, amount=str(WIN)))
        else:
            journal.send(there, "100hp", "rollback", bet, session, lambda: hp(there, "rollback", txId=bet))


def bet_hash(bases, player, journal, stop, limit=400):
    """A Hash table: order/add, then a settle (2 in 3) or a cancel on the other server."""
    user_id, token = player
    for i in range(limit):
        if stop.is_set():
            return
        order, here, there = uuid.uuid4().hex, bases[i % 2], bases[(i + 1) % 2]
        if journal.send(here, "hash", "add", order, token,
                        lambda: (200, hash_add(here, token, user_id, order, HASH_STAKE))) != 0:
            time.sleep(0.05)
            continue
        op, status, prize = ("settle", 1, HASH_PRIZE) if i % 3 else ("cancel", 4, 0)
        journal.send(there, "hash", op, order, token,
                     lambda: (200, hash_update(there, user_id, order, status, prize, HASH_STAKE)))


def recover(journal, bases, players_by_token):
    """What the providers do afterwards: 100HP rolls back every withdrawal it got no 200 for
    (docs/100hp.md §4.5) and retries a deposit or rollback answered 702; Hash cancels an order/add it got no
    success for and retries an order/update until it is answered (docs/hash.md §6.3)."""
    def until_answered(send):
        for attempt in range(40):
            result = send(bases[attempt % 2])
            if result not in (702, 5000, None):
                return
            time.sleep(0.25)
        raise AssertionError("the wallet still answers 702 / 5000 after the failover")

    for ref in {call.ref for call in journal.calls}:
        calls = journal.of(ref)
        first, last = calls[0], calls[-1]
        if first.provider == "100hp":
            if first.result != 200:
                op, fields = "rollback", {}
            elif last.result in (702, None):
                op, fields = last.op, ({"amount": str(WIN)} if last.op == "deposit" else {})
            else:
                continue
            until_answered(lambda base, op=op, fields=fields: journal.send(
                base, "100hp", op, ref, first.player, lambda: hp(base, op, txId=ref, **fields)))
        else:
            user_id = players_by_token[first.player]
            if first.result != 0:
                op, status, prize = "cancel", 4, 0
            elif last.result in (5000, None):
                op, status, prize = last.op, (1 if last.op == "settle" else 4), (
                    HASH_PRIZE if last.op == "settle" else 0)
            else:
                continue
            until_answered(lambda base, op=op, status=status, prize=prize: journal.send(
                base, "hash", op, ref, first.player,
                lambda: (200, hash_update(base, user_id, ref, status, prize, HASH_STAKE))))


def expected_books(calls):
    """The ledger rows one txId / order_no must have, from the answers alone: {op: amount}, or
    None when the answers leave it open whether the stake was ever taken (a Hash add answered
    5000 and then cancelled: refunded or never debited, either way the player is even)."""
    answered = {(call.op, call.result) for call in calls}
    if calls[0].provider == "100hp":
        if answered & {("deposit", 200), ("deposit", 609)}:  # 609: an earlier deposit had committed
            return {"withdrawal": -STAKE, "deposit": WIN}
        if answered & {("rollback", 200), ("rollback", 608)}:
            return {"withdrawal": -STAKE, "rollback": STAKE}
        assert ("rollback", 605) in answered, f"txId {calls[0].ref} left open: {calls}"
        assert ("withdrawal", 200) not in answered, f"an acknowledged bet was lost: {calls}"
        return {}
    if ("settle", 0) in answered:
        return {"order_add": -HASH_STAKE, "order_settle": HASH_PRIZE}
    assert ("cancel", 0) in answered, f"order {calls[0].ref} left open: {calls}"
    return {"order_add": -HASH_STAKE, "order_refund": HASH_STAKE} if ("add", 0) in answered else None


def assert_books_match(url, journal, tokens):
    """The database at `url` holds, for every txId / order_no of the journal, exactly the ledger
    rows its answers call for, and each player's balance is the opening plus their sum."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        booked = {}
        for row in conn.execute(sa.select(schema.ledger).where(schema.ledger.c.provider != "admin")):
            booked.setdefault(row.ref, {})[row.op] = row.amount
        balances = {row.token: row.balance for row in conn.execute(
            sa.select(schema.sessions.c.token, schema.wallets.c.balance).select_from(schema.sessions.join(
                schema.wallets, sa.and_(schema.wallets.c.player_id == schema.sessions.c.player_id,
                                    schema.wallets.c.currency == schema.sessions.c.currency))).where(
                schema.sessions.c.token.in_(tokens)))}
    engine.dispose()
    net = {token: OPENING for token in tokens}
    for ref in {c.ref for c in journal.calls}:
        calls = journal.of(ref)
        want, have = expected_books(calls), booked.get(ref, {})
        if want is None:  # a Hash add of unknown outcome, cancelled: refunded or never booked
            assert have in ({}, {"order_add": -HASH_STAKE, "order_refund": HASH_STAKE}), (ref, have)
        else:
            assert have == want, (ref, calls)
        net[calls[0].player] += sum(have.values())
    assert balances == net


def test_failover_under_traffic(pg_pair, tmp_path, capsys):
    """Two gunicorn servers take 100HP and Hash bets; the primary is killed (SIGKILL) mid-run and
    the standby promoted. The wallet finds the new primary by itself (a multi-host URL); every
    answered success is in its books once, the calls in the gap got 702 / 5000 within the
    deadline, and after the providers' own recovery every balance is exact."""
    url = pg_pair.url("wallet")
    app = wallet_app(url)
    tables = [new_player(app, OPENING)[1] for _ in range(3)]
    hash_players = [new_player(app, OPENING, currency="USDT") for _ in range(2)]
    journal, stop = Journal(), threading.Event()
    with gunicorn(url, workers=2, allow_errors=True, extra_env=multiprocess_env(tmp_path, "one")) as one, \
            gunicorn(url, workers=2, allow_errors=True, extra_env=multiprocess_env(tmp_path, "two")) as two:
        bases = (one, two)
        pool = ThreadPoolExecutor(len(tables) + len(hash_players))
        players = ([pool.submit(bet_100hp, bases, session, journal, stop) for session in tables]
                   + [pool.submit(bet_hash, bases, player, journal, stop) for player in hash_players])
        time.sleep(2)  # bets on the healthy pair
        killed = time.monotonic()
        pg_pair.primary.kill()
        in_the_gap = [scrape(base) for base in bases]  # /metrics answers with no database
        pg_pair.promote()
        promoted = time.monotonic()
        for _ in range(300):  # until bets succeed again
            if any(c.started > killed and c.result in (0, 200) for c in journal.calls):
                break
            time.sleep(0.1)
        time.sleep(2)  # bets on the new primary
        stop.set()
        for player in players:
            player.result(60)  # re-raises what went wrong in a player's thread
        pool.shutdown()
        during = list(journal.calls)
        recover(journal, bases, {token: user_id for user_id, token in hash_players})
        after = [scrape(base) for base in bases]

    # every call was answered, with a code its operation can have
    allowed = {"withdrawal": {200, 702}, "deposit": {200, 609, 702}, "rollback": {200, 605, 608, 702},
               "add": {0, 5000}, "settle": {0, 5000}, "cancel": {0, 5000}}
    assert [c for c in journal.calls if c.result not in allowed[c.op]] == []
    failed = [c for c in during if c.result in (702, 5000)]
    assert failed, "no call fell into the gap"
    assert max(c.ended - c.started for c in failed) <= DEADLINE + MARGIN  # answered, not hung
    back = min(c.ended for c in during if c.started > killed and c.result in (0, 200))

    # the new primary's books: each txId / order_no exactly as its answers say, balances exact
    assert_books_match(url, journal, [*tables, *(token for _, token in hash_players)])
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "audit"], cwd=ROOT,
                            env={**os.environ, **TEST_CONFIG, "DATABASE_URL": url},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

    # /metrics: up with the database down, and every 702 / 5000 of each server counted
    assert [total(samples, "wallet_database_up") for samples in in_the_gap] == [0, 0]
    for base, samples in zip(bases, after):
        assert total(samples, "wallet_calls_total", provider="100hp", result="702") == len(
            [c for c in journal.calls if c.server == base and c.result == 702])
        assert total(samples, "wallet_calls_total", provider="hash", result="5000") == len(
            [c for c in journal.calls if c.server == base and c.result == 5000])
    # a worker that was between calls or inside a statement at the kill retries ("connection lost");
    # one inside its COMMIT answers 702 / 5000 unretried, and its next call connects afresh: which of
    # these each server's two workers met is chance, so the retries are counted over both servers
    assert sum(total(samples, "wallet_db_retries_total", reason="connection lost") for samples in after) >= 1
    with capsys.disabled():
        print(f"\nfailover: {len(during)} calls; promoted {promoted - killed:.2f} s after the kill; "
              f"calls succeeded again {back - killed:.2f} s after it; {len(failed)} answered 702 / 5000 "
              f"(slowest {max(c.ended - c.started for c in failed):.2f} s); "
              f"{len(journal.calls) - len(during)} recovery calls")


# ---- MariaDB Galera: three nodes ------------------------------------------------------------------
@pytest.fixture(scope="module")
def galera():
    need("mariadb")
    cluster = started_or_skip(clusters.start_galera())
    cluster.nodes[0].admin("CREATE DATABASE wallet")  # DDL replicates to every node
    engine = db.make_engine(cluster.url("wallet", 0))
    init_schema(engine)
    engine.dispose()
    yield cluster
    cluster.stop()


def test_galera_a_commit_refused_by_certification_is_retried(galera, caplog):
    """A top-up on node 2 whose wallet row node 1 changes while the transaction is open: Galera
    aborts it and its COMMIT answers 1213, a definite rollback; the wallet runs it again, and both
    top-ups are booked once on every node."""
    caplog.set_level(logging.INFO, logger="wallet.core.db")
    app = wallet_app(galera.url("wallet", 0))
    user_id, _ = new_player(app, "100")
    node1, node2 = (db.make_engine(galera.url("wallet", i)) for i in (0, 1))
    with node1.connect() as conn:
        wallet_id = conn.execute(sa.select(schema.wallets.c.id).where(
            schema.wallets.c.player_id == int(user_id))).scalar()
    reader = sa.create_engine(galera.url("wallet", 1))
    runs, finished = [], []

    def top_up_on_node2(conn):
        runs.append(len(runs) + 1)
        accounts.top_up(conn, wallet_id, Decimal("5"))
        if len(runs) == 1:  # meanwhile, another call on node 1 books a top-up of the same wallet
            db.transaction(node1, lambda other: accounts.top_up(other, wallet_id, Decimal("7")))
            for _ in range(100):  # until node 2 has applied it (aborting this transaction)
                with reader.connect() as peek:
                    if peek.execute(sa.select(schema.wallets.c.balance).where(
                            schema.wallets.c.id == wallet_id)).scalar() == 107:
                        break
                time.sleep(0.05)
        finished.append(len(runs))  # every statement of this run went through: what fails is COMMIT
    aborts_before = sum(galera.status("wsrep_local_bf_aborts")) + sum(
        galera.status("wsrep_local_cert_failures"))
    db.transaction(node2, top_up_on_node2)
    assert runs == [1, 2] and finished == [1, 2]
    # one retry, of error 1213 (SQLSTATE 40001): wallet/core/db.py names it "deadlock" by its errno, or
    # "serialization failure" by the SQLSTATE that PyMySQL 1.2 reports too (it looks at that first)
    retries = [r.retry_reason for r in caplog.records if getattr(r, "retry_reason", None)]
    assert retries in (["deadlock"], ["serialization failure"])
    assert sum(galera.status("wsrep_local_bf_aborts")) + sum(
        galera.status("wsrep_local_cert_failures")) > aborts_before
    for i in range(3):
        engine = db.make_engine(galera.url("wallet", i))
        with engine.connect() as conn:
            assert conn.execute(sa.select(schema.wallets.c.balance).where(
                schema.wallets.c.id == wallet_id)).scalar() == 112
        engine.dispose()
    for engine in (node1, node2, reader, app.extensions["engine"]):
        engine.dispose()


@pytest.mark.parametrize("sync_wait", [0, 1])
def test_galera_a_deposit_on_another_node_needs_wsrep_sync_wait(galera, sync_wait):
    """A bet taken on node 1 and its deposit sent to node 2 before node 2 has applied the bet (its
    applier held back here by FLUSH TABLES WITH READ LOCK; load does the same). With Galera's
    default wsrep_sync_wait=0 node 2 reads its own past and answers 605 "Transaction not found"
    for a bet that exists: the win would not be paid. With wsrep_sync_wait=1 (docs/scaling.md)
    the read waits until node 2 has caught up, and the deposit is paid."""
    galera.nodes[1].query(f"SET GLOBAL wsrep_sync_wait = {sync_wait}")  # for new connections
    try:
        one, two = wallet_app(galera.url("wallet", 0)), wallet_app(galera.url("wallet", 1))
        _, session = new_player(one, "100")
        holder = sa.create_engine(galera.url("wallet", 1))
        hold = holder.connect()
        hold.exec_driver_sql("FLUSH TABLES WITH READ LOCK")  # node 2 stops applying others' writes
        bet = tx()
        assert hp_local(one, "withdrawal", sessionId=session, txId=bet, amount="10")[0] == 200
        threading.Timer(1.0, lambda: hold.exec_driver_sql("UNLOCK TABLES")).start()
        status, _ = hp_local(two, "deposit", txId=bet, amount="25")
        time.sleep(1.2)
        hold.close()
        holder.dispose()
        assert status == (605 if sync_wait == 0 else 200)
        if status == 605:  # once node 2 has caught up, the same deposit is paid
            assert hp_local(two, "deposit", txId=bet, amount="25")[0] == 200
        assert hp_local(one, "balance", sessionId=session)[1]["balance"] == "115.00"
        for app in (one, two):
            app.extensions["engine"].dispose()
    finally:
        galera.nodes[1].query("SET GLOBAL wsrep_sync_wait = 1")


def test_galera_two_servers_on_two_nodes_hammering_one_player(galera, tmp_path, capsys):
    """test_100hp_e2e's two servers on one player, each server on its own Galera node: the
    certification conflicts are retried; a call whose 4 runs all lost answers 702 with nothing
    written, and 100HP's recovery settles it; every node's books are exact afterwards."""
    app = wallet_app(galera.url("wallet", 0))
    _, session = new_player(app, str(OPENING))
    conflicts_before = sum(galera.status("wsrep_local_cert_failures")) + sum(
        galera.status("wsrep_local_bf_aborts"))
    journal = Journal()
    with gunicorn(galera.url("wallet", 0), workers=2, allow_errors=True,
                  extra_env=multiprocess_env(tmp_path, "one")) as one, \
            gunicorn(galera.url("wallet", 1), workers=2, allow_errors=True,
                     extra_env=multiprocess_env(tmp_path, "two")) as two:
        bases, stop = (one, two), time.monotonic() + 4

        def player(i):
            for _ in range(200):
                if time.monotonic() > stop:
                    return
                bet = tx()
                if journal.send(bases[i % 2], "100hp", "withdrawal", bet, session, lambda: hp(
                        bases[i % 2], "withdrawal", sessionId=session, txId=bet, amount=str(STAKE))) != 200:
                    continue
                # settle or refund it, sending the same call to both nodes at once
                op, fields = ("deposit", {"amount": str(WIN)}) if i % 3 else ("rollback", {})
                results = sorted(parallel([lambda b=b: journal.send(
                    b, "100hp", op, bet, session, lambda: hp(b, op, txId=bet, **fields)) for b in bases],
                    workers=2))
                # one applies it, the other answers the duplicate, or gave up with nothing written
                assert results in ([200, 608 if op == "rollback" else 609], [200, 702], [702, 702])
                i += 1

        parallel([lambda i=i: player(i) for i in range(8)], workers=8)
        during = list(journal.calls)
        recover(journal, bases, {})
        samples = [scrape(base) for base in bases]
    bets = {c.ref for c in during}
    assert len(bets) > 20
    gave_up = [c for c in during if c.result == 702]
    retried = sum(total(s, "wallet_db_retries_total", reason=reason) for s in samples
                  for reason in ("deadlock", "serialization failure"))  # error 1213, see above
    conflicts = sum(galera.status("wsrep_local_cert_failures")) + sum(
        galera.status("wsrep_local_bf_aborts")) - conflicts_before
    assert retried > 0 and conflicts > 0  # Galera's conflicts happened, and were run again
    for i in range(3):  # the same exact books on every node
        url = galera.url("wallet", i)
        assert_books_match(url, journal, [session])
        engine = db.make_engine(url)
        with engine.connect() as conn:
            negative = conn.execute(sa.select(sa.func.count()).select_from(schema.wallets).where(
                schema.wallets.c.balance < 0)).scalar()
        assert negative == 0 and audit(engine) == [], f"node {i + 1}"
        engine.dispose()
    with capsys.disabled():
        print(f"\ngalera: {len(bets)} bets, {len(during)} calls on two nodes, {retried:.0f} runs retried, "
              f"{conflicts} conflicts, {len(gave_up)} calls answered 702 after 4 runs")


# ---- PgBouncer in transaction pooling mode ---------------------------------------------------------
@pytest.fixture(scope="module")
def postgres_behind_pgbouncer():
    need("postgres")
    if os.environ.get("WALLET_TEST_POSTGRES_URL"):
        pytest.skip("PgBouncer is started in front of a PostgreSQL server of its own (trust auth)")
    server = started_or_skip(dbservers.start_postgres())
    yield server
    server.stop()


@pytest.fixture
def bouncer(postgres_behind_pgbouncer, request):
    """A PgBouncer (transaction pooling; its settings from an indirect parameter) in front of the
    module's PostgreSQL server, and a fresh wallet database behind it: (PgBouncer, database)."""
    bouncer = started_or_skip(clusters.start_pgbouncer(postgres_behind_pgbouncer,
                                                       **getattr(request, "param", {})))
    name = f"b_{uuid.uuid4().hex[:12]}"
    postgres_behind_pgbouncer.admin(f"CREATE DATABASE {name}")
    yield bouncer, name
    bouncer.stop()


def hold_a_server_connection(bouncer, database):
    """A client of PgBouncer inside a transaction: it keeps the server connection PgBouncer gave it
    (the idle one used last) until it commits."""
    holder = psycopg.connect(host="127.0.0.1", port=bouncer.port, dbname=database, user="wallet",
                             prepare_threshold=None)
    holder.execute("SELECT 1")
    return holder


@pytest.mark.parametrize("bouncer", [{"pool_size": 2}], indirect=True, ids=["pool_size=2"])
@pytest.mark.parametrize("prepared", [False, True], ids=["prepare_threshold=none", "prepared"])
def test_behind_pgbouncer_calls_run_on_any_server_connection(bouncer, prepared):
    """With `?prepare_threshold=none` in DATABASE_URL every call runs on whichever server connection
    PgBouncer gives it. Without (psycopg's default), a statement prepared on one server connection
    is missing on the next: the call fails whole (702, nothing written), which is why
    docs/scaling.md asks for it behind PgBouncer's transaction pooling."""
    bouncer, database = bouncer
    app = wallet_app(bouncer.url(database) if prepared else bouncer.wallet_url(database))
    _, session = new_player(app, "100")
    statuses = []
    for i in range(12):  # every other call, another client holds the server connection it used last
        holder = hold_a_server_connection(bouncer, database) if i % 2 else None
        statuses.append(hp_local(app, "withdrawal", sessionId=session, txId=tx(), amount="1")[0])
        if holder:
            holder.close()
    if prepared:
        assert 702 in statuses and set(statuses) <= {200, 702}
    else:
        assert statuses == [200] * 12
    balance = hp_local(app, "balance", sessionId=session)[1]["balance"]
    assert Decimal(balance) == 100 - statuses.count(200)  # each 702 wrote nothing
    app.extensions["engine"].dispose()


@pytest.mark.parametrize("bouncer", [{"pool_size": 2}], indirect=True, ids=["pool_size=2"])
@pytest.mark.parametrize("lock_timeout_on_the_server", [False, True])
def test_behind_pgbouncer_a_lock_wait_ends_by_the_deadline(bouncer, lock_timeout_on_the_server):
    """A withdrawal that waits for a lock held longer than its deadline answers 702. Another
    client holds the server connection the wallet used last, so the withdrawal runs on another:
    the SET LOCAL lock_timeout sent with each transaction's BEGIN (wallet/core/db.py) bounds it
    there, with or without the lock timeout also set on the server (ALTER DATABASE / ALTER ROLE
    ... SET lock_timeout)."""
    bouncer, database = bouncer
    direct = postgres_direct_url(bouncer, database)
    if lock_timeout_on_the_server:
        sa_admin(direct, f"ALTER DATABASE {database} SET lock_timeout = '2000ms'")
    app = wallet_app(bouncer.wallet_url(database))
    user_id, session = new_player(app, "100")
    holder = hold_a_server_connection(bouncer, database)
    blocking = sa.create_engine(direct)
    blocker = blocking.connect()
    blocker.begin()
    blocker.execute(sa.select(schema.wallets).where(schema.wallets.c.player_id == int(user_id)).with_for_update())
    threading.Timer(DEADLINE + MARGIN, blocker.rollback).start()  # a long call of another worker's
    started = time.monotonic()
    status, _ = hp_local(app, "withdrawal", sessionId=session, txId=tx(), amount="10")
    waited = time.monotonic() - started
    holder.close()
    time.sleep(max(0.0, DEADLINE + MARGIN - waited) + 0.2)
    blocker.close()
    blocking.dispose()
    assert status == 702 and waited <= DEADLINE + MARGIN  # not the blocker's release, then 200
    assert hp_local(app, "balance", sessionId=session)[1]["balance"] == "100.00"


def postgres_direct_url(bouncer, database):
    """The URL of `database` on the PostgreSQL server behind `bouncer`, bypassing it."""
    with open(os.path.join(bouncer.root, "pgbouncer.ini")) as f:
        target = next(line for line in f if line.startswith("* = "))
    port = target.split("port=")[1].strip()
    return f"postgresql+psycopg://wallet@127.0.0.1:{port}/{database}"


def sa_admin(url, sql):
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(sql)
    engine.dispose()


def test_e2e_scenarios_through_pgbouncer(bouncer):
    """test_100hp_e2e's and test_hash_e2e's races on a gunicorn whose DATABASE_URL is PgBouncer."""
    bouncer, database = bouncer
    app = wallet_app(bouncer.wallet_url(database))
    with gunicorn(bouncer.wallet_url(database), workers=2) as server:
        hp_e2e.test_the_same_withdrawal_20_times_debits_once(server, app)
        hp_e2e.test_deposit_racing_rollback_exactly_one_wins(server, app)
        hp_e2e.test_50_withdrawals_beyond_the_balance_never_go_negative(server, app)
        for scenario in (hash_e2e.test_the_same_add_20_times_debits_once,
                         hash_e2e.test_10_identical_settles_credit_once,
                         hash_e2e.test_settle_racing_cancel_exactly_one_applies):
            scenario(server, new_player(app, "1000", currency="USDT"))
    assert audit(app.extensions["engine"]) == []
    app.extensions["engine"].dispose()
