"""The tables both providers share: players, their per-currency wallets, their sessions, and the
ledger every balance change is written to (wallet/core/ledger.py).

The schema's source of truth is `ddl/<dialect>.sql`; the tables here mirror it for SQLAlchemy Core
queries, and tests/test_schema.py proves on every database that the two agree. Each provider
defines its own tables on the same `metadata` (wallet/hp100/schema.py, wallet/hash/schema.py).
Timestamps are naive UTC.
"""
from decimal import Decimal

from sqlalchemy import (BigInteger, Column, DateTime, ForeignKey, Index, Integer, MetaData, Numeric,
                        String, Table, Text, UniqueConstraint)
from sqlalchemy.types import TypeDecorator

from .clock import utcnow  # noqa: F401  (schema.utcnow: the timestamps written to these tables)


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
    Column("expires_at", DateTime, nullable=False),
    Column("closed_at", DateTime, nullable=True),
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


