"""The request's Content-Type is not checked (docs/100hp.md §3.1, docs/hash.md §3.2): both providers'
bodies are read as JSON whatever the header says, so a call that omits or mislabels it is answered
on its merits, and every answer is `application/json`. SQLite only: no database is involved in
reading a header."""
import json
import time
import uuid

import pytest
from conftest import HASH_SECRET, HP_SECRET, MERCHANT_ID, new_player

from wallet.hash.envelope import encrypt

LABELS = [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-8"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("content_type", LABELS, ids=["none", "text", "form", "json"])
def test_100hp_reads_the_body_whatever_its_content_type(app, content_type):
    user_id, session = new_player(app, balance="12.34")
    headers = {"Content-Type": content_type} if content_type else {}
    answer = app.test_client().post("/100hp/balance", headers=headers,
                                    data=json.dumps({"secret": HP_SECRET, "sessionId": session}))
    assert answer.status_code == 200, answer.data
    assert answer.mimetype == "application/json"
    assert answer.get_json() == {"userId": user_id, "currency": "USD", "balance": "12.34"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("content_type", LABELS, ids=["none", "text", "form", "json"])
def test_hash_reads_the_body_whatever_its_content_type(app, content_type):
    user_id, token = new_player(app, balance="12.5", currency="USDT")
    plain = {"token": token, "currency": "USDT", "timestamp": int(time.time() * 1000),
             "request_id": uuid.uuid4().hex}
    headers = {"merchant-id": MERCHANT_ID, **({"Content-Type": content_type} if content_type else {})}
    answer = app.test_client().post("/api/v2/user/balance", headers=headers, data=json.dumps(
        {"x": encrypt(json.dumps(plain).encode(), HASH_SECRET, "prefix")}))
    assert answer.mimetype == "application/json"
    body = answer.get_json()
    assert body["code"] == 0, body
    assert body["data"] == {"user_id": int(user_id), "balance": 12.5, "currency": "USDT"}
