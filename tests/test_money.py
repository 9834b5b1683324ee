"""Properties of money parsing and formatting (wallet/core/money.py, wallet/hash/fields.py `dumps`)."""
import json
import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wallet.hash.fields import dumps
from wallet.core.money import AmountError, format_hash, format_hp, parse_hash_amount, parse_hp_amount

amounts = st.decimals(min_value=0, max_value=Decimal("1e17") - 1, places=8, allow_nan=False)
hash_amounts = st.decimals(min_value=0, max_value=Decimal("1e17") - 1, places=6, allow_nan=False)
PLAIN = re.compile(r"[0-9]+(\.[0-9]+)?\Z")


@given(amounts)
def test_truncation_never_rounds_up(value):
    parsed = parse_hp_amount(format(value, "f"))
    assert parsed <= value < parsed + Decimal("0.01")
    assert parsed.as_tuple().exponent == -2


@given(amounts)
def test_format_then_parse_is_the_identity_on_cents(value):
    cents = parse_hp_amount(format(value, "f"))
    assert parse_hp_amount(format_hp(cents)) == cents
    assert re.fullmatch(r"[0-9]+\.[0-9]{2}", format_hp(cents))


@given(st.text(max_size=30))
def test_only_plain_decimals_parse(text):
    if PLAIN.match(text) and len(text.split(".")[0].lstrip("0")) <= 18:
        assert parse_hp_amount(text) >= 0
    else:
        with pytest.raises(AmountError):
            parse_hp_amount(text)


@pytest.mark.parametrize("text", ["104.129", "104.12", "104.1", "104"])
def test_the_documented_example(text):
    assert format_hp(parse_hp_amount(text)) == {"104": "104.00", "104.1": "104.10"}.get(text, "104.12")


@given(hash_amounts)
def test_hash_amounts_round_trip_through_json_text_exactly(value):
    assert parse_hash_amount(value) == value
    text = dumps({"balance": format_hash(value)})
    assert json.loads(text, parse_float=Decimal)["balance"] == value
    assert '"' not in text.split(":", 1)[1]  # a JSON number, not a string


@pytest.mark.parametrize("value", [Decimal("-0.000001"), Decimal("NaN"), Decimal("Infinity"),
                                   Decimal("-Infinity"), Decimal("0.0000001"), Decimal("1e18"),
                                   "1", None, True, 1.5])
def test_hash_amounts_refused(value):
    with pytest.raises(AmountError):
        parse_hash_amount(value)


def test_dumps_cannot_be_forged_by_a_string():
    text = dumps({"order_no": '"__x__1__x__"', "balance": Decimal("1.5")})
    assert json.loads(text) == {"order_no": '"__x__1__x__"', "balance": 1.5}
