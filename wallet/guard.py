"""What every provider call passes through: the client address behind the proxies the operator
trusts (TRUSTED_PROXIES), the optional per-provider IP allow-lists (100HP: docs/100hp.md §9.6;
Hash: docs/hash.md §11.6), a request id echoed in `X-Request-Id`, one log line per call, and
MAX_BODY_BYTES on chunked bodies.

The log line holds method, path, txId / order_no, result code and duration; never a secret, a token
or decrypted plaintext. Request text in a log line always goes through `shown()`
(wallet/core/text.py): a path with a line break in it (`%0a`) cannot write a line of its own.

A call is classified (its provider and operation, for the log line and /metrics) by the route it
matched, not by the raw path: `//100hp/withdrawal` and `/%2f100hp/deposit` reach the withdrawal
and deposit views, and so they are logged and counted as those, once each.
"""
import io
import ipaddress
import logging
import os
import re
import time

from flask import current_app, request

from .core import db
from .core.text import shown

log = logging.getLogger("wallet.calls")
_SAFE = re.compile(r"[\w.:-]{1,64}\Z")
PROVIDERS = {"/100hp/": "100hp", "/api/v2/": "hash"}  # path prefix -> provider
REFERENCE, RESULT, STARTED = "wallet.reference", "wallet.result", "wallet.started"  # environ keys
CALL, PEER = "wallet.call", "wallet.peer"  # environ keys: (provider, operation); the direct peer
UNIX = "unix"  # in TRUSTED_PROXIES: a proxy on this host reaching gunicorn over a unix socket


def provider_of(path: str) -> str | None:
    return next((name for prefix, name in PROVIDERS.items() if path.startswith(prefix)), None)


