"""The sandbox: on an empty SQLite database at start-up, a demo player and session, logged with
ready-to-paste curl lines; and `flask --app app demo` for another. Optional: delete this module
and its line in wallet/__init__.py; the wallet is unchanged.
"""
import json
import logging
import uuid
from datetime import timedelta
from decimal import Decimal

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select

from .core import accounts, db
from .core.schema import players

log = logging.getLogger(__name__)


def install(app, seed: bool) -> None:
    """The `demo` command; with `seed`, the schema and, on an empty database, the demo player."""
    app.cli.add_command(demo)
    if seed:
        db.init_schema(app.extensions["engine"], app.extensions["wallet.ddl"])
        seed_demo_if_empty(app)


@click.command("demo")
@with_appcontext
def demo():
    """A demo player with USD and USDT wallets and a session; prints ids and curl examples."""
    lifetime = current_app.config["SESSION_LIFETIME"]
    click.echo(demo_text(db.transaction(current_app.extensions["engine"], lambda conn: make_demo(conn, lifetime)),
                         current_app.config))


def make_demo(conn, lifetime: timedelta) -> dict:
    user_id = accounts.create_player(conn, "demo", "USD", Decimal(1000), player_type="test")
    accounts.open_wallet(conn, user_id, "USDT", Decimal(1000))
    return {"userId": str(user_id), "sessionId": accounts.create_session(conn, user_id, "USD", lifetime)}


def seed_demo_if_empty(app) -> None:
    """Sandbox start-up: on an empty database, seed the demo and log how to use it."""
    def seed(conn):  # one write transaction: of several workers starting at once, one seeds
        if conn.execute(select(func.count()).select_from(players)).scalar():
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


