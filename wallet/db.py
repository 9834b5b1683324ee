"""Database access: the engine, the tables and the one transaction helper.

The schema's source of truth is `ddl/<dialect>.sql` (applied by `init_schema`); the tables below
mirror it for SQLAlchemy Core queries, and tests/test_schema.py proves the two agree.

Locking (DESIGN.md, "Correctness under concurrency"): every money operation is one transaction that
locks the wallet row first. PostgreSQL and MySQL: `SELECT ... FOR UPDATE` under READ COMMITTED, so a
row re-read after the lock is the latest committed one. SQLite has no row locks: a writing
transaction starts with `BEGIN IMMEDIATE`, which takes the database write lock up front, and writers
queue for it on a file lock beside the database (`_writers_queue`).
"""
import contextlib
import fcntl
import os
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import (BigInteger, bindparam, Boolean, Column, DateTime, ForeignKey, Index, Integer, MetaData,
                        Numeric, SmallInteger, String, Table, Text, UniqueConstraint, create_engine,
                        event, select, text)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.types import TypeDecorator

from .statement import Statement, wrapped

DDL_DIR = Path(__file__).resolve().parent.parent / "ddl"


class DecimalText(TypeDecorator):
    """Money on SQLite: exact decimal text, since SQLite's NUMERIC would store a REAL."""
    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else format(Decimal(value), "f")

    def process_result_value(self, value, dialect):
        return None if value is None else Decimal(value)


Money = Numeric(24, 6, asdecimal=True).with_variant(DecimalText(), "sqlite")
Id = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only

metadata = MetaData()

players = Table(
    "players", metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("status", String(16), nullable=False, server_default="active"),
    Column("type", String(16), nullable=False, server_default="real"),
    Column("created_at", DateTime, nullable=False),
)

wallets = Table(
    "wallets", metadata,
    Column("id", Id, primary_key=True),
    Column("player_id", BigInteger, ForeignKey("players.id"), nullable=False),
    Column("currency", String(16), nullable=False),
    Column("balance", Money, nullable=False),
    UniqueConstraint("player_id", "currency"),
)

