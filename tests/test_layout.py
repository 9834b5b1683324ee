"""The layout's promise: one provider, or an optional extra, is removed by deleting its folder and
its lines in wallet/app.py or app.py (the README's "One provider only" steps), and what is left still passes its
tests. Each case performs the steps on a copy of the tree and runs the tests there (SQLite)."""
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

# (what to remove, the folders, the lines of wallet/app.py (of app.py where named), the tests that
# must still pass there)
REMOVALS = {
    "Hash (keep only 100HP)": (["wallet/hash"], ["from wallet import hash", "hash.register(app, hash_wallet)"],
                               ["tests/test_100hp.py"]),
    "100HP (keep only Hash)": (["wallet/hp100"], ["from wallet import hp100", "hp100.register(app, casino)"],
                               ["tests/test_hash.py::test_bet_then_settle_credits_once",
                                "tests/test_hash.py::test_fail_or_cancel_refunds_once",
                                "tests/test_hash.py::test_unknown_orders"]),
    "the console": (["wallet/console"], ["from wallet import console", "console.install(app)"],
                    ["tests/test_cli.py"]),
    "the conformance kit": (["conformance"], ["app.py: from conformance.cli import conformance",
                                              "app.py: app.cli.add_command(conformance)"],
                            ["tests/test_cli.py::test_sandbox_starts_with_zero_configuration"]),
}


def copy_of_the_tree(destination):
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in listed:
        if (ROOT / name).exists():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)


@pytest.mark.parametrize("removed", REMOVALS)
def test_removing_a_part_leaves_the_rest_working(removed, tmp_path):
    folders, lines, tests = REMOVALS[removed]
    tree = tmp_path / "tree"
    copy_of_the_tree(tree)
    for folder in folders:
        shutil.rmtree(tree / folder)
    for step in lines:  # each step deletes exactly one line
        name, line = step.split(": ", 1) if step.startswith("app.py: ") else ("wallet/app.py", step)
        source = (tree / name).read_text().splitlines(keepends=True)
        matching = [i for i, text in enumerate(source) if text.strip().startswith(line)]
        assert len(matching) == 1, f"{name} must have one line starting {line!r}"
        del source[matching[0]]
        (tree / name).write_text("".join(source))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
                         cwd=tree, env={**__import__("os").environ, "WALLET_TEST_DATABASES": "sqlite"},
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout.splitlines()[-1]
