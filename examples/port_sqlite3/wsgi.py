"""`gunicorn examples.port_sqlite3.wsgi:app` (from the repository's root): this repository's 100HP
blueprint, validation and rules serving PortCasino on CASINO_DB (default casino.db).

Only the 100HP endpoints are the port's; the app's own database setting is pointed at an empty
in-memory SQLite, so nothing of this repository's schema is created in the casino's database.
"""
import os

from examples.port_sqlite3.port_casino import PortCasino
from wallet.app import create_app

casino = PortCasino(os.environ.get("CASINO_DB", "casino.db"))
casino.init()
app = create_app({"WALLET_ENV": os.environ.get("WALLET_ENV", "sandbox"),  # a database given: say which
                  "DATABASE_URL": "sqlite://", "SANDBOX_DEMO": "0", "CONSOLE": "0"}, casino=casino)
