"""Running it for real: expire-withdrawals, audit, IP allow-lists behind proxies, the production
guard, and the per-call log line."""
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa
from conftest import HP_SECRET, TEST_CONFIG, gunicorn, new_player, post_json, tx

from wallet.app import create_app
from test_settings import PRODUCTION
from wallet.core import schema
from wallet.hp100 import schema as hp_schema
from conftest import init_schema
from conftest import audit


def call(client, endpoint, **fields):
    response = client.post(f"/100hp/{endpoint}", json={"secret": HP_SECRET, **fields})
    return response.status_code, response.get_json()


def backdate(app, tx_ids, days):
    with app.extensions["engine"].begin() as conn:
        conn.execute(sa.update(hp_schema.hp_transactions).where(hp_schema.hp_transactions.c.tx_id.in_(tx_ids))
                     .values(created_at=schema.utcnow() - timedelta(days=days)))


def test_expire_withdrawals_refunds_stale_bets_once(app, client):
    _, session = new_player(app, "100")
    stale, young, settled = tx(), tx(), tx()
    for bet in (stale, young, settled):
        assert call(client, "withdrawal", sessionId=session, txId=bet, amount="10")[0] == 200
    call(client, "deposit", txId=settled, amount="0")
    backdate(app, [stale, settled], days=15)
    runner = app.test_cli_runner()
    output = runner.invoke(args=["expire-withdrawals"]).output
    assert f"{stale}: refunded, balance 80" in output and "1 refunded" in output
    assert young not in output and settled not in output
    assert runner.invoke(args=["expire-withdrawals"]).output.endswith("0 refunded\n")  # twice: no-op
    assert call(client, "deposit", txId=stale, amount="5")[0] == 608  # 100HP §6.7: refunded by the casino
    assert call(client, "rollback", txId=stale)[0] == 608
    assert "1 refunded" in runner.invoke(args=["expire-withdrawals", "--older-than", "0m"]).output
    assert call(client, "balance", sessionId=session)[1]["balance"] == "90.00"
    assert audit(app.extensions["engine"]) == []


def test_expire_racing_live_deposits(app, database_url):
    _, session = new_player(app, "1000")
    with gunicorn(database_url, workers=4) as base:
        bets = [tx() for _ in range(30)]
        for bet in bets:
            assert post_json(base, "/100hp/withdrawal", {"secret": HP_SECRET, "sessionId": session,
                                                         "txId": bet, "amount": "10"})[0] == 200
        backdate(app, bets, days=15)
        start = threading.Barrier(2)

        def deposits():
            start.wait()
            return [post_json(base, "/100hp/deposit", {"secret": HP_SECRET, "txId": bet,
                                                       "amount": "15"})[0] for bet in bets]

        def expire():
            start.wait()
            return app.test_cli_runner().invoke(args=["expire-withdrawals"]).output

        with ThreadPoolExecutor(2) as pool:
            running = pool.submit(deposits), pool.submit(expire)
            deposit_statuses, output = running[0].result(), running[1].result()
    refunded = {line.split(":")[0] for line in output.splitlines() if "refunded, balance" in line}
    for bet, status in zip(bets, deposit_statuses):
        assert (status == 200) != (bet in refunded)  # settled or refunded, never both
        assert status in (200, 608)
    assert audit(app.extensions["engine"]) == []


def test_audit_catches_a_ledger_row_altered_behind_the_apps_back(app, client):
    _, session = new_player(app, "100")
    call(client, "withdrawal", sessionId=session, txId=tx(), amount="10")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["audit"]).exit_code == 0
    with app.extensions["engine"].begin() as conn:
        row_id = conn.execute(sa.select(sa.func.max(schema.ledger.c.id))).scalar()
        conn.execute(sa.update(schema.ledger).where(schema.ledger.c.id == row_id).values(amount=-1))
    result = runner.invoke(args=["audit"])
    assert result.exit_code == 1
    assert "balance 90 but its ledger sums to 99" in result.output
    assert f"ledger row {row_id}: balance_after 90 but the rows before it sum to 99" in result.output
    assert "ledger has withdrawal -1, expected withdrawal -10" in result.output


def test_audit_catches_a_missing_refund(app, client):
    _, session = new_player(app, "100")
    bet = tx()
    call(client, "withdrawal", sessionId=session, txId=bet, amount="10")
    with app.extensions["engine"].begin() as conn:  # mark refunded without the money moving
        conn.execute(sa.update(hp_schema.hp_transactions).values(status="refunded"))
    assert audit(app.extensions["engine"]) == [
        f"100HP txId {bet} (withdrawal, refunded): ledger has withdrawal -10, expected "
        "rollback 10, withdrawal -10"]


