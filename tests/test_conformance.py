"""The conformance kit: it passes this wallet (real gunicorn, every database) and it catches real
mistakes in deliberately broken wallets, naming the cases that show them."""
import json
import re
import threading
from decimal import ROUND_HALF_UP, Decimal

import pytest
from conftest import HASH_SECRET, HP_SECRET, MERCHANT_ID, TEST_CONFIG, gunicorn, new_player
from werkzeug.serving import make_server

from app import create_app
from wallet.core import money
from wallet.hash import orders as hash_orders
from conftest import audit
from wallet.hp100.casino import CasinoError
from wallet.hp100.your_casino import YourCasino
from conftest import init_schema


def run_100hp(app, base, session, *extra):
    return app.test_cli_runner().invoke(args=[
        "conformance", "100hp", "--url", f"{base}/100hp", "--secret", HP_SECRET, "--session", session,
        *extra])


def run_hash(app, base, token, *extra):
    return app.test_cli_runner().invoke(args=[
        "conformance", "hash", "--url", base, "--merchant-id", MERCHANT_ID, "--secret", HASH_SECRET,
        "--token", token, *extra])


def test_this_wallet_passes_both_suites(app, database_url):
    _, session = new_player(app, "100", extra_currencies=("USDT",))
    _, second = new_player(app, "100")
    with gunicorn(database_url, workers=4) as base:
        result = run_100hp(app, base, session, "--second-session", second)
        assert result.exit_code == 0, result.output
        assert "19 passed, 0 failed" in result.output
        result = run_hash(app, base, session)
        assert result.exit_code == 0, result.output
        assert "15 passed, 0 failed" in result.output
    assert audit(app.extensions["engine"]) == []


def test_json_report_and_setup_errors(app, database_url):
    _, session = new_player(app, "5")  # less than the cases need
    with gunicorn(database_url, workers=2) as base:
        result = run_100hp(app, base, session)
        assert result.exit_code != 0 and "needs at least 20.00 (has 5.00)" in result.output
        assert "is the session still valid" in run_100hp(app, base, "no-such-session").output
        _, rich = new_player(app, "100")
        report = json.loads(run_100hp(app, base, rich, "--json", "--no-concurrency").output)
        assert (report["passed"], report["failed"], report["skipped"]) == (14, 0, 3)


@pytest.fixture
def broken(tmp_path):
    """Start a wallet built by the test (this app, with a mistake patched in) on real HTTP."""
    servers = []

    def start(app):
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    app = create_app({**TEST_CONFIG, "DATABASE_URL": f"sqlite:///{tmp_path}/broken.db"})
    init_schema(app.extensions["engine"])
    _, session = new_player(app, "100", extra_currencies=("USDT",))
    yield app, session, start
    for server in servers:
        server.shutdown()


def failed_cases(output: str) -> set:
    """What each failed case checks: its name without the checklist row it starts with (a 100HP
    case is named after its row of docs/100hp.md §7.4; the Hash cases carry no reference)."""
    names = [line.split("FAIL  ", 1)[1] for line in output.splitlines() if "FAIL  " in line]
    return {re.sub(r"^\S*\s*§\S*(?:\s+(?:row|#)\s*\S+)?\s+", "", name) for name in names}


def test_catches_rounding_instead_of_truncating(broken, monkeypatch):
    app, session, start = broken
    monkeypatch.setattr(money, "truncate_cents", lambda v: v.quantize(Decimal("0.01"), ROUND_HALF_UP))
    result = run_100hp(app, start(app), session)
    assert result.exit_code == 1
    assert failed_cases(result.output) == {"a withdrawal truncates to cents, its repeat is 607",
                                           "bonusWin credits once"}
    assert "expected: balance 89.88 (100.00 - 10.12; amounts truncated to cents" in result.output


def test_catches_duplicates_answered_200(broken, monkeypatch):
    app, session, start = broken
    honest = YourCasino.withdrawal

    def replaying(self, session_id, tx_id, amount, user_id=None):  # "idempotent" replays
        try:
            return honest(self, session_id, tx_id, amount, user_id)
        except CasinoError as exc:
            if exc.err_code != 607:
                raise
            return {**self.balance(session_id), "txId": tx_id, "sessionId": session_id}
    monkeypatch.setattr(YourCasino, "withdrawal", replaying)
    result = run_100hp(app, start(app), session)
    assert failed_cases(result.output) == {
        "a withdrawal truncates to cents, its repeat is 607",
        "parallel identical withdrawals debit once"}


def test_catches_err_code_with_http_200(broken):
    app, session, start = broken

    @app.after_request
    def everything_is_200(response):
        response.status_code = 200
        return response
    result = run_100hp(app, start(app), session, "--no-concurrency")
    assert result.exit_code == 1
    assert "a wrong secret is 601" in failed_cases(result.output)
    assert "an unknown txId is 605" in failed_cases(result.output)
    assert "auth returns the player" not in failed_cases(result.output)
    assert "expected: HTTP 601 Invalid secret key" in result.output


def test_catches_a_double_credited_hash_retry(broken, monkeypatch):
    app, token, start = broken
    monkeypatch.setattr(hash_orders, "FINAL", (hash_orders.FAILED, hash_orders.CANCELLED))
    result = run_hash(app, start(app), token)
    assert result.exit_code == 1
    assert {"bet -> settle: status 1 credits the prize once",
            "10 parallel identical settles credit once"} <= failed_cases(result.output)
    assert "bet -> cancel: status 4 refunds once" not in failed_cases(result.output)
