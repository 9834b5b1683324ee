"""Both providers' wallet endpoints in a FastAPI service: 100HP Game Flow at /100hp (docs/100hp.md)
and Hash API-v2 at /api/v2 (docs/hash.md), over the casino's own accounts (storage.py).

    hypercorn examples.port_fastapi.app:app -b 127.0.0.1:8000 -w 4

Not uvicorn: 100HP's errors are HTTP 601-702 and uvicorn cannot send a status above 599 (it
closes the connection); Hypercorn sends them as they are (docs/porting.md, "HTTP 601-702").

The rules call their storage synchronously (`atomically(work)`), so each call runs in a worker
thread (`run_in_threadpool`) with a synchronous connection: the event loop never waits on a row
lock, and the rules run as written, not converted to async (docs/porting.md, "An async stack").
The field rules are this repository's (wallet/hp100/fields.py, wallet/hash/fields.py: plain
functions of the decoded body, standard library only); only the reading of the request and the writing of the answer are FastAPI's here.

Settings (environment; a missing one stops the app at start, naming it): DATABASE_URL
(postgresql+psycopg://...), HP_SECRET, HASH_MERCHANT_ID, HASH_SECRET (32 characters);
HASH_IV_MODE (default prefix), HASH_TIMESTAMP_WINDOW_MS (default 300000).
"""
import hmac
import logging
import os
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from starlette.requests import ClientDisconnect
from sqlalchemy.ext.asyncio import create_async_engine

from examples.port_fastapi.storage import PortCasino, PortHashWallet, create_tables
from wallet.core import db
from wallet.hash import fields as hash_fields  # plain functions of the decrypted body
from wallet.hash.envelope import IV_MODES, EnvelopeError, decrypt
from wallet.hash.orders import HashError, RequestId
from wallet.hp100.casino import CasinoError
from wallet.hp100.fields import parsed_body, validated  # 100HP's field rules, in the documented order

log = logging.getLogger("port_fastapi")


