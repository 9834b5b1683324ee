"""100HP's field rules (docs/100hp.md §3.8, §4: each endpoint's list of validation texts): the body
as one JSON object in UTF-8 (`parsed_body`), each endpoint's rules in the documented order (`RULES`),
then the shared secret (`validated`). A broken rule raises CasinoError 400 `Validation error` with
the rule's text as `data`; a wrong secret, 601.

Standard library only, with the rules they are built on (casino.py for the error, wallet/core/money.py,
wallet/core/text.py): a port on any web framework calls `validated(endpoint, parsed_body(raw), secret)`
and answers the CasinoError as docs/100hp.md §3.5 says (tests/test_imports.py).
"""
import hmac
import json
import re

from ..core.money import AmountError, parse_hp_amount
from ..core.text import storable
from .casino import CasinoError

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")


def text(name, *, required=True, max_len=None, key=False):
    """A string field. `key`: a value rows are found by (sessionId), so no blank at either end:
    MySQL's and MariaDB's PAD SPACE collations find "s1" for "s1 " and the other databases do not,
    so such a value is refused on all of them alike (ours; our tokens never have blanks)."""
    def check(body):
        value = body.get(name)
        if value is None or value == "":
            if required:
                raise CasinoError(400, f"{name} must be not empty")
            return None
        if not isinstance(value, str):
            raise CasinoError(400, f"{name} must be a string")
        if not storable(value):
            raise CasinoError(400, f"{name} must be valid UTF-8 text without NUL")  # ours
        if max_len and len(value) > max_len:  # ours: the column's width, the same on every database
            raise CasinoError(400, f"{name} must be <= {max_len} characters")
        if key and value != value.strip():
            raise CasinoError(400, f"{name} must not start or end with a blank")  # ours
        return value
    check.field = name
    return check


def tx_id(max_len=None):
    def check(body):
        value = body.get("txId")
        if value is None or value == "":
            raise CasinoError(400, "txId must be not empty")
        if max_len and isinstance(value, str) and len(value) > max_len:
            raise CasinoError(400, f"txId must be <= {max_len} characters")
        if not isinstance(value, str) or not _UUID.match(value):
            raise CasinoError(400, "txId must be a UUID")  # any version; the docs use UUID v7
        return value
    check.field = "txId"
    return check


def amount(*, allow_zero):
    rule = "greater than or equal to 0" if allow_zero else "greater than 0"

    def check(body):
        value = text("amount")(body)  # amounts are JSON strings: a number is "must be a string"
        try:
            parsed = parse_hp_amount(value)  # truncated to cents, §3.3
        except AmountError as exc:
            if str(exc) == "too large":
                raise CasinoError(400, "amount must be < 1e18") from None  # ours: the column's limit
            raise CasinoError(400, f"amount must be {rule}") from None
        if not allow_zero and parsed == 0:
            raise CasinoError(400, f"amount must be {rule}")  # INFERRED: "0.001" truncates to 0
        return parsed
    check.field = "amount"
    return check


SECRET = text("secret")
SESSION_ID = text("sessionId", max_len=255, key=True)
OPTIONAL_SESSION_ID = text("sessionId", required=False, max_len=255, key=True)
USER_ID = text("userId", required=False, max_len=255)  # v2.9.1 addition; its rules NOT FOUND

RULES = {
    "auth": [SECRET, SESSION_ID],
    "balance": [SECRET, SESSION_ID],
    "withdrawal": [SECRET, tx_id(), SESSION_ID, amount(allow_zero=False), USER_ID],
    "deposit": [SECRET, tx_id(50), amount(allow_zero=True), USER_ID, OPTIONAL_SESSION_ID],
    "rollback": [SECRET, tx_id(50), USER_ID, OPTIONAL_SESSION_ID],
    "bonusWin": [SECRET, tx_id(), SESSION_ID, amount(allow_zero=False),
                 text("promoId", max_len=255), USER_ID],
}


def parsed_body(raw: bytes) -> dict:
    """The body as one JSON object in UTF-8 with each key once (ours). json.loads alone would also
    take UTF-16 / UTF-32, a byte-order mark, a repeated key (the last one wins) and NaN: bodies a
    filter in front of the wallet would read differently from us."""
    try:
        text = raw.decode("utf-8")  # strict: UTF-16 and UTF-32 bodies are not UTF-8
    except UnicodeDecodeError:
        raise CasinoError(400, "body must be JSON in UTF-8") from None
    if text.startswith("\ufeff"):
        raise CasinoError(400, "body must be JSON in UTF-8 without a byte-order mark")
    try:
        body = json.loads(text, object_pairs_hook=_each_key_once, parse_constant=_no_constants)
    except CasinoError:
        raise
    except (ValueError, RecursionError):  # not JSON, or absurdly nested
        raise CasinoError(400, "body must be a JSON object") from None
    if not isinstance(body, dict):
        raise CasinoError(400, "body must be a JSON object")
    return body


def _each_key_once(pairs: list) -> dict:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        twice = next(key for key in keys if keys.count(key) > 1)
        raise CasinoError(400, f"body must name each key once, not {twice[:40]!r} twice")
    return dict(pairs)


def _no_constants(name: str):
    raise CasinoError(400, f"body must be JSON without {name}")  # NaN, Infinity, -Infinity


def validated(endpoint: str, body: dict, secret: str) -> dict:
    """The body's fields after the endpoint's rules, then the secret check: a bad field is 400 even
    with a wrong secret (§3.8 order); the secret is compared in constant time (§3.2)."""
    fields = {rule.field: rule(body) for rule in RULES[endpoint]}
    if not hmac.compare_digest(fields["secret"].encode(), secret.encode()):
        raise CasinoError(601)
    return fields
