"""Hash merchant endpoints through the Flask app, on every database: the envelope, the order
lifecycle of spec/hash.md §7.2 and the bad-input codes, each with nothing written."""
import json
import time
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa
from conftest import HASH_SECRET, MERCHANT_ID, ledger_rows, new_player

from wallet.hash.blueprint import dumps
from wallet.hash.envelope import decrypt, encrypt
from wallet.hash import schema as hash_schema

BET_INFO = '[{"key":"Big","name":"Big","odds":200,"amount":10}]'


class Hash:
    def __init__(self, app):
        self.app, self.client = app, app.test_client()

    def send(self, path, plain: dict, *, merchant_id=MERCHANT_ID, iv_mode="prefix", raw=None):
        fields = {"timestamp": int(time.time() * 1000), "request_id": uuid.uuid4().hex, **plain}
        body = raw if raw is not None else json.dumps(
            {"x": encrypt(dumps(fields).encode(), HASH_SECRET, iv_mode)})  # Decimals as numbers
        headers = {"merchant-id": merchant_id} if merchant_id is not None else {}
        response = self.client.post(f"/api/v2/{path}", data=body, headers=headers,
                                    content_type="application/json")
        assert response.status_code == 200 and response.content_type == "application/json"
        return json.loads(response.get_data(), parse_float=Decimal)

    def add(self, token, user_id, order_no, amount=10, override=None, **extra):
        return self.send("order/add", {"token": token, "user_id": int(user_id), "order_no": order_no,
                                       "username": "u", "entry_key": "pc28-1", "round_id": 72847940,
                                       "currency": "USDT", "amount": amount, "bet_info": BET_INFO,
                                       **extra, **(override or {})})

    def update(self, user_id, order_no, status, amount=10, prize=0, tax=0, bonus=0, **extra):
        return self.send("order/update", {
            "user_id": str(user_id), "username": "u", "order_no": order_no, "entry_key": "pc28-1",
            "round_id": "72847940", "amount": amount, "currency": "USDT", "status": status,
            "prize": prize, "tax": tax, "bonus": bonus, "bet_time": 1749200012000,
            "bet_info": BET_INFO, "is_win": prize > 0, **extra})


@pytest.fixture
def hash_api(app):
    return Hash(app)


@pytest.fixture
def player(app):
    return new_player(app, "1000", currency="USD", extra_currencies=("USDT",))


def order_no():
    return uuid.uuid4().hex[:18]


def test_user_info_and_balance(hash_api, player):
    user_id, token = player
    assert hash_api.send("user/info", {"token": token}) == {
        "code": 0, "msg": "SUCCESS",
        "data": {"user_id": int(user_id), "username": hash_api.send("user/info", {"token": token})[
            "data"]["username"], "avatar": ""}}
    assert hash_api.send("user/balance", {"token": token, "currency": "USDT"})["data"] == {
        "user_id": int(user_id), "balance": 1000, "currency": "USDT"}
    assert hash_api.send("user/info", {"token": "nope"}) == {"code": 2001, "msg": "invalid token or user"}
    assert hash_api.send("user/balance", {"token": token, "currency": "TRX"})["code"] == 2003


def test_bet_then_settle_credits_once(hash_api, player, app):
    user_id, token = player
    order = order_no()
    assert hash_api.add(token, user_id, order, amount=Decimal("10.5"))["data"] == {
        "order_no": order, "balance": Decimal("989.5"), "currency": "USDT"}
    assert hash_api.update(user_id, order, 3, amount=Decimal("10.5"))["data"]["balance"] == Decimal("989.5")
    settled = hash_api.update(user_id, order, 1, amount=Decimal("10.5"), prize=21, tax=1, bonus=2)
    assert settled["data"]["balance"] == Decimal("1012.5")           # prize + bonus (the default)
    for _ in range(3):                                               # Hash retries every minute
        assert hash_api.update(user_id, order, 1, amount=Decimal("10.5"), prize=21, tax=1, bonus=2
                               )["data"]["balance"] == Decimal("1012.5")
    assert hash_api.update(user_id, order, 4, amount=Decimal("10.5"))["code"] == 3003  # final
    assert [(r.op, r.amount) for r in ledger_rows(app, user_id) if r.ref == order] == [
        ("order_add", Decimal("-10.5")), ("order_settle", 23)]


