"""A client for the 100HP Gaming API the partner calls (docs/100hp.md §5): the game list and the
launch URL. Not part of the wallet's core: nothing in the core imports it.

- `GET {HP_API_URL}/games/v1/list?secret=...` (§5.1): the secret travels in the query string.
- `POST {HP_API_URL}/games/v1/launch` (§5.2): the secret travels as `secretKey` in the JSON body.
Every failure raises HpApiError with 100HP's status, message and data (400, 401, 404, 424, 500), or
status None for a transport failure.
"""
import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlencode


class HpApiError(Exception):
    def __init__(self, status: int | None, message: str, data=None):
        super().__init__(f"100HP {status or 'unreachable'}: {message}" + (f" ({data})" if data else ""))
        self.status, self.message, self.data = status, message, data


@dataclass(frozen=True)
class Game:
    id: str
    name: str
    category: str
    has_demo: bool
    has_mobile_version: bool
    supported_currencies: tuple
    hidden: bool

    @classmethod
    def from_api(cls, item: dict) -> "Game":
        return cls(item.get("id", ""), item.get("name", ""), item.get("category", ""),
                   bool(item.get("hasDemo")), bool(item.get("hasMobileVersion")),
                   tuple(item.get("supportedCurrencies") or ()), bool(item.get("hidden")))


class HpClient:
    def __init__(self, base_url: str, secret: str, timeout: float = 10.0):
        if not base_url:
            raise HpApiError(None, "HP_API_URL is not set: 100HP gives it as HOSTNAME_URL "
                                   "(docs/100hp.md §2.2)")
        self.base_url, self.secret, self.timeout = base_url.rstrip("/"), secret, timeout

    def games(self) -> list[Game]:
        """§5.1: every game, hidden (debug) ones included; filter on `hidden` as you need."""
        answer = self._request("GET", f"/games/v1/list?{urlencode({'secret': self.secret})}")
        if not isinstance(answer, list):
            raise HpApiError(200, "the game list is not a JSON array", answer)
        return [Game.from_api(item) for item in answer if isinstance(item, dict)]

    def launch(self, session_id: str | None, game_id: str, *, demo=False, mobile=False,
               language=None, ip=None, browser=None, geo=None) -> tuple[str, dict]:
        """§5.2: (gameUrl, the request body sent, secret masked). A real-money launch needs a fresh
        sessionId (a reused one is 400 "Session already exists."); a demo needs none."""
        body = {"secretKey": self.secret, "sessionId": session_id, "gameId": game_id, "isDemo": demo,
                "isMobile": mobile, "language": language, "ip": ip, "browser": browser, "geo": geo}
        body = {k: v for k, v in body.items() if v is not None}  # optional fields: only when known
        answer = self._request("POST", "/games/v1/launch", json.dumps(body).encode())
        if not isinstance(answer, dict) or not isinstance(answer.get("gameUrl"), str):
            raise HpApiError(200, "the launch answer has no gameUrl", answer)
        return answer["gameUrl"], {**body, "secretKey": "***"}

    def _request(self, method, path, body=None):
        request = urllib.request.Request(f"{self.base_url}{path}", data=body, method=method,
                                         headers={"Content-Type": "application/json",
                                                  "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise _error(exc.code, exc.read()) from None
        except (socket.timeout, TimeoutError):
            raise HpApiError(None, f"no answer within {self.timeout} s") from None
        except urllib.error.URLError as exc:
            raise HpApiError(None, f"cannot reach 100HP: {exc.reason}") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise HpApiError(200, "the answer is not JSON", raw[:200].decode("utf-8", "replace")) from None


def _error(status: int, raw: bytes) -> HpApiError:
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict):
        return HpApiError(status, str(body.get("message", "")), body.get("data"))
    return HpApiError(status, raw[:200].decode("utf-8", "replace"))
