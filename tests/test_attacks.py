"""Issues 18 ("Nobody gets in") and 26 ("Production cannot be entered by omission"): each attack
that once worked, replayed, and refused with nothing moved.

HTTP attacks run against a real `gunicorn app:app` (the console on, as in a sandbox); settings
attacks start a real gunicorn (or the flask CLI) and see it exit. Each test says what used to
happen. Issue 26's attacks on the HTTP edges are in test_attacks_edges.py.
"""
import html
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from urllib.parse import urlencode, urlsplit

import pytest
import sqlalchemy as sa
from conftest import (HASH_SECRET, HP_SECRET, MERCHANT_ID, ROOT, TEST_CONFIG, balances, gunicorn, ledger_rows,
                      new_player, post_json, tx)
from test_settings import PRODUCTION, start_refused

from wallet.core import accounts, db, schema
from wallet.hash.envelope import encrypt
from wallet.console import schema as console_schema

FORGED_AMOUNT = "999999999999999999"


def send(base, method, path, body=None, headers=None):
    """(status, body text, headers) for one request; `headers` may set Host itself."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode(), response.headers
    finally:
        conn.close()


def form_token(base) -> tuple[str, str]:
    """What the console's own page gives a browser: its CSRF cookie and the token in its forms."""
    _, page, headers = send(base, "GET", "/")
    cookie = re.match(r"console_csrf=([^;]+)", headers["Set-Cookie"]).group(1)
    field = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return cookie, field


def top_up(base, user_id, amount, token=None, origin=None, field=None):
    fields = {"player_id": user_id, "currency": "USD", "amount": amount}
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if origin:
        headers["Origin"] = origin
    if token:
        headers["Cookie"] = f"console_csrf={token}"
        fields["csrf_token"] = field or token
    return send(base, "POST", "/console/topup", urlencode(fields), headers)


def call_log_count(app) -> int:
    with app.extensions["engine"].connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(console_schema.call_log)).scalar()


@pytest.fixture
def console(app, database_url):
    with gunicorn(database_url, workers=2, extra_env={"CONSOLE": "1"}) as base:
        yield base


# ---- 1. the console ---------------------------------------------------------------------------------
def test_a_forged_top_up_moves_nothing(app, console):
    """Was: a page on any site POSTed /console/topup and 999999999999999999 appeared in the wallet."""
    user_id, _ = new_player(app, "0")
    before = balances(app, user_id), ledger_rows(app, user_id)
    assert top_up(console, user_id, FORGED_AMOUNT, origin="http://evil.example")[0] == 403  # the attack as it was
    assert (balances(app, user_id), ledger_rows(app, user_id)) == before
    cookie, field = form_token(console)
    forged = [
        top_up(console, user_id, "10", origin="http://evil.example", token=cookie, field=field),
        top_up(console, user_id, "10", origin="null", token=cookie, field=field),  # a sandboxed frame
        top_up(console, user_id, "10"),  # no Origin (curl, an old browser), no token
        top_up(console, user_id, "10", origin=console, token=cookie, field="x" * 43),  # a guessed token
    ]
    assert [status for status, _, _ in forged] == [403] * len(forged)
    assert (balances(app, user_id), ledger_rows(app, user_id)) == before

    # the console's own form still works, within its bound, as an admin top-up in the ledger
    assert top_up(console, user_id, FORGED_AMOUNT, origin=console, token=cookie, field=field)[0] == 400
    assert top_up(console, user_id, "1000000.01", origin=console, token=cookie, field=field)[0] == 400
    assert (balances(app, user_id), ledger_rows(app, user_id)) == before
    assert top_up(console, user_id, "1000000", origin=console, token=cookie, field=field)[0] == 302
    assert balances(app, user_id) == {"USD": 1000000}
    assert [(r.provider, r.op, r.amount) for r in ledger_rows(app, user_id)][-1] == ("admin", "topup", 1000000)


def test_an_opening_balance_is_bounded(app, console):
    cookie, field = form_token(console)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"console_csrf={cookie}",
               "Origin": console}
    status, _, _ = send(console, "POST", "/console/players", urlencode(
        {"name": "rich", "currency": "USD", "balance": "1000001", "csrf_token": field}), headers)
    assert status == 400
    with app.extensions["engine"].connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.players)).scalar() == 0


