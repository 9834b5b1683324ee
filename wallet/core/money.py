"""Money on the wire: parsing and formatting of amounts, as `Decimal`, never `float`.

100HP (docs/100hp.md §3.3): amounts and balances are JSON strings; more than two
decimal places are truncated, never rounded (104.129 -> 104.12).
Hash (docs/hash.md §6.4, §11.5): amounts are JSON numbers (float64 in the doc); we read
them from the JSON text as `Decimal` (never through float) and book them at the columns' 6 places
(USDT, TRX). A text that only float64 arithmetic made longer (`2.2424999999999997`, which is
1.15 × 1.95 in float64) is the 6-place value it stands for; a value truly more precise raises
TooPrecise, and the caller decides (docs/hash.md §11.5).
The database columns are NUMERIC(24, 6): at most 18 digits before the point.
"""
import math
import re
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_UP, Decimal

CENT = Decimal("0.01")
HASH_PLACES = 6
MAX_INTEGER_DIGITS = 18  # NUMERIC(24, 6)
HASH_QUANTUM = Decimal(1).scaleb(-HASH_PLACES)  # 0.000001
# A float64 written shortest is at most 24 characters; an exact binary expansion of a money-sized
# double (Java's BigDecimal(double)) about 60. Longer number texts are refused (1001) unread.
MAX_NUMBER_TEXT = 100
# How far a text may be from a 6-place value and still be float64's way of writing it: 64 units in
# the last place of the value (of 1 for values below 1). float64 arithmetic on a few amounts errs
# by a handful of units; a value truly more precise than 6 places is off by far more, up to values
# of about 3e7 (above which float64 itself no longer holds a 7th decimal place).
FLOAT64_SLACK_ULPS = 64
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


class TooPrecise(AmountError):
    """More than 6 decimal places, and not a float64 artefact: `value` is the exact amount sent."""

    def __init__(self, value: Decimal):
        super().__init__("more than 6 decimal places")
        self.value = value


class LongNumber:
    """A JSON number text longer than MAX_NUMBER_TEXT, kept unread (json's parse_float/parse_int
    hooks below): no amount, and no 1 MB Decimal or int is ever built from it."""

    def __init__(self, text: str):
        self.length = len(text)

    def __str__(self):
        return f"<number of {self.length} characters>"


def json_float(text: str):
    """json.loads(parse_float=...): the number as a Decimal, or a LongNumber."""
    return LongNumber(text) if len(text) > MAX_NUMBER_TEXT else Decimal(text)


def json_int(text: str):
    """json.loads(parse_int=...): the number as an int, or a LongNumber."""
    return LongNumber(text) if len(text) > MAX_NUMBER_TEXT else int(text)


def parse_hash_amount(value) -> Decimal:
    """A Hash amount from JSON parsed with json_float / json_int (or parse_float=Decimal): an int
    or a Decimal, >= 0, returned at exactly 6 places (10 -> 10.000000, 0e-1000000 -> 0.000000).

    A value within float64 rounding error of a 6-place value is that value (2.2424999999999997 ->
    2.2425, 0.30000000000000004 -> 0.3): Hash types amounts as float64. A value truly more precise
    raises TooPrecise (an AmountError) carrying it, for the caller's documented rule."""
    if isinstance(value, LongNumber):
        raise AmountError(f"number text longer than {MAX_NUMBER_TEXT} characters")
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise AmountError("not a number")
    value = Decimal(value)
    if not value.is_finite() or value < 0:
        raise AmountError("negative or not finite")
    if value.adjusted() >= MAX_INTEGER_DIGITS:
        raise AmountError("too large")
    nearest = value.quantize(HASH_QUANTUM, rounding=ROUND_HALF_EVEN)
    if nearest != value and abs(value - nearest) > float64_slack(nearest):
        raise TooPrecise(value)
    return nearest


def float64_slack(amount: Decimal) -> Decimal:
    """How far float64's writing of `amount` may stray from it (FLOAT64_SLACK_ULPS units in the
    last place of max(amount, 1))."""
    return Decimal(math.ulp(max(float(amount), 1.0))) * FLOAT64_SLACK_ULPS


# An order/update's result past 6 places is rounded toward the house, so that neither payout
# formula (prize + bonus, prize - tax + bonus) pays more than was sent (docs/hash.md §11.5). The live
# update (wallet/hash/blueprint.py) and Hash's records read by hash-reconcile use this one rule.
HASH_RESULT_ROUNDING = {"prize": ROUND_DOWN, "tax": ROUND_UP, "bonus": ROUND_DOWN}


def hash_amount_rounded(value: Decimal, rounding: str) -> Decimal:
    """A TooPrecise value brought to 6 places in the given direction (ROUND_DOWN / ROUND_UP)."""
    return value.quantize(HASH_QUANTUM, rounding=rounding)


def format_hash(value: Decimal) -> Decimal:
    """A Hash balance without trailing zeros (1000.500000 -> 1000.5), still a Decimal;
    wallet/hash/fields.py (`dumps`) writes it as a JSON number."""
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()
