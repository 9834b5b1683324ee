"""`flask --app app <command>`: the commands every provider shares.

init-db, create-player, create-session, close-session, block-player, unblock-player, audit; and
the `launch` and `games` groups each provider adds its subcommand to. The providers register
their own (wallet/hp100/commands.py, wallet/hash/commands.py), the sandbox its `demo`.
"""
import functools
import json
from decimal import Decimal, InvalidOperation

import click
from flask import current_app
from flask.cli import with_appcontext

from . import accounts, db
from .audit import audit


def register(app) -> None:
    for command in (init_db, create_player, create_session, close_session, block_player,
                    unblock_player, audit_command, launch, games):
        app.cli.add_command(command)


def _engine():
    return current_app.extensions["engine"]


def sandbox_only(command):
    """A command that mints money or ready-to-send requests (`demo`, `hash-encrypt`): it refuses to
    run unless WALLET_ENV is sandbox. Put it under @with_appcontext."""
    @functools.wraps(command)
    def run(*args, **kwargs):
        if current_app.config["WALLET_ENV"] != "sandbox":
            raise click.ClickException(f"{command.__name__.replace('_', '-')} is for the sandbox only: "
                                       "it is refused with WALLET_ENV=production")
        return command(*args, **kwargs)
    return run


def _echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2))


@click.command("init-db")
@with_appcontext
def init_db():
    """Create the schema from ddl/<dialect>.sql and each provider's (safe to run twice)."""
    engine = _engine()
    db.init_schema(engine, current_app.extensions["wallet.ddl"])
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


@click.command("audit")
@with_appcontext
def audit_command():
    """Check the books (wallet/core/audit.py); exit status 1 on any mismatch."""
    problems = audit(_engine(), current_app.extensions["wallet.audits"])
    for problem in problems:
        click.echo(problem)
    click.echo(f"audit: {len(problems)} problem(s)")
    if problems:
        raise SystemExit(1)




@click.group("launch")
def launch():
    """Open a fresh session for a player and print the game URL."""


@click.group("games")
def games():
    """A provider's games as a table."""


def new_session(user_id: int, currency: str | None) -> str:
    """A fresh session for a launch command; a click error if the player or wallet is missing."""
    try:
        return db.transaction(_engine(), lambda conn: accounts.create_session(
            conn, user_id, currency, current_app.config["SESSION_LIFETIME"]))
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None


def provider_errors(call, errors):
    """`call()`, a provider client's `errors` shown as a click error (no traceback)."""
    try:
        return call()
    except errors as exc:
        raise click.ClickException(str(exc)) from None


def print_table(header: tuple, rows: list) -> None:
    widths = [max(len(str(v)) for v in column) for column in zip(header, *rows)]
    for row in (header, *rows):
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
