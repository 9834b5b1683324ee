"""Hash merchant endpoints through the Flask app, on every database: the envelope (one IV form, one
answer for every envelope that does not open), request_ids remembered for the window, the order
lifecycle of docs/hash.md §6.2, the rules an update must pass (it describes the stored bet, a sane
payout, room in the balance), sessions and blocked players, and the bad-input codes, each with
nothing written."""
import base64
import json
import logging
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from Crypto.Cipher import AES
from conftest import (DATABASES, HASH_SECRET, MERCHANT_ID, TEST_CONFIG, ledger_rows, new_player,
                      prepare_database)

from wallet.app import create_app
from wallet.core import accounts
from wallet.hash.fields import dumps
from wallet.hash.envelope import decrypt, encrypt
from wallet.hash.memory_wallet import MemoryHashWallet
from wallet.hash import schema as hash_schema
from wallet.core import schema

# A bet of 10 at 3.00×: it could win 30, and a settle may pay that plus one stake of bonus
# (docs/hash.md §11.4), room for the prizes these tests (and test_hash_reconcile's) settle with.
BET_INFO = '[{"key":"Big","name":"Big","odds":300,"amount":10}]'


class Hash:
    def __init__(self, app):
        self.app, self.client = app, app.test_client()

    def send(self, path, plain: dict, *, merchant_id=MERCHANT_ID, iv_mode="prefix", raw=None):
        body = raw if raw is not None else seal(plain, iv_mode)
        return json.loads(self.post(path, body, merchant_id), parse_float=Decimal)

    def post(self, path, body, merchant_id=MERCHANT_ID) -> bytes:
        """The answer's bytes."""
        headers = {"merchant-id": merchant_id} if merchant_id is not None else {}
        response = self.client.post(f"/api/v2/{path}", data=body, headers=headers,
                                    content_type="application/json")
        assert response.status_code == 200 and response.content_type == "application/json"
        return response.get_data()

    def add(self, token, user_id, order_no, amount=10, override=None, **extra):
        return self.send("order/add", {"token": token, "user_id": int(user_id), "order_no": order_no,
                                       "username": "u", "entry_key": "pc28-1", "round_id": 72847940,
                                       "currency": "USDT", "amount": amount, "bet_info": BET_INFO,
                                       **extra, **(override or {})})

    def update(self, user_id, order_no, status, amount=10, prize=0, tax=0, bonus=0, override=None,
               **extra):
        return self.send("order/update", {
            "user_id": str(user_id), "username": "u", "order_no": order_no, "entry_key": "pc28-1",
            "round_id": "72847940", "amount": amount, "currency": "USDT", "status": status,
            "prize": prize, "tax": tax, "bonus": bonus, "bet_time": 1749200012000,
            "bet_info": BET_INFO, "is_win": prize > 0, **extra, **(override or {})})


def seal(plain: dict, iv_mode="prefix") -> str:
    """A request body as Hash sends it: a fresh timestamp and request_id unless `plain` has them."""
    fields = {"timestamp": int(time.time() * 1000), "request_id": uuid.uuid4().hex, **plain}
    return json.dumps({"x": encrypt(dumps(fields).encode(), HASH_SECRET, iv_mode)})  # Decimals as numbers


@pytest.fixture
def hash_api(app):
    return Hash(app)


@pytest.fixture
def player(app):
    return new_player(app, "1000", currency="USD", extra_currencies=("USDT",))


@pytest.fixture(params=DATABASES + ("memory",))
def either(request, tmp_path):
    """(Hash API, player) on the SQL HashWallet of each database, then on the MemoryHashWallet:
    the tests that take it expect the same answers from each."""
    if request.param != "memory":
        app = create_app({**TEST_CONFIG, "DATABASE_URL": prepare_database(request.param, tmp_path)})
        yield Hash(app), new_player(app, "1000", currency="USD", extra_currencies=("USDT",))
        app.extensions["engine"].dispose()
        return
    memory = MemoryHashWallet()
    player_id = memory.add_player("p", {"USD": Decimal(1000), "USDT": Decimal(1000)})
    token = memory.open_session(player_id, str(uuid.uuid4()))
    yield Hash(create_app({**TEST_CONFIG, "DATABASE_URL": "sqlite://"}, hash_wallet=memory)), (
        str(player_id), token)


def order_no():
    return uuid.uuid4().hex[:18]


def test_user_info_and_balance(either):
    hash_api, player = either
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


def test_bet_then_lose_moves_nothing_more(either):
    hash_api, player = either
    user_id, token = player
    order = order_no()
    hash_api.add(token, user_id, order)
    assert hash_api.update(user_id, order, 1)["data"]["balance"] == 990


@pytest.mark.parametrize("final", [2, 4])  # Failed, Cancelled
def test_fail_or_cancel_refunds_once(either, final):
    hash_api, player = either
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


