"""The 100HP table: bets and promo wins by txId (its DDL: wallet/hp100/ddl/<dialect>.sql)."""
from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Index, String, Table

from ..core.schema import Money, metadata

hp_transactions = Table(
    "hp_transactions", metadata,
    Column("tx_id", String(50), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("wallet_id", BigInteger, ForeignKey("wallets.id"), nullable=True),
    Column("session_id", String(255), nullable=True),
    Column("amount", Money, nullable=False),
    Column("status", String(16), nullable=False),
    Column("win_amount", Money, nullable=True),
    Column("promo_id", String(255), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("closed_at", DateTime, nullable=True),
    Index("hp_transactions_status_created", "status", "created_at"),
)
