"""The Hash tables: orders by order_no, and the requests applied, by endpoint and request_id, for
as long as Hash may re-send them (wallet/hash/orders.py; their DDL: wallet/hash/ddl/<dialect>.sql)."""
from sqlalchemy import (BigInteger, Boolean, Column, DateTime, ForeignKey, Index, SmallInteger, String,
                        Table, Text)

from ..core.schema import Money, metadata

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
    Index("hash_orders_status_created", "status", "created_at"),  # hash-reconcile's open orders
)

hash_applied_requests = Table(
    "hash_applied_requests", metadata,
    Column("endpoint", String(16), primary_key=True),
    Column("request_id", String(128), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("seen_at", DateTime, nullable=False),
    Index("hash_applied_requests_seen", "seen_at"),
)