def test_unknown_orders(either):
    hash_api, player = either
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
    before, short = hash_state(app), order_no()
    assert hash_api.add(token, user_id, short, amount=Decimal("1000.000001")) == {
        "code": 2002, "msg": "insufficient balance"}
    assert hash_state(app) == before  # the order booked first is taken back with the call
    assert hash_api.add(token, user_id, short, amount=1000)["data"]["balance"] == 0  # its order_no is free
    hash_api.update(user_id, short, 2, amount=1000)  # refunded: the stake back for the rest
    assert hash_api.add(token, int(user_id) + 1, order_no())["code"] == 2001
    assert hash_api.add(token, user_id, order_no(), currency="TRX")["code"] == 2003
    order = order_no()
    hash_api.add(token, user_id, order)
    assert hash_api.update(int(user_id) + 1, order, 1, prize=5)["code"] == 3001
    assert hash_api.update(user_id, order, 1, amount=9, prize=5)["code"] == 3001


def test_payout_formula_is_a_setting(player_app):
    app, (user_id, token) = player_app({"HASH_PAYOUT": "prize-tax+bonus"})
    hash_api, order = Hash(app), order_no()
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
    assert decrypt(answer["x"], HASH_SECRET, "key16")["data"]["balance"] == 1000


def add_fields(token, user_id, order=None) -> dict:
    return {"token": token, "user_id": user_id, "order_no": order or order_no(), "username": "u",
            "entry_key": "pc28-1", "round_id": 72847940, "currency": "USDT", "amount": 10,
            "bet_info": BET_INFO}


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
    ("stale timestamp", lambda token, user_id: dict(raw=encrypted(  # a whole add: 1004 is checked last
        {"timestamp": 1650123456789, "request_id": "r", **add_fields(token, user_id)})), 1004),
    ("timestamp in seconds", dict(raw=encrypted({"timestamp": 1650123456, "request_id": "r"})), 1001),
    ("timestamp a string", dict(raw=encrypted({"timestamp": "1650123456789", "request_id": "r"})), 1001),
    ("no request_id", lambda *_: dict(raw=encrypted({"timestamp": now_ms()})), 1001),  # sealed when run
]


@pytest.mark.parametrize("what, how, code", BAD, ids=[b[0] for b in BAD])
def test_bad_envelopes(hash_api, player, app, what, how, code):
    user_id, token = player
    before = ledger_rows(app, user_id)
    how = how(token, int(user_id)) if callable(how) else how
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


def test_bad_update_fields(either):
    hash_api, player = either
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


# ---- the envelope: one IV form, one answer for every failure --------------------------------------
@pytest.mark.parametrize("mode, refused", [("prefix", "key16"), ("key16", "prefix")])
def test_only_the_configured_iv_form_opens(hash_api, player, app, mode, refused):
    _, token = player
    app.config["HASH_IV_MODE"] = mode
    balance = {"token": token, "currency": "USDT"}
    assert hash_api.send("user/balance", balance, iv_mode=mode)["code"] == 0
    assert hash_api.send("user/balance", balance, iv_mode=refused) == {"code": 1002,
                                                                       "msg": "cannot decrypt x"}


def test_accept_both_opens_either_form(hash_api, player, app):
    _, token = player
    app.config["HASH_IV_MODE"] = "accept-both"
    for form in ("prefix", "key16"):
        assert hash_api.send("user/balance", {"token": token, "currency": "USDT"}, iv_mode=form)[
            "code"] == 0


def key16_blocks(plain_with_padding: bytes) -> str:
    cipher = AES.new(HASH_SECRET.encode(), AES.MODE_CBC, HASH_SECRET[:16].encode())
    return json.dumps({"x": base64.b64encode(cipher.encrypt(plain_with_padding)).decode()})


def test_every_envelope_that_does_not_open_gets_the_same_bytes(hash_api, app):
    """No padding oracle: bad padding and bad JSON (and the rest) cannot be told apart."""
    app.config["HASH_IV_MODE"] = "key16"
    good = b'{"timestamp": 1}'
    assert hash_api.send("user/info", {}, raw=key16_blocks(good + bytes([16]) * 16))["code"] == 1001
    answers = {hash_api.post("user/info", body) for body in [
        key16_blocks(good + bytes([15]) * 16),                     # bad padding
        key16_blocks(b'{"timestamp": 1,' + bytes([16]) * 16),      # good padding, not JSON
        key16_blocks(b'["timestamp", 1]' + bytes([16]) * 16),      # JSON, not an object
        key16_blocks(b'{"timestamp":\xff1}' + bytes([16]) * 16),    # not UTF-8
        json.dumps({"x": encrypt(good, "k" * 32, "key16")}),        # another key
        json.dumps({"x": "%%%"}),                                   # not Base64
        json.dumps({"x": base64.b64encode(b"x" * 17).decode()}),   # not whole blocks
    ]}
    assert answers == {b'{"code":1002,"msg":"cannot decrypt x"}'}


