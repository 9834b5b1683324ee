"""Hash's field rules: the readers of a decrypted request body (the envelope of docs/hash.md §3, the
endpoints of §4, the decisions of §11), each returning the value or raising HashError 1001 naming
the field; what the request_id rule needs to know of a request (`request_id`: the timestamp's
form, the key, the body's digest); the `x` of a sealed body (`sealed`); and `dumps`, which writes
an answer's Decimals as JSON numbers.

Standard library only, with the rules they are built on (orders.py for HashError and RequestId,
wallet/core/money.py, wallet/core/text.py): a port on any web framework reads its fields with these
(tests/test_imports.py). Opening the envelope is wallet/hash/envelope.py's (pycryptodome).
"""
import json
import logging
import secrets
import time
from datetime import datetime, timedelta
from decimal import Decimal

from ..core.money import (HASH_RESULT_ROUNDING, AmountError, TooPrecise, hash_amount_rounded,
                          parse_hash_amount)
from ..core.text import storable
from .orders import HashError, RequestId, request_digest

log = logging.getLogger(__name__)


# ---- the request (§3.2, §3.4) ----------------------------------------------------------------------
def sealed(raw: bytes) -> str:
    """The `x` of a `{"x": "<base64>"}` body, still encrypted."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise HashError(1001, 'body must be {"x": "<base64>"}') from None
    if not isinstance(body, dict) or not isinstance(body.get("x"), str):
        raise HashError(1001, 'body must be {"x": "<base64>"}')
    return body["x"]


def request_id(plain, endpoint: str, window: timedelta, received: datetime | None = None) -> RequestId:
    """What the request_id rule needs to know of a request: its key, its timestamp (13-digit
    milliseconds), when it arrived (now, naive UTC), the window and its body's digest. The window
    (1004) is the rule's to check (wallet/hash/orders.py): a re-send of a request already applied
    keeps its first timestamp and is answered whatever its age."""
    timestamp = plain.get("timestamp")
    if type(timestamp) is not int or not 10**12 <= timestamp < 10**13:
        raise HashError(1001, "timestamp must be 13-digit milliseconds")
    received = received or _utc(time.time() * 1000)
    return RequestId(key(plain, "request_id", max_len=128), _utc(timestamp), received, window,
                     endpoint, request_digest(endpoint, plain))


EPOCH = datetime(1970, 1, 1)  # naive UTC


def _utc(ms: float) -> datetime:
    """Milliseconds since the epoch as naive UTC, as the database columns hold it."""
    return EPOCH + timedelta(milliseconds=ms)


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
        log.warning("Hash order_no %s: %s %s has more than 6 decimal places, booked as %s (toward "
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


# ---- answers (§3.7) --------------------------------------------------------------------------------
def dumps(value) -> str:
    """JSON with each Decimal written as a JSON number, digit for digit (Hash amounts are numbers)."""
    tag = secrets.token_hex(8)  # a fresh marker: no string from a request can forge it

    def number(obj):
        if isinstance(obj, Decimal) and obj.is_finite():
            return f"{tag}{obj:f}{tag}"  # digits, a point, a sign: nothing JSON escapes
        raise TypeError(f"not JSON: {obj!r}")
    # the marked strings' quotes and markers taken away: plain replaces, where a pattern made of
    # the fresh tag was compiled anew on every answer
    return json.dumps(value, default=number, separators=(",", ":")).replace(
        f'"{tag}', "").replace(f'{tag}"', "")
