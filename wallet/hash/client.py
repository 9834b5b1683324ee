"""A client for the Hash Game services the merchant calls (docs/hash.md §5): game/list, game/login,
order/list and order/details.

Requests are wrapped as in §3.5 (timestamp, request_id, AES `x`, `merchant-id` header). The doc
lists these services as GET and does not say how `x` travels on a GET (§3.2): we send it as the query
parameter `x` (§11.7). Answers are accepted plain (`{"code", "msg", "data"}`) or encrypted (`{"x": ...}`),
since §3.7 leaves it open. Every failure raises HashServiceError with what went wrong.
Not part of the wallet's core: nothing in the core imports it.
"""
import json
import socket
import time
import uuid
import urllib.error
import urllib.request
from decimal import Decimal
from urllib.parse import quote, urlencode

from .envelope import EnvelopeError, decrypt, encrypt


def launch_url(base_url: str, merchant_id: str, entry: str, currency: str, token: str, lang: str = "en",
               home_url: str | None = None, theme: str | None = None) -> str:
    """§2.2: the iframe URL the merchant builds for a player; every value URL-encoded (a token's
    `+`, `/` and `=` included). `theme` is dark or light; `home_url` is where an expired login goes."""
    params = {"merchant_id": merchant_id, "entry": entry, "currency": currency, "token": token,
              "lang": lang, "home_url": home_url, "theme": theme}
    query = urlencode({k: v for k, v in params.items() if v is not None}, quote_via=quote)
    return f"{base_url}?{query}"


class HashServiceError(Exception):
    """A call to Hash failed: `code` is Hash's non-zero code, or None for a transport failure."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


class HashClient:
    def __init__(self, base_url: str, merchant_id: str, secret: str, iv_mode: str = "prefix",
                 timeout: float = 10.0):
        if not base_url:
            raise HashServiceError("HASH_API_URL is not set: ask Hash Game for the API prefix")
        self.base_url, self.merchant_id, self.secret = base_url.rstrip("/"), merchant_id, secret
        self.iv_mode, self.timeout = iv_mode, timeout

    @classmethod
    def from_config(cls, config):
        return cls(config["HASH_API_URL"], config["HASH_MERCHANT_ID"], config["HASH_SECRET"],
                   config["HASH_IV_MODE"])

    def game_list(self, page: int = 1, page_size: int = 50, category: int = 1) -> dict:
        """§5.1: {"list": [{"entry", "name", "icon"}], "page", "page_size"}."""
        return self.call("api/v2/game/list", page=page, page_size=page_size, category=category)

    def game_login(self, entry: str, token: str, currency: str = "USDT", lang: str = "en") -> str:
        """§5.2: the game URL for a player's token."""
        return self.call("api/v2/game/login", entry=entry, token=token, currency=currency,
                         lang=lang)["game_url"]

    def order_list(self, page: int = 1, page_size: int = 100, start_time: int | None = None,
                   end_time: int | None = None, max_id: int | None = None) -> dict:
        """§5.3: orders of all players; `max_id` ("Max pull value") read as a cursor, the highest id
        already pulled (ours)."""
        optional = {"start_time": start_time, "end_time": end_time, "max_id": max_id}
        return self.call("api/v2/order/list", page=page, page_size=page_size,
                         **{k: v for k, v in optional.items() if v is not None})

    def order_details(self, order_no: str) -> dict:
        """§5.4: one order record, with its status (§6.1) and prize, tax, bonus."""
        return self.call("api/v2/order/details", order_no=order_no)

    def call(self, path: str, **params):
        plain = {**params, "timestamp": int(time.time() * 1000), "request_id": uuid.uuid4().hex}
        x = encrypt(json.dumps(plain, separators=(",", ":")).encode(), self.secret, self.iv_mode)
        url = f"{self.base_url}/{path}?{urlencode({'x': x})}"
        request = urllib.request.Request(url, headers={"merchant-id": self.merchant_id,
                                                       "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise HashServiceError(f"{path}: HTTP {exc.code} from Hash") from None
        except (socket.timeout, TimeoutError):
            raise HashServiceError(f"{path}: no answer within {self.timeout} s") from None
        except urllib.error.URLError as exc:
            raise HashServiceError(f"{path}: cannot reach Hash: {exc.reason}") from None
        envelope = self._open(path, raw)
        if envelope.get("code") != 0:
            raise HashServiceError(f"{path}: Hash answered code {envelope.get('code')}: "
                                   f"{envelope.get('msg')}", envelope.get("code"))
        return envelope.get("data")

    def _open(self, path: str, raw: bytes) -> dict:
        try:
            envelope = json.loads(raw, parse_float=Decimal)
            if isinstance(envelope, dict) and "code" not in envelope and isinstance(envelope.get("x"), str):
                envelope = decrypt(envelope["x"], self.secret, "accept-both")  # encrypted (§3.7)
        except (ValueError, EnvelopeError, RecursionError):
            raise HashServiceError(f"{path}: Hash's answer is not a JSON envelope") from None
        if not isinstance(envelope, dict):
            raise HashServiceError(f"{path}: Hash's answer is not a JSON object")
        return envelope
