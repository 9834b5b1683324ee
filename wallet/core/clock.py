"""The wallet's clock: naive UTC, as every timestamp column stores it. Standard library only, so
the providers' rules (which import nothing from the SQL side) share it with the schema."""
from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
