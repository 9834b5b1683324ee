"""The engine and `transaction`, the one helper every money call runs in; the schema's DDL files.

Locking: every money operation is one transaction that locks the wallet row first. PostgreSQL and
MySQL: `SELECT ... FOR UPDATE` under READ COMMITTED, so a row re-read after the lock is the latest
committed one. SQLite has no row locks: a writing transaction starts with `BEGIN IMMEDIATE`, which
takes the database write lock up front, and writers queue for it on a file lock beside the
database (`_writers_queue`); reads start a plain `BEGIN` and never wait for a writer (WAL).

Bounded waits: a provider call has one budget, CALL_DEADLINE_MS (`call_budget`, opened per HTTP
request by wallet/guard.py): every transaction the call runs, retries included, ends by it, and so
does every wait inside them, each lock wait also by LOCK_TIMEOUT_MS (`_attempt`):
- SQLite: the writers' queue and SQLite's own busy wait (busy_timeout, set before each BEGIN);
- PostgreSQL: `SET LOCAL lock_timeout` in each transaction, sent with its BEGIN (`_postgres_begin`;
  so it also holds behind PgBouncer);
- MariaDB: each statement runs as `SET STATEMENT max_statement_time=<time left>, ... FOR <statement>`
  (`_bound_each_statement`): it bounds row locks, metadata locks (LOCK TABLES, ALTER TABLE) and
  everything else the server does, and nothing of it stays on the pooled connection;
- the network: a link that stops passing bytes. No timeout of the server's can end that, so past
  the deadline (plus CUT_OFF_GRACE) the connection's socket is shut down under the driver
  (`_cut_off_at`): the statement fails as a lost connection. Connects are bounded too
  (`_bounded_connects`: connect_timeout, TCP keepalives and TCP_USER_TIMEOUT, read/write timeouts).
Past the deadline the call gets DeadlinePassed (nothing written; logged and counted in /metrics).
What is retried, and what a failed COMMIT means, is decided in one place: `_retry_reason` and
`transaction`.
"""
import contextlib
import contextvars
import fcntl
import functools
import logging
import math
import os
import signal
import socket
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
        # the bound of a lock wait outside `transaction` (the audit, the console); inside, each
        # statement carries its own (`_bound_each_statement`)
        _on_connect(engine, "SET SESSION innodb_lock_wait_timeout = "
                            f"{_whole_seconds(limits.lock_timeout)}")
        _bound_each_statement(engine, limits)
    else:
        # AUTOCOMMIT is psycopg's mode that sends no BEGIN of its own: `_postgres_begin` sends
        # each transaction's, READ COMMITTED and with its lock_timeout, in one round trip.
        threshold = parsed.query.get(PREPARE_THRESHOLD)
        engine = create_engine(parsed.difference_update_query([PREPARE_THRESHOLD]), hide_parameters=True,
                               isolation_level="AUTOCOMMIT", connect_args={} if threshold is None else
                               {PREPARE_THRESHOLD: prepare_threshold(threshold)})
        engine.dialect.do_begin = functools.partial(_postgres_begin, limits)
    _bounded_connects(engine, limits)
    engine.wallet_limits = limits
    return engine


# psycopg prepares a statement on the server after its 5th run on a connection, so the server
# parses and plans it once, not on every call (about 400 us of its CPU a withdrawal, tests/bench/README.md).
# Behind PgBouncer's transaction pooling before 1.21 (or with max_prepared_statements = 0) the next
# run may land on a server connection where it does not exist: there DATABASE_URL says
# `?prepare_threshold=none` (docs/scaling.md, PgBouncer), psycopg's own setting, which libpq's
# connection string cannot carry, so it is read here.
PREPARE_THRESHOLD = "prepare_threshold"


def prepare_threshold(text: str) -> int | None:
    """The URL's `prepare_threshold`: "none" (never prepare) or a count of runs; ValueError else."""
    if text == "none":
        return None
    if not (isinstance(text, str) and text.isdigit()):  # (given twice, the URL holds a tuple)
        raise ValueError(f"{PREPARE_THRESHOLD} must be none or a number of runs, not {text[:20]!r}")
    return int(text)


def _whole_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds))  # MySQL counts innodb_lock_wait_timeout in whole seconds


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))  # at least 1: a timeout of 0 means "wait for ever"


def _on_connect(engine, sql: str) -> None:
    @event.listens_for(engine, "connect")
    def _set(dbapi_conn, _record):
        cursor = dbapi_conn.cursor()
        cursor.execute(sql)
        cursor.close()
        dbapi_conn.commit()