def setting(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if not value:
        raise SystemExit(f"port_fastapi: set {name}")
    return value


CONFIG = {name: setting(name, default) for name, default in [
    ("DATABASE_URL", None), ("HP_SECRET", None), ("HASH_MERCHANT_ID", None), ("HASH_SECRET", None),
    ("HASH_IV_MODE", "prefix"), ("HASH_TIMESTAMP_WINDOW_MS", "300000")]}
if len(CONFIG["HASH_SECRET"]) != 32:
    raise SystemExit("port_fastapi: HASH_SECRET must be 32 characters (the AES-256 key)")
if CONFIG["HASH_IV_MODE"] not in IV_MODES:
    raise SystemExit(f"port_fastapi: HASH_IV_MODE must be one of {', '.join(IV_MODES)}")
if not CONFIG["HASH_TIMESTAMP_WINDOW_MS"].isdigit():
    raise SystemExit("port_fastapi: HASH_TIMESTAMP_WINDOW_MS must be a whole number of milliseconds")

engine = db.make_engine(CONFIG["DATABASE_URL"])  # synchronous psycopg: the rules' transactions
casino, merchant = PortCasino(engine), PortHashWallet(engine)


@asynccontextmanager
async def lifespan(app):
    create_tables(engine)
    app.state.service_db = create_async_engine(CONFIG["DATABASE_URL"])  # your own routes stay async
    yield
    await app.state.service_db.dispose()
    engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz(request: Request):  # one of your service's own async routes
    async with request.app.state.service_db.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return {"status": "ok"}


# ---- 100HP Game Flow endpoints (docs/100hp.md §4, its conventions docs/100hp.md §3) ---------------
HP_CALLS = {
    "auth": lambda f: casino.auth(f["sessionId"]),
    "balance": lambda f: casino.balance(f["sessionId"]),
    "withdrawal": lambda f: casino.withdrawal(f["sessionId"], f["txId"], f["amount"], f["userId"]),
    "deposit": lambda f: casino.deposit(f["txId"], f["amount"], f["sessionId"], f["userId"]),
    "rollback": lambda f: casino.rollback(f["txId"], f["sessionId"], f["userId"]),
    "bonusWin": lambda f: casino.bonus_win(f["sessionId"], f["txId"], f["amount"], f["promoId"], f["userId"]),
}


@app.post("/100hp/{endpoint}")
async def hp100(endpoint: str, request: Request):
    try:
        if endpoint not in HP_CALLS:
            return hp_error(404, "Not Found")
        # 400 with the rule's text, then the secret (601): docs/100hp.md §3.2, docs/100hp.md §3.8
        fields = validated(endpoint, parsed_body(await request.body()), CONFIG["HP_SECRET"])
        return JSONResponse(await run_in_threadpool(HP_CALLS[endpoint], fields))
    except CasinoError as exc:
        return hp_error(exc.err_code, exc.message, exc.data)
    except ClientDisconnect:  # 100HP gave up before its body arrived: nothing was done, no one to answer
        return hp_error(400, "Validation error", "body not received")
    except db.DatabaseUnavailable as exc:  # deadline passed, or a COMMIT of unknown outcome
        log.error("100HP %s not answered: %s", endpoint, exc)
        return hp_error(702, "Internal Server Error")  # 100HP retries or rolls back
    except Exception:
        log.exception("100HP %s failed", endpoint)
        return hp_error(702, "Internal Server Error")


def hp_error(err_code: int, message: str, data: str = "") -> JSONResponse:
    """docs/100hp.md §3.5: the HTTP status is the errCode (601-702 too: see the module docstring)."""
    return JSONResponse({"data": data, "message": message, "errCode": err_code}, status_code=err_code)


# ---- Hash API-v2 endpoints (docs/hash.md §4, in the envelope of docs/hash.md §3) ---------------
def order_add(plain, request_id):
    return merchant.order_add(
        token=hash_fields.key(plain, "token"), user_id=hash_fields.user_id(plain),
        order_no=hash_fields.key(plain, "order_no", max_len=64),
        currency=hash_fields.currency(plain, default="USDT"),
        amount=hash_fields.money(plain, "amount", positive=True),
        entry_key=hash_fields.text(plain, "entry_key", max_len=64), round_id=hash_fields.round_id(plain),
        bet_info=hash_fields.bet_info(plain), request_id=request_id)


def order_update(plain, request_id):
    return merchant.order_update(
        user_id=hash_fields.user_id(plain), order_no=hash_fields.key(plain, "order_no", max_len=64),
        currency=hash_fields.currency(plain),
        amount=hash_fields.money(plain, "amount", positive=True), status=hash_fields.status(plain),
        **hash_fields.result(plain), bet_info=hash_fields.bet_info(plain),
        entry_key=hash_fields.text(plain, "entry_key", max_len=64), round_id=hash_fields.round_id(plain),
        request_id=request_id)


HASH_CALLS = {
    "user/info": lambda plain, rid: merchant.user_info(hash_fields.key(plain, "token"), rid),
    "user/balance": lambda plain, rid: merchant.user_balance(
        hash_fields.key(plain, "token"), hash_fields.currency(plain, default="USDT"), rid),
    "order/add": order_add,
    "order/update": order_update,
}


@app.post("/api/v2/{path:path}")
async def hash_api(path: str, request: Request):
    try:
        if path not in HASH_CALLS:
            raise HashError(1001, "Not Found")
        plain, request_id = open_envelope(path, request.headers.get("merchant-id", ""), await request.body())
        data = await run_in_threadpool(HASH_CALLS[path], plain, request_id)
        return hash_answer({"code": 0, "msg": "SUCCESS", "data": data})
    except HashError as exc:
        return hash_answer({"code": exc.code, "msg": exc.msg})
    except ClientDisconnect:  # as for 100HP: nothing was done
        return hash_answer({"code": 1001, "msg": "invalid parameters: body not received"})
    except db.DatabaseUnavailable as exc:
        log.error("Hash %s not answered: %s", path, exc)
        return hash_answer({"code": 5000, "msg": "internal error"})  # Hash retries an update
    except Exception:
        log.exception("Hash %s failed", path)
        return hash_answer({"code": 5000, "msg": "internal error"})


def open_envelope(endpoint: str, merchant_id: str, raw: bytes) -> tuple[dict, RequestId]:
    """docs/hash.md §3: merchant-id (1003), {"x"} (1001), AES (1002), then what the request_id rule
    needs: the rules answer an identical re-send as a retry, and check the window (1004, 1005)."""
    if not hmac.compare_digest(merchant_id.encode(), CONFIG["HASH_MERCHANT_ID"].encode()):
        raise HashError(1003)
    try:
        plain = decrypt(hash_fields.sealed(raw), CONFIG["HASH_SECRET"], CONFIG["HASH_IV_MODE"])
    except EnvelopeError:
        raise HashError(1002) from None
    window = timedelta(milliseconds=int(CONFIG["HASH_TIMESTAMP_WINDOW_MS"]))
    return plain, hash_fields.request_id(plain, endpoint, window)


def hash_answer(envelope: dict) -> Response:
    """docs/hash.md §3.7: HTTP 200, amounts as JSON numbers written from the Decimal, never through float."""
    return Response(hash_fields.dumps(envelope), media_type="application/json")
