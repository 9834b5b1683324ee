"""Issue 26, items 4 and 6-8 and issue 25.4 (100HP): attacks on the edges of a production wallet,
replayed against a real `gunicorn app:app` (and the README's nginx in front, where the attack went
through it). Each test says what used to happen; each shows that nothing moved, nothing leaked and
the refusal is the protocol's own.
"""
import codecs
import http.client
import json
import logging
import os
import re
import socket
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from conftest import (HASH_SECRET, HP_SECRET, MERCHANT_ID, TEST_CONFIG, balances, gunicorn, ledger_rows,
                      new_player, post_json, tx)
from dbservers import free_port
from prometheus_client.parser import text_string_to_metric_families
from test_nginx import NGINX, nginx  # noqa: F401 (the fixture)

from app import create_app
from wallet.core.text import shown
from wallet.guard import client_address, parse_proxies
from wallet.hash.envelope import encrypt

PROVIDER, OTHER = "127.0.0.7", "127.0.0.5"  # where a provider calls from, and someone else (this host)
BET_INFO = '[{"key":"Big","name":"Big","odds":200,"amount":10}]'
needs_nginx = pytest.mark.skipif(not NGINX, reason="nginx not installed (apt-get install nginx)")


def send(base, method, path, body=b"", headers=None, source=None) -> tuple[int, dict | None]:
    """One request with `path` written exactly as given, from the local address `source`."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, None
    finally:
        conn.close()


def hp(fields: dict) -> bytes:
    return json.dumps({"secret": HP_SECRET, **fields}).encode()


def sealed(**plain) -> bytes:
    plain = {"timestamp": int(time.time() * 1000), "request_id": uuid.uuid4().hex, **plain}
    return json.dumps({"x": encrypt(json.dumps(plain).encode(), HASH_SECRET)}).encode()


def hash_bet(token, user_id, order_no) -> bytes:
    return sealed(token=token, user_id=int(user_id), order_no=order_no, username="u", entry_key="pc28-1",
                  round_id=1, currency="USDT", amount=10, bet_info=BET_INFO)


def books(app, user_id):
    return balances(app, user_id), ledger_rows(app, user_id)


def log_of(port: int) -> str:
    return (Path(os.environ.get("TMPDIR", "/tmp")) / f"gunicorn-{port}.log").read_text()


def calls_counted(base) -> dict:
    """wallet_calls_total from /metrics: {(provider, operation, result): count}."""
    conn = http.client.HTTPConnection(urlsplit(base).hostname, urlsplit(base).port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    counts = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "wallet_calls_total":
                labels = sample.labels
                counts[labels["provider"], labels["operation"], labels["result"]] = sample.value
    return counts


# ---- 26.6: money calls that left no log line and no count ----------------------------------------
@needs_nginx
def test_every_call_that_reaches_a_view_is_logged_and_counted_once(app, database_url, nginx):  # noqa: F811
    """Was: `//100hp/withdrawal`, `/%2f100hp/deposit` and `//api/v2/order/add` reached the views
    (through nginx too), were booked, and left no log line and no count: the call log and /metrics
    read the raw path. Now they are classified by the route they matched."""
    user_id, session = new_player(app, "100", extra_currencies=("USDT",))
    port = free_port()
    with gunicorn(database_url, workers=1, port=port) as base:
        front = nginx(port)
        before = calls_counted(base)
        bets = []
        for where in (base, front):
            bet, order = tx(), uuid.uuid4().hex
            bets.append((bet, order))
            assert send(where, "POST", "//100hp/withdrawal",
                        hp({"sessionId": session, "txId": bet, "amount": "10"}))[0] == 200
            assert send(where, "POST", "/%2f100hp/deposit", hp({"txId": bet, "amount": "25"}))[0] == 200
            assert send(where, "POST", "//api/v2/order/add", hash_bet(session, user_id, order),
                        {"merchant-id": MERCHANT_ID})[1]["code"] == 0
            # a path that merely looks like a route is the provider's own 404, never an HTML redirect
            assert send(where, "POST", "/100hp//withdrawal", hp({}))[1] == {
                "data": "", "errCode": 404, "message": "Not Found"}
        after = calls_counted(base)
    assert balances(app, user_id) == {"USD": 130, "USDT": 80}
    added = {key: after.get(key, 0) - before.get(key, 0) for key in after}
    assert added[("100hp", "withdrawal", "200")] == 2 and added[("100hp", "deposit", "200")] == 2
    assert added[("hash", "order/add", "0")] == 2 and added[("100hp", "other", "404")] == 2
    lines = log_of(port).splitlines()
    for bet, order in bets:
        assert len([line for line in lines if f"ref={bet} result=200" in line]) == 2  # withdrawal, deposit
        assert len([line for line in lines if f"ref={order} result=0" in line]) == 1


# ---- 26.7: log injection --------------------------------------------------------------------------
FORGED = "FORGED%20ERROR%20wallet.hash.orders:%20payout%20refused"


@needs_nginx
def test_no_request_text_writes_a_log_line_of_its_own(database_url, nginx):  # noqa: F811
    """Was: `%0a` in a path under /100hp/ or /api/v2/ (a 404, from outside the allow-lists, through
    nginx) wrote whole forged log lines, e.g. a fake ERROR "payout refused"."""
    port = free_port()
    outside = {"HP_ALLOWED_IPS": "192.0.2.1", "HASH_ALLOWED_IPS": "192.0.2.1"}
    paths = [f"/100hp/withdrawal%0a{FORGED}", f"/api/v2/order/update%0d%0a{FORGED}",
             f"/100hp/auth%1b[2K%1b[1G{FORGED}", f"/api/v2/x%e2%80%a8{FORGED}", f"//100hp/balance%0a{FORGED}",
             f"/100hp/auth%0a{FORGED}"]
    with gunicorn(database_url, workers=1, port=port, extra_env=outside) as base:
        front = nginx(port)
        for where in (base, front):
            for path in paths:
                answer = send(where, "POST", path, hp({"sessionId": "s"}))
                assert answer == ((404, {"data": "", "errCode": 404, "message": "Not Found"}) if "100hp" in path
                                  else (200, {"code": 1001, "msg": "invalid parameters: Not Found"}))
            assert send(where, "POST", "/100hp/auth", hp({"sessionId": "s"}))[0] == 601  # outside the list
    text = log_of(port)
    assert "\x1b" not in text and "\u2028" not in text and "\r" not in text
    forged = [line for line in text.splitlines() if "FORGED" in line]
    assert len(forged) == 2 * len(paths)  # one call log line each, the forged text escaped inside it
    for line in forged:
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO wallet\.calls: POST /", line), line
        assert "payout refused" not in line and "payout\\x20refused" in line


@given(st.text(max_size=250))
def test_request_text_in_a_log_line_is_printable_ascii_and_says_what_was_sent(text):
    """`shown` (the log line's escaping): no blank, control or non-ASCII character survives, and
    the escapes decode back to the text sent, cut at 200 characters."""
    logged = shown(text)
    assert re.fullmatch(r"[!-~]*", logged)
    kept = logged.removesuffix("...") if len(text) > 200 else logged
    assert codecs.decode(kept, "unicode_escape") == text[:200]


# ---- 26.4: forwarded addresses ----------------------------------------------------------------------
@needs_nginx
def test_a_forged_x_forwarded_for_passes_no_allow_list(app, database_url, nginx):  # noqa: F811
    """Was: with PROXY_COUNT=1 and gunicorn reachable directly, or PROXY_COUNT=2 behind one nginx,
    a forged X-Forwarded-For passed the IP allow-lists. Now only TRUSTED_PROXIES' X-Forwarded-For
    is read, from the right: what a client wrote itself counts for nothing."""
    user_id, session = new_player(app, "100", extra_currencies=("USDT",))
    before = books(app, user_id)
    port = free_port()
    lists = {"TRUSTED_PROXIES": "127.0.0.1", "HP_ALLOWED_IPS": PROVIDER, "HASH_ALLOWED_IPS": PROVIDER}
    with gunicorn(database_url, workers=1, port=port, extra_env=lists) as base:
        front = nginx(port)  # nginx reaches gunicorn from 127.0.0.1
        merchant = {"merchant-id": MERCHANT_ID}
        for forged in (PROVIDER, f"{PROVIDER}, {PROVIDER}", f"{PROVIDER}, 127.0.0.1", "127.0.0.1"):
            for where in (base, front):  # around nginx, and through it
                headers = {"X-Forwarded-For": forged}
                bet = hp({"sessionId": session, "txId": tx(), "amount": "10"})
                assert send(where, "POST", "/100hp/withdrawal", bet, headers, source=OTHER)[0] == 601
                assert send(where, "POST", "/api/v2/order/add", hash_bet(session, user_id, uuid.uuid4().hex),
                            {**headers, **merchant}, source=OTHER)[1]["code"] == 1003
                assert send(where, "GET", "/metrics", b"", headers, source=OTHER)[0] == 403
        assert books(app, user_id) == before
        # the provider itself, through nginx: let in
        assert send(front, "POST", "/100hp/withdrawal", hp({"sessionId": session, "txId": tx(), "amount": "10"}),
                    source=PROVIDER)[0] == 200
        assert send(front, "POST", "/api/v2/order/add", hash_bet(session, user_id, uuid.uuid4().hex),
                    merchant, source=PROVIDER)[1]["code"] == 0
    assert balances(app, user_id) == {"USD": 90, "USDT": 90}


# ---- 26.8 and 25.4: 100HP bodies and keys that a filter or a database would read differently --------
@pytest.fixture(scope="module")
def database_url(module_database):  # noqa: F811
    return module_database


@pytest.fixture(scope="module")
def server(module_database):
    with gunicorn(module_database, workers=2) as base:
        yield base


def bodies(session: str) -> dict:
    """Withdrawals of 10 that json.loads(bytes) read as one, each with the real secret."""
    bet = {"secret": HP_SECRET, "sessionId": session, "txId": tx(), "amount": "10"}
    text = json.dumps(bet)
    return {
        "UTF-16 with its BOM": (text.encode("utf-16"), "body must be JSON in UTF-8"),
        "UTF-16-LE": (text.encode("utf-16-le"), "body must be a JSON object"),  # valid UTF-8, NULs and all
        "UTF-32": (text.encode("utf-32"), "body must be JSON in UTF-8"),
        "UTF-8 with a BOM": (b"\xef\xbb\xbf" + text.encode(), "body must be JSON in UTF-8 without a byte-order mark"),
        "secret twice, the last one right": (
            ('{"secret": "anything", ' + text[1:]).encode(), "body must name each key once, not 'secret' twice"),
        "amount twice": ((text[:-1] + ', "amount": "0.01"}').encode(), "body must name each key once, not 'amount' twice"),
        "NaN": ((text[:-1] + ', "promoId": NaN}').encode(), "body must be JSON without NaN"),
        "Infinity": ((text[:-1] + ', "x": [-Infinity]}').encode(), "body must be JSON without -Infinity"),
    }


@pytest.mark.parametrize("kind", list(bodies("s")))
def test_a_100hp_body_is_utf8_json_with_each_key_once(server, app, kind):
    """Was: each of these was read (json.loads detects UTF-16/32 and skips a BOM; the last of two
    keys wins; NaN parses) and the withdrawal was booked, while a filter in front of the wallet
    reading UTF-8, the first key or strict JSON saw something else."""
    user_id, session = new_player(app, "100")
    body, rule = bodies(session)[kind]
    before = books(app, user_id)
    assert send(server, "POST", "/100hp/withdrawal", body) == (
        400, {"data": rule, "errCode": 400, "message": "Validation error"})
    assert books(app, user_id) == before
    assert send(server, "POST", "/100hp/withdrawal", hp({"sessionId": session, "txId": tx(), "amount": "10"}))[0] == 200


@pytest.mark.parametrize("padded", ["{} ", " {}", "{}\t"])
def test_a_session_id_with_a_blank_at_either_end_finds_nothing_anywhere(server, app, padded):
    """Was: "s1 " found session "s1" on MariaDB only (PAD SPACE), which took the bet, while
    PostgreSQL and SQLite answered 604. Now it is the invalid field it is, on every database."""
    user_id, session = new_player(app, "100")
    before = books(app, user_id)
    refused = (400, {"data": "sessionId must not start or end with a blank", "errCode": 400,
                     "message": "Validation error"})
    key = padded.format(session)
    for endpoint, fields in (("auth", {}), ("balance", {}), ("withdrawal", {"txId": tx(), "amount": "10"}),
                             ("bonusWin", {"txId": tx(), "amount": "1", "promoId": "p"})):
        assert send(server, "POST", f"/100hp/{endpoint}", hp({"sessionId": key, **fields})) == refused
    assert books(app, user_id) == before
    assert post_json(server, "/100hp/auth", {"secret": HP_SECRET, "sessionId": session})[0] == 200


def test_a_proxy_on_a_unix_socket_is_trusted_when_named(app, database_url, tmp_path):
    """TRUSTED_PROXIES=unix: gunicorn bound to a unix socket as well (the README's other way to keep
    it off the network); the socket's peer has no address, and its X-Forwarded-For is read. The same
    header over TCP from another address counts for nothing."""
    user_id, session = new_player(app, "100")
    port, sock = free_port(), str(tmp_path / "wallet.sock")
    lists = {"TRUSTED_PROXIES": "unix", "HP_ALLOWED_IPS": PROVIDER}
    with gunicorn(database_url, workers=1, port=port, extra_env=lists, args=("-b", f"unix:{sock}")) as base:
        forwarded = {"X-Forwarded-For": PROVIDER, "Content-Type": "application/json"}
        assert send(base, "POST", "/100hp/withdrawal", hp({"sessionId": session, "txId": tx(), "amount": "10"}),
                    forwarded, source=OTHER)[0] == 601
        assert balances(app, user_id) == {"USD": 100}
        for header, expected in ((PROVIDER, 200), (OTHER, 601), (f"{PROVIDER},", 601), ("", 601)):
            conn = http.client.HTTPConnection("localhost", timeout=30)
            conn.sock = socket.socket(socket.AF_UNIX)
            conn.sock.connect(sock)
            conn.request("POST", "/100hp/withdrawal", hp({"sessionId": session, "txId": tx(), "amount": "10"}),
                         {**forwarded, "X-Forwarded-For": header})
            assert conn.getresponse().status == expected, header
            conn.close()
    assert balances(app, user_id) == {"USD": 90}


@pytest.mark.parametrize("peer, forwarded, client", [
    ("198.51.100.4", "10.1.2.3", "198.51.100.4"),  # not a trusted proxy: its header is its own claim
    ("127.0.0.1", "", "127.0.0.1"),  # the proxy itself, nothing forwarded
    ("127.0.0.1", "203.0.113.9", "203.0.113.9"),
    ("127.0.0.1", "10.1.2.3, 203.0.113.9", "203.0.113.9"),  # what the client wrote is left of it
    ("127.0.0.1", "203.0.113.9, 10.0.0.2", "203.0.113.9"),  # two trusted proxies, walked past
    ("127.0.0.1", "10.0.0.3, 10.0.0.2", "10.0.0.3"),  # only trusted addresses: the leftmost
    ("127.0.0.1", "203.0.113.9, garbage", ""),  # not an address where our proxy appended: none
    ("127.0.0.1", "203.0.113.9,", ""),
    ("127.0.0.1", "2001:db8::1", "2001:db8::1"),
    ("", "203.0.113.9", "203.0.113.9"),  # a unix socket, trusted by name
    ("", "", ""),
])
def test_the_client_address_is_walked_from_the_right(peer, forwarded, client):
    assert client_address(peer, forwarded, parse_proxies("127.0.0.1, 10.0.0.0/8, unix")) == client


def test_a_refusal_behind_a_proxy_not_named_says_so(caplog):
    """Behind nginx with TRUSTED_PROXIES left empty (its default), every provider call is refused:
    the peer is nginx's address. That fails closed; the log line says why, so the operator finds
    the missing setting instead of a provider that "calls from 127.0.0.1"."""
    app = create_app({**TEST_CONFIG, "DATABASE_URL": "sqlite://", "HP_ALLOWED_IPS": PROVIDER})
    with caplog.at_level(logging.WARNING, logger="wallet.guard"):
        answer = app.test_client().post("/100hp/auth", json={"secret": HP_SECRET, "sessionId": "s"},
                                        headers={"X-Forwarded-For": PROVIDER},
                                        environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert answer.status_code == 601
    refusals = [r.getMessage() for r in caplog.records if "not in the allow-list" in r.getMessage()]
    assert len(refusals) == 1 and "X-Forwarded-For not read: peer 127.0.0.1 is not in TRUSTED_PROXIES" in refusals[0]