# ---- helpers shared with tests/test_hash_request_ids.py -------------------------------------------
def hash_state(app):
    """Everything a Hash call may change, but the request_ids."""
    with app.extensions["engine"].connect() as conn:
        return (conn.execute(sa.select(schema.ledger).order_by(schema.ledger.c.id)).all(),
                conn.execute(sa.select(schema.wallets).order_by(schema.wallets.c.id)).all(),
                conn.execute(sa.select(hash_schema.hash_orders).order_by(hash_schema.hash_orders.c.order_no)).all())


def balances_wallet(conn, user_id, currency):
    return conn.execute(sa.select(schema.wallets.c.id).where(
        schema.wallets.c.player_id == int(user_id), schema.wallets.c.currency == currency)).scalar()


def hold_the_wallet(app, user_id):
    """Another transaction holding the player's wallet row (SQLite: the write lock); its
    connection, to roll back."""
    conn = sa.create_engine(app.config["DATABASE_URL"]).connect()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        return conn
    conn.begin()
    conn.execute(sa.select(schema.wallets).where(schema.wallets.c.player_id == int(user_id))
                 .with_for_update()).all()
    return conn


def test_lock_order_holds_the_order_and_its_wallet_until_the_transaction_ends(app, player):
    """SqlHashWallet.lock_order: one statement locks both rows (wallet/hash/orders.py, Locks), so a
    call that had to wait for either reads it as the call before it left it."""
    if app.extensions["engine"].dialect.name == "sqlite":
        pytest.skip("SQLite has no row locks: a writer holds the whole database")
    user_id, token = player
    order = order_no()
    Hash(app).add(token, user_id, order)
    engine, wallet = app.extensions["engine"], app.extensions["hash_wallet"]
    other = sa.create_engine(app.config["DATABASE_URL"])
    orders_table = hash_schema.hash_orders
    with engine.connect() as holder, other.connect() as conn:
        holder.begin()
        locked_order, locked_wallet = wallet.lock_order(holder, order)
        assert (locked_order.order_no, locked_order.status, locked_wallet.player_id) == (order, 0, int(user_id))
        assert wallet.lock_order(holder, "no such order") is None
        for held in (sa.select(orders_table).where(orders_table.c.order_no == order),
                     sa.select(schema.wallets).where(schema.wallets.c.player_id == int(user_id))):
            conn.begin()
            with pytest.raises(sa.exc.DBAPIError):
                conn.execute(held.with_for_update(nowait=True)).all()
            conn.rollback()
        holder.rollback()
    other.dispose()


@pytest.fixture
def player_app(database_url):
    """An app with these settings and a player with 1000 USDT."""
    made = []

    def make(settings):
        app = create_app({**TEST_CONFIG, "DATABASE_URL": database_url, **settings})
        made.append(app)
        return app, new_player(app, "1000", currency="USDT")
    yield make
    for app in made:
        app.extensions["engine"].dispose()


# ---- an update must describe the stored bet -------------------------------------------------------
@pytest.fixture
def other_player(app):
    return new_player(app, "1000", currency="USDT")


@pytest.mark.parametrize("field", ["user_id", "currency", "amount", "round_id", "entry_key"])
def test_an_update_that_does_not_describe_the_stored_bet_is_refused(
        hash_api, player, other_player, app, caplog, field):
    user_id, token = player
    order = order_no()
    hash_api.add(token, user_id, order)
    before = hash_state(app)
    changed = {"user_id": {"user_id": other_player[0]}, "currency": {"currency": "USD"},
               "amount": {"amount": 11}, "round_id": {"round_id": "72847941"},
               "entry_key": {"entry_key": "pc28-2"}}[field]
    with caplog.at_level(logging.ERROR, logger="wallet.hash.orders"):
        assert hash_api.update(user_id, order, 1, prize=20, override=changed) == {
            "code": 3001, "msg": f"order_no already used with different data: {field} differs from "
                                 "the stored order"}
    assert hash_state(app) == before
    refusals = [r for r in caplog.records if r.name == "wallet.hash.orders"]
    assert [r.levelname for r in refusals] == ["ERROR"] and field in refusals[0].getMessage()
    assert hash_api.update(user_id, order, 1, prize=20)["data"]["balance"] == 1010  # the real one


def test_bet_info_may_change_at_settle(either):
    hash_api, player = either
    user_id, token = player
    order = order_no()
    hash_api.add(token, user_id, order)
    settled = '[{"key":"Big","name":"Big","odds":200,"amount":10,"is_win":true,"prize":20}]'
    assert hash_api.update(user_id, order, 1, prize=20, bet_info=settled)["data"]["balance"] == 1010


@pytest.mark.parametrize("final, result", [(1, {"prize": 20}), (1, {"tax": 1}), (1, {"bonus": 1}),
                                           (4, {"prize": 5})])
