"""The Hash services client against a fake Hash server on loopback (hash-reconcile: test_hash_reconcile.py)."""
import json
from decimal import Decimal

import pytest
from conftest import HASH_SECRET, MERCHANT_ID
from fakehash import FakeHash

from wallet.hash.client import HashClient, HashServiceError
from wallet.hash.envelope import encrypt


@pytest.fixture
def fake():
    server = FakeHash(HASH_SECRET)
    yield server
    server.close()


@pytest.fixture
def client(fake):
    return HashClient(fake.url, MERCHANT_ID, HASH_SECRET, timeout=1)


GAMES = {"list": [{"entry": "pc28-1", "name": "pc28 Advanced Room", "icon": "https:xxxx.jpg"}],
         "page": 1, "page_size": 10}


def test_requests_carry_the_protocol(fake, client):
    fake.answers["/api/v2/game/list"] = lambda plain: {"code": 0, "msg": "SUCCESS", "data": GAMES}
    assert client.game_list(page=1, page_size=10) == GAMES
    path, headers, plain = fake.received[0]
    assert headers["merchant-id"] == MERCHANT_ID
    assert plain["page"] == 1 and plain["page_size"] == 10 and plain["category"] == 1
    assert len(str(plain["timestamp"])) == 13 and plain["request_id"]


def test_login_list_and_details(fake, client):
    fake.answers["/api/v2/game/login"] = lambda p: {"code": 0, "data": {"game_url": f"https://g?token={p['token']}"}}
    fake.answers["/api/v2/order/list"] = lambda p: {"code": 0, "data": {"list": [], "page": p["page"],
                                                                         "max": p.get("max_id")}}
    fake.answers["/api/v2/order/details"] = lambda p: {"code": 0, "data": {"order_no": p["order_no"],
                                                                           "amount": 10.5}}
    assert client.game_login("lobby", "t+/=") == "https://g?token=t+/="
    assert client.order_list(page=2, max_id=77) == {"list": [], "page": 2, "max": 77}
    assert client.order_details("A1") == {"order_no": "A1", "amount": Decimal("10.5")}


def test_encrypted_answers_are_opened(fake, client):
    envelope = json.dumps({"code": 0, "msg": "SUCCESS", "data": GAMES}).encode()
    fake.answers["/api/v2/game/list"] = lambda p: {"x": encrypt(envelope, HASH_SECRET, "key16")}
    assert client.game_list() == GAMES


@pytest.mark.parametrize("answer, message", [
    ({"code": 4001, "msg": "merchant disabled"}, "code 4001: merchant disabled"),
    ((502, b"<html>bad gateway</html>"), "HTTP 502"),
    ((200, b"<html>oops</html>"), "not a JSON envelope"),
    ((200, b"[1]"), "not a JSON object"),
    ({"x": "garbage"}, "not a JSON envelope"),
])
def test_bad_answers_raise_one_clear_error(fake, client, answer, message):
    fake.answers["/api/v2/game/list"] = lambda p: answer
    with pytest.raises(HashServiceError, match=message):
        client.game_list()


def test_timeouts_and_unreachable(fake, client):
    fake.answers["/api/v2/game/list"] = lambda p: {"code": 0, "data": {}}
    fake.delay = 2
    with pytest.raises(HashServiceError, match="no answer within 1 s"):
        client.game_list()
    with pytest.raises(HashServiceError, match="cannot reach Hash"):
        HashClient("http://127.0.0.1:9/", MERCHANT_ID, HASH_SECRET).game_list()
