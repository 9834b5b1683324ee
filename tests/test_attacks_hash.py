"""Rewriting a captured Hash request without the key, against a real `gunicorn app:app`, on every
database. Each attack worked on an earlier version; each test replays it as real byte manipulation
of a real captured `x` and asserts that nothing moves (balance and ledger unchanged).

The envelope has no MAC (docs/hash.md §3.1). In the prefix IV form, XOR-ing the IV of a captured
`x` sets the first 16 bytes of its plaintext to anything (CBC: block 1 = decrypt(C1) XOR IV); a
key16 `x` read as prefix loses its first block and its second block becomes settable the same way.
The envelope itself can stop only the second (one IV form accepted, HASH_IV_MODE); the rest are
stopped by the rules of wallet/hash/orders.py, and each test names the rule that stops it.

What no rule can stop: a rewritten update sent *instead of* Hash's own (a man in the middle who
drops the original) that still describes a stored bet, for example a loss turned into a cancel
before the loss arrives. The protocol gives us nothing to tell them apart; TLS on the way in and
HASH_ALLOWED_IPS are what keep such a man out of the middle.
"""
import base64
import json
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from conftest import HASH_SECRET, MERCHANT_ID, balances, gunicorn, ledger_rows, new_player, post_json

from wallet.core import schema
from wallet.hash.fields import dumps
from wallet.hash.envelope import decrypt, encrypt

BET_INFO = '[{"key":"Big","name":"Big","odds":200,"amount":10}]'


# ---- Hash, and the man with a captured `x` -------------------------------------------------------
def now_ms() -> int:
    return int(time.time() * 1000)


def plaintext(first: str, fields: dict) -> bytes:
    """Compact JSON as Hash might send it, with `first` as its first field (its key order is not
    documented: each attack below assumes the order that suits it)."""
    return dumps({first: fields[first], **fields}).encode()  # Decimals as JSON numbers


def capture(plain: bytes, iv_mode="prefix") -> str:
    """The `x` Hash sends for `plain` (a fresh random IV in the prefix form), as seen on the wire."""
    return encrypt(plain, HASH_SECRET, iv_mode)


def rewrite_first_block(x: str, was: bytes, becomes: bytes) -> str:
    """Prefix form: the plaintext's first bytes `was` become `becomes`, by XOR-ing the IV alone."""
    assert len(was) == len(becomes) <= 16
    raw = bytearray(base64.b64decode(x))
    for i, (old, new) in enumerate(zip(was, becomes)):
        raw[i] ^= old ^ new
    return base64.b64encode(bytes(raw)).decode()


def send(base, path, x) -> dict:
    status, answer = post_json(base, f"/api/v2/{path}", {"x": x}, {"merchant-id": MERCHANT_ID})
    assert status == 200
    return answer


def add(base, token, user_id, order_no, round_id, amount=10):
    plain = plaintext("timestamp", {
        "timestamp": now_ms(), "request_id": uuid.uuid4().hex, "token": token, "user_id": int(user_id),
        "order_no": order_no, "username": "u", "entry_key": "pc28-1", "round_id": round_id,
        "currency": "USDT", "amount": amount, "bet_info": BET_INFO})
    assert send(base, "order/add", capture(plain))["code"] == 0


def update(user_id, order_no, round_id, status, prize, first, amount=10, **extra) -> bytes:
    """Hash's order/update for a bet, as plaintext, `first` field first."""
    return plaintext(first, {
        "timestamp": now_ms(), "request_id": uuid.uuid4().hex, "user_id": str(user_id),
        "username": "u", "order_no": order_no, "entry_key": "pc28-1", "round_id": str(round_id),
        "amount": amount, "currency": "USDT", "status": status, "prize": prize, "tax": 0, "bonus": 0,
        "bet_time": now_ms() - 60_000, "bet_info": BET_INFO, "is_win": prize > 0, **extra})


def books(app, user_id):
    return balances(app, user_id), ledger_rows(app, user_id)


def two_orders():
    """Two order_nos that differ in their second character only, within the first 16 bytes of a
    plaintext that starts with `{"order_no":"`."""
    rest = uuid.uuid4().hex[:15]
    return "R1" + rest, "R2" + rest


@pytest.fixture(scope="module")
def database_url(module_database):
    return module_database


@pytest.fixture(scope="module")
def server(database_url):
    """One server per database for the module's tests."""
    with gunicorn(database_url, workers=2) as base:
        yield base


