"""Launching games: the 100HP Gaming API client and the Hash launch URL, against fake provider
servers on loopback; the exact request each provider receives is checked."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import HASH_SECRET, HP_SECRET, MERCHANT_ID, new_player
from fakehash import FakeHash

from wallet.hash.client import launch_url
from wallet.hash.envelope import encrypt
from wallet.hp100.client import HpApiError, HpClient

GAME = {"id": "018c877c-7f9f-7334-8d0b-df9c7a52dda9", "name": "Crash", "logoUrl": "x",
        "developer": {"id": "d", "name": "100hp"}, "category": "Crash games", "supportedCurrencies": ["USD"],
        "supportedLanguage": ["en"], "hasDemo": True, "hasMobileVersion": True, "hidden": False}


class Fake100HP:
    """`routes[(method, path)]` -> (status, body); requests kept as (method, path, query, json)."""

    def __init__(self):
        self.routes, self.received, self.delay = {}, [], 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def handle_any(self):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                fake.received.append((self.command, parts.path, parse_qs(parts.query), body,
                                      self.headers.get("Content-Type")))
                time.sleep(fake.delay)
                status, answer = fake.routes[self.command, parts.path]
                raw = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = handle_any

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture
def hp100():
    fake = Fake100HP()
    yield fake
    fake.server.shutdown()


def test_game_list_sends_the_secret_in_the_query(hp100):
    hp100.routes["GET", "/games/v1/list"] = (200, [GAME, {**GAME, "id": "h", "hidden": True}])
    games = HpClient(hp100.url, "s+/=ecret").games()
    assert [(g.id, g.name, g.has_demo, g.hidden) for g in games] == [
        (GAME["id"], "Crash", True, False), ("h", "Crash", True, True)]
    method, path, query, body, _ = hp100.received[0]
    assert (method, path, query, body) == ("GET", "/games/v1/list", {"secret": ["s+/=ecret"]}, None)


def test_launch_sends_the_documented_fields(hp100):
    hp100.routes["POST", "/games/v1/launch"] = (200, {"gameUrl": "https://play.example/g?t=1"})
    url, sent = HpClient(hp100.url, HP_SECRET).launch("sess-1", GAME["id"], mobile=True, language="en",
                                                      ip="8.8.8.8", geo="DE")
    assert url == "https://play.example/g?t=1" and sent["secretKey"] == "***"
    _, path, _, body, content_type = hp100.received[0]
    assert content_type == "application/json"
    assert body == {"secretKey": HP_SECRET, "sessionId": "sess-1", "gameId": GAME["id"], "isDemo": False,
                    "isMobile": True, "language": "en", "ip": "8.8.8.8", "geo": "DE"}


@pytest.mark.parametrize("status, answer, message", [
    (400, {"message": "Session already exists.", "data": ""}, "Session already exists."),
    (400, {"message": "Request params validation error", "data": {"secret": ["secret must be a string"]}},
     "Request params validation error"),
    (401, {"message": "Unauthorized"}, "Unauthorized"),
    (404, {"message": "Game by id not found."}, "Game by id not found."),
    (424, {"message": "Failed dependency"}, "Failed dependency"),
    (500, b"<html>Internal Server Error</html>", "<html>Internal Server Error</html>"),
])
def test_launch_errors_carry_status_message_and_data(hp100, status, answer, message):
    hp100.routes["POST", "/games/v1/launch"] = (status, answer)
    with pytest.raises(HpApiError) as raised:
        HpClient(hp100.url, HP_SECRET).launch("s", "g")
    assert (raised.value.status, raised.value.message) == (status, message)
    if isinstance(answer, dict) and answer.get("data"):
        assert raised.value.data == answer["data"]


def test_timeout_and_unreachable(hp100):
    hp100.routes["GET", "/games/v1/list"] = (200, [])
    hp100.delay = 2
    with pytest.raises(HpApiError, match="no answer within 1 s"):
        HpClient(hp100.url, HP_SECRET, timeout=1).games()
    with pytest.raises(HpApiError, match="cannot reach 100HP"):
        HpClient("http://127.0.0.1:9", HP_SECRET).games()


def test_hash_launch_url_encodes_every_value():
    url = launch_url("https://hash.example/", "1001", "pc28-1", "USDT", "ab+c/d==", "en",
                     home_url="https://casino.example/home?a=1&b=2", theme="dark")
    assert url == ("https://hash.example/?merchant_id=1001&entry=pc28-1&currency=USDT&token=ab%2Bc%2Fd%3D%3D"
                   "&lang=en&home_url=https%3A%2F%2Fcasino.example%2Fhome%3Fa%3D1%26b%3D2&theme=dark")
    assert parse_qs(urlsplit(url).query)["token"] == ["ab+c/d=="]


def test_launch_commands(app, hp100):
    user_id, _ = new_player(app, "10", extra_currencies=("USDT",))
    hp100.routes["POST", "/games/v1/launch"] = (200, {"gameUrl": "https://play.example/x"})
    hp100.routes["GET", "/games/v1/list"] = (200, [GAME])
    app.config.update(HP_API_URL=hp100.url, HASH_LAUNCH_URL="https://hash.example/")
    runner = app.test_cli_runner()
    output = runner.invoke(args=["launch", "100hp", user_id, GAME["id"], "--mobile"]).output
    session = hp100.received[-1][3]["sessionId"]
    assert output.splitlines()[-1] == "https://play.example/x" and '"secretKey": "***"' in output
    auth = app.test_client().post("/100hp/auth", json={"secret": HP_SECRET, "sessionId": session})
    assert auth.get_json()["userId"] == user_id  # the fresh session is the player's
    runner.invoke(args=["launch", "100hp", user_id, GAME["id"], "--demo"])
    assert "sessionId" not in hp100.received[-1][3] and hp100.received[-1][3]["isDemo"] is True
    hash_url = runner.invoke(args=["launch", "hash", user_id, "--theme", "dark"]).output.strip()
    token = parse_qs(urlsplit(hash_url).query)["token"][0]
    assert hash_url.startswith(f"https://hash.example/?merchant_id={MERCHANT_ID}&entry=lobby&currency=USDT")
    plain = json.dumps({"timestamp": int(time.time() * 1000), "request_id": "r", "token": token})
    info = app.test_client().post("/api/v2/user/info", headers={"merchant-id": MERCHANT_ID},
                                  data=json.dumps({"x": encrypt(plain.encode(), HASH_SECRET)}))
    assert info.get_json()["data"]["user_id"] == int(user_id)
    table = runner.invoke(args=["games", "100hp"]).output.splitlines()
    assert table[0].split() == ["id", "name", "category", "demo", "hidden"] and GAME["id"] in table[1]
    missing = runner.invoke(args=["launch", "hash", user_id, "--currency", "TRX"])
    assert missing.exit_code != 0 and "no TRX wallet" in missing.output


def test_hash_games_and_login_commands(app):
    fake = FakeHash(HASH_SECRET)
    try:
        fake.answers["/api/v2/game/list"] = lambda p: {"code": 0, "data": {"list": [
            {"entry": "pc28-1", "name": "pc28 Advanced Room", "icon": "https:xxxx.jpg"}]}}
        fake.answers["/api/v2/game/login"] = lambda p: {"code": 0, "data": {"game_url": f"https://g/?t={p['token']}"}}
        app.config["HASH_API_URL"] = fake.url
        user_id, _ = new_player(app, "1", currency="USDT")
        runner = app.test_cli_runner()
        assert "pc28-1  pc28 Advanced Room" in runner.invoke(args=["games", "hash"]).output
        url = runner.invoke(args=["launch", "hash", user_id, "--via-login"]).output.strip()
        assert url == f"https://g/?t={fake.received[-1][2]['token']}"
        assert fake.received[-1][2]["entry"] == "lobby" and fake.received[-1][2]["currency"] == "USDT"
    finally:
        fake.close()