def test_bet_then_lose_moves_nothing_more(hash_api, player):
    user_id, token = player
    order = order_no()
    hash_api.add(token, user_id, order)
    assert hash_api.update(user_id, order, 1)["data"]["balance"] == 990


@pytest.mark.parametrize("final", [2, 4])  # Failed, Cancelled
def test_fail_or_cancel_refunds_once(hash_api, player, final):
    user_id, token = player
    order = order_no()
    hash_api.add(token, user_id, order, amount=Decimal("0.000001"))
    assert hash_api.update(user_id, order, final, amount=Decimal("0.000001"))["data"]["balance"] == 1000
    assert hash_api.update(user_id, order, final, amount=Decimal("0.000001"))["data"]["balance"] == 1000
    assert hash_api.update(user_id, order, 1, amount=Decimal("0.000001"), prize=5)["code"] == 3003
    assert hash_api.send("user/balance", {"token": token, "currency": "USDT"})["data"]["balance"] == 1000


def test_repeated_add_answers_the_original_success(hash_api, player, app):
    user_id, token = player
    order = order_no()
    first = hash_api.add(token, user_id, order)
    assert hash_api.add(token, user_id, order) == first
    assert hash_api.add(token, user_id, order, amount=11) == {
        "code": 3001, "msg": "order_no already used with different data"}
    assert len([r for r in ledger_rows(app, user_id) if r.ref == order]) == 1


def test_unknown_orders(hash_api, player):
    user_id, token = player
    assert hash_api.update(user_id, order_no(), 1, prize=5)["code"] == 3002
    assert hash_api.update(user_id, order_no(), 3)["code"] == 3002
    cancelled = order_no()
    assert hash_api.update(user_id, cancelled, 4)["data"]["balance"] == 1000  # recorded no-op
    assert hash_api.add(token, user_id, cancelled)["code"] == 3001             # late add refused
    assert hash_api.update(user_id, cancelled, 4)["code"] == 0                 # retry still fine
    assert hash_api.send("user/balance", {"token": token, "currency": "USDT"})["data"]["balance"] == 1000


def test_insufficient_balance_and_wrong_user(hash_api, player, app):
    user_id, token = player
    assert hash_api.add(token, user_id, order_no(), amount=Decimal("1000.000001")) == {
        "code": 2002, "msg": "insufficient balance"}
    assert hash_api.add(token, int(user_id) + 1, order_no())["code"] == 2001
    assert hash_api.add(token, user_id, order_no(), currency="TRX")["code"] == 2003
    order = order_no()
    hash_api.add(token, user_id, order)
    assert hash_api.update(int(user_id) + 1, order, 1, prize=5)["code"] == 3001
    assert hash_api.update(user_id, order, 1, amount=9, prize=5)["code"] == 3001


def test_payout_formula_is_a_setting(player, app):
    app.config["HASH_PAYOUT"] = "prize-tax+bonus"
    hash_api, (user_id, token), order = Hash(app), player, order_no()
    hash_api.add(token, user_id, order)
    assert hash_api.update(user_id, order, 1, prize=20, tax=2, bonus=1)["data"]["balance"] == 1009


def test_balances_are_exact_json_numbers(hash_api, player, app):
    user_id, token = player
    hash_api.add(token, user_id, order_no(), amount=Decimal("0.123457"))
    response = hash_api.client.post("/api/v2/user/balance", headers={"merchant-id": MERCHANT_ID},
                                    data=json.dumps({"x": encrypt(json.dumps(
                                        {"timestamp": int(time.time() * 1000), "request_id": "r",
                                         "token": token, "currency": "USDT"}).encode(), HASH_SECRET)}))
    assert b'"balance":999.876543,' in response.get_data()


def test_key16_requests_and_encrypted_answers(hash_api, player, app):
    _, token = player
    app.config.update(HASH_ENCRYPT_RESPONSES="1", HASH_IV_MODE="key16")
    answer = hash_api.send("user/balance", {"token": token, "currency": "USDT"}, iv_mode="key16")
    assert set(answer) == {"x"}
    assert decrypt(answer["x"], HASH_SECRET)["data"]["balance"] == 1000


def encrypted(plain) -> str:
    return json.dumps({"x": encrypt(json.dumps(plain).encode(), HASH_SECRET)})


def now_ms():
    return int(time.time() * 1000)