def _bounded_connects(engine, limits: Limits) -> None:
    """A new connection, and a link that dies under an open one, are bounded by the deadline too.
    Each is a default that a parameter in DATABASE_URL overrides.

    psycopg (libpq parameters): connect_timeout (2 s, the least libpq accepts); TCP keepalives, so
    that a pooled connection whose peer vanished is found dead while idle; and tcp_user_timeout,
    so that data the peer never acknowledges fails the connection by the deadline.
    PyMySQL: connect_timeout, and read_timeout / write_timeout, which bound each wait for the
    server (the handshake of a new connection included) by the deadline.
    """
    @event.listens_for(engine, "do_connect")
    def _bounds(dialect, _record, _cargs, cparams):
        if dialect.driver == "psycopg":
            for name, value in (("connect_timeout", 2), ("keepalives", 1),
                                ("keepalives_idle", _whole_seconds(limits.deadline)),
                                ("keepalives_interval", 1), ("keepalives_count", 3),
                                ("tcp_user_timeout", _ms(limits.deadline))):
                cparams.setdefault(name, value)
        elif dialect.driver == "pymysql":
            cparams.setdefault("connect_timeout", max(0.1, _time_left(limits)))
            cparams.setdefault("read_timeout", limits.deadline + CUT_OFF_GRACE)
            cparams.setdefault("write_timeout", limits.deadline + CUT_OFF_GRACE)


def _bound_each_statement(engine, limits: Limits) -> None:
    """MariaDB: a statement run by `transaction` carries its bounds, from the time left of the call:
    `SET STATEMENT max_statement_time=..., innodb_lock_wait_timeout=..., lock_wait_timeout=... FOR`.
    max_statement_time ends any wait on the server, a metadata lock too (LOCK TABLES, a migration's
    ALTER TABLE), which innodb_lock_wait_timeout does not bound; lock_wait_timeout is the metadata
    locks' own. Values set this way last for the one statement: nothing stays on the pooled
    connection for later calls. (MySQL has no SET STATEMENT: there the socket cut-off bounds it.)

    The dialect's `do_execute` events, which run the statement themselves: a Connection event
    (`before_cursor_execute`) would make every statement on the engine run the Connection's event
    dispatch, about 300 k instructions a withdrawal (tests/bench/README.md)."""
    def execute(cursor, statement, parameters, context):
        deadline = context.execution_options.get("deadline")
        if deadline is not None and context.dialect.is_mariadb:
            left = max(0.001, deadline - time.monotonic())  # 0 would mean no limit
            lock = _whole_seconds(min(limits.lock_timeout, left))
            statement = (f"SET STATEMENT max_statement_time={left:.3f}, innodb_lock_wait_timeout={lock}, "
                         f"lock_wait_timeout={lock} FOR {statement}")
        cursor.execute(statement, parameters)
        return True  # executed here: the dialect does not run it again

    event.listen(engine.dialect, "do_execute", execute)
    event.listen(engine.dialect, "do_execute_no_params",
                 lambda cursor, statement, context: execute(cursor, statement, None, context))


def _set_up_sqlite(engine, limits: Limits) -> None:
    database = engine.url.database
    engine.writer_queue = f"{database}.lock" if database and database != ":memory:" else None

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # `_sqlite_begin` below issues BEGIN itself
        for pragma in (f"busy_timeout={_ms(limits.lock_timeout)}",
                       "journal_mode=WAL",       # readers never wait for the writer
                       "synchronous=FULL",       # a committed bet survives a power cut
                       "foreign_keys=ON"):
            dbapi_conn.execute(f"PRAGMA {pragma}")

    engine.dialect.do_begin = functools.partial(_sqlite_begin, limits)  # not SQLAlchemy's "begin" event


def _sqlite_begin(limits: Limits, pooled) -> None:
    """SQLite's BEGIN, sent by the dialect as other dialects send theirs (pysqlite, with
    isolation_level None, sends none). A writer (`_begin`) takes the write lock up front with BEGIN
    IMMEDIATE, so two writers never both read, then deadlock; any other transaction (health check,
    console, audit) is a read and takes no lock. SQLite's own wait for a lock held by someone
    outside the writers' queue (an operator's sqlite3 shell, a backup) ends by the lock timeout and
    by the call's deadline: busy_timeout is set for each BEGIN. SQLAlchemy's SQLite docs send BEGIN
    from a "begin" event instead, but any Connection event makes every statement on the engine run
    the event dispatch: 35 k instructions a statement (tests/bench/README.md)."""
    write, wait = pooled.info.pop(_BEGIN, (False, limits.lock_timeout))
    if pooled.info.get(_BUSY_MS) != _ms(wait):  # mostly the lock timeout itself: set once
        pooled.driver_connection.execute(f"PRAGMA busy_timeout = {_ms(wait)}")
        pooled.info[_BUSY_MS] = _ms(wait)
    pooled.driver_connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")


