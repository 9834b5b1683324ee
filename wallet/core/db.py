"""The engine and `transaction`, the one helper every money call runs in; the schema's DDL files.

Locking: every money operation is one transaction that locks the wallet row first. PostgreSQL and
MySQL: `SELECT ... FOR UPDATE` under READ COMMITTED, so a row re-read after the lock is the latest
committed one. SQLite has no row locks: a writing transaction starts with `BEGIN IMMEDIATE`, which
takes the database write lock up front, and writers queue for it on a file lock beside the
database (`_writers_queue`); reads start a plain `BEGIN` and never wait for a writer (WAL).

Bounded waits: each lock wait is bounded by LOCK_TIMEOUT_MS and a whole call, retries included, by
CALL_DEADLINE_MS. What is retried, and what a failed COMMIT means, is decided in one place:
`_retry_reason` and `transaction`.
"""
import contextlib
import fcntl
import logging
import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import bindparam, create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from .schema import wallets

DDL_DIR = Path(__file__).resolve().parents[2] / "ddl"
log = logging.getLogger(__name__)


class Limits(NamedTuple):
    """How long a call may wait: each lock wait, and the whole call with its retries (seconds)."""
    lock_timeout: float = 2.0
    deadline: float = 2.5


class DatabaseUnavailable(Exception):
    """A call that could not be answered: the deadline passed, or the COMMIT's outcome is unknown.
    The providers' handlers answer it as 100HP 702 / Hash 5000, without a traceback."""


class DeadlinePassed(DatabaseUnavailable):
    """The call's deadline passed before its transaction could commit: nothing was written."""


class CommitOutcomeUnknown(DatabaseUnavailable):
    """The connection failed during COMMIT: the transaction may or may not have committed. Never
    retried and never answered as success; the provider's own retry finds out (a duplicate answer)."""


class LockWaitTimeout(Exception):
    """SQLite: the writers' queue was not free within the lock timeout."""


def make_engine(url: str, limits: Limits = Limits()):
    """An engine set up for this wallet's locking and bounded waits; see the module docstring.

    `hide_parameters`: a database error's message never carries the bound values (session tokens).
    No pool_pre_ping (a round trip per call): a connection found dead is invalidated with the rest
    of the pool, and the call is retried on a fresh one (`transaction`).
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = create_engine(url, hide_parameters=True)
        _set_up_sqlite(engine, limits)
    elif backend in ("mysql", "mariadb"):
        engine = create_engine(url, hide_parameters=True, isolation_level="READ COMMITTED",
                               pool_reset_on_return=None)
        _rollback_only_open_transactions(engine)
        _on_connect(engine, "SET SESSION innodb_lock_wait_timeout = "
                            f"{_whole_seconds(limits.lock_timeout)}")
    else:
        # psycopg prepares a statement on the server after its 5th run: behind PgBouncer's
        # transaction pooling the next run may land on another server connection, where it does
        # not exist. Unprepared, every statement runs anywhere (docs/scaling.md, PgBouncer).
        driver = {"connect_args": {"prepare_threshold": None}} if parsed.get_driver_name() == "psycopg" else {}
        engine = create_engine(url, hide_parameters=True, isolation_level="READ COMMITTED", **driver)
        _on_connect(engine, f"SET lock_timeout = {int(limits.lock_timeout * 1000)}")
    engine.wallet_limits = limits
    return engine


def _whole_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds))  # MySQL counts innodb_lock_wait_timeout in whole seconds


def _on_connect(engine, sql: str) -> None:
    @event.listens_for(engine, "connect")
    def _set(dbapi_conn, _record):
        cursor = dbapi_conn.cursor()
        cursor.execute(sql)
        cursor.close()
        dbapi_conn.commit()


def _set_up_sqlite(engine, limits: Limits) -> None:
    database = engine.url.database
    engine.writer_queue = f"{database}.lock" if database and database != ":memory:" else None

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # let the "begin" hook below issue BEGIN itself
        for pragma in (f"busy_timeout={int(limits.lock_timeout * 1000)}",
                       "journal_mode=WAL",       # readers never wait for the writer
                       "synchronous=FULL",       # a committed bet survives a power cut
                       "foreign_keys=ON"):
            dbapi_conn.execute(f"PRAGMA {pragma}")

    engine.dialect.do_begin = _sqlite_begin  # see below: not SQLAlchemy's "begin" event


def _sqlite_begin(pooled) -> None:
    """SQLite's BEGIN, sent by the dialect as other dialects send theirs (pysqlite, with
    isolation_level None, sends none). A writer (`_begin`) takes the write lock up front with BEGIN
    IMMEDIATE, so two writers never both read, then deadlock; any other transaction (health check,
    console, audit) is a read and takes no lock. SQLAlchemy's SQLite docs send it from a "begin"
    event instead, but any Connection event makes every statement on the engine run the event
    dispatch: 35 k instructions a statement (tests/bench/README.md)."""
    pooled.driver_connection.execute("BEGIN IMMEDIATE" if pooled.info.pop(_WRITE, False) else "BEGIN")


_WRITE = "wallet.write"  # in the pooled connection's info, from `_begin` to `_sqlite_begin`


def _begin(conn, write: bool) -> None:
    """Begin the Connection's transaction; a writer's takes SQLite's write lock at once."""
    if write and conn.dialect.name == "sqlite":
        conn.connection.info[_WRITE] = True
    conn.begin()