def test_a_repeated_final_status_with_another_result_is_refused(hash_api, player, app, caplog, final,
                                                                result):
    user_id, token = player
    order = order_no()
    hash_api.add(token, user_id, order)
    first = {"prize": 0, "tax": 0, "bonus": 0} | ({"prize": 15} if final == 1 else {})
    assert hash_api.update(user_id, order, final, **first)["code"] == 0
    assert hash_api.update(user_id, order, final, **first)["code"] == 0  # the same: a retry
    before = hash_state(app)
    with caplog.at_level(logging.ERROR, logger="wallet.hash.orders"):
        assert hash_api.update(user_id, order, final, **(first | result))["code"] == 3001
    assert hash_state(app) == before
    assert next(iter(result)) in caplog.records[-1].getMessage()


# ---- a settle cannot pay an absurd amount ---------------------------------------------------------
def test_a_payout_over_the_multiple_of_the_stake_is_refused(hash_api, player, app, caplog):
    user_id, token = player
    order = order_no()
    hash_api.add(token, user_id, order, amount=Decimal("0.01"))
    before = hash_state(app)
    with caplog.at_level(logging.ERROR, logger="wallet.hash.orders"):
        assert hash_api.update(user_id, order, 1, amount=Decimal("0.01"), prize=9, bonus=Decimal("1.01")
                               ) == {"code": 3001, "msg": "order_no already used with different data: "
                                                          "payout is more than 1000 times the amount"}
    assert hash_state(app) == before and "HASH_MAX_PAYOUT_MULTIPLE" in caplog.records[-1].getMessage()
    assert hash_api.update(user_id, order, 1, amount=Decimal("0.01"), prize=9, bonus=1  # exactly 1000x
                           )["data"]["balance"] == Decimal("1009.99")


NO_ODDS = '[{"key":"Big","name":"Big","amount":10}]'  # bet_info that says nothing of what it could win


def test_the_payout_multiple_is_a_setting(player_app):
    app, (user_id, token) = player_app({"HASH_MAX_PAYOUT_MULTIPLE": "2"})
    hash_api, order = Hash(app), order_no()
    hash_api.add(token, user_id, order, bet_info=NO_ODDS)
    assert hash_api.update(user_id, order, 1, prize=21)["code"] == 3001
    assert hash_api.update(user_id, order, 1, prize=20)["data"]["balance"] == 1010


# ---- no balance past the wallet's limit -----------------------------------------------------------
@pytest.mark.parametrize("final", [1, 4])  # a win, a refund
def test_a_credit_past_the_balance_limit_is_refused(hash_api, player, app, final):
    user_id, token = player
    order = order_no()
    hash_api.add(token, user_id, order)
    with app.extensions["engine"].begin() as conn:  # 10 below the limit after the bet
        accounts.top_up(conn, balances_wallet(conn, user_id, "USDT"),
                        Decimal(10) ** 18 - 10 - Decimal(990))
    before = hash_state(app)
    assert hash_api.update(user_id, order, final, prize=10 if final == 1 else 0) == {
        "code": 1001, "msg": "invalid parameters: amount would take the balance over the wallet's limit"}
    assert hash_state(app) == before
    if final == 1:  # a win that leaves the balance just under the limit is paid
        assert hash_api.update(user_id, order, 1, prize=Decimal("9.999999"))["code"] == 0


# ---- sessions and blocked players -----------------------------------------------------------------
def test_a_closed_or_expired_session_is_no_token(hash_api, player, app):
    user_id, token = player
    with app.extensions["engine"].begin() as conn:
        conn.execute(sa.update(schema.sessions).where(schema.sessions.c.token == token)
                     .values(expires_at=schema.utcnow() - timedelta(seconds=1)))
    before = hash_state(app)
    expired = {"code": 2001, "msg": "invalid token or user: session has expired"}
    assert hash_api.send("user/info", {"token": token}) == expired
    assert hash_api.send("user/balance", {"token": token, "currency": "USDT"}) == expired
    assert hash_api.add(token, user_id, order_no()) == expired
    with app.extensions["engine"].begin() as conn:
        accounts.close_session(conn, token)
    closed = {"code": 2001, "msg": "invalid token or user: session is closed"}
    assert hash_api.send("user/info", {"token": token}) == closed
    assert hash_api.send("user/balance", {"token": token, "currency": "USDT"}) == closed
    assert hash_api.add(token, user_id, order_no()) == closed
    assert hash_state(app) == before


def test_an_ended_session_still_settles_its_bets(hash_api, player, app):
    user_id, token = player
    won, cancelled = order_no(), order_no()
    hash_api.add(token, user_id, won)
    hash_api.add(token, user_id, cancelled)
    with app.extensions["engine"].begin() as conn:
        accounts.close_session(conn, token)
    assert hash_api.update(user_id, won, 1, prize=30)["data"]["balance"] == 1010
    assert hash_api.update(user_id, cancelled, 4)["data"]["balance"] == 1020


