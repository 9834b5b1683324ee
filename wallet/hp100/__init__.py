"""100HP Gaming's Game Flow API (docs/100hp.md): the casino's wallet endpoints under /100hp.

blueprint.py  the six endpoints on Flask: the request, the allow-list, errors (HTTP status = errCode)
fields.py     the field rules and texts, then the secret (standard library only)
casino.py     the rules every wallet shares (the guide's `Casino` class); storage primitives abstract
your_casino.py  those primitives on SQL against this project's tables (in YourCasino's place): a
              model for your own, not a file to copy (docs/porting.md, "What to take")
testcasino.py   the same in memory: the model the tests hold YourCasino to
schema.py, ddl/ the hp_transactions table
settings.py   HP_SECRET, HP_ALLOWED_IPS, HP_API_URL and their production rules
audit.py, commands.py  the audit check, expire-withdrawals
client.py, launch.py   optional: the Gaming API client, `launch 100hp` and `games 100hp`
"""
from pathlib import Path

DDL_DIR = Path(__file__).resolve().parent / "ddl"


def register(app, casino=None) -> None:
    """Mount the endpoints on `app`; `casino` replaces the SQL YourCasino (e.g. a TestCasino)."""
    # imported here, not above: importing the rules runs this file and must not load Flask
    from ..settings import add_settings
    from . import audit, commands, settings
    from .blueprint import bp, unexpected_error
    from .your_casino import YourCasino

    add_settings(app.config, settings.SETTINGS)  # HP_SECRET, HP_ALLOWED_IPS, ...: checked here
    app.extensions["casino"] = casino or YourCasino(app.extensions["engine"])
    app.register_blueprint(bp)
    app.extensions["wallet.errors"]["/100hp/"] = unexpected_error
    app.extensions["wallet.ddl"].append(DDL_DIR)
    app.extensions["wallet.audits"].append(audit.check_bets)
    app.cli.add_command(commands.expire_withdrawals)
    from . import launch  # optional, with client.py: delete these two lines and the two files
    launch.install()
