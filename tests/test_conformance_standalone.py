"""The kit is standalone: `python -m conformance` runs from a copy of conformance/ in a Python that
has the standard library and the kit's own requirements (conformance/requirements.txt) and nothing
else: no Flask, no SQLAlchemy, no wallet/. Such a run passes this wallet and writes no file.

The isolated Python is a venv made here with the standard library's `venv` module, without pip
and without the system's site-packages; pycryptodome (the one requirement) is copied into it from
this environment, so the test needs no network.
"""
import os
import re
import shutil
import subprocess
import venv
from pathlib import Path

import Crypto
import pytest
from conftest import HASH_SECRET, HP_SECRET, MERCHANT_ID, ROOT, gunicorn
from test_conformance import AWAITING_HASHRULES, sql_players


@pytest.fixture(scope="session")
def isolated_kit(tmp_path_factory):
    """Run `python -m conformance ...` in the isolated Python, from a copy of conformance/ alone;
    returns a function (args) -> CompletedProcess. `.cwd` is the directory it runs in."""
    root = tmp_path_factory.mktemp("standalone")
    requirements = [re.split(r"[<>=\[ ]", line.strip())[0] for line in
                    (ROOT / "conformance" / "requirements.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#")]
    assert requirements == ["pycryptodome"]  # the only package the copy below provides
    venv.create(root / "venv", with_pip=False, system_site_packages=False)
    site = next((root / "venv" / "lib").glob("python3*/site-packages"))
    shutil.copytree(Path(Crypto.__file__).parent, site / "Crypto")
    kit_dir = root / "kit"
    shutil.copytree(ROOT / "conformance", kit_dir / "conformance", ignore=shutil.ignore_patterns("__pycache__"))
    python = root / "venv" / "bin" / "python"
    base_env = {"PATH": os.environ["PATH"], "HOME": str(root), "LANG": "C.UTF-8"}

    def run(*args, timeout=600, module="conformance", env=None):
        command = [str(python), "-B", "-m", module, *map(str, args)] if module else [str(python), "-B", *args]
        return subprocess.run(command, cwd=kit_dir, env={**base_env, **(env or {})}, capture_output=True, text=True,
                              timeout=timeout)
    run.cwd = kit_dir
    return run


def files_under(directory: Path) -> set:
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}


def test_the_isolated_python_has_no_wallet_and_no_flask(isolated_kit):
    for module in ("flask", "sqlalchemy", "click", "wallet", "app"):
        found = isolated_kit("-c", f"import {module}", module=None)
        assert found.returncode == 1 and "ModuleNotFoundError" in found.stderr, module
    assert isolated_kit("-c", "import Crypto.Cipher.AES", module=None).returncode == 0


def test_help_runs_standalone(isolated_kit):
    for args in ((), ("100hp",), ("hash",), ("soak", "100hp"), ("soak", "hash")):
        result = isolated_kit(*args, "--help")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("usage: python -m conformance")
    assert "--blocked-session" in isolated_kit("100hp", "--help").stdout
    assert "--minutes" in isolated_kit("soak", "hash", "--help").stdout
    result = isolated_kit("100hp")
    assert result.returncode == 2 and "required" in result.stderr


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_standalone_run_passes_this_wallet_and_writes_nothing(isolated_kit, app, database_url, tmp_path):
    ids = sql_players(app)
    before = files_under(isolated_kit.cwd)
    junit = tmp_path / "report.xml"
    with gunicorn(database_url, workers=2) as base:
        result = isolated_kit("100hp", "--url", f"{base}/100hp", "--secret", HP_SECRET, "--session", ids["session"],
                              "--second-session", ids["second"], "--blocked-session", ids["blocked"],
                              "--closed-session", ids["closed"], "--junit", junit)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "40 passed, 0 failed, 0 warnings, 0 skipped" in result.stdout
        result = isolated_kit("hash", "--url", base, "--merchant-id", MERCHANT_ID, "--token", ids["session"],
                              "--strict", env={"HASH_SECRET": HASH_SECRET})  # the secret from the environment
        failed = {line[len("  FAIL  "):] for line in result.stdout.splitlines() if line.startswith("  FAIL  ")}
        assert failed <= AWAITING_HASHRULES, result.stdout + result.stderr
        assert f"{33 - len(failed)} passed, {len(failed)} failed, 0 warnings, 0 skipped" in result.stdout
    assert files_under(isolated_kit.cwd) == before  # no file written (the JUnit report went where asked)
    assert junit.read_text().startswith("<?xml")