def test_no_page_shows_a_secret_whatever_the_host(app, console):
    """Was: GET /players/1?session=... with any Host header showed the curl example with the 100HP
    secret in it: a DNS-rebinding page could read it."""
    user_id, _ = new_player(app, "100")
    token = db.transaction(app.extensions["engine"], lambda conn: accounts.create_session(conn, int(user_id)))
    port = urlsplit(console).port
    pages = ["/", "/console/activity", f"/players/{user_id}", f"/players/{user_id}?session={token}"]
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1.evil.example:{port}", "localhost",
                 f"localhost:{port + 1}"):
        for path in pages:
            status, body, _ = send(console, "GET", path, headers={"Host": host})
            assert status == 403 and HP_SECRET not in html.unescape(body) and token not in body, (host, path)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        for path in pages:
            status, body, _ = send(console, "GET", path, headers={"Host": host})
            text = html.unescape(body)
            assert status == 200 and HP_SECRET not in text and HASH_SECRET not in text, (host, path)
    page = html.unescape(send(console, "GET", pages[-1])[1])
    assert '{\\"secret\\": \\"$HP_SECRET\\", \\"sessionId\\": \\"%s\\"}' % token in page  # names the setting


def test_a_foreign_host_may_be_allowed_on_purpose(app, database_url):
    with gunicorn(database_url, workers=1, extra_env={"CONSOLE": "1", "CONSOLE_HOSTS": "wallet.lan"}) as base:
        assert send(base, "GET", "/", headers={"Host": "wallet.lan"})[0] == 200
        assert send(base, "GET", "/", headers={"Host": "wallet.lan.evil.example"})[0] == 403


def test_the_console_cannot_run_in_production(tmp_path):
    """Was: CONSOLE=1 ran the console in production, outside the IP allow-lists."""
    result = start_refused({**PRODUCTION, "CONSOLE": "1", "DATABASE_URL": f"sqlite:///{tmp_path}/w.db",
                            "WALLET_ALLOW_SQLITE": "1"})
    assert result.returncode != 0 and "CONSOLE=1 is refused in production" in result.stderr


# ---- 2. and 3. settings -------------------------------------------------------------------------------
def test_a_typo_in_wallet_env_does_not_start_a_sandbox(tmp_path):
    """Was: WALLET_ENV=Production started the sandbox: the public secrets were accepted and a demo
    player with 1000 was seeded."""
    database = tmp_path / "w.db"
    result = start_refused({"WALLET_ENV": "Production", "SANDBOX_DEMO": "1", "HP_SECRET": "hp-sandbox-secret",
                            "DATABASE_URL": f"sqlite:///{database}"})
    assert result.returncode != 0
    assert "WALLET_ENV must be sandbox or production, not 'Production'" in result.stderr
    assert not database.exists()  # nothing seeded, nothing served


def test_a_production_wallet_without_wallet_env_does_not_start():
    """Issue 26.1. Was: a real DATABASE_URL and secrets without WALLET_ENV (an env file missing one
    line) started a sandbox on the production database: no production checks, the console on, and
    a console top-up added 1,000,000 to a real player's wallet."""
    production_minus_one_line = {name: value for name, value in PRODUCTION.items() if name != "WALLET_ENV"}
    result = start_refused({**production_minus_one_line, "CONSOLE": "auto"}, without=("WALLET_ENV",))
    assert result.returncode != 0
    assert "\n  WALLET_ENV is not set, but DATABASE_URL is" in result.stderr
    for name in ("HP_SECRET", "HASH_SECRET"):  # the secrets alone say it is not the zero-configuration sandbox
        result = start_refused({name: PRODUCTION[name]}, without=("WALLET_ENV", "HP_SECRET", "HASH_SECRET"))
        assert result.returncode != 0 and f"\n  WALLET_ENV is not set, but {name} is" in result.stderr
    assert PRODUCTION["HP_SECRET"] not in result.stderr + result.stdout


def production_cli(tmp_path, *args) -> tuple[subprocess.CompletedProcess, str]:
    """`flask --app app ARGS` in production (on SQLite, said on purpose, with its schema)."""
    url = f"sqlite:///{tmp_path}/w.db"
    env = {**os.environ, **TEST_CONFIG, **PRODUCTION, "DATABASE_URL": url, "WALLET_ALLOW_SQLITE": "1"}
    subprocess.run([sys.executable, "-m", "flask", "--app", "app", "init-db"], cwd=ROOT, env=env,
                   capture_output=True, check=True, timeout=60)
    return subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60), url