def test_a_blocked_player_reads_and_is_paid_but_places_no_bet(hash_api, player, app):
    user_id, token = player
    pending = order_no()
    hash_api.add(token, user_id, pending)
    with app.extensions["engine"].begin() as conn:
        accounts.set_player_status(conn, int(user_id), "blocked")
    assert hash_api.send("user/info", {"token": token})["data"]["user_id"] == int(user_id)
    assert hash_api.send("user/balance", {"token": token, "currency": "USDT"})["data"]["balance"] == 990
    before = hash_state(app)
    assert hash_api.add(token, user_id, order_no()) == {
        "code": 2001, "msg": "invalid token or user: player is blocked"}
    assert hash_state(app) == before
    assert hash_api.update(user_id, pending, 1, prize=25)["data"]["balance"] == 1015  # never lost


# ---- text no database can store, and the same limits on every database ---------------------------
TEXT_FIELDS = {"user/info": ["token", "request_id"], "user/balance": ["token", "currency"],
               "order/add": ["token", "order_no", "currency", "entry_key", "round_id", "bet_info"],
               "order/update": ["order_no", "currency", "entry_key", "round_id", "bet_info"]}
CASES = [(path, field) for path, fields in TEXT_FIELDS.items() for field in fields]


def call(hash_api, path, token, user_id, order, fields):
    """A call of `path` for the player's bet `order` (a cancel, for order/update), with `fields`
    replacing any of its fields."""
    if path == "order/add":
        return hash_api.add(token, user_id, order, override=fields)
    if path == "order/update":
        return hash_api.update(user_id, order, 4, override=fields)
    return hash_api.send(path, {"token": token, **fields})


@pytest.mark.parametrize("bad", ["\ud800", "a\udfffb", "a\x00"])
@pytest.mark.parametrize("path, field", CASES)
def test_text_no_database_can_store_is_1001_naming_the_field(hash_api, player, app, path, field, bad):
    user_id, token = player
    order = order_no()
    if path == "order/update":
        hash_api.add(token, user_id, order)
    value = f'["{bad}"]' if field == "bet_info" else bad
    before = hash_state(app)
    assert call(hash_api, path, token, user_id, order, {field: value}) == {
        "code": 1001, "msg": f"invalid parameters: {field} must be valid UTF-8 text without NUL"}
    assert hash_state(app) == before


KEYS = {"user/info": ["token", "request_id"], "user/balance": ["currency"],
        "order/add": ["token", "order_no", "currency"], "order/update": ["order_no", "currency"]}


@pytest.mark.parametrize("blank", [" ", "\t"])
@pytest.mark.parametrize("path, field", [(path, field) for path, fields in KEYS.items() for field in fields])
def test_a_key_with_a_blank_around_it_is_1001_on_every_database(hash_api, player, app, path, field, blank):
    """Was, on MariaDB: order/add "H1 " after "H1" answered the first add's success and debited
    nothing, while PostgreSQL booked a second bet (PAD SPACE collations); and an add in "USDT "
    debited the USDT wallet, after which every update was 3001."""
    user_id, token = player
    order = order_no()
    assert hash_api.add(token, user_id, order)["code"] == 0
    value = {"token": token, "order_no": order, "request_id": order, "currency": "USDT"}[field] + blank
    before = hash_state(app)
    for keyed in (value, blank + value.strip()):
        assert call(hash_api, path, token, user_id, order, {field: keyed}) == {
            "code": 1001, "msg": f"invalid parameters: {field} must not start or end with a blank"}
    assert hash_state(app) == before


LIMITS = {"token": 255, "request_id": 128, "currency": 16, "order_no": 64, "entry_key": 64,
          "round_id": 64}
WIDE = "\U0001F3B2"  # 4 bytes in UTF-8: a column counting bytes would overflow first


def at_length(field, n):
    if field == "bet_info":  # a limit in UTF-8 bytes (MySQL's TEXT): n bytes of '["<dice...>a"]'
        dice, rest = divmod(n - 4, 4)
        return '["' + WIDE * dice + "a" * rest + '"]'
    return WIDE * n


