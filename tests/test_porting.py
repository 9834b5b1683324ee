"""docs/porting.md says what a port must write, and stays true to the code: every storage primitive
of Casino (100HP) and HashWallet (Hash) has a docstring and a row in its provider's table, and the
retry table names every failure wallet/core/db.py's `transaction` runs again."""
import inspect
import re

import pytest
from conftest import ROOT

from wallet.core import db
from wallet.hash.orders import HashWallet
from wallet.hp100.casino import Casino

PORTING = (ROOT / "docs" / "porting.md").read_text()


def table(heading: str) -> set[str]:
    """The primitive names in the first column of the table under `### heading`."""
    section = PORTING.split(f"### {heading}\n", 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"^\| `(\w+)\(", section, re.M))


@pytest.mark.parametrize("rules, heading", [(Casino, "100HP"), (HashWallet, "Hash")])
def test_every_primitive_has_a_docstring_and_a_row(rules, heading):
    primitives = rules.__abstractmethods__
    assert {name for name in primitives if not inspect.getdoc(getattr(rules, name))} == set()
    assert table(heading) == set(primitives)


def test_the_retry_table_names_what_transaction_retries():
    retry_table = PORTING.split("| failure | PostgreSQL", 1)[1].split("\n\n", 1)[0]
    named = set(re.findall(r"`([^`]+)`|\b(\d{4})\b", retry_table))
    named = {code for pair in named for code in pair if code}
    retried = {str(code) for code in db._RETRYABLE} | set(db._RETRYABLE_SQLITE)
    assert retried <= named, f"retried by db.transaction but not in docs/porting.md: {retried - named}"
    assert named <= retried, f"in docs/porting.md but not retried: {named - retried}"
