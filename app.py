"""The wallet's Flask app: `create_app()` for tests and embedding, `app` for `gunicorn app:app`.

Settings come from the environment (DESIGN.md, "Settings"; the README has the table). With none set
it is a sandbox on SQLite: the schema is created and, on an empty database, a demo player and
session are seeded and logged with curl commands to paste.
"""
import logging
import os
from datetime import timedelta

from flask import Flask, request
from sqlalchemy import text
from sqlalchemy.engine import make_url

from conformance.cli import conformance
from wallet import cli, console, db, guard, hash_reconcile, hp, launch
from wallet import hash as hash_api
from wallet.your_casino import YourCasino
from wallet import metrics  # optional: GET /metrics

SANDBOX_DEFAULTS = {
    "DATABASE_URL": "sqlite:///wallet.db",
    "HP_SECRET": "hp-sandbox-secret",
    "HASH_MERCHANT_ID": "1001",
    "HASH_SECRET": "hash-sandbox-secret-0123456789ab",
    "HASH_IV_MODE": "prefix",
    "HASH_API_URL": "",
    "HASH_TIMESTAMP_WINDOW_MS": "300000",
    "HASH_PAYOUT": "prize+bonus",
    "WALLET_ENV": "sandbox",
    "MAX_BODY_BYTES": "65536",
    "HP_ALLOWED_IPS": "",
    "HASH_ALLOWED_IPS": "",
    "PROXY_COUNT": "0",
    "HASH_ENCRYPT_RESPONSES": "0",
    "WALLET_ALLOW_SQLITE": "0",
    "HP_API_URL": "",
    "HASH_LAUNCH_URL": "",
    "CONSOLE": "auto",
    "LOCK_TIMEOUT_MS": "2000",
    "CALL_DEADLINE_MS": "2500",
    "SESSION_LIFETIME_MINUTES": "1440",
}
SECRETS = ("HP_SECRET", "HASH_SECRET")


def load_config(overrides=None) -> dict:
    config = {name: os.environ.get(name, default) for name, default in SANDBOX_DEFAULTS.items()}
    config.update(overrides or {})
    if config["WALLET_ENV"] == "production":
        for name in SECRETS:
            if config[name] == SANDBOX_DEFAULTS[name]:
                raise RuntimeError(f"WALLET_ENV=production: set {name}; the sandbox default is public")
        if config["DATABASE_URL"].startswith("sqlite") and config["WALLET_ALLOW_SQLITE"] != "1":
            raise RuntimeError("WALLET_ENV=production: set DATABASE_URL to PostgreSQL or MySQL "
                               "(or WALLET_ALLOW_SQLITE=1 for a single-host wallet)")
    if len(config["HASH_SECRET"]) != 32:
        raise RuntimeError("HASH_SECRET must be 32 characters: it is the AES-256 key (Hash §3.3)")
    if config["HASH_IV_MODE"] not in ("prefix", "key16"):
        raise RuntimeError("HASH_IV_MODE must be prefix or key16")
    config["PROXY_COUNT"] = int(config["PROXY_COUNT"])
    config["HP_ALLOWED_NETWORKS"] = guard.parse_networks(config["HP_ALLOWED_IPS"])
    config["HASH_ALLOWED_NETWORKS"] = guard.parse_networks(config["HASH_ALLOWED_IPS"])
    return config


def create_app(config=None, casino=None) -> Flask:
    """The app. `config` overrides settings; `casino` replaces the SQL YourCasino (e.g. TestCasino)."""
    app = Flask(__name__)
    app.config.update(load_config(config))
    app.config["MAX_CONTENT_LENGTH"] = int(app.config["MAX_BODY_BYTES"])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    limits = db.Limits(lock_timeout=int(app.config["LOCK_TIMEOUT_MS"]) / 1000,
                       deadline=int(app.config["CALL_DEADLINE_MS"]) / 1000)
    engine = db.make_engine(app.config["DATABASE_URL"], limits)
    app.config["SESSION_LIFETIME"] = timedelta(minutes=int(app.config["SESSION_LIFETIME_MINUTES"]))
    app.extensions["engine"] = engine
    app.extensions["casino"] = casino or YourCasino(engine)
    guard.install(app)
    app.register_blueprint(hp.bp)
    app.register_blueprint(hash_api.bp)
    cli.register(app)
    app.cli.add_command(hash_reconcile.hash_reconcile)  # optional: delete with its module
    app.cli.add_command(conformance)                    # optional: delete with conformance/
    for command in (launch.launch, launch.games):        # optional: delete with launch.py, *_client.py
        app.cli.add_command(command)
    console.install(app)                                # optional: the sandbox console at /
    metrics.install(app)                                # optional: delete with wallet/metrics.py

    @app.errorhandler(Exception)
    def protocol_error(exc):
        """Every failure in the providers' namespaces answers in that provider's format."""
        for prefix, blueprint in (("/100hp/", hp), ("/api/v2/", hash_api)):
            if request.path.startswith(prefix):
                return blueprint.unexpected_error(exc)
        if hasattr(exc, "code") and hasattr(exc, "name"):  # an HTTPException elsewhere
            return {"error": exc.name}, exc.code
        app.logger.exception("unexpected error")
        return {"error": "Internal Server Error"}, 500

    @app.get("/healthz")
    def healthz():
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            return {"status": "database unavailable"}, 503
        return {"status": "ok"}

    if app.config["WALLET_ENV"] == "sandbox" and make_url(app.config["DATABASE_URL"]).get_backend_name() == "sqlite":
        db.init_schema(engine)
        cli.seed_demo_if_empty(app)
    engine.dispose()  # `gunicorn --preload`: no connection of the master's is shared by the workers
    return app


def __getattr__(name):
    """`gunicorn app:app` and `flask --app app` ask for `app`: built on first use, from the
    environment, so that `from app import create_app` (the tests) builds nothing."""
    if name == "app":
        globals()["app"] = create_app()
        return globals()["app"]
    raise AttributeError(name)
