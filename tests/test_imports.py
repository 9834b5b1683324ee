"""The rules can be lifted on their own: importing a provider's rules (100HP's Casino and field rules,
Hash's order rules, field readers and envelope, money, text) loads the standard library and the
rules they are built on, nothing else: no Flask, no SQLAlchemy, no app, no other wallet module
(pycryptodome for the envelope alone). And the app never imports the conformance kit.

Each import runs in a fresh interpreter, since this one has loaded everything already; what the
interpreter loads at start (site hooks) is subtracted.
"""
import json
import subprocess
import sys

import pytest
from conftest import ROOT

# the rules: (the module, the wallet modules it is built on, the third-party packages it may load)
RULES = {
    "100HP Casino": ("wallet.hp100.casino", {"wallet.core.money", "wallet.core.clock"}, set()),
    "Hash order rules": ("wallet.hash.orders", {"wallet.core.money", "wallet.core.clock"}, set()),
    "Hash envelope": ("wallet.hash.envelope", {"wallet.core.money"}, {"Crypto"}),  # AES-256-CBC: pycryptodome
    "money": ("wallet.core.money", set(), set()),
    "text (the field rules' storable, the log lines' shown)": ("wallet.core.text", set(), set()),
    "100HP field rules": ("wallet.hp100.fields", {"wallet.hp100.casino", "wallet.core.money",
                                                  "wallet.core.clock", "wallet.core.text"}, set()),
    "Hash field readers": ("wallet.hash.fields", {"wallet.hash.orders", "wallet.core.money",
                                                  "wallet.core.clock", "wallet.core.text"}, set()),
}


def modules_loaded_by(module: str) -> set[str]:
    """The modules `import module` adds to a fresh interpreter's sys.modules."""
    probe = (f"import sys; before = set(sys.modules); import {module}; "
             "loaded = sorted(set(sys.modules) - before); import json; print(json.dumps(loaded))")
    run = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=True)
    return set(json.loads(run.stdout.splitlines()[-1]))


def packages_of(names) -> set[str]:
    """Every package a module's import runs the __init__ of: wallet.hp100.casino -> wallet, wallet.hp100."""
    return {name.rsplit(".", depth)[0] for name in names for depth in range(1, name.count(".") + 1)}


@pytest.mark.parametrize("rules", RULES)
def test_importing_the_rules_loads_the_standard_library_only(rules):
    module, built_on, third_party = RULES[rules]
    loaded = modules_loaded_by(module)
    ours = {name for name in loaded if name.split(".")[0] == "wallet"}
    others = {name.split(".")[0] for name in loaded if name.split(".")[0] not in sys.stdlib_module_names}
    allowed = {module} | built_on | packages_of({module} | built_on)
    assert ours - allowed == set(), f"{module} loads wallet modules outside the rules"
    assert others - {"wallet"} - third_party == set(), f"{module} loads third-party packages"


def test_the_app_does_not_import_the_conformance_kit():
    loaded = modules_loaded_by("wallet.app")
    assert "flask" in loaded  # the probe sees what the app loads
    assert {name for name in loaded if name.split(".")[0] == "conformance"} == set()
