"""The console's table: the latest provider calls, written only while the console is on. Not part
of the books (its DDL: wallet/console/ddl/<dialect>.sql)."""
from sqlalchemy import Column, DateTime, Integer, String, Table

from ..core.schema import Id, metadata

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
