"""`flask --app app launch 100hp USER_ID GAME_ID` and `games 100hp`: from a player to a 100HP game URL
in one step, through the Gaming API client (wallet/hp100/client.py; docs/100hp.md §5). Optional:
delete this module, client.py and their line in wallet/hp100/__init__.py, and the wallet is unchanged.
"""
import json

import click
from flask import current_app
from flask.cli import with_appcontext

from ..core.commands import games, launch, new_session, print_table, provider_errors
from .client import HpApiError, HpClient


def _client() -> HpClient:
    config = current_app.config
    return _provider_errors(lambda: HpClient(config["HP_API_URL"], config["HP_SECRET"]))


def install() -> None:
    """`launch 100hp` and `games 100hp`, beside the other providers'."""
    launch.add_command(launch_100hp)
    games.add_command(games_100hp)


def _provider_errors(call):
    return provider_errors(call, HpApiError)


@click.command("100hp")
@with_appcontext
@click.argument("user_id", type=int)
@click.argument("game_id")
@click.option("--demo", is_flag=True, help="Demo mode: no session, no money (docs/100hp.md §5.2).")
@click.option("--mobile", is_flag=True)
@click.option("--language", default="en", show_default=True)
@click.option("--currency", default=None, help="The player's wallet to play from (default: the first).")
def launch_100hp(user_id, game_id, demo, mobile, language, currency):
    """POST /games/v1/launch with a fresh sessionId (a reused one is refused, §5.2)."""
    client = _client()
    session = None if demo else new_session(user_id, currency)
    url, sent = _provider_errors(lambda: client.launch(session, game_id, demo=demo, mobile=mobile,
                                                      language=language))
    click.echo(f"sent: POST {client.base_url}/games/v1/launch {json.dumps(sent)}")
    click.echo(url)


@click.command("100hp")
@with_appcontext
def games_100hp():
    """100HP's games as a table."""
    rows = [(g.id, g.name, g.category, "demo" if g.has_demo else "", "hidden" if g.hidden else "")
            for g in _provider_errors(_client().games)]
    print_table(("id", "name", "category", "demo", "hidden"), rows)
