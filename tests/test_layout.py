"""The layout's promise: one provider, or an optional extra, is removed by deleting its folder and
its lines in wallet/app.py or app.py (the README's "One provider only" steps), and what is left still passes its
tests. Each case performs the steps on a copy of the tree and runs the tests there (SQLite). A
one-provider tree also starts in production with that provider's settings only (issue 27.3: each
provider's settings and production rules live in its folder)."""
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time

import pytest
from conftest import ROOT
from dbservers import free_port
from httpclient import post, request

# What a production start of a one-provider tree is given: its own settings, and nothing of the other's.
CORE = {"WALLET_ENV": "production", "WALLET_ALLOW_SQLITE": "1", "CONSOLE": "auto"}
HP100_ONLY = {"HP_SECRET": secrets.token_urlsafe(24), "HP_ALLOWED_IPS": "127.0.0.1"}
HASH_ONLY = {"HASH_SECRET": secrets.token_hex(16), "HASH_MERCHANT_ID": "1001", "HASH_ALLOWED_IPS": "127.0.0.1"}

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


def production_env(tree, settings: dict) -> dict:
    """The environment of a production start: no setting of the test run's own, `settings` only."""
    ours = re.compile(r"(WALLET_|DATABASE_|HP_|HASH_|CONSOLE|SANDBOX_|METRICS_|TRUSTED_|PROXY_)")
    clean = {name: value for name, value in os.environ.items() if not ours.match(name)}
    return {**clean, **CORE, "DATABASE_URL": f"sqlite:///{tree}/wallet.db", **settings}


def started_in_production(tree, settings: dict, call: tuple) -> tuple[int, dict]:
    """`flask init-db`, then `gunicorn app:app` in production in `tree`: the answer to `call`
    (path, body, headers); an AssertionError with its log if it did not start."""
    env = production_env(tree, settings)
    subprocess.run([sys.executable, "-m", "flask", "--app", "app", "init-db"], cwd=tree, env=env,
                   capture_output=True, check=True, timeout=60)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "app:app", "-w", "1", "-b", f"127.0.0.1:{port}"],
                               cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            try:
                if request(base, "GET", "/healthz")[0] == 200:
                    return post(base, *call)
            except OSError:
                time.sleep(0.1)
        process.terminate()
        raise AssertionError(f"did not start in production:\n{process.communicate(timeout=15)[0][-3000:]}")
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(15)


def refused_in_production(tree, settings: dict, database_dir) -> str:
    """The message of a production start that refuses (`flask routes` builds the app and exits)."""
    run = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "routes"], cwd=tree,
                         env=production_env(database_dir, settings), capture_output=True, text=True, timeout=60)
    assert run.returncode != 0, run.stdout
    return run.stderr


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
    if removed == "Hash (keep only 100HP)":
        auth = ("/100hp/auth", json.dumps({"secret": HP100_ONLY["HP_SECRET"], "sessionId": "nobody"}).encode())
        assert started_in_production(tree, HP100_ONLY, auth)[0] == 604  # the secret passed, no such session
    if removed == "100HP (keep only Hash)":
        from wallet.hash.envelope import encrypt
        plain = {"timestamp": int(time.time() * 1000), "request_id": "r1", "token": "nobody"}
        info = ("/api/v2/user/info", json.dumps({"x": encrypt(json.dumps(plain).encode(), HASH_ONLY["HASH_SECRET"])}
                                                ).encode(), {"merchant-id": "1001"})
        assert started_in_production(tree, HASH_ONLY, info)[1]["code"] == 2001  # opened, no such token


@pytest.mark.parametrize("settings, missing", [(HP100_ONLY, "HASH_SECRET"), (HASH_ONLY, "HP_SECRET")])
def test_the_whole_tree_in_production_wants_both_providers_settings(settings, missing, tmp_path):
    """The control for the starts above: with both providers registered, one's settings are not enough."""
    assert f"\n  {missing} is the public sandbox default" in refused_in_production(ROOT, settings, tmp_path)
