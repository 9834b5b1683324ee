"""Flask blueprint for the 100HP Game Flow API endpoints (docs/100hp.md §3, §4), mounted at /100hp.

Per request: the allow-list, then the field rules of wallet/hp100/fields.py (the body as one JSON
object in UTF-8, each endpoint's fields in the documented order with the documented texts: 400
`Validation error`, `data` = the rule; then the shared secret: 601), then the call to the app's
Casino. Every answer is JSON; an error's HTTP status equals its errCode (§3.1, §3.5). This module is
the Flask glue only: it never touches SQL, and the rules a port reuses are in fields.py.
"""
import logging

from flask import Blueprint, current_app, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ..core.db import DatabaseUnavailable
from ..core.text import shown
from ..guard import address_allowed, note_reference
from . import fields
from .casino import CasinoError

bp = Blueprint("hp", __name__, url_prefix="/100hp")
log = logging.getLogger(__name__)


def validated(endpoint: str) -> dict:
    """The request's fields by the rules of fields.py, then the secret check (§3.8 order)."""
    body = fields.parsed_body(request.get_data(cache=False))
    note_reference(body.get("txId"))
    return fields.validated(endpoint, body, current_app.config["HP_SECRET"])


def casino():
    return current_app.extensions["casino"]


@bp.before_request
def allowed_address():
    config = current_app.config
    if not address_allowed(config["HP_ALLOWED_IPS"]):
        raise CasinoError(601)  # the provider's auth error; the log line says why


# ---- endpoints (§4.1-§4.6) -----------------------------------------------------------------------
@bp.post("/auth")
def auth():
    return casino().auth(validated("auth")["sessionId"])


@bp.post("/balance")
def balance():
    return casino().balance(validated("balance")["sessionId"])


@bp.post("/withdrawal")
def withdrawal():
    f = validated("withdrawal")
    return casino().withdrawal(f["sessionId"], f["txId"], f["amount"], f["userId"])


@bp.post("/deposit")
def deposit():
    f = validated("deposit")
    return casino().deposit(f["txId"], f["amount"], f["sessionId"], f["userId"])


@bp.post("/rollback")
def rollback():
    f = validated("rollback")
    return casino().rollback(f["txId"], f["sessionId"], f["userId"])


@bp.post("/bonusWin")
def bonus_win():
    f = validated("bonusWin")
    return casino().bonus_win(f["sessionId"], f["txId"], f["amount"], f["promoId"], f["userId"])


# ---- errors (§3.5): HTTP status = errCode, body {data, message, errCode} -------------------------
@bp.errorhandler(CasinoError)
def casino_error(exc: CasinoError):
    return error_body(exc.err_code, exc.message, exc.data)


def error_body(err_code: int, message: str, data: str = ""):
    return {"data": data, "message": message, "errCode": err_code}, err_code


def unexpected_error(exc: Exception):
    """Any other failure under /100hp, routed here by app.py: never a traceback or an HTML page."""
    if isinstance(exc, RequestEntityTooLarge):
        return casino_error(CasinoError(400, "request body is too large"))
    if isinstance(exc, HTTPException):  # unknown path, wrong method
        return error_body(exc.code, exc.name)
    if isinstance(exc, DatabaseUnavailable):  # deadline passed, or a COMMIT of unknown outcome
        log.error("100HP %s not answered: %s", shown(request.path), exc)
        return casino_error(CasinoError(702))  # 100HP retries or rolls back; our answer is 702
    log.exception("100HP %s failed", shown(request.path))
    return casino_error(CasinoError(702))  # the transaction was rolled back