@pytest.fixture
def player(app):
    return new_player(app, "1000", currency="USDT")


# ---- the attacks ---------------------------------------------------------------------------------
def test_a_win_rewritten_to_another_order_is_refused(server, app, player):
    """order_no first: R1's win, rewritten to R2 (a bet of the same amount in another round), sent
    before Hash's own. Stopped by: an update must describe the stored bet (round_id): 3001."""
    user_id, token = player
    r1, r2 = two_orders()
    add(server, token, user_id, r1, round_id=100)
    add(server, token, user_id, r2, round_id=101)
    win = capture(update(user_id, r1, 100, status=1, prize=Decimal("19.5"), first="order_no"))
    forged = rewrite_first_block(win, b'{"order_no":"R1', b'{"order_no":"R2')
    assert decrypt(forged, HASH_SECRET, "prefix")["order_no"] == r2  # the forgery opens
    before = books(app, user_id)
    assert send(server, "order/update", forged)["code"] == 3001
    assert books(app, user_id) == before
    assert send(server, "order/update", win)["data"]["balance"] == Decimal("999.5")  # R1 is paid
    loss = capture(update(user_id, r2, 101, status=1, prize=0, first="order_no"))
    assert send(server, "order/update", loss)["data"]["balance"] == Decimal("999.5")  # R2 lost
    assert send(server, "order/update", forged)["code"] == 1005
    assert [(r.op, r.ref, r.amount) for r in ledger_rows(app, user_id)][1:] == [
        ("order_add", r1, -10), ("order_add", r2, -10), ("order_settle", r1, Decimal("19.5")),
        ("order_settle", r2, 0)]


def test_a_win_replayed_as_another_bet_of_the_same_round_is_refused(server, app, player):
    """order_no first, R2 a bet of the same amount in the same round and game: it describes R2 as
    well as R1's does. Replayed after Hash's own update, it is stopped by the request_id rule:
    1005."""
    user_id, token = player
    r1, r2 = two_orders()
    add(server, token, user_id, r1, round_id=100)
    add(server, token, user_id, r2, round_id=100)
    win = capture(update(user_id, r1, 100, status=1, prize=Decimal("19.5"), first="order_no"))
    assert send(server, "order/update", win)["code"] == 0
    before = books(app, user_id)
    forged = rewrite_first_block(win, b'{"order_no":"R1', b'{"order_no":"R2')
    assert send(server, "order/update", forged) == {"code": 1005, "msg": "duplicate request_id"}
    assert books(app, user_id) == before


def test_a_prize_rewritten_to_9e17_is_refused(server, app, player):
    """prize first: {"prize":19.5 becomes {"prize":9e17, sent before Hash's own. Stopped by: a settle
    pays at most HASH_MAX_PAYOUT_MULTIPLE (1000) times the stake: 3001."""
    user_id, token = player
    order = uuid.uuid4().hex
    add(server, token, user_id, order, round_id=7)
    win = capture(update(user_id, order, 7, status=1, prize=Decimal("19.5"), first="prize"))
    forged = rewrite_first_block(win, b'{"prize":19.5', b'{"prize":9e17')
    assert decrypt(forged, HASH_SECRET, "prefix")["prize"] == Decimal("9e17")
    before = books(app, user_id)
    assert send(server, "order/update", forged)["code"] == 3001
    assert books(app, user_id) == before
    assert send(server, "order/update", win)["data"]["balance"] == Decimal("1009.5")
    assert send(server, "order/update", forged)["code"] == 1005


@pytest.mark.parametrize("hash_sent", [3, 1])  # pending settlement, then the loss itself
def test_a_status_rewritten_to_cancelled_is_refused(server, app, player, hash_sent):
    """status first: {"status":3 (or the loss, 1) becomes {"status":4, a cancel that would refund
    the stake, replayed after Hash's own update. Stopped by the request_id rule: 1005 (after the
    loss, the order is final too)."""
    user_id, token = player
    order = uuid.uuid4().hex
    add(server, token, user_id, order, round_id=8)
    captured = capture(update(user_id, order, 8, status=hash_sent, prize=0, first="status"))
    assert send(server, "order/update", captured)["code"] == 0
    forged = rewrite_first_block(captured, b'{"status":%d' % hash_sent, b'{"status":4')
    assert decrypt(forged, HASH_SECRET, "prefix")["status"] == 4
    before = books(app, user_id)
    assert send(server, "order/update", forged)["code"] == 1005
    assert books(app, user_id) == before
    loss = capture(update(user_id, order, 8, status=1, prize=0, first="status"))
    assert send(server, "order/update", loss)["data"]["balance"] == 990  # lost, not refunded


