"""Flask blueprint for the Hash Game merchant API (docs/hash.md §3, §4): all four endpoints.

Per request: check the `merchant-id` header (1003), open the `{"x": ...}` envelope in the IV form
HASH_IV_MODE names (1002, one answer for every way it can fail), read the plaintext's `timestamp`
and `request_id`, validate the fields (1001: every text field must be storable on every database,
within the same limit everywhere; amounts by the precision rule of docs/hash.md §11.5), then hand
the call to the app's HashWallet (wallet/hash/orders.py), which answers a re-send of a request it
applied as the retry it is, refuses another body under an applied request_id (1005) and, for a
request not applied before, a timestamp out of the window (1004). Answers are HTTP 200 with
`{"code", "msg", "data"}` (§3.7), balances as JSON numbers written from the Decimal, never
through float. This module never touches SQL.
"""
import hmac
import json
import logging
import re
import secrets
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import HTTPException

from ..core.db import DatabaseUnavailable
from ..core.money import (HASH_RESULT_ROUNDING, AmountError, TooPrecise, hash_amount_rounded,
                          parse_hash_amount)
from ..core.text import storable
from ..guard import address_allowed, note_reference, note_result, shown
from .envelope import EnvelopeError, decrypt, encrypt
from .orders import HashError, RequestId, request_digest

bp = Blueprint("hash", __name__, url_prefix="/api/v2")
log = logging.getLogger(__name__)


# ---- the envelope (§3.2, §3.4, §3.8) -------------------------------------------------------------
@bp.before_request
def allowed_address():
    config = current_app.config
    if not address_allowed(config["HASH_ALLOWED_IPS"]):
        raise HashError(1003)  # the provider's auth error; the log line says why


def open_envelope(endpoint: str) -> tuple[dict, RequestId]:
    """The request's plaintext, and what the request_id rule needs to know of it."""
    config = current_app.config
    merchant_id = request.headers.get("merchant-id", "")
    if not hmac.compare_digest(merchant_id.encode(), config["HASH_MERCHANT_ID"].encode()):
        raise HashError(1003)
    try:
        body = json.loads(request.get_data(cache=False))
    except (ValueError, RecursionError):
        raise HashError(1001, 'body must be {"x": "<base64>"}') from None
    if not isinstance(body, dict) or not isinstance(body.get("x"), str):
        raise HashError(1001, 'body must be {"x": "<base64>"}')
    try:
        plain = decrypt(body["x"], config["HASH_SECRET"], config["HASH_IV_MODE"])
    except EnvelopeError:
        raise HashError(1002) from None  # no detail: why it failed is no one's business (no oracle)
    note_reference(plain.get("order_no"))
    timestamp = plain.get("timestamp")
    if type(timestamp) is not int or not 10**12 <= timestamp < 10**13:
        raise HashError(1001, "timestamp must be 13-digit milliseconds")
    # The window (1004) is the rule's to check (wallet/hash/orders.py): a re-send of a request
    # already applied keeps its first timestamp and is answered whatever its age.
    window = timedelta(milliseconds=int(config["HASH_TIMESTAMP_WINDOW_MS"]))
    return plain, RequestId(key(plain, "request_id", max_len=128), _utc(timestamp),
                            _utc(time.time() * 1000), window, endpoint,
                            request_digest(endpoint, plain))


def _utc(ms: float) -> datetime:
    """Milliseconds since the epoch as naive UTC, as the database columns hold it."""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).replace(tzinfo=None)


# ---- field readers: each returns the value or raises 1001 naming the field -----------------------
def text(plain, name, *, max_len=255, default=None):
    value = plain.get(name, default)
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise HashError(1001, f"{name} must be a non-empty string of at most {max_len} characters")
    if not storable(value):
        raise HashError(1001, f"{name} must be valid UTF-8 text without NUL")
    return value


def key(plain, name, *, max_len=255):
    """A value rows are found by (order_no, request_id, token, currency): no blank at either end. MySQL's and
    MariaDB's PAD SPACE collations find "H1" for "H1 " and the other databases do not, so such a key
    is refused on all of them alike (docs/hash.md §11.4)."""
    value = text(plain, name, max_len=max_len)
    if value != value.strip():
        raise HashError(1001, f"{name} must not start or end with a blank")
    return value


def user_id(plain) -> int:
    """Documented as int64, int32 and string on different pages (§11.3): accept an int or digits."""
    value = plain.get("user_id")
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19:
        value = int(value)
    if type(value) is not int or not 0 < value < 2**63:
        raise HashError(1001, "user_id must be a positive int64")
    return value


def round_id(plain) -> str:
    value = plain.get("round_id")  # int64 or string, by game (§4.4); stored as text
    if type(value) is int:
        value = str(value)
    return text({"round_id": value}, "round_id", max_len=64)


def money(plain, name, *, positive=False, excess=None) -> Decimal:
    """An amount at 6 places by docs/hash.md §11.5: a float64 artefact is the value it stands for; a
    value truly more precise is 1001 unless `excess` names the direction to round it (ROUND_DOWN,
    ROUND_UP: toward the house), which is logged and counted."""
    try:
        value = parse_hash_amount(plain.get(name))
    except TooPrecise as exc:
        if excess is None:
            log.warning("Hash order_no %r refused: %s %s has more than 6 decimal places",
                        plain.get("order_no"), name, exc.value, extra={"alarm": "hash_amount_too_precise"})
            raise HashError(1001, f"{name}: {exc}") from None
        value = hash_amount_rounded(exc.value, excess)
        log.warning("Hash order_no %r: %s %s has more than 6 decimal places, booked as %s (toward "
                    "the house, docs/hash.md §11.5)", plain.get("order_no"), name, exc.value, value,
                    extra={"alarm": "hash_amount_rounded"})
    except AmountError as exc:
        raise HashError(1001, f"{name}: {exc}") from None
    if positive and value == 0:
        raise HashError(1001, f"{name} must be greater than 0")
    return value


