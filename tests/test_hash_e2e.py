"""Hash races against a real `gunicorn app:app` with 4 workers, on every database; the books must
pass the audit afterwards. Repeats with fresh request_ids are Hash's retries (idempotent on
order_no); repeats of the very same request are Hash re-sending it: one applies, the rest are
answered as its retries (docs/hash.md §3.8)."""
import json
import threading
import time
import uuid

import pytest
from conftest import HASH_SECRET, MERCHANT_ID, gunicorn, new_player, post_json, parallel

from conftest import audit
from wallet.hash.envelope import encrypt

BET_INFO = '[{"key":"Big","name":"Big","odds":200,"amount":10}]'


def call(base, path, x=None, **plain):
    """`path` with a fresh request (or the sealed `x` given)."""
    x = x or seal(**plain)
    status, answer = post_json(base, f"/api/v2/{path}", {"x": x}, {"merchant-id": MERCHANT_ID})
    assert status == 200
    return answer


def seal(**plain) -> str:
    plain = {"timestamp": int(time.time() * 1000), "request_id": uuid.uuid4().hex, **plain}
    return encrypt(json.dumps(plain).encode(), HASH_SECRET)


def add(base, token, user_id, order, amount=10):
    return call(base, "order/add", token=token, user_id=int(user_id), order_no=order, username="u",
                entry_key="pc28-1", round_id=1, currency="USDT", amount=amount, bet_info=BET_INFO)


def update(base, user_id, order, status, prize=0, amount=10):
    return call(base, "order/update", user_id=str(user_id), username="u", order_no=order,
                entry_key="pc28-1", round_id="1", amount=amount, currency="USDT", status=status,
                prize=prize, tax=0, bonus=0, bet_time=1749200012000, bet_info=BET_INFO, is_win=prize > 0)


def balance(base, token):
    return call(base, "user/balance", token=token, currency="USDT")["data"]["balance"]


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


@pytest.fixture
def player(app):
    return new_player(app, "1000", currency="USDT")


def test_the_same_add_20_times_debits_once(server, player):
    user_id, token = player
    order = uuid.uuid4().hex
    answers = parallel([lambda: add(server, token, user_id, order)] * 20)
    assert [a["code"] for a in answers] == [0] * 20  # every repeat answers the original success
    assert balance(server, token) == 990


def test_the_same_request_20_times_at_once_applies_once(server, player):
    user_id, token = player
    bet = seal(token=token, user_id=int(user_id), order_no=uuid.uuid4().hex, username="u",
               entry_key="pc28-1", round_id=1, currency="USDT", amount=10, bet_info=BET_INFO)
    answers = parallel([lambda: call(server, "order/add", bet)] * 20)
    assert [a["code"] for a in answers] == [0] * 20  # one applies; the rest are its retries
    assert balance(server, token) == 990


def test_the_same_settle_10_times_at_once_credits_once(server, player):
    user_id, token = player
    order = uuid.uuid4().hex
    add(server, token, user_id, order)
    settle = seal(user_id=str(user_id), username="u", order_no=order, entry_key="pc28-1",
                  round_id="1", amount=10, currency="USDT", status=1, prize=25, tax=0, bonus=0,
                  bet_time=1749200012000, bet_info=BET_INFO, is_win=True)
    answers = parallel([lambda: call(server, "order/update", settle)] * 10)
    assert [a["code"] for a in answers] == [0] * 10  # one applies; the rest are its retries
    assert balance(server, token) == 1015


def test_10_identical_settles_credit_once(server, player):
    user_id, token = player
    order = uuid.uuid4().hex
    add(server, token, user_id, order)
    answers = parallel([lambda: update(server, user_id, order, 1, prize=25)] * 10)
    assert [a["code"] for a in answers] == [0] * 10
    assert balance(server, token) == 1015


def test_settle_racing_cancel_exactly_one_applies(server, player):
    user_id, token = player
    for _ in range(10):
        order = uuid.uuid4().hex
        add(server, token, user_id, order)
        barrier = threading.Barrier(2)

        def settle():
            barrier.wait()
            return update(server, user_id, order, 1, prize=30)["code"]

        def cancel():
            barrier.wait()
            return update(server, user_id, order, 4)["code"]

        assert sorted(parallel([settle, cancel])) == [0, 3003]
    # which one won is in the books; the audit after the test checks each order against them
