"""Flask blueprint for the Hash Game merchant API (docs/hash.md §3, §4): all four endpoints.

Per request: check the `merchant-id` header (1003), open the `{"x": ...}` envelope in the IV form
HASH_IV_MODE names (1002, one answer for every way it can fail), read the plaintext's `timestamp`
and `request_id`, validate the fields with the readers of wallet/hash/fields.py (1001: every text
field must be storable on every database, within the same limit everywhere; amounts by the
precision rule of docs/hash.md §11.5), then hand the call to the app's HashWallet
(wallet/hash/orders.py), which answers a re-send of a request it applied as the retry it is,
refuses another body under an applied request_id (1005) and, for a request not applied before, a
timestamp out of the window (1004). Answers are HTTP 200 with
`{"code", "msg", "data"}` (§3.7), balances as JSON numbers written from the Decimal, never
through float (fields.dumps). This module is the Flask glue only: it never touches SQL, and the
rules a port reuses are in fields.py.
"""
import hmac
import logging
from datetime import timedelta

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import HTTPException

from ..core.db import DatabaseUnavailable
from ..core.text import shown
from ..guard import address_allowed, note_reference, note_result
from . import fields
from .envelope import EnvelopeError, decrypt, encrypt
from .fields import dumps
from .orders import HashError, RequestId

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
        plain = decrypt(fields.sealed(request.get_data(cache=False)), config["HASH_SECRET"],
                        config["HASH_IV_MODE"])
    except EnvelopeError:
        raise HashError(1002) from None  # no detail: why it failed is no one's business (no oracle)
    note_reference(plain.get("order_no"))
    window = timedelta(milliseconds=int(config["HASH_TIMESTAMP_WINDOW_MS"]))
    return plain, fields.request_id(plain, endpoint, window)


# ---- endpoints (§4.1-§4.4) -------------------------------------------------------------------------
def merchant():
    """The app's HashWallet: SQL (wallet/hash/sql_wallet.py) unless create_app was given another."""
    return current_app.extensions["hash_wallet"]


@bp.post("/user/info")
def user_info():
    plain, request_id = open_envelope("user/info")
    return success(merchant().user_info(fields.key(plain, "token"), request_id))


@bp.post("/user/balance")
def user_balance():
    plain, request_id = open_envelope("user/balance")
    return success(merchant().user_balance(fields.key(plain, "token"),
                                           fields.currency(plain, default="USDT"), request_id))


@bp.post("/order/add")
def order_add():
    plain, request_id = open_envelope("order/add")
    return success(merchant().order_add(
        token=fields.key(plain, "token"), user_id=fields.user_id(plain),
        order_no=fields.key(plain, "order_no", max_len=64),
        currency=fields.currency(plain, default="USDT"),  # optional, default USDT
        amount=fields.money(plain, "amount", positive=True),
        entry_key=fields.text(plain, "entry_key", max_len=64),
        round_id=fields.round_id(plain), bet_info=fields.bet_info(plain), request_id=request_id))


@bp.post("/order/update")
def order_update():
    plain, request_id = open_envelope("order/update")
    return success(merchant().order_update(
        user_id=fields.user_id(plain), order_no=fields.key(plain, "order_no", max_len=64),
        currency=fields.currency(plain), amount=fields.money(plain, "amount", positive=True),
        status=fields.status(plain), **fields.result(plain), bet_info=fields.bet_info(plain),
        entry_key=fields.text(plain, "entry_key", max_len=64), round_id=fields.round_id(plain),
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

