"""`flask --app app <command>`: the commands of DESIGN.md ("Commands").

Sandbox: init-db, create-player, create-session, demo, hash-encrypt.
Operator: audit (wallet/audit.py), expire-withdrawals (spec/100hp.md §8.3), close-session,
block-player, unblock-player.
(hash-reconcile is registered by app.py from wallet/hash_reconcile.py.)
"""
import json
import logging
import re
import shlex
import time
import uuid
from datetime import timedelta
from decimal import Decimal, InvalidOperation

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select

from . import accounts, db
from .audit import audit
from .casino import CasinoError
from .hash import dumps
from .hash_crypto import encrypt

log = logging.getLogger(__name__)


def register(app) -> None:
    for command in (init_db, create_player, create_session, close_session, block_player,
                    unblock_player, demo, hash_encrypt, audit_command, expire_withdrawals):
        app.cli.add_command(command)


def _engine():
    return current_app.extensions["engine"]


def _echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2))


@click.command("init-db")
@with_appcontext
def init_db():
    """Create the schema from ddl/<dialect>.sql (safe to run twice)."""
    engine = _engine()
    db.init_schema(engine)
    click.echo(f"schema ready on {engine.url.render_as_string(hide_password=True)}")


class DecimalParam(click.ParamType):
    name = "amount"

    def convert(self, value, param, ctx):
        try:
            amount = Decimal(value)
        except InvalidOperation:
            self.fail(f"{value!r} is not a decimal amount", param, ctx)
        if not amount.is_finite() or amount < 0:
            self.fail("the balance must be a finite amount >= 0", param, ctx)
        return amount


@click.command("create-player")
@with_appcontext
@click.option("--name", required=True)
@click.option("--currency", default="USD", show_default=True)
@click.option("--balance", type=DecimalParam(), default="0", show_default=True)
def create_player(name, currency, balance):
    """A player with one wallet; prints its userId and balance."""
    user_id = db.transaction(_engine(), lambda conn: accounts.create_player(conn, name, currency,
                                                                           balance))
    _echo_json({"userId": str(user_id), "currency": currency, "balance": format(balance, "f")})


@click.command("create-session")
@with_appcontext
@click.argument("user_id", type=int)
@click.option("--currency", default=None, help="The 100HP wallet (default: the player's first).")
def create_session(user_id, currency):
    """A login token: the 100HP sessionId and the Hash token."""
    try:
        token = db.transaction(_engine(), lambda conn: accounts.create_session(
        conn, user_id, currency, current_app.config["SESSION_LIFETIME"]))
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    _echo_json({"token": token, "sessionId": token})


@click.command("close-session")
@with_appcontext
@click.argument("token")
def close_session(token):
    """End a session now: it takes no new bets (100HP 604, Hash 2001); its open bets still settle."""
    if not db.transaction(_engine(), lambda conn: accounts.close_session(conn, token)):
        raise click.ClickException("no open session with that token")
    _echo_json({"token": token, "closed": True})


def _set_status(user_id: int, status: str) -> None:
    if not db.transaction(_engine(), lambda conn: accounts.set_player_status(conn, user_id, status)):
        raise click.ClickException(f"player {user_id} not found")
    _echo_json({"userId": str(user_id), "status": status})


@click.command("block-player")
@with_appcontext
@click.argument("user_id", type=int)
def block_player(user_id):
    """Refuse the player's new bets (100HP 604, Hash 2001); wins and refunds of earlier bets settle."""
    _set_status(user_id, "blocked")


@click.command("unblock-player")
@with_appcontext
@click.argument("user_id", type=int)
def unblock_player(user_id):
    """Let a blocked player bet again."""
    _set_status(user_id, "active")


@click.command("demo")
@with_appcontext
def demo():
    """A demo player with USD and USDT wallets and a session; prints ids and curl examples."""
    lifetime = current_app.config["SESSION_LIFETIME"]
    click.echo(demo_text(db.transaction(_engine(), lambda conn: make_demo(conn, lifetime)),
                         current_app.config))


def make_demo(conn, lifetime: timedelta) -> dict:
    user_id = accounts.create_player(conn, "demo", "USD", Decimal(1000), player_type="test")
    accounts.open_wallet(conn, user_id, "USDT", Decimal(1000))
    return {"userId": str(user_id), "sessionId": accounts.create_session(conn, user_id, "USD", lifetime)}