BET_INFO_BYTES = 65535  # MySQL's TEXT holds 65535 bytes: the same limit on every database


def bet_info(plain) -> str:
    """§6.5: a JSON *string* holding a JSON array; stored verbatim."""
    value = plain.get("bet_info")
    if isinstance(value, str) and not storable(value):
        raise HashError(1001, "bet_info must be valid UTF-8 text without NUL")
    try:
        if (isinstance(value, str) and len(value.encode("utf-8")) <= BET_INFO_BYTES
                and isinstance(json.loads(value), list)):
            return value
    except (ValueError, RecursionError):
        pass
    raise HashError(1001, f"bet_info must be a string holding a JSON array, at most "
                          f"{BET_INFO_BYTES} bytes in UTF-8")


def currency(plain, default=None) -> str:
    """A key too, without a blank at either end: "USDT " found the USDT wallet on MariaDB and no
    wallet elsewhere (§11.4)."""
    return key({"currency": plain.get("currency", default)}, "currency", max_len=16)


def result(plain) -> dict:
    """An update's prize, tax and bonus (§4.4). Past 6 places (not a float64 artefact), each is
    rounded toward the house: prize and bonus down, tax up, so that neither payout formula pays
    more than was sent (docs/hash.md §11.5); the order is closed, never left open for it."""
    return {name: money(plain, name, excess=rounding) for name, rounding in HASH_RESULT_ROUNDING.items()}


def status(plain) -> int:
    value = plain.get("status")
    if type(value) is not int or value not in range(5):
        raise HashError(1001, "status must be 0, 1, 2, 3 or 4")
    return value


# ---- endpoints (§4.1-§4.4) -------------------------------------------------------------------------
def merchant():
    """The app's HashWallet: SQL (wallet/hash/sql_wallet.py) unless create_app was given another."""
    return current_app.extensions["hash_wallet"]


@bp.post("/user/info")
def user_info():
    plain, request_id = open_envelope("user/info")
    return success(merchant().user_info(key(plain, "token"), request_id))


@bp.post("/user/balance")
def user_balance():
    plain, request_id = open_envelope("user/balance")
    return success(merchant().user_balance(key(plain, "token"), currency(plain, default="USDT"),
                                           request_id))


@bp.post("/order/add")
def order_add():
    plain, request_id = open_envelope("order/add")
    return success(merchant().order_add(
        token=key(plain, "token"), user_id=user_id(plain),
        order_no=key(plain, "order_no", max_len=64),
        currency=currency(plain, default="USDT"),  # optional, default USDT
        amount=money(plain, "amount", positive=True), entry_key=text(plain, "entry_key", max_len=64),
        round_id=round_id(plain), bet_info=bet_info(plain), request_id=request_id))


@bp.post("/order/update")
def order_update():
    plain, request_id = open_envelope("order/update")
    return success(merchant().order_update(
        user_id=user_id(plain), order_no=key(plain, "order_no", max_len=64),
        currency=currency(plain), amount=money(plain, "amount", positive=True),
        status=status(plain), **result(plain), bet_info=bet_info(plain),
        entry_key=text(plain, "entry_key", max_len=64), round_id=round_id(plain),
        request_id=request_id))


# ---- answers (§3.7) --------------------------------------------------------------------------------
def success(data: dict) -> Response:
    return answer({"code": 0, "msg": "SUCCESS", "data": data})


def answer(envelope: dict) -> Response:
    """HTTP 200 with the envelope as JSON; `{"x": ...}` instead if HASH_ENCRYPT_RESPONSES is on."""
    config = current_app.config
    note_result(envelope["code"])
    body = dumps(envelope)
    if config["HASH_ENCRYPT_RESPONSES"]:
        body = dumps({"x": encrypt(body.encode(), config["HASH_SECRET"], config["HASH_IV_MODE"])})
    return Response(body, status=200, mimetype="application/json")


def dumps(value) -> str:
    """JSON with each Decimal written as a JSON number, digit for digit (Hash amounts are numbers)."""
    tag = secrets.token_hex(8)  # a fresh marker: no string from a request can forge it

    def number(obj):
        if isinstance(obj, Decimal):
            return f"{tag}{obj:f}{tag}"
        raise TypeError(f"not JSON: {type(obj).__name__}")
    return re.sub(f'"{tag}(-?[0-9.]+){tag}"', r"\1",
                  json.dumps(value, default=number, separators=(",", ":")))


@bp.errorhandler(HashError)
def hash_error(exc: HashError):
    if exc.code in (1002, 1003):
        log.warning("Hash %s refused: %s", shown(request.path), exc.msg)
    return answer({"code": exc.code, "msg": exc.msg})


def unexpected_error(exc: Exception):
    """Any other failure under /api/v2, routed here by app.py: never a traceback or an HTML page."""
    if isinstance(exc, HTTPException):  # unknown path, wrong method, body too large
        return hash_error(HashError(1001, exc.name))
    if isinstance(exc, DatabaseUnavailable):  # deadline passed, or a COMMIT of unknown outcome
        log.error("Hash %s not answered: %s", shown(request.path), exc)
        return hash_error(HashError(5000))  # Hash retries an update; an add it rolls back itself
    log.exception("Hash %s failed", shown(request.path))
    return hash_error(HashError(5000))  # the transaction was rolled back

