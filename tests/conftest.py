"""Test fixtures: every database test runs on SQLite, PostgreSQL and MariaDB (real servers).

PostgreSQL and MariaDB are started once per run by tests/dbservers.py when their binaries are
installed; otherwise their tests are skipped and the run says so in its header and last lines.
`WALLET_TEST_DATABASES=sqlite` (a comma list) limits a run to some databases.
"""
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dbservers  # noqa: E402
import httpclient  # noqa: E402

from wallet.app import create_app  # noqa: E402
from wallet.core import accounts, db, schema  # noqa: E402
from wallet.core.audit import audit as audit_books  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATABASES = ("sqlite", "postgres", "mariadb")
HP_SECRET = "test-hp-secret"
HASH_SECRET = "0123456789abcdef0123456789abcdef"  # docs/hash.md §3.6
MERCHANT_ID = "1001"
# A sandbox that leaves the database to the test (SANDBOX_DEMO=0: no schema, no demo player) and
# has no console (CONSOLE=0: no call_log rows) unless a test turns it on.
TEST_CONFIG = {"WALLET_ENV": "sandbox", "SANDBOX_DEMO": "0", "CONSOLE": "0", "HP_SECRET": HP_SECRET,
               "HASH_SECRET": HASH_SECRET, "HASH_MERCHANT_ID": MERCHANT_ID}

_servers, _skipped, _schemas = {}, {}, {}

# What the app registers (the core's tables and checks, each provider's, the console's): read from
# an app with the console on, so that a tree with one provider deleted tests what is left.
_REGISTERED = create_app({**TEST_CONFIG, "CONSOLE": "1", "DATABASE_URL": "sqlite://"}).extensions


def init_schema(engine) -> None:
    db.init_schema(engine, _REGISTERED["wallet.ddl"])


def audit(engine) -> list[str]:
    """`flask --app app audit`."""
    return audit_books(engine, _REGISTERED["wallet.audits"])


@contextlib.contextmanager
def wallet_on_a_server_of_its_own(kind: str, database: str):
    """(server, url, app): a wallet with its schema on a throwaway PostgreSQL or MariaDB server of
    its own, for the tests that stop or restart the server. Afterwards the books are audited and
    the server removed."""
    if os.environ.get(f"WALLET_TEST_{'POSTGRES' if kind == 'postgres' else 'MYSQL'}_URL"):
        pytest.skip("needs a server of its own to stop")
    server, reason = {"postgres": dbservers.start_postgres, "mariadb": dbservers.start_mariadb}[kind]()
    if server is None:
        pytest.skip(reason)
    try:
        server.admin(f"CREATE DATABASE {database}")
        url = server.url(database)
        app = create_app({**TEST_CONFIG, "DATABASE_URL": url})
        init_schema(app.extensions["engine"])
        yield server, url, app
        app.extensions["engine"].dispose()  # the test's own pool still holds connections from before the stop
        assert audit(app.extensions["engine"]) == []
        app.extensions["engine"].dispose()
    finally:
        server.stop()


def _wanted():
    return [d.strip() for d in os.environ.get("WALLET_TEST_DATABASES", ",".join(DATABASES)).split(",")]


def pytest_sessionstart(session):
    starters = {"postgres": dbservers.start_postgres, "mariadb": dbservers.start_mariadb}
    for kind, start in starters.items():
        if kind not in _wanted():
            _skipped[kind] = "not in WALLET_TEST_DATABASES"
            continue
        server, reason = start()
        if server:
            _servers[kind] = server
        else:
            _skipped[kind] = reason


def pytest_sessionfinish(session):
    for server in _servers.values():
        server.stop()


def pytest_report_header(config):
    used = ["sqlite"] + sorted(_servers) if "sqlite" in _wanted() else sorted(_servers)
    lines = [f"databases: {', '.join(used)}"]
    lines += [f"databases skipped: {kind}: {why}" for kind, why in _skipped.items()]
    return lines


def pytest_terminal_summary(terminalreporter):
    for kind, why in _skipped.items():
        terminalreporter.write_line(f"databases skipped: {kind} ({why}); its tests did not run")


