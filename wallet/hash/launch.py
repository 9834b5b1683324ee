"""`flask --app app launch hash USER_ID` and `games hash`: the Hash iframe URL for a fresh token, or
Hash's own from game/login, and Hash's game list (wallet/hash/client.py; docs/hash.md §2.2, §5).
Optional: delete this module and its line in wallet/hash/__init__.py, and the wallet is unchanged.
"""
import click
from flask import current_app
from flask.cli import with_appcontext

from ..core.commands import games, launch, new_session, print_table, provider_errors
from .client import HashClient, HashServiceError, launch_url


def install() -> None:
    """`launch hash` and `games hash`, beside the other providers'."""
    launch.add_command(launch_hash)
    games.add_command(games_hash)


def _provider_errors(call):
    return provider_errors(call, HashServiceError)


@click.command("hash")
@with_appcontext
@click.argument("user_id", type=int)
@click.option("--entry", default="lobby", show_default=True)
@click.option("--currency", default="USDT", show_default=True)
@click.option("--lang", default="en", show_default=True)
@click.option("--home-url", default=None)
@click.option("--theme", type=click.Choice(["light", "dark"]), default=None)
@click.option("--via-login", is_flag=True, help="Ask Hash's game/login instead of building the URL.")
def launch_hash(user_id, entry, currency, lang, home_url, theme, via_login):
    """The Hash iframe URL for a fresh token (§2.2), or Hash's own from game/login (§5.2)."""
    config = current_app.config
    token = new_session(user_id, currency)
    if via_login:
        client = _provider_errors(lambda: HashClient.from_config(config))
        click.echo(_provider_errors(lambda: client.game_login(entry, token, currency, lang)))
        return
    if not config["HASH_LAUNCH_URL"]:
        raise click.ClickException("HASH_LAUNCH_URL is not set: Hash Game gives the front-end "
                                   "address (docs/hash.md §2.2), or use --via-login")
    click.echo(launch_url(config["HASH_LAUNCH_URL"], config["HASH_MERCHANT_ID"], entry, currency,
                          token, lang, home_url, theme))


@click.command("hash")
@with_appcontext
def games_hash():
    """Hash's games as a table."""
    client = _provider_errors(lambda: HashClient.from_config(current_app.config))
    listed = _provider_errors(lambda: client.game_list(page=1, page_size=200))
    print_table(("entry", "name", "icon"),
                [(g.get("entry", ""), g.get("name", ""), g.get("icon", "")) for g in listed.get("list", [])])
