"""The benchmark's reference: the 100HP withdrawal written by hand on the raw driver (sqlite3,
psycopg, PyMySQL), the same statements, locking and durability as the wallet, Flask and nothing else.
It is the limit the wallet is measured against (`gunicorn tests.bench.raw_app:app`), not code to copy: it
skips the Casino abstraction, the retries and most validation.

`/100hp/withdrawal` only; `/floor` answers a constant JSON object, for the floor of the stack.
"""
import contextlib
import fcntl
import hmac
import json
import os
import re
import sqlite3
import threading
from datetime import datetime, timezone
from decimal import ROUND_DOWN, Decimal

from flask import Flask, request
from sqlalchemy.engine import make_url

app = Flask(__name__)
URL = make_url(os.environ.get("DATABASE_URL", "sqlite:///wallet.db"))
SECRET = os.environ.get("HP_SECRET", "hp-sandbox-secret").encode()
KIND = URL.get_backend_name()
P = "?" if KIND == "sqlite" else "%s"
FOR_UPDATE = {"sqlite": "", "postgresql": " FOR UPDATE OF w"}.get(KIND, " FOR UPDATE")
MYSQL = KIND in ("mysql", "mariadb")
# The txId claimed by its INSERT, or nothing if it is taken, as the wallet claims it (your_casino.py)
CLAIM = (f"INSERT {'IGNORE ' if MYSQL else ''}INTO hp_transactions (tx_id, kind, wallet_id, session_id, "
         f"amount, status, created_at) VALUES ({P}, {P}, {P}, {P}, {P}, {P}, {P})"
         f"{'' if MYSQL else ' ON CONFLICT (tx_id) DO NOTHING'}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
_local = threading.local()


def connection():
    """One connection per worker thread, opened after gunicorn forks; transactions are explicit."""
    _connection = getattr(_local, "connection", None)
    if _connection is None:
        if KIND == "sqlite":
            _connection = sqlite3.connect(URL.database, isolation_level=None, check_same_thread=False)
            for pragma in ("busy_timeout=30000", "journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
                _connection.execute(f"PRAGMA {pragma}")
        elif KIND == "postgresql":
            import psycopg
            _connection = psycopg.connect(host=URL.host, port=URL.port, user=URL.username,
                                          password=URL.password, dbname=URL.database, autocommit=True)
        else:
            import pymysql
            _connection = pymysql.connect(host=URL.host, port=URL.port, user=URL.username,
                                          password=URL.password or "", database=URL.database,
                                          autocommit=True)
            _connection.cursor().execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        _local.connection = _connection
    return _connection


@contextlib.contextmanager
def writers_queue():
    """SQLite: writers queue on a file lock beside the database, as the wallet's do (wallet/core/db.py)."""
    if KIND != "sqlite":
        yield
        return
    lock = os.open(f"{URL.database}.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
    finally:
        os.close(lock)


def error(code, message, data=""):
    return {"data": data, "message": message, "errCode": code}, code


def money(value: Decimal):
    return format(value, "f") if KIND == "sqlite" else value


@app.get("/floor")
def floor():
    return {"status": "ok"}


@app.post("/100hp/withdrawal")
def withdrawal():
    try:
        body = json.loads(request.get_data())
        session, tx_id, amount = body["sessionId"], body["txId"], body["amount"]
        if not (isinstance(session, str) and isinstance(tx_id, str) and _UUID.match(tx_id)):
            raise ValueError
        amount = Decimal(amount).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    except (ValueError, KeyError, TypeError, ArithmeticError):
        return error(400, "Validation error")
    if not hmac.compare_digest(str(body.get("secret")).encode(), SECRET):
        return error(601, "Invalid secret key")
    with writers_queue():
        return _withdrawal(connection().cursor(), session, tx_id, amount)


def _withdrawal(cur, session, tx_id, amount):
    cur.execute("BEGIN IMMEDIATE" if KIND == "sqlite" else "BEGIN")
    try:
        cur.execute("SELECT s.token, p.name, p.status, p.type, w.id, w.player_id, w.currency, w.balance "
                    "FROM sessions s JOIN players p ON p.id = s.player_id JOIN wallets w "
                    "ON w.player_id = s.player_id AND w.currency = s.currency "
                    f"WHERE s.token = {P} AND s.closed_at IS NULL{FOR_UPDATE}", (session,))
        found = cur.fetchone()
        if found is None:
            cur.execute("ROLLBACK")
            return error(604, "Session not found")
        wallet_id, player_id, currency, balance = found[4:]
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        cur.execute(CLAIM, (tx_id, "withdrawal", wallet_id, session, money(amount), "open", now))
        if cur.rowcount != 1:
            cur.execute("ROLLBACK")
            return error(607, "Transaction already exists")
        balance = Decimal(balance)
        if balance < amount:
            cur.execute("ROLLBACK")
            return error(603, "Insufficient balance")
        balance -= amount
        cur.execute(f"UPDATE wallets SET balance = {P} WHERE id = {P}", (money(balance), wallet_id))
        cur.execute("INSERT INTO ledger (wallet_id, provider, op, ref, amount, balance_after, created_at) "
                    f"VALUES ({P}, {P}, {P}, {P}, {P}, {P}, {P})",
                    (wallet_id, "100hp", "withdrawal", tx_id, money(-amount), money(balance), now))
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    return {"userId": str(player_id), "currency": currency, "balance": f"{balance:.2f}",
            "txId": tx_id, "sessionId": session}