def _rollback_only_open_transactions(engine) -> None:
    """MySQL: the pool rolls back a connection it gets back only if its transaction may be open.

    SQLAlchemy's default rolls back every connection returned, and PyMySQL sends that ROLLBACK even
    with no transaction open (sqlite3 and psycopg do not): a round trip per call. SQLAlchemy's
    documented recipe ("Reset On Return"): pool_reset_on_return=None and a "reset" event hook that
    skips the rollback when the Connection already committed or rolled back.
    """
    @event.listens_for(engine, "reset")
    def _reset(dbapi_conn, _record, state):
        if not state.transaction_was_reset:
            dbapi_conn.rollback()


def init_schema(engine, ddl_dirs=(DDL_DIR,)) -> None:
    """Apply `<dir>/<dialect>.sql` of each folder in turn (the core's ddl/ first, then each
    provider's); every statement is IF NOT EXISTS, so this is safe to run twice.

    On SQLite it waits in the writers' queue, connection included: gunicorn's workers start the
    sandbox together, and the first connection to a new file turns it to WAL, which takes an
    exclusive lock without waiting for a busy one ("database is locked" in the other worker).
    """
    dialect = {"postgresql": "postgres", "mariadb": "mysql"}.get(engine.dialect.name,
                                                                  engine.dialect.name)
    statements = [statement for folder in ddl_dirs
                  for statement in (Path(folder) / f"{dialect}.sql").read_text().split(";\n")
                  if _without_comments(statement).strip()]
    with _writers_queue(engine, True, 30.0), engine.connect() as conn:
        _begin(conn, write=True)
        for statement in statements:
            conn.exec_driver_sql(statement)
        conn.commit()


