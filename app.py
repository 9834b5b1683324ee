"""The wallet's Flask app: `create_app()` for tests and embedding, `app` for `gunicorn app:app`.

Settings come from the environment, each checked at start by wallet/settings.py (the README has the
table): a bad one stops the app with a message naming it. With none set it is a sandbox on SQLite:
the schema is created and, on an empty database, a demo player and session are seeded and logged
with curl commands to paste (`SANDBOX_DEMO=0`: neither, for tests that bring their own database).
"""
import logging

from flask import Flask, request
from sqlalchemy import text
from sqlalchemy.engine import make_url

from conformance.cli import conformance
from wallet import cli, console, db, guard, hash_reconcile, hp, launch
from wallet import hash as hash_api
from wallet.settings import load_config
from wallet.your_casino import YourCasino


def create_app(config=None, casino=None) -> Flask:
    """The app. `config` overrides settings; `casino` replaces the SQL YourCasino (e.g. TestCasino)."""
    app = Flask(__name__)
    app.config.update(load_config(config))
    app.config["MAX_CONTENT_LENGTH"] = int(app.config["MAX_BODY_BYTES"])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    limits = db.Limits(lock_timeout=int(app.config["LOCK_TIMEOUT_MS"]) / 1000,
                       deadline=int(app.config["CALL_DEADLINE_MS"]) / 1000)
    engine = db.make_engine(app.config["DATABASE_URL"], limits)
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

    if (app.config["WALLET_ENV"] == "sandbox" and app.config["SANDBOX_DEMO"]
            and make_url(app.config["DATABASE_URL"]).get_backend_name() == "sqlite"):
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
