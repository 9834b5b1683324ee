"""The conformance kit against this wallet: it passes on every database (real gunicorn), and its
reports are honest: the request shown is the one sent, a failing case cleans up after itself, the
JSON and JUnit reports and the exit codes say what happened.

Helpers used by the other tests/test_conformance_*.py files live here too: `serve` (an app on real
HTTP in a thread), `kit` (the kit's main, in this process) and `memory_wallet` (a TestCasino on
HTTP, with a test player, a second one, a blocked one and a closed session).
"""
import contextlib
import io
import json
import threading
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from conftest import HASH_SECRET, HP_SECRET, MERCHANT_ID, TEST_CONFIG, audit, gunicorn, init_schema, new_player
from werkzeug.serving import make_server

from conformance.cli import conformance
from conformance.main import main
from wallet.app import create_app
from wallet.core import accounts, db
from wallet.hp100 import blueprint as hp
from wallet.hp100.casino import OPEN, CasinoError
from wallet.hp100.testcasino import TestCasino

# ---- helpers -------------------------------------------------------------------------------------
@contextlib.contextmanager
def serve(app):
    """`app` on real HTTP (werkzeug, one thread per request); yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)  # shutdown() waits one poll
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def kit(*args) -> tuple[int, str, str]:
    """Run `python -m conformance *args` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main([str(a) for a in args])
        except SystemExit as exc:  # argparse
            status = exc.code
    return status, out.getvalue(), err.getvalue()


def hp_args(base, ids, *extra):
    return ["100hp", "--url", f"{base}/100hp", "--secret", HP_SECRET, "--session", ids["session"], *extra]


def hash_args(base, token, *extra):
    return ["hash", "--url", base, "--merchant-id", MERCHANT_ID, "--secret", HASH_SECRET, "--token", token, *extra]


def all_sessions(ids):
    return ["--second-session", ids["second"], "--blocked-session", ids["blocked"],
            "--closed-session", ids["closed"]]


def verdicts(report_json: str) -> dict:
    return {case["name"]: case["verdict"] for case in json.loads(report_json)["cases"]}


def not_passed(report_json: str) -> dict:
    return {name: verdict for name, verdict in verdicts(report_json).items() if verdict != "PASS"}


@contextlib.contextmanager
def memory_wallet(tmp_path, casino=None, prepare=None):
    """This wallet's 100HP blueprint over `casino` (a TestCasino, or a broken subclass) on real
    HTTP; yields (base URL, the casino, the ids of its players and sessions). `prepare(app)` runs
    before the first request."""
    casino = casino or TestCasino()
    ids = {}
    user = casino.add_player("tester", "USD", Decimal(1000))
    ids["user"], ids["session"] = user, casino.open_session(user)
    ids["closed"] = casino.open_session(user)
    casino.close_session(ids["closed"])
    ids["second"] = casino.open_session(casino.add_player("second", "USD", Decimal(1000)))
    blocked = casino.add_player("blocked", "USD", Decimal(10))
    ids["blocked"] = casino.open_session(blocked)
    casino.set_status(blocked, "blocked")
    app = create_app({**TEST_CONFIG, "DATABASE_URL": f"sqlite:///{tmp_path}/unused.db"}, casino=casino)
    if prepare:
        prepare(app)
    with serve(app) as base:
        yield base, casino, ids


def sql_players(app) -> dict:
    """A funded test player (USD and USDT), a second, a blocked one and a closed session."""
    def work(conn):
        ids = {}
        user = accounts.create_player(conn, "tester", "USD", Decimal(1000))
        accounts.open_wallet(conn, user, "USDT", Decimal(1000))
        ids["user"], ids["session"] = str(user), accounts.create_session(conn, user, "USD")
        ids["closed"] = accounts.create_session(conn, user, "USD")
        accounts.close_session(conn, ids["closed"])
        second = accounts.create_player(conn, "second", "USD", Decimal(1000))
        accounts.open_wallet(conn, second, "USDT", Decimal(1000))
        ids["second"] = accounts.create_session(conn, second, "USD")
        blocked = accounts.create_player(conn, "blocked", "USD", Decimal(10))
        ids["blocked"] = accounts.create_session(conn, blocked, "USD")
        accounts.set_player_status(conn, blocked, "blocked")
        return ids
    return db.transaction(app.extensions["engine"], work)