def _without_comments(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


MAX_ATTEMPTS = 4


def transaction(engine, work, *, write=True):
    """Run `work(conn)` in one transaction and return its result; commit, or roll back on error.

    Retried (up to MAX_ATTEMPTS runs, while the call's deadline allows) when `work` fails on a
    deadlock, a serialization failure, a lost unique-key race (the next run sees the winner's row
    and answers as the duplicate it is), a lock timeout, or a connection found dead (the
    transaction died with it).
    A COMMIT that fails is retried only when the database says it rolled back (a deadlock,
    serialization or Galera certification failure); any other COMMIT failure may have committed,
    and raises CommitOutcomeUnknown. Past the deadline: DeadlinePassed, nothing written.
    """
    limits = engine.wallet_limits
    deadline = time.monotonic() + limits.deadline
    lock_wait = limits.lock_timeout
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return _attempt(engine, work, write, lock_wait)
        except (DBAPIError, LockWaitTimeout) as exc:
            reason = _retry_reason(exc)
            if reason is None or attempt == MAX_ATTEMPTS:  # a race lost 4 times running is no race
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning("deadline passed after %d run(s)", attempt, extra={"deadline_passed": True})
                raise DeadlinePassed(f"no answer within {limits.deadline:g} s: {exc}") from exc
            log.info("run %d failed, retrying: %s", attempt, reason, extra={"retry_reason": reason})
            lock_wait = min(limits.lock_timeout, left)  # a retry's lock waits end by the deadline


def _attempt(engine, work, write: bool, lock_wait: float):
    # The pool's checkout and return outside the writers' queue: SQLite's writers wait for the
    # transaction only (about 100 k instructions a call less of everyone's wait, tests/bench/README.md).
    with engine.connect() as conn, _writers_queue(engine, write, lock_wait):
        _begin(conn, write)  # SQLite: a writer's is BEGIN IMMEDIATE
        try:
            if lock_wait < engine.wallet_limits.lock_timeout:
                _shorten_lock_waits(conn, lock_wait)
            result = work(conn)
        except BaseException:
            conn.rollback()
            raise
        try:
            conn.commit()
        except DBAPIError as exc:
            if _retry_reason(exc) not in (None, "connection lost"):
                raise  # the database answered, with a rollback (deadlock, certification): run again
            raise CommitOutcomeUnknown(f"COMMIT failed, outcome unknown: {exc}") from exc
        return result


def _shorten_lock_waits(conn, seconds: float) -> None:
    """A retry may wait only for the time left before the deadline (SQLite: the writers' queue)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {max(1, int(seconds * 1000))}")
    elif conn.dialect.name in ("mysql", "mariadb"):
        # Session-wide on MySQL; the next call's connect value comes back with the pool's next
        # connection, so a retried connection is left waiting less, never more.
        conn.exec_driver_sql(f"SET SESSION innodb_lock_wait_timeout = {_whole_seconds(seconds)}")


@contextlib.contextmanager
def _writers_queue(engine, write: bool, wait: float):
    """SQLite: writers wait their turn on a file lock beside the database, for at most `wait`
    seconds, woken by the kernel the moment it is free (SQLite's own busy handler sleeps up to
    100 ms between tries)."""
    path = getattr(engine, "writer_queue", None)
    if not (write and path):
        yield
        return
    lock = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)  # its own per call: excludes threads too
    try:
        _take(lock, wait)
        yield
    finally:
        os.close(lock)  # releases the lock, after COMMIT or ROLLBACK


def _take(lock: int, wait: float) -> None:
    """flock, for at most `wait` seconds. In the main thread (a gunicorn sync worker) a blocking
    flock that an alarm interrupts; elsewhere (threads: tests, gthread workers) a poll."""
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGALRM, _give_up)
        signal.setitimer(signal.ITIMER_REAL, wait)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        return
    give_up = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= give_up:
                _give_up()
            time.sleep(0.0002)


def _give_up(*_signal):
    raise LockWaitTimeout("the SQLite writers' queue stayed busy past the lock timeout")


# What may be retried, and why: each database's error codes in one table. Anything else (a CHECK
# or NOT NULL failure, a syntax error) fails the same way every time and is never retried.
_RETRYABLE = {
    "40001": "serialization failure",  # PostgreSQL SQLSTATEs
    "40P01": "deadlock",
    "23505": "unique race",            # a lost race on a txId / order_no
    "55P03": "lock timeout",           # lock_timeout
    1213: "deadlock",                  # MySQL / MariaDB; Galera's certification conflict too
    1205: "lock timeout",
    1062: "unique race",
}
_RETRYABLE_SQLITE = {"UNIQUE constraint failed": "unique race", "database is locked": "lock timeout"}


def _retry_reason(exc) -> str | None:
    """Why a second run can get past this failure, or None if it cannot."""
    if isinstance(exc, LockWaitTimeout):
        return "lock timeout"
    if exc.connection_invalidated:
        return "connection lost"
    orig = exc.orig
    codes = (orig.args[0] if orig is not None and orig.args else None,  # PyMySQL's errno
             getattr(orig, "sqlstate", None))                           # psycopg's SQLSTATE
    for code in codes:
        if isinstance(code, (str, int)) and code in _RETRYABLE:
            return _RETRYABLE[code]
    return next((why for message, why in _RETRYABLE_SQLITE.items() if message in str(orig)), None)


@contextlib.contextmanager
def read_snapshot(engine):
    """One consistent view of the whole database for a long read (the audit): REPEATABLE READ on
    PostgreSQL and MySQL, a WAL read transaction on SQLite. Commits under way are not seen half."""
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


LOCK_WALLET = select(wallets).where(wallets.c.id == bindparam("wallet_id")).with_for_update()


def lock_wallet(conn, wallet_id):
    """The wallet row, locked for the rest of the transaction (SQLite: already, by BEGIN IMMEDIATE)."""
    return conn.execute(LOCK_WALLET, {"wallet_id": wallet_id}).first()