# ---- who is calling ----------------------------------------------------------------------------
def parse_networks(text: str) -> list:
    """`HP_ALLOWED_IPS`, `HASH_ALLOWED_IPS`, `TRUSTED_PROXIES`, ...: comma-separated addresses or
    CIDR ranges; empty = none given."""
    try:
        return [ipaddress.ip_network(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise ValueError(f"is a bad IP list {text[:80]!r}: {exc}") from None


def parse_proxies(text: str) -> list:
    """`TRUSTED_PROXIES`: like an allow-list, and the word `unix` for a unix socket (gunicorn -b
    unix:/run/wallet.sock), whose peer has no address at all."""
    words = [part.strip() for part in text.split(",") if part.strip()]
    return [UNIX for word in words if word == UNIX] + parse_networks(",".join(w for w in words if w != UNIX))


def _address(text: str):
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(peer: str, trusted: list) -> bool:
    if peer == "":  # gunicorn's REMOTE_ADDR on a unix socket
        return UNIX in trusted
    address = _address(peer)
    return address is not None and any(address in network for network in trusted if network != UNIX)


def client_address(peer: str, forwarded: str, trusted: list) -> str:
    """The client's address. `X-Forwarded-For` is read only when the direct peer is a trusted proxy,
    and then from the right: each trusted proxy appends the address it was reached from, so the
    first address from the right that is not a trusted proxy is the client. Whatever a client wrote
    into the header itself is further left and never read. A hop that is not an address (garbage
    in the header where our own proxy should have appended) gives "" (no address: refused)."""
    hops = [hop.strip() for hop in forwarded.split(",")] if forwarded else []
    client = peer
    while hops and _trusted(client, trusted):
        client = hops.pop()
        if not client:  # only the direct peer may be without an address (a unix socket)
            return ""
    address = _address(client)
    return "" if address is None else str(address)


class TrustedProxies:
    """WSGI middleware: REMOTE_ADDR becomes the client's address (`client_address`), and the scheme
    the one the nearest proxy says (`X-Forwarded-Proto`), both only from a trusted proxy. The
    direct peer is kept in environ["wallet.peer"]."""

    def __init__(self, wsgi_app, trusted: list):
        self.wsgi_app, self.trusted = wsgi_app, trusted

    def __call__(self, environ, start_response):
        peer = environ.get("REMOTE_ADDR", "")
        environ[PEER] = peer
        environ["REMOTE_ADDR"] = client_address(peer, environ.get("HTTP_X_FORWARDED_FOR", ""), self.trusted)
        if _trusted(peer, self.trusted):
            scheme = environ.get("HTTP_X_FORWARDED_PROTO", "").rsplit(",", 1)[-1].strip().lower()
            if scheme in ("http", "https"):
                environ["wsgi.url_scheme"] = scheme
        return self.wsgi_app(environ, start_response)


def address_allowed(networks: list) -> bool:
    """Whether the client address (behind TRUSTED_PROXIES, see `client_address`) is in `networks`;
    an empty list allows any address (the sandbox; production requires a list)."""
    if not networks:
        return True
    address = _address(request.remote_addr or "")
    allowed = address is not None and any(address in network for network in networks)
    if not allowed:
        peer = request.environ.get(PEER, "")
        log.warning("refused %s %s from %s (peer %s): not in the allow-list%s", shown(request.method),
                    shown(request.path), shown(request.remote_addr or "-"), shown(peer or "-"),
                    _unread_forwarding(peer))
    return allowed


def _unread_forwarding(peer: str) -> str:
    """Why an X-Forwarded-For was not read, for the refusal's log line: behind a proxy left out of
    TRUSTED_PROXIES (its default is none), every call is refused from the proxy's own address."""
    if request.headers.get("X-Forwarded-For") and not _trusted(peer, current_app.config["TRUSTED_PROXIES"]):
        return f"; X-Forwarded-For not read: peer {shown(peer or 'unix')} is not in TRUSTED_PROXIES"
    return ""


# ---- what is called ----------------------------------------------------------------------------
def classify() -> None:
    """before_request, app-wide: which provider and operation this request is, from the route it
    matched (`/100hp/withdrawal` however the path was written), or "other" under a provider's
    prefix when it matched none (404, 405). Werkzeug's `request.path` already has the leading
    slashes of `//100hp/...` merged into one."""
    rule = request.url_rule
    path = rule.rule if rule is not None else request.path
    provider = provider_of(path)
    if provider is not None:
        prefix = next(prefix for prefix, name in PROVIDERS.items() if name == provider)
        request.environ[CALL] = (provider, path[len(prefix):] if rule is not None else "other")


def call_of(environ) -> tuple[str, str] | None:
    """(provider, operation) of a provider call once the app has seen it; None for anything else."""
    return environ.get(CALL)


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
        if call_of(environ):
            log.info("%s %s ref=%s result=%s %.1fms id=%s", shown(environ.get("REQUEST_METHOD", "")),
                     shown(environ.get("PATH_INFO", "")), environ.get(REFERENCE, "-"),
                     environ.get(RESULT, status[:3]), (time.perf_counter() - started) * 1000, request_id)
        return body


class ChunkedBodyLimit:
    """WSGI middleware: MAX_BODY_BYTES for a body sent without Content-Length (`Transfer-Encoding:
    chunked`). Werkzeug (3.1) would cut such a body at the limit without a word, and the call would
    go on with the first MAX_BODY_BYTES of it (a body padded with blanks past the limit still
    parses). Here it is read up to one byte past the limit and handed on as a plain body with its
    Content-Length: a longer one then says `limit + 1`, and Werkzeug refuses it as too large before
    the app reads a byte (100HP 400, Hash 1001: each blueprint's `unexpected_error`)."""

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
    """Before the providers are registered: their routes then match exactly as written
    (`/100hp//withdrawal` is a 404 in 100HP's format, not Werkzeug's HTML redirect)."""
    app.url_map.merge_slashes = False
    app.before_request(classify)
    app.wsgi_app = CallBudget(app.wsgi_app, app.config["CALL_DEADLINE_MS"] / 1000)
    app.wsgi_app = ChunkedBodyLimit(app.wsgi_app, app.config["MAX_CONTENT_LENGTH"])
    app.wsgi_app = CallLog(app.wsgi_app)
    app.wsgi_app = TrustedProxies(app.wsgi_app, app.config["TRUSTED_PROXIES"])