BAD = [  # (what is wrong, how to send it, the code)
    ("no merchant-id", dict(merchant_id=None), 1003),
    ("wrong merchant-id", dict(merchant_id="M202405120001"), 1003),
    ("body not JSON", dict(raw="x=1"), 1001),
    ("no x", dict(raw='{"y": "AAAA"}'), 1001),
    ("x not Base64", dict(raw='{"x": "%%%"}'), 1002),
    ("wrong key", dict(raw=json.dumps({"x": encrypt(b'{"timestamp": 1}', "k" * 32)})), 1002),
    ("bad padding", dict(raw=json.dumps({"x": "A" * 44})), 1002),
    ("plaintext not an object", dict(raw=json.dumps({"x": encrypt(b"[1]", HASH_SECRET)})), 1002),
    ("stale timestamp", dict(raw=encrypted({"timestamp": 1650123456789, "request_id": "r"})), 1004),
    ("timestamp in seconds", dict(raw=encrypted({"timestamp": 1650123456, "request_id": "r"})), 1001),
    ("timestamp a string", dict(raw=encrypted({"timestamp": "1650123456789", "request_id": "r"})), 1001),
    ("no request_id", dict(raw=encrypted({"timestamp": now_ms()})), 1001),
]


@pytest.mark.parametrize("what, how, code", BAD, ids=[b[0] for b in BAD])
def test_bad_envelopes(hash_api, player, app, what, how, code):
    user_id, token = player
    before = ledger_rows(app, user_id)
    assert hash_api.send("order/add", {"token": token}, **how)["code"] == code
    assert ledger_rows(app, user_id) == before


BAD_FIELDS = [
    ({"amount": -1}, 1001), ({"amount": 0}, 1001), ({"amount": "10"}, 1001), ({"amount": True}, 1001),
    ({"amount": Decimal("1.0000001")}, 1001), ({"amount": 1e20}, 1001),
    ({"bet_info": [{"key": "Big"}]}, 1001), ({"bet_info": "not json"}, 1001), ({"bet_info": "{}"}, 1001),
    ({"order_no": ""}, 1001), ({"order_no": "x" * 65}, 1001), ({"order_no": 5}, 1001),
    ({"user_id": "abc"}, 1001), ({"user_id": -3}, 1001), ({"round_id": None}, 1001),
    ({"currency": "EUR"}, 2003), ({"token": ""}, 1001),
]


@pytest.mark.parametrize("change, code", BAD_FIELDS)
def test_bad_order_fields_write_nothing(hash_api, player, app, change, code):
    user_id, token = player
    before = ledger_rows(app, user_id)
    assert hash_api.add(token, user_id, order_no(), override=change)["code"] == code
    assert ledger_rows(app, user_id) == before


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_amounts(hash_api, player, app, text):
    user_id, token = player
    plain = json.dumps({"timestamp": now_ms(), "request_id": "r", "token": token, "user_id": int(user_id),
                        "order_no": "o1", "username": "u", "entry_key": "e", "round_id": 1,
                        "amount": 1, "bet_info": "[]"}).replace('"amount": 1', f'"amount": {text}')
    raw = json.dumps({"x": encrypt(plain.encode(), HASH_SECRET)})
    assert hash_api.send("order/add", {}, raw=raw)["code"] == 1001
    with app.extensions["engine"].connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(hash_schema.hash_orders)).scalar() == 0


def test_bad_update_fields(hash_api, player):
    user_id, token = player
    order = order_no()
    hash_api.add(token, user_id, order)
    assert hash_api.update(user_id, order, 5)["code"] == 1001
    assert hash_api.update(user_id, order, "1")["code"] == 1001
    assert hash_api.update(user_id, order, 1, prize=-5)["code"] == 1001


def test_unknown_path_and_method_answer_in_the_envelope(hash_api):
    assert hash_api.client.post("/api/v2/order/remove").get_json()["code"] == 1001
    assert hash_api.client.get("/api/v2/order/add").get_json()["code"] == 1001


def test_hash_encrypt_command_makes_a_request_that_works(app, player):
    _, token = player
    output = app.test_cli_runner().invoke(args=[
        "hash-encrypt", json.dumps({"token": token, "currency": "USDT"}), "--path", "/api/v2/user/balance"
    ]).output
    body, curl = output.splitlines()
    assert f"merchant-id: {MERCHANT_ID}" in curl and "/api/v2/user/balance" in curl
    response = app.test_client().post("/api/v2/user/balance", data=body,
                                      headers={"merchant-id": MERCHANT_ID})
    assert response.get_json()["data"]["balance"] == 1000