@pytest.mark.parametrize("command", [
    ["demo"],
    ["hash-encrypt", '{"order_no": "X1", "user_id": 1, "status": 1, "prize": 9000}', "--path", "/api/v2/order/update"],
])
def test_sandbox_commands_refuse_in_production(tmp_path, command):
    """Issue 26.2. Was: `flask --app app demo` in production printed the real HP_SECRET in three
    curl lines and made a funded demo player with a live session; `hash-encrypt` minted
    ready-to-send requests under the production key (a settle paying 9,000)."""
    result, url = production_cli(tmp_path, *command)
    assert result.returncode != 0
    assert f"{command[0]} is for the sandbox only: it is refused with WALLET_ENV=production" in result.stderr
    output = result.stdout + result.stderr
    assert PRODUCTION["HP_SECRET"] not in output and PRODUCTION["HASH_SECRET"] not in output
    assert '"x"' not in output and "curl" not in output
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.players)).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.sessions)).scalar() == 0
    engine.dispose()


@pytest.mark.parametrize("weak", [
    {"HP_SECRET": "a"},
    {"HASH_SECRET": "0" * 32},
    {"HP_SECRET": "a-real-100hp-secret "},
    {"HASH_SECRET": HASH_SECRET[:31] + " "},
    {"HASH_TIMESTAMP_WINDOW_MS": "abc"},  # was: started, then every Hash call answered 5000
    {"HP_ALLOWED_IPS": ""},
    {"HASH_ALLOWED_IPS": ""},
    # issue 26.3: each of these started
    {"HASH_SECRET": "0123456789abcdef0123456789abcdef"},  # docs/hash.md §3.6's worked example key
    {"HASH_SECRET": "hash-sandbox-secret-0123456789aB"},  # the sandbox's, one letter's case changed
    {"HP_SECRET": "0" * 16},
    {"HP_SECRET": "s3cr3t!" * 3},
    {"HASH_SECRET": "é" + PRODUCTION["HASH_SECRET"][1:]},  # 32 characters, 33 bytes: every call 5000
    {"HASH_SECRET": PRODUCTION["HP_SECRET"][:32]},  # the same secret for both providers
    {"HP_ALLOWED_IPS": "0.0.0.0/1,128.0.0.0/1"},
    {"HASH_ALLOWED_IPS": "0.0.0.0/2,64.0.0.0/2,128.0.0.0/1"},
    {"METRICS_ALLOWED_IPS": ""},
    {"HASH_IV_MODE": "accept-both"},
    # issue 26.4: a count of proxies let anyone choose the address the allow-lists saw
    {"PROXY_COUNT": "1"},
    {"PROXY_COUNT": "2"},
    {"TRUSTED_PROXIES": "0.0.0.0/0"},
])
def test_production_refuses_weak_settings(weak, tmp_path):
    """Was: production started with each of these."""
    settings = {**PRODUCTION, "DATABASE_URL": f"sqlite:///{tmp_path}/w.db", "WALLET_ALLOW_SQLITE": "1", **weak}
    if weak.get("HASH_SECRET") == PRODUCTION["HP_SECRET"][:32]:
        settings["HP_SECRET"] = PRODUCTION["HP_SECRET"][:32]
    result = start_refused(settings)
    assert result.returncode != 0
    assert re.search(f"\n  {next(iter(weak))}[ =]", result.stderr)  # the setting, on its own line
    assert PRODUCTION["HP_SECRET"][:16] not in result.stderr and PRODUCTION["HASH_SECRET"][:16] not in result.stderr