def test_a_months_old_capture_brought_back_into_the_window_is_refused(server, app, player):
    """timestamp first: {"timestamp":175... becomes {"timestamp":176..., 10^10 ms (about 116 days)
    later: a capture of that age is inside the window again, and its request_id was forgotten long
    ago. Stopped by: a session past its expires_at is no token: 2001."""
    user_id, _ = player
    with app.extensions["engine"].begin() as conn:  # the player's session of 116 days ago, 1 day long
        old_token = "old-" + uuid.uuid4().hex
        then = schema.utcnow() - timedelta(milliseconds=10**10)
        conn.execute(sa.insert(schema.sessions).values(token=old_token, player_id=int(user_id),
                                                   currency="USDT", created_at=then,
                                                   expires_at=then + timedelta(days=1)))
    old = now_ms() - 10**10
    prefix, later = str(old)[:3].encode(), str(old + 10**10)[:3].encode()
    captures = {
        "order/add": plaintext("timestamp", {
            "timestamp": old, "request_id": uuid.uuid4().hex, "token": old_token,
            "user_id": int(user_id), "order_no": uuid.uuid4().hex, "username": "u",
            "entry_key": "pc28-1", "round_id": 9, "currency": "USDT", "amount": 10,
            "bet_info": BET_INFO}),
        "user/balance": plaintext("timestamp", {"timestamp": old, "request_id": uuid.uuid4().hex,
                                                "token": old_token, "currency": "USDT"})}
    before = books(app, user_id)
    for path, plain in captures.items():
        x = capture(plain)
        assert send(server, path, x)["code"] == 1004  # as captured: stale
        forged = rewrite_first_block(x, b'{"timestamp":' + prefix, b'{"timestamp":' + later)
        assert abs(decrypt(forged, HASH_SECRET, "prefix")["timestamp"] - now_ms()) < 60_000
        assert send(server, path, forged) == {"code": 2001,
                                              "msg": "invalid token or user: session has expired"}
    assert books(app, user_id) == before


@pytest.fixture(scope="module")
def key16_server(database_url):
    with gunicorn(database_url, workers=2, extra_env={"HASH_IV_MODE": "key16"}) as base:
        yield base


def test_a_key16_capture_with_its_first_block_dropped_is_refused(key16_server, app, player):
    """key16: read as prefix, a capture loses its first block and its second becomes settable:
    here R1's win, rewritten to R2, timestamp and request_id intact. Stopped by: only the IV form
    HASH_IV_MODE names is accepted (the envelope): 1002."""
    server, (user_id, token) = key16_server, player
    rest = uuid.uuid4().hex[:14]
    r1, r2 = "R1-0" + rest, "R2-" + rest
    for order in (r1, r2):
        bet = plaintext("timestamp", {
            "timestamp": now_ms(), "request_id": uuid.uuid4().hex, "token": token,
            "user_id": int(user_id), "order_no": order, "username": "u", "entry_key": "pc28-1",
            "round_id": 100, "currency": "USDT", "amount": 10, "bet_info": BET_INFO})
        assert send(server, "order/add", capture(bet, "key16"))["code"] == 0
    fields = json.loads(update(user_id, r1, 100, status=1, prize=Decimal("19.5"), first="status"),
                        parse_float=Decimal)
    plain = plaintext("username", {"username": "u", "order_no": r1, **fields})
    assert plain[:32] == b'{"username":"u","order_no":"R1-0'  # block 1, and block 2
    win = capture(plain, "key16")
    raw = base64.b64decode(win)
    iv = bytes(c ^ p ^ q for c, p, q in zip(raw[:16], plain[16:32], b'{"order_no":"R2-'))
    forged = base64.b64encode(iv + raw[16:]).decode()
    opened = decrypt(forged, HASH_SECRET, "prefix")  # what accept-both would have taken
    assert opened["order_no"] == r2 and "timestamp" in opened and "request_id" in opened
    dropped = base64.b64encode(raw[16:]).decode()  # the first block dropped, nothing else changed
    before = books(app, user_id)
    for x in (forged, dropped):
        assert send(server, "order/update", x) == {"code": 1002, "msg": "cannot decrypt x"}
    assert books(app, user_id) == before
    assert send(server, "order/update", win)["data"]["balance"] == Decimal("999.5")  # the real one