def seed_demo_if_empty(app) -> None:
    """Sandbox start-up: on an empty database, seed the demo and log how to use it."""
    def seed(conn):  # one write transaction: of several workers starting at once, one seeds
        if conn.execute(select(func.count()).select_from(db.players)).scalar():
            return None
        return make_demo(conn, app.config["SESSION_LIFETIME"])
    created = db.transaction(app.extensions["engine"], seed)
    if created:
        log.info("sandbox seeded\n%s", demo_text(created, app.config))


def demo_text(demo_ids: dict, config, base_url="http://127.0.0.1:8000") -> str:
    secret, session = config["HP_SECRET"], demo_ids["sessionId"]
    tx = str(uuid.uuid4())

    def curl(path, **fields):
        body = json.dumps({"secret": secret, **fields})
        return f"curl -s -X POST {base_url}/100hp/{path} -H 'Content-Type: application/json' -d '{body}'"

    return "\n".join([
        f"demo player: userId {demo_ids['userId']} (USD 1000, USDT 1000)",
        f"session (100HP sessionId, Hash token): {session}",
        "100HP bet -> win, paste in order:",
        "  " + curl("auth", sessionId=session),
        "  " + curl("withdrawal", sessionId=session, txId=tx, amount="10.00"),
        "  " + curl("deposit", txId=tx, amount="25.50"),
        "Hash requests are encrypted: flask --app app hash-encrypt --help",
    ])


@click.command("audit")
@with_appcontext
def audit_command():
    """Check the books (wallet/audit.py); exit status 1 on any mismatch."""
    problems = audit(_engine())
    for problem in problems:
        click.echo(problem)
    click.echo(f"audit: {len(problems)} problem(s)")
    if problems:
        raise SystemExit(1)


@click.command("hash-encrypt")
@with_appcontext
@click.argument("plaintext")
@click.option("--path", default="/api/v2/user/info", show_default=True,
              help="The merchant endpoint, for the curl line.")
@click.option("--url", default="http://127.0.0.1:8000", show_default=True)
def hash_encrypt(plaintext, path, url):
    """Encrypt a Hash request by hand: PLAINTEXT is its JSON; `timestamp` and `request_id` are
    added when missing. Prints the body and a curl line for this wallet's settings."""
    try:
        fields = json.loads(plaintext, parse_float=Decimal)  # amounts kept digit for digit
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}") from None
    fields.setdefault("timestamp", int(time.time() * 1000))
    fields.setdefault("request_id", uuid.uuid4().hex)
    config = current_app.config
    body = json.dumps({"x": encrypt(dumps(fields).encode(), config["HASH_SECRET"],
                                    config["HASH_IV_MODE"])})
    click.echo(body)
    click.echo(f"curl -s -X POST {url}{path} -H 'Content-Type: application/json' "
               f"-H 'merchant-id: {config['HASH_MERCHANT_ID']}' -d {shlex.quote(body)}")


_DURATION = re.compile(r"(\d+)([dhm])\Z")


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if not match:
        raise click.BadParameter("use a number and d, h or m, e.g. 14d")
    unit = {"d": "days", "h": "hours", "m": "minutes"}[match.group(2)]
    return timedelta(**{unit: int(match.group(1))})


@click.command("expire-withdrawals")
@with_appcontext
@click.option("--older-than", default="14d", show_default=True, callback=lambda c, p, v: parse_duration(v),
              help="100HP recommends 2 weeks (changelog 2.4.0).")
def expire_withdrawals(older_than):
    """Refund 100HP withdrawals that got neither deposit nor rollback in time. Safe from cron while
    traffic flows: each refund is one locked transaction, and a bet settled meanwhile is left alone."""
    casino = current_app.extensions["casino"]
    refunded = 0
    for tx_id in casino.open_withdrawals(db.utcnow() - older_than):
        try:
            balance = casino.expire(tx_id)
        except CasinoError as exc:  # settled or refunded since we listed it
            click.echo(f"{tx_id}: left alone ({exc.err_code} {exc.message})")
            continue
        refunded += 1
        click.echo(f"{tx_id}: refunded, balance {balance:f}")
    click.echo(f"expire-withdrawals: {refunded} refunded")
