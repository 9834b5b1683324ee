"""The money path's SQL: SQLAlchemy Core statements compiled once per dialect, run on the driver.

SQLAlchemy Core writes each statement once for SQLite, PostgreSQL and MySQL/MariaDB, with the
columns' types; `Statement` keeps that compiled text and runs it on a DBAPI cursor of the
connection it is given (a SQLAlchemy Connection, or the pool's DBAPI connection that
`db.transaction(driver=True)` hands out, whose one cursor serves the whole transaction), inside
that connection's transaction. On the benchmark machine `Connection.execute` costs about 45 us a
statement and the driver's cursor about 5 us (README, "Performance"); a bet is five statements, run
while the wallet row is locked. The pool, the schema and the occasional query of the CLI, console
and audit stay plain SQLAlchemy.

What `Connection.execute` would do and this keeps: the types' bind and result processors (exact
Decimal text on SQLite, datetimes), rows with named columns, errors raised as SQLAlchemy's
DBAPIError subclasses, and a connection found dead is invalidated so the pool replaces it.
"""
from collections import namedtuple
from operator import itemgetter

from sqlalchemy.exc import DBAPIError


class Statement:
    """`Statement(core_statement)`: `run(conn, **params)`, or `first(conn, **params)` for a row.
    An INSERT names its columns: `Statement(insert(table), columns=("a", "b"))`."""

    def __init__(self, core, columns=None):
        self.core, self.columns = core, columns
        self._compiled = {}  # dialect -> _Compiled

    def run(self, conn, **params) -> None:
        cursor, borrowed = _cursor(conn)
        try:
            self._execute(conn, cursor, params)
        finally:
            if not borrowed:
                cursor.close()

    def first(self, conn, **params):
        """The first row, a named tuple, or None."""
        cursor, borrowed = _cursor(conn)
        try:
            compiled = self._execute(conn, cursor, params)
            row = cursor.fetchone()
            return None if row is None else compiled.row(row, cursor.description)
        finally:
            if not borrowed:
                cursor.close()

    def _execute(self, conn, cursor, params):
        dialect = conn.dialect
        compiled = self._compiled.get(dialect)
        if compiled is None:
            compiled = self._compiled[dialect] = _Compiled(self.core, self.columns, dialect)
        if compiled.defaults:
            params = {**compiled.defaults, **params}
        for name, process in compiled.bind_processors:
            params[name] = process(params[name])
        try:
            cursor.execute(compiled.sql, compiled.arguments(params))
        except dialect.loaded_dbapi.Error as exc:
            raise wrapped(conn, exc, compiled.sql, params, cursor) from exc
        return compiled


def _cursor(conn):
    """(cursor, borrowed): the transaction's own cursor if `conn` keeps one (db.Driver, as
    hand-written driver code would: a psycopg cursor costs tens of microseconds to make), else a
    new one on the SQLAlchemy Connection's DBAPI connection, closed after the statement."""
    cursor = getattr(conn, "transaction_cursor", None)
    if cursor is not None:
        return cursor, True
    return conn.connection.dbapi_connection.cursor(), False


def wrapped(conn, exc, sql, params=None, cursor=None) -> DBAPIError:
    """The driver's error as SQLAlchemy would raise it (IntegrityError, OperationalError, ...);
    a connection found dead is invalidated first, so the pool opens a new one for the next call."""
    dialect = conn.dialect
    dead = dialect.is_disconnect(exc, conn.connection.dbapi_connection, cursor)
    if dead:
        conn.invalidate(exc)
    return DBAPIError.instance(sql, params, exc, dialect.loaded_dbapi.Error,
                               connection_invalidated=dead, dialect=dialect)


class _Compiled:
    """One statement's SQL text for one dialect, with its parameter order and type processors."""

    def __init__(self, core, columns, dialect):
        compiled = core.compile(dialect=dialect, column_keys=columns)
        self.sql = compiled.string
        binds = compiled.binds
        self.defaults = {name: bind.value for name, bind in binds.items() if not bind.required}
        self.bind_processors = [
            (name, process) for name, bind in binds.items()
            if (process := bind.type.dialect_impl(dialect).bind_processor(dialect))]
        order = compiled.positiontup if compiled.positional else None
        if order is None:
            self.arguments = _as_is  # the driver takes the dict (pyformat)
        elif len(order) > 1:
            self.arguments = itemgetter(*order)  # a tuple in the SQL's order (qmark, format)
        elif order:
            self.arguments = lambda params, name=order[0]: (params[name],)
        else:
            self.arguments = lambda params: ()
        self.dialect = dialect
        self.selected = getattr(core, "selected_columns", ())
        self.row_type = namedtuple("Row", [c.key for c in self.selected]) if self.selected else None
        self.result_processors = None

    def row(self, values, description):
        if self.result_processors is None:  # the driver's column types are known after a run
            self.result_processors = [
                (i, process) for i, (column, field) in enumerate(zip(self.selected, description))
                if (process := column.type.dialect_impl(self.dialect).result_processor(
                    self.dialect, field[1]))]
        if self.result_processors:
            values = list(values)
            for i, process in self.result_processors:
                if values[i] is not None:
                    values[i] = process(values[i])
        return self.row_type._make(values)


def _as_is(params):
    return params
