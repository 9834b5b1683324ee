"""The Hash services client and hash-reconcile, against a fake Hash server on loopback."""
import json
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa
from conftest import HASH_SECRET, MERCHANT_ID, new_player
from fakehash import FakeHash
from test_hash import Hash

from wallet import db
from wallet.audit import audit
from wallet.hash_client import HashClient, HashServiceError
from wallet.hash_crypto import encrypt


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


def test_hash_reconcile_settles_and_refunds_open_orders(app, fake):
    user_id, token = new_player(app, "1000", currency="USDT")
    hash_api = Hash(app)
    won, cancelled, pending, unknown = (uuid.uuid4().hex for _ in range(4))
    for order in (won, cancelled, pending, unknown):
        assert hash_api.add(token, user_id, order)["code"] == 0
    details = {won: {"status": 1, "prize": 30, "tax": 1, "bonus": 0},
               cancelled: {"status": 4, "prize": 0, "tax": 0, "bonus": 0},
               pending: {"status": 3, "prize": 0, "tax": 0, "bonus": 0}}

    def order_details(plain):
        if plain["order_no"] not in details:
            return {"code": 3002, "msg": "order not found"}
        return {"code": 0, "data": {"order_no": plain["order_no"], **details[plain["order_no"]]}}
    fake.answers["/api/v2/order/details"] = order_details
    app.config["HASH_API_URL"] = fake.url
    runner = app.test_cli_runner()
    output = runner.invoke(args=["hash-reconcile", "--older-than", "0"]).output
    assert f"{won}: settled (Hash status 1), balance 990" in output      # 1000 - 4 * 10 + 30
    assert f"{cancelled}: refunded" in output
    assert f"{pending}: still open at Hash (status 3)" in output
    assert f"{unknown}: left open: api/v2/order/details: Hash answered code 3002" in output
    assert "4 open order(s)" in output
    # the next run finds only what is still open, and a late live retry changes nothing
    assert "2 open order(s)" in runner.invoke(args=["hash-reconcile", "--older-than", "0"]).output
    assert hash_api.update(user_id, won, 1, prize=30, tax=1)["data"]["balance"] == 1000
    assert audit(app.extensions["engine"]) == []
    with app.extensions["engine"].connect() as conn:
        statuses = dict(conn.execute(sa.select(db.hash_orders.c.order_no, db.hash_orders.c.status)).all())
    assert statuses == {won: 1, cancelled: 4, pending: 0, unknown: 0}


def test_hash_reconcile_without_a_url_says_so(app):
    result = app.test_cli_runner().invoke(args=["hash-reconcile"])
    assert result.exit_code != 0 and "HASH_API_URL is not set" in result.output