def _postgres_begin(limits: Limits, pooled) -> None:
    """PostgreSQL's BEGIN and this transaction's lock_timeout (`_begin`), one round trip: psycopg
    in AUTOCOMMIT sends no BEGIN of its own, and COMMIT / ROLLBACK as usual once one is open.
    SET LOCAL lasts for the transaction only, so behind PgBouncer's transaction pooling too it is
    on the server connection the transaction runs on. A connection set to REPEATABLE READ for the
    audit (`read_snapshot`) is out of AUTOCOMMIT: psycopg's own BEGIN, with that level, goes first."""
    _, wait = pooled.info.pop(_BEGIN, (False, limits.lock_timeout))
    connection = pooled.driver_connection
    begin = "BEGIN ISOLATION LEVEL READ COMMITTED; " if connection.autocommit else ""
    connection.execute(f"{begin}SET LOCAL lock_timeout = {_ms(wait)}")


_BEGIN = "wallet.begin"  # in the pooled connection's info: (write, lock wait), from `_begin` to the BEGIN
_BUSY_MS = "wallet.busy_ms"  # in the pooled connection's info: its busy_timeout now


def _begin(conn, write: bool, lock_wait: float) -> None:
    """Begin the Connection's transaction, each lock wait in it bounded by `lock_wait`; on SQLite a
    writer's takes the write lock at once."""
    conn.connection.info[_BEGIN] = (write, lock_wait)
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
        _begin(conn, True, engine.wallet_limits.lock_timeout)
        for statement in statements:
            conn.exec_driver_sql(statement)
        conn.commit()