sessions = Table(
    "sessions", metadata,
    Column("token", String(255), primary_key=True),
    Column("player_id", BigInteger, ForeignKey("players.id"), nullable=False),
    Column("currency", String(16), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("closed_at", DateTime, nullable=True),
)

hp_transactions = Table(
    "hp_transactions", metadata,
    Column("tx_id", String(50), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("wallet_id", BigInteger, ForeignKey("wallets.id"), nullable=False),
    Column("session_id", String(255), nullable=False),
    Column("amount", Money, nullable=False),
    Column("status", String(16), nullable=False),
    Column("win_amount", Money, nullable=True),
    Column("promo_id", String(255), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("closed_at", DateTime, nullable=True),
    Index("hp_transactions_status_created", "status", "created_at"),
)

hash_orders = Table(
    "hash_orders", metadata,
    Column("order_no", String(64), primary_key=True),
    Column("wallet_id", BigInteger, ForeignKey("wallets.id"), nullable=False),
    Column("amount", Money, nullable=False),
    Column("status", SmallInteger, nullable=False),
    Column("debited", Boolean, nullable=False),
    Column("payout", Money, nullable=True),
    Column("prize", Money, nullable=True),
    Column("tax", Money, nullable=True),
    Column("bonus", Money, nullable=True),
    Column("entry_key", String(64), nullable=False),
    Column("round_id", String(64), nullable=False),
    Column("bet_info", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

ledger = Table(
    "ledger", metadata,
    Column("id", Id, primary_key=True),
    Column("wallet_id", BigInteger, ForeignKey("wallets.id"), nullable=False),
    Column("provider", String(16), nullable=False),
    Column("op", String(16), nullable=False),
    Column("ref", String(64), nullable=False),
    Column("amount", Money, nullable=False),
    Column("balance_after", Money, nullable=False),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("provider", "op", "ref"),
    Index("ledger_wallet", "wallet_id", "id"),
)

call_log = Table(
    "call_log", metadata,
    Column("id", Id, primary_key=True),
    Column("at", DateTime, nullable=False),
    Column("provider", String(16), nullable=False),
    Column("operation", String(32), nullable=False),
    Column("ref", String(64), nullable=True),
    Column("result", Integer, nullable=False),
    Column("duration_ms", Integer, nullable=False),
)


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def make_engine(url: str, sqlite_busy_timeout_ms: int = 30000):
    """An engine set up for this wallet's locking; see the module docstring."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    # No pool_pre_ping on any of them (a round trip per call): a connection found dead is retried.
    if backend in ("mysql", "mariadb"):
        return _rollback_only_open_transactions(
            create_engine(url, isolation_level="READ COMMITTED", pool_reset_on_return=None))
    if backend != "sqlite":
        return create_engine(url, isolation_level="READ COMMITTED")
    engine = create_engine(url)
    database = parsed.database
    engine.writer_queue = f"{database}.lock" if database and database != ":memory:" else None

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # let the "begin" hook below issue BEGIN itself
        for pragma in (f"busy_timeout={int(sqlite_busy_timeout_ms)}",
                       "journal_mode=WAL",       # readers never wait for the writer
                       "synchronous=FULL",       # a committed bet survives a power cut
                       "foreign_keys=ON"):
            dbapi_conn.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn):
        begin_sqlite(conn, conn.get_execution_options().get("write", True))

    return engine


TRANSACTION_ENDED = "wallet.transaction_ended"  # Driver's note to the pool, in the record's info


def _rollback_only_open_transactions(engine):
    """MySQL: the pool rolls back a connection it gets back only if its transaction may be open.

    SQLAlchemy's default rolls back every connection returned, and PyMySQL sends that ROLLBACK
    even with no transaction open (sqlite3 and psycopg do not): a round trip per call. SQLAlchemy's
    Connection says when its transaction has ended, and `Driver` notes it in the connection's info
    (SQLAlchemy docs, "Reset On Return": pool_reset_on_return=None and a "reset" event hook).
    """
    @event.listens_for(engine, "reset")
    def _reset(dbapi_conn, record, state):
        ended = record is not None and record.info.pop(TRANSACTION_ENDED, False)
        if not (state.transaction_was_reset or ended):
            dbapi_conn.rollback()
    return engine


def init_schema(engine) -> None:
    """Apply ddl/<dialect>.sql; every statement is IF NOT EXISTS, so this is safe to run twice.

    On SQLite it waits in the writers' queue, connection included: gunicorn's workers start the
    sandbox together, and the first connection to a new file turns it to WAL, which takes an
    exclusive lock without waiting for a busy one ("database is locked" in the other worker).
    """
    dialect = {"postgresql": "postgres", "mariadb": "mysql"}.get(engine.dialect.name,
                                                                  engine.dialect.name)
    script = (DDL_DIR / f"{dialect}.sql").read_text()
    statements = [s for s in script.split(";\n") if _without_comments(s).strip()]
    with _writers_queue(engine, write=True), engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


def _without_comments(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


def transaction(engine, work, *, write=True, attempts=4, driver=False):
    """Run `work(conn)` in one transaction and return its result; commit, or roll back on error.

    `conn` is a SQLAlchemy Connection; with `driver=True` it is the pool's DBAPI connection
    (`Driver`), for work that runs only `Statement`s: the money path, which so skips SQLAlchemy's
    Connection and transaction bookkeeping (a tenth of a withdrawal's cost, README "Performance").

    Retried (up to `attempts` runs in all) when `work` fails on a deadlock, a lock timeout, a lost
    unique-key race (the next run sees the winner's row and answers as the duplicate it is) or a
    connection found dead (the pool reconnects). A failure of the COMMIT itself is never retried:
    the commit may have happened, and only a fresh look can tell.
    """
    for attempt in range(1, attempts + 1):
        with _connect(engine, write, driver) as conn, _writers_queue(engine, write):
            try:
                conn.begin()
                result = work(conn)
            except DBAPIError as exc:
                conn.rollback()
                if attempt < attempts and (exc.connection_invalidated or _retryable(exc)):
                    continue
                raise
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
            return result


def _connect(engine, write: bool, driver: bool):
    if driver:
        return Driver(engine, write)
    conn = engine.connect()
    if not write:
        conn.execution_options(write=False)  # SQLite: BEGIN, not BEGIN IMMEDIATE
    return conn


class Driver:
    """A DBAPI connection from the engine's pool, with the part of SQLAlchemy's Connection that
    `Statement` and `transaction` use: `dialect`, `connection`, begin, commit, rollback, invalidate;
    and one cursor that every Statement of the transaction runs on."""

    def __init__(self, engine, write=True):
        self.dialect, self.write = engine.dialect, write
        self.connection = engine.raw_connection()  # close() gives it back to the pool
        try:
            self.transaction_cursor = self.connection.dbapi_connection.cursor()  # for every Statement
        except BaseException:
            self.connection.close()  # not entered yet, so __exit__ would not give it back
            raise
        self.ended = False  # committed or rolled back: the pool need not roll back (MySQL)

    def begin(self) -> None:
        if self.dialect.name == "sqlite":  # the other drivers begin with the first statement
            begin_sqlite(self, self.write)

    def commit(self) -> None:
        try:
            self.connection.dbapi_connection.commit()
        except self.dialect.loaded_dbapi.Error as exc:
            raise wrapped(self, exc, "COMMIT") from exc
        self.ended = True

    def rollback(self) -> None:
        if not self.connection.is_valid:
            return  # invalidated (found dead): nothing to roll back, the pool drops it
        try:
            self.connection.dbapi_connection.rollback()
        except self.dialect.loaded_dbapi.Error as exc:
            self.invalidate(exc)  # a connection that cannot roll back is not given out again
            return
        self.ended = True

    def invalidate(self, exc=None) -> None:
        self.connection.invalidate(exc)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        with contextlib.suppress(self.dialect.loaded_dbapi.Error):  # e.g. the server went away
            self.transaction_cursor.close()
        if self.ended:
            self.connection.info[TRANSACTION_ENDED] = True
        self.connection.close()


@contextlib.contextmanager
def _writers_queue(engine, write: bool):
    """SQLite: writers wait their turn on a file lock, woken by the kernel the moment it is free,
    instead of SQLite's busy handler, which polls with sleeps of up to 100 ms (the p99 killer)."""
    path = getattr(engine, "writer_queue", None)
    if not (write and path):
        yield
        return
    lock = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)  # its own per call: excludes threads too
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
    finally:
        os.close(lock)  # releases the lock, after COMMIT or ROLLBACK


def _retryable(exc: DBAPIError) -> bool:
    if isinstance(exc, IntegrityError):
        return True
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)                    # psycopg
    if sqlstate in ("40001", "40P01", "55P03"):                   # serialization, deadlock, lock
        return True
    if orig is not None and orig.args and orig.args[0] in (1205, 1213):  # MySQL lock wait, deadlock
        return True
    return "database is locked" in str(orig)                      # SQLite busy past the timeout


BEGIN_WRITE, BEGIN_READ = Statement(text("BEGIN IMMEDIATE")), Statement(text("BEGIN"))


def begin_sqlite(conn, write: bool) -> None:
    """A writer takes the write lock up front, so two writers never both read, then deadlock."""
    (BEGIN_WRITE if write else BEGIN_READ).run(conn)


LOCK_WALLET = Statement(select(wallets).where(wallets.c.id == bindparam("wallet_id")).with_for_update())


def lock_wallet(conn, wallet_id):
    """The wallet row, locked for the rest of the transaction (SQLite: already, by BEGIN IMMEDIATE)."""
    return LOCK_WALLET.first(conn, wallet_id=wallet_id)
