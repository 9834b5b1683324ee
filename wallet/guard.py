"""What every provider call passes through: the client address behind trusted proxies, the optional
per-provider IP allow-lists (100HP: docs/100hp.md §9.6; Hash: docs/hash.md §11.6), a
request id echoed in `X-Request-Id`, one log line per call, and MAX_BODY_BYTES on chunked bodies.

The log line holds method, path, txId / order_no, result code and duration; never a secret, a token
or decrypted plaintext.
"""
import io
import ipaddress
import logging
import os
import re
import time

from flask import request
from werkzeug.middleware.proxy_fix import ProxyFix

from .core import db

log = logging.getLogger("wallet.calls")
_SAFE = re.compile(r"[\w.:-]{1,64}\Z")
PROVIDERS = {"/100hp/": "100hp", "/api/v2/": "hash"}  # path prefix -> provider
REFERENCE, RESULT, STARTED = "wallet.reference", "wallet.result", "wallet.started"  # environ keys


def provider_of(path: str) -> str | None:
    return next((name for prefix, name in PROVIDERS.items() if path.startswith(prefix)), None)


def parse_networks(text: str) -> list:
    """`HP_ALLOWED_IPS` / `HASH_ALLOWED_IPS`: comma-separated addresses or CIDR ranges; empty = any
    (production requires one: `0.0.0.0/0,::/0` is how to allow any address there)."""
    try:
        return [ipaddress.ip_network(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise ValueError(f"is a bad IP allow-list {text[:80]!r}: {exc}") from None


def address_allowed(networks: list, proxies: int) -> bool:
    """Whether the client address is in `networks`. Behind `proxies` proxies the address is the one
    our outermost proxy saw (ProxyFix); a request that did not come through them all is refused."""
    if not networks:
        return True
    forwarded = request.headers.get("X-Forwarded-For", "")
    hops = len([hop for hop in forwarded.split(",") if hop.strip()])
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    allowed = hops >= proxies and any(address in network for network in networks)
    if not allowed:
        log.warning("refused %s %s from %s: not in the allow-list", request.method, request.path,
                    request.remote_addr)
    return allowed


def note_reference(value) -> None:
    """Remember the call's txId / order_no for its log line (only if it is a plain token)."""
    if isinstance(value, str) and _SAFE.match(value):
        request.environ[REFERENCE] = value


def note_result(code: int) -> None:
    """Log this result code instead of the HTTP status (Hash answers its errors with HTTP 200)."""
    request.environ[RESULT] = code


class CallLog:
    """WSGI middleware around the app: the request id echoed in `X-Request-Id` (the caller's, if it
    sent a plain one) and one log line per provider call, after the app has answered."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        environ[STARTED] = started = time.perf_counter()
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _SAFE.match(incoming) else os.urandom(16).hex()
        status = ""

        def start(status_line, headers, exc_info=None):
            nonlocal status
            status = status_line
            headers.append(("X-Request-Id", request_id))
            return start_response(status_line, headers, exc_info)

        body = self.wsgi_app(environ, start)
        path = environ.get("PATH_INFO", "")
        if provider_of(path):
            log.info("%s %s ref=%s result=%s %.1fms id=%s", environ.get("REQUEST_METHOD"), path,
                     environ.get(REFERENCE, "-"), environ.get(RESULT, status[:3]),
                     (time.perf_counter() - started) * 1000, request_id)
        return body


class ChunkedBodyLimit:
    """WSGI middleware: MAX_BODY_BYTES for a body sent without Content-Length (`Transfer-Encoding:
    chunked`). Werkzeug (3.1) would cut such a body at the limit without a word, and the call would
    go on with the first MAX_BODY_BYTES of it (a body padded with blanks past the limit still
    parses). Here it is read up to one byte past the limit and handed on as a plain body with its
    Content-Length: a longer one then says `limit + 1`, and Werkzeug refuses it as too large before
    the app reads a byte (100HP 400, Hash 1001: hp.py / hash.py `unexpected_error`)."""

    def __init__(self, wsgi_app, limit: int):
        self.wsgi_app, self.limit = wsgi_app, limit

    def __call__(self, environ, start_response):
        if not environ.get("CONTENT_LENGTH") and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            body = bytearray()
            while len(body) <= self.limit:
                piece = environ["wsgi.input"].read(self.limit + 1 - len(body))
                if not piece:
                    break
                body += piece
            environ["wsgi.input"] = io.BytesIO(bytes(body))  # now a plain body of a known length:
            environ["CONTENT_LENGTH"] = str(len(body))        # Werkzeug reads Content-Length only
            del environ["HTTP_TRANSFER_ENCODING"]               # without a chunked Transfer-Encoding
        return self.wsgi_app(environ, start_response)


class CallBudget:
    """WSGI middleware: each request runs in one budget of CALL_DEADLINE_MS (wallet/core/db.py
    `call_budget`): every transaction it runs, the console's call-log write included, ends by it."""

    def __init__(self, wsgi_app, seconds: float):
        self.wsgi_app, self.seconds = wsgi_app, seconds

    def __call__(self, environ, start_response):
        with db.call_budget(self.seconds):
            return self.wsgi_app(environ, start_response)  # Flask has answered when it returns


def install(app) -> None:
    app.wsgi_app = CallBudget(app.wsgi_app, app.config["CALL_DEADLINE_MS"] / 1000)
    app.wsgi_app = ChunkedBodyLimit(app.wsgi_app, app.config["MAX_CONTENT_LENGTH"])
    app.wsgi_app = CallLog(app.wsgi_app)
    proxies = app.config["PROXY_COUNT"]
    if proxies:  # trust exactly that many X-Forwarded-For hops, set by our own proxies, no more
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