def _without_comments(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


MAX_ATTEMPTS = 4
CUT_OFF_GRACE = 0.25  # s past the deadline before a connection is cut off: the server's own
# timeouts, which leave the connection usable, have their turn first
_call_deadline = contextvars.ContextVar("wallet_call_deadline", default=None)


@contextlib.contextmanager
def call_budget(seconds: float):
    """One deadline, `seconds` from now, for everything run inside: every transaction, its retries
    and its waits. A provider call runs in one (wallet/guard.py opens it per request), so its
    call-log write shares the budget of its money transaction. Nested, the earlier deadline holds.
    Outside any, each transaction has a budget of its own (CALL_DEADLINE_MS: commands, scripts)."""
    deadline = time.monotonic() + seconds
    outer = _call_deadline.get()
    token = _call_deadline.set(deadline if outer is None else min(outer, deadline))
    try:
        yield
    finally:
        _call_deadline.reset(token)


def _time_left(limits: Limits) -> float:
    deadline = _call_deadline.get()
    return limits.deadline if deadline is None else deadline - time.monotonic()


def time_left(engine) -> float:
    """Seconds left of the current call's budget (a whole budget outside a call)."""
    return _time_left(engine.wallet_limits)


def _lock_wait(limits: Limits, deadline: float) -> float:
    return max(0.0, min(limits.lock_timeout, deadline - time.monotonic()))


def transaction(engine, work, *, write=True):
    """Run `work(conn)` in one transaction and return its result; commit, or roll back on error.

    Retried (up to MAX_ATTEMPTS runs, while the call's deadline allows) when `work` fails on a
    deadlock, a serialization failure, a lost unique-key race (the next run sees the winner's row
    and answers as the duplicate it is), a lock or statement timeout, or a connection found dead
    (the transaction died with it).
    A COMMIT that fails is retried only when the database says it rolled back (a deadlock,
    serialization or Galera certification failure); any other COMMIT failure may have committed,
    and raises CommitOutcomeUnknown. Past the deadline: DeadlinePassed, nothing written.
    """
    limits = engine.wallet_limits
    deadline = _call_deadline.get() or time.monotonic() + limits.deadline
    if time.monotonic() >= deadline:  # the call's earlier transactions spent its budget
        log.warning("deadline passed before the transaction began", extra={"deadline_passed": True})
        raise DeadlinePassed(f"no time left of the call's {limits.deadline:g} s")
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return _attempt(engine, work, write, deadline)
        except (DBAPIError, LockWaitTimeout) as exc:
            reason = _retry_reason(exc)
            if reason is None:
                raise
            if time.monotonic() >= deadline:
                log.warning("deadline passed after %d run(s): %s", attempt, reason,
                            extra={"deadline_passed": True})
                raise DeadlinePassed(f"no answer within {limits.deadline:g} s: {exc}") from exc
            if attempt == MAX_ATTEMPTS:  # a race lost 4 times running is no race
                raise
            log.info("run %d failed, retrying: %s", attempt, reason, extra={"retry_reason": reason})


def _attempt(engine, work, write: bool, deadline: float):
    limits = engine.wallet_limits
    # The pool's checkout and return outside the writers' queue: SQLite's writers wait for the
    # transaction only (about 100 k instructions a call less of everyone's wait, tests/bench/README.md).
    with engine.connect() as conn, _writers_queue(engine, write, _lock_wait(limits, deadline)):
        if getattr(conn.dialect, "is_mariadb", False):
            conn.execution_options(deadline=deadline)  # read by its statements' bounds
        with _cut_off_at(conn, deadline):
            _begin(conn, write, _lock_wait(limits, deadline))  # SQLite: a writer's is BEGIN IMMEDIATE
            try:
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


@contextlib.contextmanager
def _cut_off_at(conn, deadline: float):
    """Past `deadline` + CUT_OFF_GRACE, shut the connection's socket down under the driver: a
    statement (or COMMIT) still waiting, on a server that no timeout of its own ended or on a link
    that stopped passing bytes, fails at once as a lost connection. The call's thread is never
    interrupted. SQLite: no socket, and nothing to wait for but its locks, which are bounded."""
    fileno = _socket_of(conn.connection.dbapi_connection)
    if fileno is None:
        yield
        return
    armed = _watchdog.arm(deadline + CUT_OFF_GRACE, fileno)
    try:
        yield
    finally:
        _watchdog.disarm(armed)


class _Watchdog:
    """One thread per process that shuts down the sockets of transactions past their time: arming
    and disarming it is a dict operation, where a timer thread per transaction would cost more
    than a tenth of a withdrawal's CPU."""

    def __init__(self):
        self._lock = threading.Condition()
        self._armed, self._pid, self._next = {}, None, math.inf  # key -> (when, fileno)

    def arm(self, when: float, fileno: int) -> object:
        key = object()
        with self._lock:
            if self._pid != os.getpid():  # the first use in this process (gunicorn forks workers)
                self._armed, self._pid, self._next = {}, os.getpid(), math.inf
                threading.Thread(target=self._watch, name="wallet-cut-off", daemon=True).start()
            self._armed[key] = (when, fileno)
            if when < self._next:  # the thread sleeps until a later moment: wake it
                self._lock.notify()
        return key

    def disarm(self, key: object) -> None:
        with self._lock:  # once this returns, the socket is never shut down for this transaction
            self._armed.pop(key, None)

    def _watch(self):
        with self._lock:
            while True:
                now = time.monotonic()
                for key, (when, fileno) in list(self._armed.items()):
                    if when <= now:
                        del self._armed[key]
                        log.warning("deadline passed inside a statement: database connection cut off")
                        with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fileno)) as sock:
                            sock.shutdown(socket.SHUT_RDWR)  # the socket's, for every descriptor of it
                self._next = min((when for when, _ in self._armed.values()), default=math.inf)
                self._lock.wait(None if self._next == math.inf else self._next - now)


_watchdog = _Watchdog()


def _socket_of(dbapi_conn) -> int | None:
    if hasattr(dbapi_conn, "pgconn"):  # psycopg
        return dbapi_conn.pgconn.socket
    sock = getattr(dbapi_conn, "_sock", None)  # PyMySQL keeps it there (it has no fileno())
    return sock.fileno() if sock is not None else None


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
    if wait <= 0:  # (a zero timer would be no timer: the flock below would wait for ever)
        _give_up()
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
    "57014": "statement timeout",      # statement_timeout (if an operator sets one)
    1213: "deadlock",                  # MySQL / MariaDB; Galera's certification conflict too
    1205: "lock timeout",              # innodb_lock_wait_timeout, lock_wait_timeout
    1969: "statement timeout",         # MariaDB max_statement_time
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