@pytest.mark.parametrize("path, field", CASES)
def test_each_text_field_at_its_limit_and_one_past_it(hash_api, player, app, path, field):
    """At the limit the call succeeds and the value is stored whole, on every database; one past
    it is 1001 naming the field, on every database."""
    app.config["MAX_CONTENT_LENGTH"] = 2**20  # room for a 64 KiB bet_info in its envelope
    user_id, token = player
    limit = LIMITS.get(field, 65535)
    value = at_length(field, limit)
    if field == "token":  # a session and a wallet that can have a value this long
        with app.extensions["engine"].begin() as conn:
            conn.execute(sa.insert(schema.sessions).values(
                token=value, player_id=int(user_id), currency="USD", created_at=schema.utcnow(),
                expires_at=schema.utcnow() + timedelta(hours=1)))
    if field == "currency":
        with app.extensions["engine"].begin() as conn:
            accounts.open_wallet(conn, int(user_id), value, Decimal(1000))
    order = order_no()
    if path == "order/update":  # the bet to cancel, with the same value
        bet = {} if field == "request_id" else {field: value}
        assert hash_api.add(token, user_id, order, override=bet)["code"] == 0
    assert call(hash_api, path, token, user_id, order, {field: value})["code"] == 0
    if field in ("order_no", "entry_key", "round_id", "bet_info"):
        with app.extensions["engine"].connect() as conn:
            stored = conn.execute(sa.select(hash_schema.hash_orders.c[field]).where(
                hash_schema.hash_orders.c.order_no == (value if field == "order_no" else order))).scalar()
        assert stored == value
    before = hash_state(app)
    answer = call(hash_api, path, token, user_id, order_no(), {field: at_length(field, limit + 1)})
    assert answer["code"] == 1001 and answer["msg"].startswith(f"invalid parameters: {field} must be")
    assert hash_state(app) == before


# ---- an add for a refunded order is no retry ------------------------------------------------------
@pytest.mark.parametrize("final", [2, 4])
def test_an_add_for_a_refunded_order_is_refused_like_a_tombstone(either, final):
    """Was: SUCCESS with no stake taken, and Hash's later settle got 3003 for ever."""
    hash_api, (user_id, token) = either
    order = order_no()
    hash_api.add(token, user_id, order)
    assert hash_api.update(user_id, order, final)["data"]["balance"] == 1000
    assert hash_api.add(token, user_id, order) == {
        "code": 3001, "msg": "order_no already used with different data: the order was refunded"}
    assert hash_api.send("user/balance", {"token": token, "currency": "USDT"})["data"]["balance"] == 1000


def test_an_add_after_hash_reconcile_refunded_the_order_is_refused(hash_api, player, app):
    """hash-reconcile refunds through the same rule, without a request_id (wallet/hash/reconcile.py)."""
    user_id, token = player
    order = order_no()
    hash_api.add(token, user_id, order)
    app.extensions["hash_wallet"].order_update(
        user_id=int(user_id), order_no=order, currency="USDT", amount=Decimal(10), status=2,
        prize=Decimal(0), tax=Decimal(0), bonus=Decimal(0), bet_info=BET_INFO, entry_key="pc28-1",
        round_id="72847940")
    assert hash_api.add(token, user_id, order)["code"] == 3001
    assert [r.op for r in ledger_rows(app, user_id) if r.ref == order] == ["order_add", "order_refund"]


def test_a_retried_add_for_a_settled_order_is_still_the_same_bet(hash_api, player):
    user_id, token = player
    order = order_no()
    hash_api.add(token, user_id, order)
    hash_api.update(user_id, order, 1, prize=15)
    assert hash_api.add(token, user_id, order)["data"]["balance"] == 1005  # the stake stays taken


# ---- float64 artefacts and the precision rule (docs/hash.md §11.5) ---------------------------------
def with_numbers(plain: dict, **texts) -> str:
    """A request body whose named fields are written as the exact number texts given."""
    fields = {"timestamp": now_ms(), "request_id": uuid.uuid4().hex, **plain,
              **{name: f"@{name}@" for name in texts}}
    text = dumps(fields)
    for name, number in texts.items():
        text = text.replace(f'"@{name}@"', number)
    return json.dumps({"x": encrypt(text.encode(), HASH_SECRET)})


def update_plain(user_id, order, status=1, **fields):
    return {"user_id": str(user_id), "username": "u", "order_no": order, "entry_key": "pc28-1",
            "round_id": "72847940", "amount": 10, "currency": "USDT", "status": status, "prize": 0,
            "tax": 0, "bonus": 0, "bet_time": 1749200012000, "bet_info": BET_INFO, **fields}


def stored_order(app, order):
    with app.extensions["engine"].connect() as conn:
        return conn.execute(sa.select(hash_schema.hash_orders).where(
            hash_schema.hash_orders.c.order_no == order)).one()


def test_a_float64_computed_prize_settles_as_the_value_it_stands_for(hash_api, player, app):
    """1.15 × 1.95 in float64 is written 2.2424999999999997 by Go, JavaScript and Python alike.
    Was: 1001 on all ten tries, and the order open with the stake for ever."""
    user_id, token = player
    order = order_no()
    assert hash_api.send("order/add", {}, raw=with_numbers(
        add_fields(token, int(user_id), order), amount=repr(0.1 + 0.2)))["data"]["balance"] == Decimal("999.7")
    settle = with_numbers(update_plain(user_id, order), amount="0.30000000000000004",
                          prize=repr(1.15 * 1.95))
    assert repr(1.15 * 1.95) == "2.2424999999999997"
    assert hash_api.send("order/update", {}, raw=settle)["data"]["balance"] == Decimal("1001.9425")
    assert stored_order(app, order).prize == Decimal("2.2425")
    assert [r.amount for r in ledger_rows(app, user_id) if r.ref == order] == [Decimal("-0.3"),
                                                                             Decimal("2.2425")]