# ---- this wallet passes ------------------------------------------------------------------------------
# Hash's retry of a request whose answer it lost, and float64-written prizes (issue 25 items 1 and 3):
# the wallet takes both since the hashrules merge; nothing awaits it any more.
AWAITING_HASHRULES = set()


def test_this_wallet_passes_both_suites(app, database_url):
    ids = sql_players(app)
    with gunicorn(database_url, workers=4) as base:
        status, out, _ = kit(*hp_args(base, ids, *all_sessions(ids), "--json"))
        assert status == 0, out
        assert not_passed(out) == {}, out
        assert len(verdicts(out)) == 40
        status, out, _ = kit(*hash_args(base, ids["session"], "--second-token", ids["second"], "--json",
                                        "--strict"))
        assert set(not_passed(out)) <= AWAITING_HASHRULES, out
        assert len(verdicts(out)) == 33
    assert audit(app.extensions["engine"]) == []


@pytest.mark.parametrize("formula", ["prize+bonus", "prize-tax+bonus"])
def test_either_payout_formula_passes_and_a_wrong_payout_option_fails(tmp_path, formula):
    """HASH_PAYOUT either way: the kit learns the formula from the first settle, or takes it from
    --payout; told the other formula, it fails the case."""
    app = create_app({**TEST_CONFIG, "DATABASE_URL": f"sqlite:///{tmp_path}/payout.db", "HASH_PAYOUT": formula})
    init_schema(app.extensions["engine"])
    _, token = new_player(app, "1000", extra_currencies=("USDT",))
    other = next(f for f in ("prize+bonus", "prize-tax+bonus") if f != formula)
    with serve(app) as base:
        for given, verdict in ((None, "PASS"), (formula, "PASS"), (other, "FAIL")):
            payout = ("--payout", given) if given else ()
            status, out, _ = kit(*hash_args(base, token, "--only", "tax and a bonus", "--json", *payout))
            assert verdicts(out) == {"a settle with a tax and a bonus pays by one formula, the same every time":
                                     verdict}, out
            if verdict == "FAIL":
                expected = json.loads(out)["cases"][0]["problems"][0]["expected"]
                assert expected.startswith(f"a credit by --payout {other}: ")
                assert "the wallet credited 20.25" in expected or "the wallet credited 20.75" in expected
    app.extensions["engine"].dispose()


def test_the_flask_alias_is_the_same_command(app, database_url):
    """conformance/cli.py passes every argument on (app.py adds it to `flask --app app`, which
    tests/test_cli.py runs)."""
    ids = sql_players(app)
    app.cli.add_command(conformance)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["conformance", "--help"])
    assert result.exit_code == 0 and "usage: python -m conformance" in result.output
    with gunicorn(database_url, workers=2) as base:
        result = runner.invoke(args=["conformance", *hp_args(base, ids, "--only", "withdrawal")])
        assert result.exit_code == 0, result.output
        assert "0 failed" in result.output and "a withdrawal truncates to cents" in result.output
        result = runner.invoke(args=["conformance", *hp_args(base, {"session": "no-such-session"})])
        assert result.exit_code == 2


# ---- exit codes ------------------------------------------------------------------------------------------
def test_a_run_that_cannot_start_exits_2(tmp_path):
    with memory_wallet(tmp_path) as (base, casino, ids):
        poor = casino.open_session(casino.add_player("poor", "USD", Decimal(5)))
        status, _, err = kit(*hp_args(base, {"session": poor}))
        assert status == 2 and "needs at least 20.00 (has 5.00)" in err
        status, _, err = kit(*hp_args(base, {"session": "no-such-session"}))
        assert status == 2 and "is the session still valid" in err
        status, _, err = kit(*hp_args(base, ids, "--second-session", "no-such-session"))
        assert status == 2 and "--second-session" in err
        status, _, err = kit("hash", "--url", base, "--merchant-id", "1", "--secret", "short", "--token", "t")
        assert status == 2 and "32 characters" in err
    status, _, err = kit(*hp_args(base, ids))  # the server has stopped
    assert status == 2 and "did not answer" in err
    status, _, err = kit("100hp", "--url", base)  # argparse: missing options
    assert status == 2 and "required" in err


