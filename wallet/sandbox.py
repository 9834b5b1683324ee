"""The sandbox: on an empty SQLite database at start-up, a demo player and session, logged with
ready-to-paste curl lines; and `flask --app app demo` for another. Optional: delete this module
and its line in wallet/app.py; the wallet is unchanged.
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
from .core.commands import sandbox_only
from .core.schema import players, sessions, utcnow

log = logging.getLogger(__name__)


def install(app, seed: bool) -> None:
    """The `demo` command; with `seed`, the schema, the demo player on an empty database, and at
    every start the demo session to use (a fresh one once the last has expired), logged."""
    app.cli.add_command(demo)
    if seed:
        db.init_schema(app.extensions["engine"], app.extensions["wallet.ddl"])
        announce_demo(app)


@click.command("demo")
@with_appcontext
@sandbox_only
def demo():
    """A demo player with USD and USDT wallets and a session; prints ids and curl examples."""
    lifetime = current_app.config["SESSION_LIFETIME"]
    click.echo(demo_text(db.transaction(current_app.extensions["engine"], lambda conn: make_demo(conn, lifetime)),
                         current_app.config))


def make_demo(conn, lifetime: timedelta) -> dict:
    user_id = accounts.create_player(conn, "demo", "USD", Decimal(1000), player_type="test")
    accounts.open_wallet(conn, user_id, "USDT", Decimal(1000))
    return {"userId": str(user_id), "sessionId": accounts.create_session(conn, user_id, "USD", lifetime)}


def announce_demo(app) -> None:
    """Sandbox start-up: seed the demo on an empty database, or find its live session (open a
    fresh one if it has expired or was closed), and log how to use it."""
    lifetime = app.config["SESSION_LIFETIME"]

    def find_or_seed(conn):  # one write transaction: of several workers starting at once, one seeds
        demo_player = conn.execute(select(players.c.id).where(players.c.name == "demo")
                                   .order_by(players.c.id)).scalar()
        if demo_player is None:
            if conn.execute(select(func.count()).select_from(players)).scalar():
                return None  # a sandbox of someone's own players: nothing to announce
            return make_demo(conn, lifetime)
        live = conn.execute(select(sessions.c.token).where(
            sessions.c.player_id == demo_player, sessions.c.closed_at.is_(None),
            sessions.c.expires_at > utcnow()).order_by(sessions.c.expires_at.desc())).scalar()
        token = live or accounts.create_session(conn, demo_player, "USD", lifetime)
        return {"userId": str(demo_player), "sessionId": token}
    found = db.transaction(app.extensions["engine"], find_or_seed)
    if found:
        log.info("sandbox ready\n%s", demo_text(found, app.config))


def demo_text(demo_ids: dict, config, base_url="http://127.0.0.1:8000") -> str:
    """The curl lines show the secret only if it is the public sandbox default; a secret of one's
    own is never printed: the lines then say $HP_SECRET (set it in the shell to paste them)."""
    session, public = demo_ids["sessionId"], config.get("HP_SECRET") == "hp-sandbox-secret"
    tx = str(uuid.uuid4())

    def curl(path, **fields):
        body = json.dumps({"secret": "hp-sandbox-secret", **fields})
        if not public:  # the single-quoted body opens for the shell to fill in "$HP_SECRET"
            body = body.replace('"hp-sandbox-secret"', '"\'"$HP_SECRET"\'"')
        return f"curl -s -X POST {base_url}/100hp/{path} -H 'Content-Type: application/json' -d '{body}'"

    return "\n".join([
        f"demo player: userId {demo_ids['userId']} (it started with USD 1000, USDT 1000)",
        f"session (100HP sessionId, Hash token): {session}",
        "100HP bet -> win, paste in order:",
        "  " + curl("auth", sessionId=session),
        "  " + curl("withdrawal", sessionId=session, txId=tx, amount="10.00"),
        "  " + curl("deposit", txId=tx, amount="25.50"),
        "Hash requests are encrypted: flask --app app hash-encrypt --help",
        "Another player and session (e.g. the kit's --second-session): flask --app app create-player "
        "--name bob --balance 100, then flask --app app create-session <its userId>",
    ])


