"""100HP end to end against a real `gunicorn app:app` with 4 workers, on every database: races that
only separate processes can produce. After each test the books must pass the audit."""
import threading
import time
from decimal import Decimal

import pytest
from conftest import HP_SECRET, gunicorn, new_player, post_json, tx, parallel

from conftest import audit


def hp(base, endpoint, **fields):
    return post_json(base, f"/100hp/{endpoint}", {"secret": HP_SECRET, **fields})


@pytest.fixture(scope="module")
def database_url(module_database):
    return module_database


@pytest.fixture(scope="module")
def server(database_url):
    """One server per database for the module's tests."""
    with gunicorn(database_url, workers=4) as base:
        yield base


@pytest.fixture(autouse=True)
def audited(app):
    yield
    assert audit(app.extensions["engine"]) == []


def test_checklist_over_http(server, app):
    user_id, session = new_player(app, "1000")
    assert hp(server, "auth", sessionId=session)[1]["balance"] == "1000.00"
    status, answer = hp(server, "auth", secret="nope", sessionId=session)
    assert (status, answer) == (601, {"data": "", "message": "Invalid secret key", "errCode": 601})
    bet = tx()
    assert hp(server, "withdrawal", sessionId=session, txId=bet, amount="10.129")[1]["balance"] == "989.88"
    assert hp(server, "deposit", txId=bet, amount="0")[1]["balance"] == "989.88"
    assert hp(server, "rollback", txId=bet)[0] == 609
    status, answer = post_json(server, "/100hp/withdrawal", {"secret": HP_SECRET, "amount": "1"})
    assert (status, answer["data"]) == (400, "txId must be not empty")


def test_the_same_withdrawal_20_times_debits_once(server, app):
    _, session = new_player(app, "100")
    bet = tx()
    results = parallel([lambda: hp(server, "withdrawal", sessionId=session, txId=bet, amount="10")] * 20)
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [607] * 19
    assert hp(server, "balance", sessionId=session)[1]["balance"] == "90.00"


def test_deposit_racing_rollback_exactly_one_wins(server, app):
    _, session = new_player(app, "1000")
    for _ in range(10):
        bet = tx()
        assert hp(server, "withdrawal", sessionId=session, txId=bet, amount="10")[0] == 200
        barrier = threading.Barrier(2)

        def deposit():
            barrier.wait()
            return hp(server, "deposit", txId=bet, amount="25")[0]

        def rollback():
            barrier.wait()
            return hp(server, "rollback", txId=bet)[0]

        won_deposit, won_rollback = parallel([deposit, rollback], workers=2)
        assert sorted([won_deposit, won_rollback]) in ([200, 608], [200, 609])
        assert (won_deposit == 200) == (won_rollback == 609)  # the loser names the winner
    # the books say which won each time; the audit after the test checks they add up


def test_50_withdrawals_beyond_the_balance_never_go_negative(server, app):
    _, session = new_player(app, "100")
    results = parallel([lambda: hp(server, "withdrawal", sessionId=session, txId=tx(), amount="7")] * 50)
    statuses = [status for status, _ in results]
    assert statuses.count(200) == 14 and statuses.count(603) == 36  # 14 * 7 = 98 <= 100 < 105
    assert hp(server, "balance", sessionId=session)[1]["balance"] == "2.00"


def test_two_servers_hammering_one_player(app, database_url):
    """Issue 3: two gunicorn servers (separate processes, one database) with withdrawals, deposits
    and rollbacks on one player for a few seconds; balance = opening + ledger, no txId twice."""
    user_id, session = new_player(app, "100000")
    with gunicorn(database_url, workers=2) as one, gunicorn(database_url, workers=2) as two:
        stop = time.monotonic() + 4
        booked, lock = [], threading.Lock()

        def player(i):
            bases = (one, two)
            while time.monotonic() < stop:
                bet = tx()
                status, _ = hp(bases[i % 2], "withdrawal", sessionId=session, txId=bet, amount="3.33")
                assert status == 200
                # settle or refund on the other server, and send the duplicate to both at once
                closing = ("deposit", {"amount": "5.01"}) if i % 3 else ("rollback", {})
                results = parallel([lambda b=b: hp(b, closing[0], txId=bet, **closing[1]) for b in bases],
                                   workers=2)
                assert sorted(s for s, _ in results) == [200, 608 if closing[0] == "rollback" else 609]
                with lock:
                    booked.append((bet, closing[0]))
                i += 1

        parallel([lambda i=i: player(i) for i in range(8)], workers=8)
    assert len(booked) > 20
    wins = sum(1 for _, kind in booked if kind == "deposit")
    expected = Decimal("100000") + wins * (Decimal("5.01") - Decimal("3.33"))
    assert hp_balance(app, session) == expected
    assert audit(app.extensions["engine"]) == []


def hp_balance(app, session):
    response = app.test_client().post("/100hp/balance", json={"secret": HP_SECRET, "sessionId": session})
    return Decimal(response.get_json()["balance"])
