"""`flask --app app launch 100hp|hash ...` and `flask --app app games 100hp|hash`: from a player to a
game URL in one step (spec/100hp.md §9, spec/hash.md §4 and §6.1-§6.2). Optional, like the clients.
"""
import json

import click
from flask import current_app
from flask.cli import with_appcontext

from . import accounts, db
from .hash_client import HashClient, HashServiceError, launch_url
from .hp_client import HpApiError, HpClient


def _new_session(user_id: int, currency: str | None) -> str:
    try:
        return db.transaction(current_app.extensions["engine"],
                              lambda conn: accounts.create_session(
                                  conn, user_id, currency, current_app.config["SESSION_LIFETIME"]))
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None


def _provider_errors(call):
    try:
        return call()
    except (HpApiError, HashServiceError) as exc:
        raise click.ClickException(str(exc)) from None


@click.group("launch")
def launch():
    """Open a fresh session for a player and print the game URL."""


@launch.command("100hp")
@with_appcontext
@click.argument("user_id", type=int)
@click.argument("game_id")
@click.option("--demo", is_flag=True, help="Demo mode: no session, no money (§9.2).")
@click.option("--mobile", is_flag=True)
@click.option("--language", default="en", show_default=True)
@click.option("--currency", default=None, help="The player's wallet to play from (default: the first).")
def launch_100hp(user_id, game_id, demo, mobile, language, currency):
    """POST /games/v1/launch with a fresh sessionId (a reused one is refused, §9.2)."""
    config = current_app.config
    client = _provider_errors(lambda: HpClient(config["HP_API_URL"], config["HP_SECRET"]))
    session = None if demo else _new_session(user_id, currency)
    url, sent = _provider_errors(lambda: client.launch(session, game_id, demo=demo, mobile=mobile,
                                                      language=language))
    click.echo(f"sent: POST {client.base_url}/games/v1/launch {json.dumps(sent)}")
    click.echo(url)


@launch.command("hash")
@with_appcontext
@click.argument("user_id", type=int)
@click.option("--entry", default="lobby", show_default=True)
@click.option("--currency", default="USDT", show_default=True)
@click.option("--lang", default="en", show_default=True)
@click.option("--home-url", default=None)
@click.option("--theme", type=click.Choice(["light", "dark"]), default=None)
@click.option("--via-login", is_flag=True, help="Ask Hash's game/login instead of building the URL.")
def launch_hash(user_id, entry, currency, lang, home_url, theme, via_login):
    """The Hash iframe URL for a fresh token (§4), or Hash's own from game/login (§6.2)."""
    config = current_app.config
    token = _new_session(user_id, currency)
    if via_login:
        client = _provider_errors(lambda: HashClient.from_config(config))
        click.echo(_provider_errors(lambda: client.game_login(entry, token, currency, lang)))
        return
    if not config["HASH_LAUNCH_URL"]:
        raise click.ClickException("HASH_LAUNCH_URL is not set: Hash Game gives the front-end "
                                   "address (§4), or use --via-login")
    click.echo(launch_url(config["HASH_LAUNCH_URL"], config["HASH_MERCHANT_ID"], entry, currency,
                          token, lang, home_url, theme))


@click.command("games")
@with_appcontext
@click.argument("provider", type=click.Choice(["100hp", "hash"]))
def games(provider):
    """The provider's games as a table."""
    config = current_app.config
    if provider == "100hp":
        client = _provider_errors(lambda: HpClient(config["HP_API_URL"], config["HP_SECRET"]))
        rows = [(g.id, g.name, g.category, "demo" if g.has_demo else "", "hidden" if g.hidden else "")
                for g in _provider_errors(client.games)]
        header = ("id", "name", "category", "demo", "hidden")
    else:
        client = _provider_errors(lambda: HashClient.from_config(config))
        listed = _provider_errors(lambda: client.game_list(page=1, page_size=200))
        rows = [(g.get("entry", ""), g.get("name", ""), g.get("icon", "")) for g in listed.get("list", [])]
        header = ("entry", "name", "icon")
    widths = [max(len(str(v)) for v in column) for column in zip(header, *rows)]
    for row in (header, *rows):
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