def fresh_database(kind: str, tmp_path) -> str:
    """The URL of a new, empty database on `kind`."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / f'wallet-{uuid.uuid4().hex[:8]}.db'}"
    if kind not in _servers:
        pytest.skip(f"{kind}: {_skipped.get(kind)}")
    name = f"t_{uuid.uuid4().hex[:12]}"
    _servers[kind].admin(f"CREATE DATABASE {name}")
    return _servers[kind].url(name)


TABLES_CHILD_FIRST = [table.name for table in reversed(schema.metadata.sorted_tables)]


def prepare_database(kind, tmp_path) -> str:
    """A database with the schema and no rows."""
    if kind not in _wanted():
        pytest.skip(f"{kind}: not in WALLET_TEST_DATABASES")
    if kind == "sqlite":
        url = fresh_database(kind, tmp_path)
        engine = db.make_engine(url)
        init_schema(engine)
        engine.dispose()
        return url
    if kind not in _schemas:  # one database per server and run, emptied before each test
        _schemas[kind] = fresh_database(kind, tmp_path)
        engine = db.make_engine(_schemas[kind])
        init_schema(engine)
        engine.dispose()
    engine = sa.create_engine(_schemas[kind])
    with engine.begin() as conn:
        for table in TABLES_CHILD_FIRST:
            conn.exec_driver_sql(f"DELETE FROM {table}")
    engine.dispose()
    return _schemas[kind]


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path):
    """An empty wallet database, on each database in turn."""
    return prepare_database(request.param, tmp_path)


@pytest.fixture(scope="module", params=DATABASES)
def module_database(request, tmp_path_factory):
    """One database for a whole module, on each database in turn: for the modules whose tests share
    one gunicorn (each test makes its own players, so none needs an empty database)."""
    return prepare_database(request.param, tmp_path_factory.mktemp("db"))


@pytest.fixture
def app(database_url):
    app = create_app({**TEST_CONFIG, "DATABASE_URL": database_url})
    yield app
    app.extensions["engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


def new_player(app, balance="1000", currency="USD", extra_currencies=()):
    """(userId, sessionId) of a new player with `balance` in `currency`."""
    def work(conn):
        user_id = accounts.create_player(conn, f"p-{uuid.uuid4().hex[:6]}", currency, Decimal(balance))
        for other in extra_currencies:
            accounts.open_wallet(conn, user_id, other, Decimal(balance))
        return str(user_id), accounts.create_session(conn, user_id, currency)
    return db.transaction(app.extensions["engine"], work)


def ledger_rows(app, user_id):
    with app.extensions["engine"].connect() as conn:
        return conn.execute(sa.select(schema.ledger).join(schema.wallets).where(
            schema.wallets.c.player_id == int(user_id)).order_by(schema.ledger.c.id)).all()


def balances(app, user_id) -> dict:
    with app.extensions["engine"].connect() as conn:
        return {w.currency: w.balance for w in accounts.player_wallets(conn, int(user_id))}


def tx() -> str:
    return str(uuid.uuid4())


@contextlib.contextmanager
def gunicorn(database_url, workers=4, extra_env=None, port=None, allow_errors=False, args=()):
    """A real `gunicorn app:app` on loopback; yields its base URL. Unless `allow_errors`, a
    traceback in its log (an unexpected error, a 702) fails the test."""
    port = port or dbservers.free_port()
    env = {**os.environ, **TEST_CONFIG, "DATABASE_URL": database_url, **(extra_env or {})}
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"gunicorn-{port}.log", "w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "app:app", "-w", str(workers), "-b", f"127.0.0.1:{port}",
         "--graceful-timeout", "5", "--pid", f"{log.name}.pid", *args],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    def no_tracebacks(output):
        assert allow_errors or "Traceback" not in output, f"gunicorn logged tracebacks: see {log.name}"
    with serving("gunicorn", process, log, f"http://127.0.0.1:{port}", no_tracebacks) as base:
        yield base


def healthy(base) -> bool:
    try:
        return httpclient.get(base, "/healthz")[0] == 200
    except OSError:
        return False


@contextlib.contextmanager
def serving(name, process, log, base, check_log):
    """Yield `base` once the server `process` (writing to the open file `log`) answers /healthz
    200, within 30 s; then stop it and hand its whole log to `check_log` (which asserts)."""
    try:
        deadline = time.monotonic() + 30
        while not healthy(base):
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"{name} did not start:\n{log.read()[-3000:]}")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(15)
        log.seek(0)
        output = log.read()
        log.close()
        check_log(output)


def wait_until_a_call_waits_for_a_lock(database_url, call, seconds=20):
    """PostgreSQL and MariaDB report a transaction that waits for a row lock; poll until one does
    (`call`, the future of the waiting request, must not have been answered meanwhile)."""
    engine = sa.create_engine(database_url)
    query = ("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
             if engine.dialect.name == "postgresql"
             else "SELECT count(*) FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT'")
    give_up = time.monotonic() + seconds
    with engine.connect() as conn:
        while not conn.exec_driver_sql(query).scalar():
            conn.rollback()  # PostgreSQL reads pg_stat_activity once a transaction
            assert not call.done(), f"the call was answered without waiting: {call.result()}"
            assert time.monotonic() < give_up, "the call never waited for the lock"
            # InnoDB refreshes innodb_trx only when it has not been read for 100 ms: a faster
            # poll would read its first snapshot for ever.
            time.sleep(0.2)
    engine.dispose()


def parallel(calls, workers=None):
    """Run the calls at once in threads; their results in order."""
    with ThreadPoolExecutor(workers or len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def post_json(base, path, body, headers=None):
    return httpclient.post(base, path, json.dumps(body).encode(), headers)