class LostRoundCrashes(TestCasino):
    """A deposit of 0 (a lost round) fails with an unexpected error (702)."""

    def deposit(self, tx_id, amount, session_id=None, user_id=None):
        if amount == 0:
            raise ZeroDivisionError("amount 0")
        return super().deposit(tx_id, amount, session_id, user_id)


class RollbackAlways702(LostRoundCrashes):
    def rollback(self, tx_id, session_id=None, user_id=None):
        raise CasinoError(702)


def test_a_failing_case_cleans_up_and_says_what_it_left(tmp_path):
    with memory_wallet(tmp_path, LostRoundCrashes()) as (base, casino, ids):
        status, out, _ = kit(*hp_args(base, ids, "--json", "--only", "lost round"))
        assert status == 1
        case, = json.loads(out)["cases"]
        assert case["verdict"] == "FAIL" and case["problems"][0]["got"][0] == 702
        assert case["problems"][0]["sent"]["secret"] == "***"  # the real secret was sent: masked
        assert case["left_open"] == []  # its clean-up rolled the bet back
        assert [bet.status for bet in casino.bets.values()] == ["refunded"]
        assert casino.wallets[1].balance == Decimal(1000)
    with memory_wallet(tmp_path, RollbackAlways702()) as (base, casino, ids):
        status, out, _ = kit(*hp_args(base, ids, "--json", "--only", "lost round"))
        case, = json.loads(out)["cases"]
        tx_id, = casino.bets
        assert case["left_open"] == [f"withdrawal {tx_id}: the clean-up's rollback answered 702 "
                                     '{"data": "", "errCode": 702, "message": "Internal Server Error"}']
        assert casino.bets[tx_id].status == OPEN


def test_the_request_shown_is_the_request_sent(tmp_path, monkeypatch):
    """A case that sends no secret shows none; a wrong secret shows as sent; the real one as ***."""
    honest = hp.validated

    def secret_first(endpoint):  # 601 before 400: the mistake this run reports
        body = json.loads(hp.request.get_data())
        if body.get("secret") != HP_SECRET:
            raise CasinoError(601)
        return honest(endpoint)
    monkeypatch.setattr(hp, "validated", secret_first)
    with memory_wallet(tmp_path) as (base, casino, ids):
        status, out, _ = kit(*hp_args(base, ids, "--json", "--only", "secret"))
    cases = {case["name"]: case for case in json.loads(out)["cases"]}
    missing = cases["secret rules"]["problems"][0]["sent"]
    assert missing == {"endpoint": "/auth", "sessionId": ids["session"]}  # no "secret": none was sent
    wrong = cases["a bad field with a wrong secret: 400 wins"]["problems"][0]["sent"]
    assert wrong["secret"] == "not-the-secret" and len(wrong["sessionId"]) == 256
    assert cases["a wrong secret is 601"]["verdict"] == "PASS"
    assert cases["secret rules"]["problems"][0]["got"][0] == 601
    assert HP_SECRET not in out


def test_reports_json_and_junit(tmp_path):
    junit = tmp_path / "report.xml"
    with memory_wallet(tmp_path, LostRoundCrashes()) as (base, casino, ids):
        status, out, _ = kit(*hp_args(base, ids, "--json", "--no-concurrency", "--junit", junit))
        assert status == 1
        report = json.loads(out)
        assert (report["passed"], report["failed"], report["warnings"], report["skipped"]) == (30, 1, 0, 9)
        assert {c["name"]: c["why_skipped"] for c in report["cases"] if c["verdict"] == "SKIP"} == {
            "a blocked player: auth and balance answer, a bet is 604, a bonusWin pays": "needs --blocked-session",
            "a closed session: auth, balance and bets are 604; deposits, rollbacks, bonusWins settle":
                "needs --closed-session",
            "players are isolated": "needs --second-session",
            "10 parallel identical withdrawals debit once": "--no-concurrency",
            "10 parallel rollbacks refund once": "--no-concurrency",
            "parallel withdrawals beyond the balance never go negative": "--no-concurrency",
            "10 parallel identical deposits settle once": "--no-concurrency",
            "10 parallel identical bonusWins credit once": "--no-concurrency",
            "a deposit racing a rollback: exactly one wins": "--no-concurrency"}
        suite = ET.parse(junit).getroot().find("testsuite")
        assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("40", "1", "9")
        failed = [c for c in suite.iter("testcase") if c.find("failure") is not None]
        assert [c.get("name") for c in failed] == ["a lost round: deposit 0"]
        assert failed[0].find("failure").get("message").startswith(
            "HTTP 200 OK, not 702: a correct wallet answers this call")  # a 702 is a failure, and says why
        assert "expected: HTTP 200 OK" in failed[0].find("failure").text