# ---- HTTP edges ---------------------------------------------------------------------------------------
def chunked(base, path, body: bytes, headers=None) -> tuple[int, dict]:
    """POST `body` with `Transfer-Encoding: chunked` (no Content-Length), over a raw socket."""
    parts = urlsplit(base)
    lines = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}", "Content-Type: application/json",
             "Transfer-Encoding: chunked", "Connection: close",
             *[f"{name}: {value}" for name, value in (headers or {}).items()]]
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        for start in range(0, len(body), 1000):
            piece = body[start:start + 1000]
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        sock.sendall(b"0\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)


def padded(fields: dict, size: int) -> bytes:
    """The JSON of `fields`, then blanks up to `size` bytes: still valid JSON at any cut."""
    text = json.dumps(fields).encode()
    return text + b" " * (size - len(text))


def test_an_oversized_chunked_body_is_refused_not_cut(app, database_url):
    """Was: a chunked body was cut at MAX_BODY_BYTES without a word; a withdrawal padded with blanks
    past the limit was read as its first MAX_BODY_BYTES and took the money."""
    user_id, session = new_player(app, "100")
    before = ledger_rows(app, user_id)
    limit = 2048
    with gunicorn(database_url, workers=2, extra_env={"MAX_BODY_BYTES": str(limit)}) as base:
        bet = {"secret": HP_SECRET, "sessionId": session, "txId": tx(), "amount": "10"}
        assert chunked(base, "/100hp/withdrawal", padded(bet, 3 * limit)) == (
            400, {"data": "request body is too large", "errCode": 400, "message": "Validation error"})
        assert chunked(base, "/100hp/withdrawal", padded(bet, limit + 1))[0] == 400
        assert balances(app, user_id) == {"USD": 100} and ledger_rows(app, user_id) == before
        hash_call = hash_envelope(token=session)
        status, answer = chunked(base, "/api/v2/user/info", padded(hash_call, 3 * limit),
                                 {"merchant-id": MERCHANT_ID})
        assert status == 200 and answer["code"] == 1001
        # within the limit, a chunked body is read whole: up to its last byte
        assert chunked(base, "/100hp/withdrawal", padded(bet, limit))[0] == 200
        assert chunked(base, "/api/v2/user/info", padded(hash_envelope(token=session), limit),
                       {"merchant-id": MERCHANT_ID})[1]["code"] == 0
    assert balances(app, user_id) == {"USD": 90}


def hash_envelope(**plain) -> dict:
    return {"x": encrypt(json.dumps({"timestamp": int(time.time() * 1000), "request_id": uuid.uuid4().hex,
                                     **plain}).encode(), HASH_SECRET)}


def test_a_flood_of_refused_calls_writes_nothing(app, database_url):
    """Was: with the console on, every call (wrong secret, bad envelope, ...) wrote a call_log row:
    anyone could grow the table and queue writes."""
    _, session = new_player(app, "100")
    merchant = {"merchant-id": MERCHANT_ID}
    allow_lists = {"CONSOLE": "1", "HP_ALLOWED_IPS": "192.0.2.1", "HASH_ALLOWED_IPS": "192.0.2.1"}
    with gunicorn(database_url, workers=2, extra_env=allow_lists) as base:
        for _ in range(20):
            assert post_json(base, "/100hp/balance", {"secret": HP_SECRET, "sessionId": session})[0] == 601
            assert post_json(base, "/api/v2/user/info", hash_envelope(token=session), merchant)[1]["code"] == 1003
    with gunicorn(database_url, workers=2, extra_env={"CONSOLE": "1"}) as base:
        for _ in range(20):
            assert post_json(base, "/100hp/balance", {"secret": "guess", "sessionId": session})[0] == 601
            assert post_json(base, "/100hp/withdrawal", {"secret": "guess", "txId": "x"})[0] == 400
            assert post_json(base, "/100hp/nowhere", {})[0] == 404
            assert post_json(base, "/api/v2/user/info", {"x": "AAAA" * 8}, merchant)[1]["code"] == 1002
            assert post_json(base, "/api/v2/user/info", hash_envelope(token=session),
                             {"merchant-id": "9999"})[1]["code"] == 1003
            assert post_json(base, "/api/v2/user/info", hash_envelope(), merchant)[1]["code"] == 1001
            assert post_json(base, "/api/v2/user/info", hash_envelope(token=session, timestamp=10**12),
                             merchant)[1]["code"] == 1004
        assert call_log_count(app) == 0
        # the calls that reach the wallet are logged
        assert post_json(base, "/100hp/balance", {"secret": HP_SECRET, "sessionId": session})[0] == 200
        assert post_json(base, "/100hp/balance", {"secret": HP_SECRET, "sessionId": "nobody"})[0] == 604
        assert post_json(base, "/api/v2/user/info", hash_envelope(token=session), merchant)[1]["code"] == 0
        assert call_log_count(app) == 3
