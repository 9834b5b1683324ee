"""Fuzzing the HTTP endpoints (hypothesis): generated bodies of every kind never get an internal
error, a traceback or an HTML page, and a refused request never changes the database."""
import base64
import json
import time
import uuid

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from conftest import HASH_SECRET, HP_SECRET, MERCHANT_ID, new_player, tx

from wallet.core import schema
from wallet.hash.envelope import encrypt
from wallet.hp100 import schema as hp_schema
from wallet.hash import schema as hash_schema

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
NASTY = ["' OR '1'='1", "1; DROP TABLE wallets; --", "<script>alert(1)</script>", "\x00", "\ud800",
         "NaN", "Infinity", "-0", "1e309", " 10", "١٢", "9" * 400, "%s%s%n", "../../etc/passwd", ""]
scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
           | st.sampled_from(NASTY) | st.sampled_from([float("nan"), float("inf"), -1e308, -0.0, 2**64]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def fields_like(real: dict):
    """The endpoint's real fields with one or two replaced by anything, maybe one dropped, maybe
    unknown ones added: each field's checks are reached, not only the first one's."""
    keys = sorted(real)
    changed = st.dictionaries(st.sampled_from(keys), values, min_size=1, max_size=2)
    dropped = st.sets(st.sampled_from(keys), max_size=1)
    extra = st.dictionaries(st.text(max_size=8), values, max_size=2)
    return st.tuples(changed, dropped, extra).map(
        lambda t: {**t[2], **{k: v for k, v in real.items() if k not in t[1]}, **t[0]})


def db_state(app):
    with app.extensions["engine"].connect() as conn:
        return (conn.execute(sa.select(sa.func.count()).select_from(schema.ledger)).scalar(),
                conn.execute(sa.select(sa.func.count()).select_from(hp_schema.hp_transactions)).scalar(),
                conn.execute(sa.select(sa.func.count()).select_from(hash_schema.hash_orders)).scalar())


HP_ENDPOINTS = ["auth", "balance", "withdrawal", "deposit", "rollback", "bonusWin"]


@pytest.mark.parametrize("endpoint", HP_ENDPOINTS)
def test_100hp_endpoints_survive_anything(app, client, endpoint):
    _, session = new_player(app, "100")
    known = tx()
    client.post("/100hp/withdrawal", json={"secret": HP_SECRET, "sessionId": session, "txId": known,
                                           "amount": "1"})
    real = {"secret": HP_SECRET, "sessionId": session, "txId": known, "amount": "1", "promoId": "p",
            "userId": "1"}

    @FUZZ
    @given(body=fields_like(real).map(lambda b: json.dumps(b).encode()) | st.binary(max_size=200))
    def run(body):
        before = db_state(app)
        response = client.post(f"/100hp/{endpoint}", data=body, content_type="application/json")
        answer = response.get_json()
        assert response.status_code in (200, 400, 601, 603, 604, 605, 607, 608, 609), answer
        assert response.content_type == "application/json"
        if response.status_code != 200:
            assert answer["errCode"] == response.status_code
            assert db_state(app) == before
    run()


HASH_ENDPOINTS = {
    "user/info": {"token": "T"},
    "user/balance": {"token": "T", "currency": "USDT"},
    "order/add": {"token": "T", "user_id": 0, "order_no": "O1", "username": "u", "entry_key": "e",
                  "round_id": 1, "currency": "USDT", "amount": 1, "bet_info": "[]"},
    "order/update": {"user_id": 0, "username": "u", "order_no": "O1", "entry_key": "e", "round_id": "1",
                     "amount": 1, "currency": "USDT", "status": 1, "prize": 2, "tax": 0, "bonus": 0,
                     "bet_time": 1, "bet_info": "[]", "is_win": True},
}


@pytest.mark.parametrize("endpoint", HASH_ENDPOINTS)
def test_hash_endpoints_survive_anything(app, client, endpoint):
    user_id, token = new_player(app, "100", currency="USDT")
    real = {k: {"T": token, 0: int(user_id)}.get(v, v) if not isinstance(v, bool) else v
            for k, v in HASH_ENDPOINTS[endpoint].items()}

    def sealed(plain):
        fields = {"timestamp": int(time.time() * 1000), "request_id": uuid.uuid4().hex, **plain}
        return json.dumps({"x": encrypt(json.dumps(fields).encode(), HASH_SECRET)}).encode()

    bodies = (fields_like(real).map(sealed) | st.binary(max_size=200)
              | st.text(max_size=80).map(lambda x: json.dumps({"x": x}).encode())
              | st.binary(min_size=16, max_size=96).map(
                  lambda raw: json.dumps({"x": base64.b64encode(raw).decode()}).encode()))

    @FUZZ
    @given(body=bodies)
    def run(body):
        before = db_state(app)
        response = client.post(f"/api/v2/{endpoint}", data=body, content_type="application/json",
                               headers={"merchant-id": MERCHANT_ID})
        answer = response.get_json()
        assert response.status_code == 200 and response.content_type == "application/json"
        assert answer["code"] != 5000, answer
        if answer["code"] != 0:
            assert db_state(app) == before
    run()