class CaseSensitive(TestCasino):
    """txIds compared as sent: an upper-case txId is another transaction (a decision of ours)."""

    def withdrawal(self, session_id, tx_id, amount, user_id=None):
        return super().withdrawal(session_id, _cased(tx_id), amount, user_id)

    def deposit(self, tx_id, amount, session_id=None, user_id=None):
        return super().deposit(_cased(tx_id), amount, session_id, user_id)

    def rollback(self, tx_id, session_id=None, user_id=None):
        return super().rollback(_cased(tx_id), session_id, user_id)


def _cased(tx_id: str) -> str:
    return tx_id if tx_id == tx_id.lower() else "upper:" + tx_id


def test_a_decision_of_ours_warns_and_fails_with_strict(tmp_path):
    junit = tmp_path / "report.xml"
    with memory_wallet(tmp_path, CaseSensitive()) as (base, casino, ids):
        status, out, _ = kit(*hp_args(base, ids, "--only", "upper case", "--junit", junit))
        assert status == 0
        assert "WARN  a txId in upper case is the same transaction" in out
        assert "this project's decision, not the provider's: txIds compared case-insensitively" in out
        assert "1 warnings" in out
        case = ET.parse(junit).getroot().find("testsuite/testcase")
        assert case.find("failure") is None
        assert case.find("skipped").get("message").startswith("WARNING, this project's decision")
        assert {p.get("name"): p.get("value") for p in case.iter("property")}["verdict"] == "WARN"
        status, out, _ = kit(*hp_args(base, ids, "--only", "upper case", "--strict", "--junit", junit))
        assert status == 1 and "FAIL  a txId in upper case" in out
        assert ET.parse(junit).getroot().find("testsuite/testcase/failure") is not None
        assert casino.open_withdrawals(datetime(3000, 1, 1)) == []  # cleaned up either way


def test_hash_answers_sealed_and_the_key16_form(tmp_path):
    """A wallet that seals its answers ({"x": ...}) in the key16 IV form passes as well."""
    app = create_app({**TEST_CONFIG, "DATABASE_URL": f"sqlite:///{tmp_path}/sealed.db",
                      "HASH_ENCRYPT_RESPONSES": "1", "HASH_IV_MODE": "key16"})
    init_schema(app.extensions["engine"])
    _, token = new_player(app, "1000", extra_currencies=("USDT",))
    with serve(app) as base:
        status, out, _ = kit(*hash_args(base, token, "--iv-mode", "key16", "--json"))
        assert set(not_passed(out)) <= AWAITING_HASHRULES, out
        status, _, err = kit(*hash_args(base, token))  # the prefix form: the kit cannot open its answers
    assert status == 2 and "--iv-mode" in err
    app.extensions["engine"].dispose()


def test_an_expired_session_is_a_closed_session_too(tmp_path):
    """--closed-session takes a session closed or past its lifetime: this project answers auth on
    each with its own text (docs/100hp.md §4.1), and the case takes both."""
    with memory_wallet(tmp_path) as (base, casino, ids):
        expired = casino.open_session(ids["user"], lifetime=timedelta(seconds=-1))
        status, out, _ = kit(*hp_args(base, ids, "--json", "--strict", "--closed-session", expired,
                                      "--only", "a closed session"))
    assert verdicts(out) == {"a closed session: auth, balance and bets are 604; deposits, rollbacks, "
                             "bonusWins settle": "PASS"}, out
