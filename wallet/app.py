"""The wallet's Flask app: `create_app()` builds it; app.py gives it to gunicorn and flask.

It lives here, not in wallet/__init__.py, because Python runs a package's __init__ on every import
of its modules: importing a provider's rules (wallet/hp100/casino.py, wallet/hash/orders.py) must
not build the app or load Flask and SQLAlchemy (tests/test_imports.py).

Settings come from the environment, each checked at start by wallet/settings.py (docs/operations.md has the
table): a bad one stops the app with a message naming it. With none set it is a sandbox on SQLite:
the schema is created and, on an empty database, a demo player and session are seeded and logged
with curl commands to paste (`SANDBOX_DEMO=0`: neither, for tests that bring their own database).

Each provider is one folder registered by one line below, and so is each optional part: deleting
the folder, its import and its line removes it (README, "One provider only"). The conformance
kit (conformance/) is no part of the app: it runs as `python -m conformance` against any wallet.
"""
import logging
from datetime import timedelta

from flask import Flask, request
from sqlalchemy import text
from sqlalchemy.engine import make_url

from wallet import console  # optional: the sandbox console
from wallet import hash  # Hash API-v2
from wallet import hp100  # 100HP Game Flow API
from wallet import metrics  # optional: Prometheus metrics at /metrics
from wallet import guard, sandbox
from wallet.core import commands, db
from wallet.settings import load_config


def create_app(config=None, casino=None, hash_wallet=None) -> Flask:
    """The app. `config` overrides settings; `casino` replaces the SQL YourCasino (e.g. a
    TestCasino) and `hash_wallet` the SQL Hash storage (e.g. a MemoryHashWallet): with either, no
    SQLite sandbox is built or seeded."""
    app = Flask(__name__)
    app.config.update(load_config(config))
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_BODY_BYTES"]
    app.config["SESSION_LIFETIME"] = timedelta(minutes=app.config["SESSION_LIFETIME_MINUTES"])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    limits = db.Limits(lock_timeout=app.config["LOCK_TIMEOUT_MS"] / 1000,
                       deadline=app.config["CALL_DEADLINE_MS"] / 1000)
    engine = db.make_engine(app.config["DATABASE_URL"], limits)  # connects on first use only
    app.extensions.update({"engine": engine, "wallet.ddl": [db.DDL_DIR], "wallet.audits": [],
                           "wallet.errors": {}})
    guard.install(app)
    commands.register(app)
    hp100.register(app, casino)  # the 100HP endpoints at /100hp
    hash.register(app, hash_wallet)  # the Hash endpoints at /api/v2
    console.install(app)  # the sandbox console at /
    metrics.install(app)  # GET /metrics
    _answer_errors_in_each_providers_format(app)

    @app.get("/healthz")
    def healthz():
        try:  # in the call's budget, like any call: a frozen database link is a 503 by the deadline
            db.transaction(engine, lambda conn: conn.execute(text("SELECT 1")), write=False)
        except Exception:
            return {"status": "database unavailable"}, 503
        return {"status": "ok"}

    sql_sandbox = (app.config["WALLET_ENV"] == "sandbox" and app.config["SANDBOX_DEMO"]
                   and casino is None and hash_wallet is None
                   and make_url(app.config["DATABASE_URL"]).get_backend_name() == "sqlite")
    sandbox.install(app, seed=sql_sandbox)  # the demo player, its command and its log
    engine.dispose()  # `gunicorn --preload`: no connection of the master's is shared by the workers
    return app


def _answer_errors_in_each_providers_format(app) -> None:
    @app.errorhandler(Exception)
    def protocol_error(exc):
        """Every failure in a provider's namespace answers in that provider's format (each
        registers its `unexpected_error` for its URL prefix in app.extensions["wallet.errors"])."""
        for prefix, unexpected_error in app.extensions["wallet.errors"].items():
            if request.path.startswith(prefix):
                return unexpected_error(exc)
        if hasattr(exc, "code") and hasattr(exc, "name"):  # an HTTPException elsewhere
            return {"error": exc.name}, exc.code
        app.logger.exception("unexpected error")
        return {"error": "Internal Server Error"}, 500