def test_an_amount_truly_more_precise_is_refused_at_add_and_counted(hash_api, player, app, caplog):
    user_id, token = player
    before = hash_state(app)
    with caplog.at_level(logging.WARNING, logger="wallet.hash.fields"):
        assert hash_api.send("order/add", {}, raw=with_numbers(
            add_fields(token, int(user_id)), amount="1.0000001")) == {
            "code": 1001, "msg": "invalid parameters: amount: more than 6 decimal places"}
    assert hash_state(app) == before
    assert [r.alarm for r in caplog.records if hasattr(r, "alarm")] == ["hash_amount_too_precise"]


def test_a_result_truly_more_precise_closes_the_order_rounded_toward_the_house(hash_api, player, app,
                                                                               caplog):
    """Was: 1001 on every try, the order open for ever. Now: prize and bonus down, tax up, the order
    closed, a WARNING with the alarm field for each rounded amount (docs/hash.md §11.5)."""
    user_id, token = player
    order = order_no()
    hash_api.add(token, user_id, order)
    settle = with_numbers(update_plain(user_id, order), prize="12.3456789", tax="0.0000001",
                          bonus="0.9999999")
    with caplog.at_level(logging.WARNING, logger="wallet.hash.fields"):
        assert hash_api.send("order/update", {}, raw=settle)["data"]["balance"] == Decimal("1003.345677")
    stored = stored_order(app, order)
    assert (stored.status, stored.prize, stored.tax, stored.bonus) == (
        1, Decimal("12.345678"), Decimal("0.000001"), Decimal("0.999999"))
    assert [r.alarm for r in caplog.records if hasattr(r, "alarm")] == ["hash_amount_rounded"] * 3
    assert hash_api.send("order/update", {}, raw=with_numbers(  # Hash's retry: the same outcome
        update_plain(user_id, order), prize="12.3456789", tax="0.0000001", bonus="0.9999999")
                         )["data"]["balance"] == Decimal("1003.345677")


def test_amounts_are_stored_at_six_places_on_every_database(hash_api, player, app):
    """Was, on SQLite: a tax of 0e-1000000 stored as a 1 MB text, three times per settle."""
    user_id, token = player
    order = order_no()
    assert hash_api.send("order/add", {}, raw=with_numbers(
        add_fields(token, int(user_id), order), amount="1e1"))["code"] == 0
    assert hash_api.send("order/update", {}, raw=with_numbers(
        update_plain(user_id, order), prize="0e-1000000", tax="0e-1000000", bonus="0E+5")
                         )["code"] == 0
    columns = [hash_schema.hash_orders.c[name] for name in ("amount", "prize", "tax", "bonus", "payout")]
    with app.extensions["engine"].connect() as conn:  # as the database holds them, as text
        texts = conn.execute(sa.select(*(sa.cast(column, sa.String) for column in columns)).where(
            hash_schema.hash_orders.c.order_no == order)).one()
    assert max(len(text) for text in texts) <= len("10.000000")
    assert stored_order(app, order).amount == 10


@pytest.mark.parametrize("number", ["0." + "0" * 200, "1" + "0" * 5000])
def test_an_absurdly_long_number_text_is_1001(hash_api, player, app, number):
    user_id, token = player
    before = hash_state(app)
    assert hash_api.send("order/add", {}, raw=with_numbers(
        add_fields(token, int(user_id)), amount=number)) == {
        "code": 1001, "msg": "invalid parameters: amount: number text longer than 100 characters"}
    assert hash_state(app) == before


# ---- a settle may pay what the stored bet could win (docs/hash.md §11.4) ---------------------------
TWO_SUB_BETS = '[{"key":"Big","name":"Big","odds":195,"amount":6},{"key":"Even","name":"Even","odds":200,"amount":4}]'


