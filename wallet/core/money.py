"""Money on the wire: parsing and formatting of amounts, as `Decimal`, never `float`.

100HP (docs/100hp.md §3.3): amounts and balances are JSON strings; more than two
decimal places are truncated, never rounded (104.129 -> 104.12).
Hash (docs/hash.md §6.4, §11.5): amounts are JSON numbers (float64 in the doc); we read
them from the JSON text as `Decimal` and store up to 6 places (USDT, TRX).
The database columns are NUMERIC(24, 6): at most 18 digits before the point.
"""
import re
from decimal import ROUND_DOWN, Decimal

CENT = Decimal("0.01")
HASH_PLACES = 6
MAX_INTEGER_DIGITS = 18  # NUMERIC(24, 6)
BALANCE_LIMIT = Decimal(10) ** MAX_INTEGER_DIGITS  # no balance reaches it

# A plain unsigned decimal: no sign, exponent, spaces, "NaN" or "Infinity".
_PLAIN_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?\Z")


class AmountError(ValueError):
    """The text is not an amount this wallet accepts."""


def parse_hp_amount(text: str) -> Decimal:
    """Parse a 100HP amount string and truncate it to cents (docs/100hp.md §3.3).

    Raises AmountError for anything but a plain unsigned decimal ("10", "10.5"),
    and for more integer digits than the database column holds.
    """
    if not _PLAIN_DECIMAL.match(text):
        raise AmountError("not a plain decimal")
    value = Decimal(text)
    if value.adjusted() >= MAX_INTEGER_DIGITS:
        raise AmountError("too large")
    return truncate_cents(value)


def truncate_cents(value: Decimal) -> Decimal:
    """100HP §3.3: truncate, never round, to two decimal places."""
    return value.quantize(CENT, rounding=ROUND_DOWN)


def format_hp(value: Decimal) -> str:
    """100HP balance/amount as a string with exactly two decimals ("1000.00")."""
    return format(truncate_cents(value), "f")


def parse_hash_amount(value) -> Decimal:
    """A Hash amount from JSON parsed with parse_float=Decimal: an int or a Decimal, >= 0,
    with at most 6 decimal places (rejected, not rounded: we never change a provider's amount)."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise AmountError("not a number")
    value = Decimal(value)
    if not value.is_finite() or value < 0:
        raise AmountError("negative or not finite")
    if value.adjusted() >= MAX_INTEGER_DIGITS:
        raise AmountError("too large")
    if value != value.quantize(Decimal(1).scaleb(-HASH_PLACES), rounding=ROUND_DOWN):
        raise AmountError("more than 6 decimal places")
    return value


def format_hash(value: Decimal) -> Decimal:
    """A Hash balance without trailing zeros (1000.500000 -> 1000.5), still a Decimal;
    wallet/hash/blueprint.py writes it as a JSON number."""
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()
