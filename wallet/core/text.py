"""Text on the wire: what both providers' field rules require of a string before it is stored.

Standard library only, like wallet/core/money.py, so that the field rules can be copied without
the schema (tests/test_imports.py).
"""


def storable(value: str) -> bool:
    """JSON can carry lone surrogates ("\\ud800") and NUL, which no database column can store: both
    providers' blueprints refuse such text before it reaches one."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value