def test_a_settle_is_bounded_by_what_the_bets_sub_bets_could_win(hash_api, player, app, caplog):
    """Was: any payout up to 1000 times the stake, e.g. a lost bet of 10 rewritten to pay 10,000.
    Here the sub-bets could win 6 × 1.95 + 4 × 2.00 = 19.7, plus one stake of bonus allowance."""
    user_id, token = player
    order = order_no()
    hash_api.add(token, user_id, order, bet_info=TWO_SUB_BETS)
    hash_api.update(user_id, order, 3, bet_info='[{"key":"Big","odds":100000,"amount":10}]')
    before = hash_state(app)
    with caplog.at_level(logging.ERROR, logger="wallet.hash.orders"):
        for prize, bonus in ((10000, 0), (Decimal("29.700001"), 0), (20, Decimal("9.700001"))):
            assert hash_api.update(user_id, order, 1, prize=prize, bonus=bonus) == {
                "code": 3001, "msg": "order_no already used with different data: payout is more "
                                     "than its bet_info could win plus 1 stake(s) of bonus "
                                     "(HASH_BONUS_ALLOWANCE)"}
    assert hash_state(app) == before
    assert {r.alarm for r in caplog.records if hasattr(r, "alarm")} == {"hash_payout_over_bound"}
    assert hash_api.update(user_id, order, 1, prize=Decimal("19.7"), bonus=10)["data"]["balance"] == Decimal(
        "1019.7")


def test_a_bonus_over_the_allowance_is_paid_once_the_operator_raises_it(hash_api, player, database_url):
    """A real settle refused by the bound (a bonus of 5 stakes, say a jackpot) is not left open for
    ever: once Hash confirms it, the operator raises HASH_BONUS_ALLOWANCE and Hash's next retry (or
    hash-reconcile, which runs the same rules) settles it, once."""
    user_id, token = player
    order = order_no()
    hash_api.add(token, user_id, order, bet_info=TWO_SUB_BETS)
    assert hash_api.update(user_id, order, 1, prize=Decimal("19.7"), bonus=50)["code"] == 3001
    raised = create_app({**TEST_CONFIG, "DATABASE_URL": database_url, "HASH_BONUS_ALLOWANCE": "5"})
    retry = Hash(raised)
    assert retry.update(user_id, order, 1, prize=Decimal("19.7"), bonus=50)["data"]["balance"] == Decimal("1059.7")
    assert retry.update(user_id, order, 1, prize=Decimal("19.7"), bonus=50)["data"]["balance"] == Decimal("1059.7")
    raised.extensions["engine"].dispose()


@pytest.mark.parametrize("bet_info", [
    NO_ODDS, '[{"key":"Big","odds":1.95,"amount":10}]', '[{"key":"Big","odds":200,"amount":5}]', "[]"])
def test_bet_info_that_says_nothing_usable_falls_back_to_the_multiple(hash_api, player, bet_info):
    """No odds, odds not in hundredths, sub-bets that do not add up to the stake, none at all."""
    user_id, token = player
    order = order_no()
    hash_api.add(token, user_id, order, bet_info=bet_info)
    assert hash_api.update(user_id, order, 1, prize=10001)["code"] == 3001
    assert hash_api.update(user_id, order, 1, prize=10000)["data"]["balance"] == 10990


def test_a_captured_loss_rewritten_in_any_block_to_pay_10000_is_refused(hash_api, player, app, caplog):
    """Issue 26.5, replayed: without a MAC every 16-byte block of a captured `x` is settable (drop
    the blocks before it, send the block before it as the IV: docs/hash.md §11.1). Hash's loss,
    with an unread field before `prize`, becomes a win of 10,000 for a bet of 10: inside the flat
    1000× that let it through before; over what the bet could win (30, plus a stake of bonus)."""
    user_id, token = player
    order = order_no()
    hash_api.add(token, user_id, order)
    loss = {"remark": "a" * 9, "prize": 0, "tax": 0, "bonus": 0, "timestamp": now_ms(),
            "request_id": uuid.uuid4().hex, **update_plain(user_id, order)}
    text = dumps(loss).encode()  # {"remark":"aaaaa | aaaa","prize":0, | "tax":0,...
    assert text[16:32] == b'aaaa","prize":0,'
    raw = base64.b64decode(encrypt(text, HASH_SECRET))  # IV, C0, C1, ...
    chosen = b'{"prize":10000, '
    iv = bytes(c ^ p ^ q for c, p, q in zip(raw[16:32], text[16:32], chosen))  # C0 ^ P1 ^ P1'
    forged = json.dumps({"x": base64.b64encode(iv + raw[32:]).decode()})
    assert decrypt(json.loads(forged)["x"], HASH_SECRET, "prefix")["prize"] == 10000
    before = hash_state(app)
    with caplog.at_level(logging.ERROR, logger="wallet.hash.orders"):
        assert hash_api.send("order/update", {}, raw=forged) == {
            "code": 3001, "msg": "order_no already used with different data: payout is more than "
                                 "its bet_info could win plus 1 stake(s) of bonus (HASH_BONUS_ALLOWANCE)"}
        assert hash_state(app) == before
        genuine = json.dumps({"x": base64.b64encode(raw).decode()})
        assert hash_api.send("order/update", {}, raw=genuine)["data"]["balance"] == 990  # Hash's own
        assert hash_api.send("order/update", {}, raw=forged)["code"] == 1005  # now: another body
    assert [r.alarm for r in caplog.records if hasattr(r, "alarm")] == [
        "hash_payout_over_bound", "hash_request_id_reused"]