@pytest.fixture
def guarded(tmp_path):
    def make(**settings):
        app = create_app({**TEST_CONFIG, "DATABASE_URL": f"sqlite:///{tmp_path}/w.db", **settings})
        init_schema(app.extensions["engine"])
        return app.test_client()
    return make


def test_ip_allow_lists_and_proxies(guarded):
    direct = guarded(HP_ALLOWED_IPS="10.0.0.0/8, 192.0.2.7", HASH_ALLOWED_IPS="10.0.0.0/8")
    assert direct.post("/100hp/auth", json={"secret": HP_SECRET, "sessionId": "s"}).status_code == 601
    assert direct.post("/api/v2/user/info", json={}, headers={"merchant-id": "1001"}
                       ).get_json()["code"] == 1003
    # no proxy configured: a forwarding header is the client's own claim and is ignored
    spoofed = {"X-Forwarded-For": "10.1.2.3"}
    assert direct.post("/100hp/auth", json={"secret": HP_SECRET, "sessionId": "s"},
                       headers=spoofed).status_code == 601
    behind = guarded(HP_ALLOWED_IPS="10.0.0.0/8", TRUSTED_PROXIES="127.0.0.1")  # the test client's address
    assert behind.post("/100hp/auth", json={"secret": HP_SECRET, "sessionId": "s"},
                       headers={"X-Forwarded-For": "10.1.2.3"}).status_code == 604  # let in
    # one proxy: only the address it appended counts, not what the client put before it
    assert behind.post("/100hp/auth", json={"secret": HP_SECRET, "sessionId": "s"},
                       headers={"X-Forwarded-For": "10.1.2.3, 198.51.100.4"}).status_code == 601
    assert behind.post("/100hp/auth", json={"secret": HP_SECRET, "sessionId": "s"},
                       environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code == 604  # no proxy, no header
    # a peer that is not a trusted proxy: its X-Forwarded-For is its own claim
    assert behind.post("/100hp/auth", json={"secret": HP_SECRET, "sessionId": "s"},
                       headers={"X-Forwarded-For": "10.1.2.3"},
                       environ_base={"REMOTE_ADDR": "198.51.100.4"}).status_code == 601


@pytest.mark.parametrize("settings, complaint", [
    ({"HP_SECRET": "hp-sandbox-secret"}, "set HP_SECRET"),
    ({"HASH_SECRET": "hash-sandbox-secret-0123456789ab"}, "set HASH_SECRET"),
    ({"DATABASE_URL": "sqlite:///w.db"}, "set DATABASE_URL"),
    ({"HASH_SECRET": "short"}, "HASH_SECRET must be 32 bytes"),
    ({"HP_ALLOWED_IPS": "10.0.0.0/33"}, "bad IP list"),
])
def test_production_guard(settings, complaint):
    production = {**PRODUCTION, "HP_ALLOWED_IPS": "10.0.0.0/8", "HASH_ALLOWED_IPS": "10.0.0.0/8"}
    create_app(production)  # a complete production configuration starts
    with pytest.raises(RuntimeError, match=complaint):
        create_app({**production, **settings})
    assert create_app({**production, "DATABASE_URL": "sqlite:///w.db", "WALLET_ALLOW_SQLITE": "1"})


def test_one_log_line_per_call_without_secrets(app, client, caplog):
    _, session = new_player(app, "100")
    bet = tx()
    with caplog.at_level(logging.INFO, logger="wallet.calls"):
        response = client.post("/100hp/withdrawal", headers={"X-Request-Id": "abc-123"},
                               json={"secret": HP_SECRET, "sessionId": session, "txId": bet,
                                     "amount": "1"})
        client.post("/100hp/deposit", json={"secret": "wrong", "txId": bet, "amount": "1"})
    assert response.headers["X-Request-Id"] == "abc-123"
    lines = [r.getMessage() for r in caplog.records if r.name == "wallet.calls"]
    assert len(lines) == 2
    assert lines[0].startswith(f"POST /100hp/withdrawal ref={bet} result=200 ")
    assert lines[1].startswith(f"POST /100hp/deposit ref={bet} result=601 ")
    assert not any(HP_SECRET in line or session in line or "wrong" in line for line in caplog.text.splitlines())
    assert client.post("/100hp/balance", json={}).headers["X-Request-Id"]  # one is made up if absent
