"""A key claimed by its INSERT: the row is inserted unless its key is taken, in one statement, and
a repeat finds the row already there. 100HP's txIds (wallet/hp100/your_casino.py) and Hash's
request_ids and order_nos (wallet/hash/sql_wallet.py) are claimed this way, so that the usual
call, a new key, costs one statement where a SELECT then an INSERT cost two (tests/bench/README.md).
"""
from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite


def insert_unless_taken(table, key: list[str]) -> dict:
    """Per dialect name, an INSERT into `table` that does nothing if `key` is taken, after waiting
    for a twin in flight to end; its row count (0 or 1, kept by preserve_rowcount) says which.

    MySQL's IGNORE turns other errors into warnings too: a value too long or out of range would be
    cut to fit and stored, a missing foreign key stores nothing. So the values must be checked
    before, and `claim` treats "nothing stored and nothing found" as the error it is."""
    return {dialect: statement.execution_options(preserve_rowcount=True) for dialect, statement in {
        "postgresql": postgresql.insert(table).on_conflict_do_nothing(index_elements=key),
        "sqlite": sqlite.insert(table).on_conflict_do_nothing(index_elements=key),
        "mysql": insert(table).prefix_with("IGNORE"),
        "mariadb": insert(table).prefix_with("IGNORE"),
    }.items()}


def claim(conn, statement, row: dict, find):
    """Insert `row` with `statement` (one of `insert_unless_taken`'s): None if it was inserted, else
    `find()`, the row holding the key (what decides a repeat's answer)."""
    if conn.execute(statement, row).rowcount:
        return None  # inserted: the one statement of the usual case
    found = find()
    if found is None:  # MySQL's IGNORE passed over another error
        raise RuntimeError(f"{row} was neither inserted nor found under its key")
    return found
