"""Hash Game's API-v2 no-transfer wallet (docs/hash.md): the merchant's endpoints under /api/v2.

blueprint.py  the four endpoints on Flask: merchant-id, the envelope, {code, msg, data}
fields.py     the field readers, the timestamp and request_id, `dumps` (standard library only)
envelope.py   AES-256-CBC, PKCS7, Base64: `x` in and out
orders.py     HashWallet: the rules (users, balances, the order lifecycle), storage abstract
sql_wallet.py   those storage primitives on SQL against this project's tables: a model for your
              own, not a file to copy (docs/porting.md, "What to take")
memory_wallet.py  the same in memory: the model the tests hold the SQL one to
schema.py, ddl/ the hash_orders and hash_applied_requests tables
settings.py   HASH_SECRET, HASH_ALLOWED_IPS, HASH_IV_MODE, ... and their production rules
audit.py, commands.py  the audit check, hash-encrypt
client.py, reconcile.py, books.py  the Hash services client; hash-reconcile (open orders, --settled)
launch.py     optional: `launch hash` and `games hash`
"""
from pathlib import Path

DDL_DIR = Path(__file__).resolve().parent / "ddl"


def register(app, hash_wallet=None) -> None:
    """Mount the endpoints on `app`; `hash_wallet` replaces the SQL one (e.g. a MemoryHashWallet)."""
    # imported here, not above: importing the rules runs this file and must not load Flask
    from ..settings import add_settings
    from . import audit, commands, reconcile, settings
    from .blueprint import bp, unexpected_error
    from .sql_wallet import SqlHashWallet

    add_settings(app.config, settings.SETTINGS)  # HASH_SECRET, HASH_ALLOWED_IPS, ...: checked here
    app.extensions["hash_wallet"] = hash_wallet or SqlHashWallet(
        app.extensions["engine"], formula=app.config["HASH_PAYOUT"],
        max_payout_multiple=app.config["HASH_MAX_PAYOUT_MULTIPLE"],
        bonus_allowance=app.config["HASH_BONUS_ALLOWANCE"])
    app.register_blueprint(bp)
    app.extensions["wallet.errors"]["/api/v2/"] = unexpected_error
    app.extensions["wallet.ddl"].append(DDL_DIR)
    app.extensions["wallet.audits"].append(audit.check_orders)
    app.cli.add_command(commands.hash_encrypt)
    app.cli.add_command(reconcile.hash_reconcile)
    from . import launch  # optional: delete these two lines and launch.py
    launch.install()
