"""Settings are checked at start (wallet/settings.py and each provider's settings.py): a bad one
stops the wallet with a message naming it, in every environment, and production adds its own rules.
The settings attacks of issues 18 and 26, replayed against a real gunicorn, are in test_attacks.py."""
import logging
import os
import re
import secrets
import subprocess
import sys
from decimal import Decimal

import pytest
import sqlalchemy as sa
from conftest import HASH_SECRET, HP_SECRET, ROOT, TEST_CONFIG
from dbservers import free_port

from wallet.app import create_app
from wallet.core import schema
from wallet.settings import PUBLISHED_SECRETS, SANDBOX_DEFAULTS, SETTINGS, SettingsError, load_config

# A production configuration that starts: every test below breaks one thing in it. Its secrets are
# made up at each run: any secret written in this repository is public, and production refuses it.
PRODUCTION = {"WALLET_ENV": "production", "HP_SECRET": secrets.token_urlsafe(24),
              "HASH_SECRET": secrets.token_hex(16), "HASH_MERCHANT_ID": "1001",
              "DATABASE_URL": "postgresql+psycopg://wallet@db/wallet",
              "HP_ALLOWED_IPS": "203.0.113.0/24", "HASH_ALLOWED_IPS": "198.51.100.7", "CONSOLE": "auto"}


def started(settings: dict) -> dict:
    """The settings of an app built with `settings` (the core's and each provider's)."""
    app = create_app(settings)
    app.extensions["engine"].dispose()
    return app.config


def start_refused(env: dict, workers=2, without=()) -> subprocess.CompletedProcess:
    """`gunicorn app:app` with `env` over TEST_CONFIG less the names in `without`, expected to exit
    by itself: a wallet that starts instead runs into the timeout, and the test fails."""
    command = [sys.executable, "-m", "gunicorn", "app:app", "-w", str(workers), "-b", f"127.0.0.1:{free_port()}"]
    base = {name: value for name, value in {**os.environ, **TEST_CONFIG}.items() if name not in without}
    return subprocess.run(command, cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60)


def test_a_complete_production_configuration_starts():
    config = started(PRODUCTION)
    assert config["WALLET_ENV"] == "production" and config["HASH_TIMESTAMP_WINDOW_MS"] == 300000
    assert [str(n) for n in config["HP_ALLOWED_IPS"]] == ["203.0.113.0/24"]
    assert config["HASH_ENCRYPT_RESPONSES"] is False and config["TRUSTED_PROXIES"] == []


def test_every_setting_has_a_sandbox_default_that_parses(tmp_path):
    """The zero-configuration sandbox, the README's first command: nothing set, everything valid,
    a sandbox (its SQLite file in the working directory, the demo seeded)."""
    assert set(SANDBOX_DEFAULTS) == set(SETTINGS)
    nothing_set = {name: value for name, value in os.environ.items()
                   if not re.match(r"(WALLET_|DATABASE_|HP_|HASH_|CONSOLE|SANDBOX_|METRICS_|TRUSTED_)", name)}
    result = subprocess.run([sys.executable, "-c", "import app; c = app.app.config; "
                             "print(c['WALLET_ENV'], c['HP_SECRET'], c['HASH_SECRET'])"],
                            cwd=tmp_path, env={**nothing_set, "PYTHONPATH": str(ROOT)},
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["sandbox", "hp-sandbox-secret", "hash-sandbox-secret-0123456789ab"]
    assert (tmp_path / "wallet.db").exists() and "sandbox ready" in result.stderr


@pytest.mark.parametrize("name, value", [
    ("DATABASE_URL", "postgresql+psycopg://wallet@db/wallet"), ("DATABASE_URL", "sqlite:///wallet.db"),
    ("HP_SECRET", "a-secret-of-its-own"), ("HASH_SECRET", "k" * 32),
])
def test_a_wallet_with_its_own_database_or_secret_must_say_what_it_is(name, value, monkeypatch):
    """Issue 26.1. Was: a production DATABASE_URL and secrets without WALLET_ENV (an env file missing
    one line) started a sandbox: no production checks, the console on, top-ups on real wallets."""
    monkeypatch.delenv("WALLET_ENV", raising=False)
    without_env = {k: v for k, v in TEST_CONFIG.items() if k not in ("WALLET_ENV", "HP_SECRET", "HASH_SECRET")}
    with pytest.raises(SettingsError) as refused:
        create_app({**without_env, name: value})
    assert f"\n  WALLET_ENV is not set, but {name} is" in str(refused.value)
    assert "WALLET_ENV=production or WALLET_ENV=sandbox" in str(refused.value)
    said = {**without_env, "WALLET_ENV": "sandbox", name: value.replace("sqlite:///wallet.db", "sqlite://")}
    assert started(said)["WALLET_ENV"] == "sandbox"  # said, it is what it says


@pytest.mark.parametrize("name, value", [
    ("WALLET_ENV", "Production"), ("WALLET_ENV", "prod"), ("WALLET_ENV", "test"), ("WALLET_ENV", ""),
    ("WALLET_ENV", "production "),
    ("DATABASE_URL", "db.example:5432"), ("DATABASE_URL", "oracle://db/wallet"),
    ("DATABASE_URL", "postgresql://wallet@db:port/wallet"), ("DATABASE_URL", "postgresql+nosuch://db/wallet"),
    # a driver the wallet's BEGIN and bounded waits are not written for (wallet/core/db.py)
    ("DATABASE_URL", "postgresql+psycopg2://wallet@db/wallet"), ("DATABASE_URL", "mysql+mysqldb://wallet@db/wallet"),
    ("DATABASE_URL", "postgresql+psycopg://wallet@db/wallet?prepare_threshold=never"),
    ("DATABASE_URL", "postgresql+psycopg://wallet@db/wallet?prepare_threshold=1&prepare_threshold=none"),
    ("HP_SECRET", ""), ("HP_SECRET", HP_SECRET + " "), ("HP_SECRET", "\t" + HP_SECRET),
    ("HASH_SECRET", "short"), ("HASH_SECRET", HASH_SECRET + "0"), ("HASH_SECRET", HASH_SECRET[:31] + "\n"),
    ("HASH_MERCHANT_ID", ""), ("HASH_MERCHANT_ID", "10 01"),
    ("HASH_IV_MODE", "cbc"), ("HASH_IV_MODE", "Prefix"),
    ("HASH_API_URL", "hash.example/api"), ("HP_API_URL", "ftp://100hp.example"), ("HASH_LAUNCH_URL", "https://"),
    ("HASH_TIMESTAMP_WINDOW_MS", "abc"), ("HASH_TIMESTAMP_WINDOW_MS", "0"), ("HASH_TIMESTAMP_WINDOW_MS", "-1"),
    ("HASH_TIMESTAMP_WINDOW_MS", "3e5"), ("HASH_TIMESTAMP_WINDOW_MS", " 300000"),
    ("HASH_PAYOUT", "prize"), ("HASH_ENCRYPT_RESPONSES", "true"), ("HASH_ENCRYPT_RESPONSES", ""),
    ("HP_ALLOWED_IPS", "10.0.0.0/33"), ("HASH_ALLOWED_IPS", "10.0.0.1/8"), ("HASH_ALLOWED_IPS", "hash.example"),
    ("HASH_SECRET", "é" + HASH_SECRET[1:]),  # 32 characters, 33 bytes: every Hash call answered 5000
    ("PROXY_COUNT", "one"), ("PROXY_COUNT", "-1"), ("PROXY_COUNT", "1"),  # replaced by TRUSTED_PROXIES
    ("TRUSTED_PROXIES", "nginx.local"), ("TRUSTED_PROXIES", "10.0.0.1/8"), ("METRICS_ALLOWED_IPS", "any"),
    ("MAX_BODY_BYTES", "64k"), ("MAX_BODY_BYTES", "0"),
    ("WALLET_ALLOW_SQLITE", "yes"), ("CONSOLE", "on"), ("CONSOLE_HOSTS", "http://wallet.lan"),
    ("SANDBOX_DEMO", "2"), ("LOCK_TIMEOUT_MS", "2s"), ("CALL_DEADLINE_MS", ""),
    ("SESSION_LIFETIME_MINUTES", "1.5"),
])
def test_a_bad_setting_stops_the_wallet_naming_it(name, value):
    with pytest.raises(SettingsError) as refused:
        create_app({**TEST_CONFIG, name: value})
    assert f"\n  {name} " in str(refused.value)


def test_every_bad_setting_is_named_at_once():
    with pytest.raises(SettingsError) as refused:
        load_config({**TEST_CONFIG, "PROXY_COUNT": "x", "CONSOLE": "x"})
    assert "PROXY_COUNT" in str(refused.value) and "CONSOLE" in str(refused.value)


def test_values_are_parsed_once_at_start():
    config = started({**TEST_CONFIG, "DATABASE_URL": "sqlite://", "HASH_TIMESTAMP_WINDOW_MS": "1000", "HASH_ENCRYPT_RESPONSES": "1",
                          "HASH_IV_MODE": "accept-both", "CONSOLE_HOSTS": "Wallet.LAN:8000, [::1]:9000"})
    assert config["HASH_TIMESTAMP_WINDOW_MS"] == 1000 and config["HASH_ENCRYPT_RESPONSES"] is True
    assert config["HASH_IV_MODE"] == "accept-both"
    assert config["CONSOLE_HOSTS"] == {"wallet.lan:8000", "[::1]:9000"}


EVERY_IPV4 = "0.0.0.0/1,128.0.0.0/2,192.0.0.0/3,224.0.0.0/3"


@pytest.mark.parametrize("settings, complaint", [
    ({"HP_SECRET": "hp-sandbox-secret"}, "HP_SECRET is the public sandbox default"),
    ({"HP_SECRET": "HP-Sandbox-Secret"}, "HP_SECRET is the public sandbox default"),
    ({"HASH_SECRET": "hash-sandbox-secret-0123456789ab"}, "HASH_SECRET is the public sandbox default"),
    ({"HASH_SECRET": "Hash-sandbox-secret-0123456789ab"}, "HASH_SECRET is the public sandbox default"),
    ({"HASH_SECRET": "hash-sandbox-secret-0123456789AB"}, "HASH_SECRET is the public sandbox default"),
    ({"HASH_SECRET": HASH_SECRET}, "HASH_SECRET is printed in this repository"),  # docs/hash.md §3.6
    ({"HASH_SECRET": HASH_SECRET.upper()}, "HASH_SECRET is printed in this repository"),
    ({"HASH_SECRET": "000102030405060708090a0b0c0d0e0f"}, "HASH_SECRET is printed in this repository"),
    ({"HP_SECRET": "x" * 15}, "HP_SECRET is 15 characters long"),
    ({"HP_SECRET": "0" * 16}, "HP_SECRET is one pattern of 1 character"),
    ({"HP_SECRET": "abc123" * 4}, "HP_SECRET is one pattern of 6 character"),
    ({"HP_SECRET": "aabbccddaabbccdde"}, "HP_SECRET has too little variety"),
    ({"HASH_SECRET": "ab" * 16}, "HASH_SECRET is one pattern of 2 character"),
    ({"HASH_SECRET": "0123456789abcdef" * 2}, "HASH_SECRET is"),
    ({"HASH_SECRET": "0123456" * 4 + "0124"}, "HASH_SECRET has too little variety"),
    ({"HASH_SECRET": "PRODUCTION-HP"}, "HASH_SECRET is the same as HP_SECRET"),
    ({"HASH_IV_MODE": "accept-both"}, "HASH_IV_MODE=accept-both is refused in production"),
    ({"HP_ALLOWED_IPS": ""}, "HP_ALLOWED_IPS is required in production"),
    ({"HASH_ALLOWED_IPS": " , "}, "HASH_ALLOWED_IPS is required in production"),
    ({"HP_ALLOWED_IPS": EVERY_IPV4}, "HP_ALLOWED_IPS covers every IPv4 address with its ranges together"),
    ({"HASH_ALLOWED_IPS": "198.51.100.7,::/1,8000::/1"}, "HASH_ALLOWED_IPS covers every IPv6 address"),
    ({"METRICS_ALLOWED_IPS": ""}, "METRICS_ALLOWED_IPS is empty: anyone could read /metrics"),
    ({"METRICS_ALLOWED_IPS": EVERY_IPV4}, "METRICS_ALLOWED_IPS covers every IPv4 address"),
    ({"TRUSTED_PROXIES": "0.0.0.0/0"}, "TRUSTED_PROXIES covers every address"),
    ({"TRUSTED_PROXIES": "127.0.0.1," + EVERY_IPV4}, "TRUSTED_PROXIES covers every address"),
    ({"CONSOLE": "1"}, "CONSOLE=1 is refused in production"),
    ({"DATABASE_URL": "sqlite:///w.db"}, "DATABASE_URL is SQLite: set DATABASE_URL"),
    ({"HASH_API_URL": "http://hash.example"}, "HASH_API_URL must be an https:// URL in production"),
    ({"HP_API_URL": "http://100hp.example"}, "HP_API_URL must be an https:// URL in production"),
])
def test_production_rules(settings, complaint):
    """Issue 26.3: each was accepted in production."""
    if settings.get("HASH_SECRET") == "PRODUCTION-HP":  # the same secret for both providers
        settings = {"HASH_SECRET": PRODUCTION["HP_SECRET"][:32].ljust(32, "q"),
                    "HP_SECRET": PRODUCTION["HP_SECRET"][:32].ljust(32, "q").upper()}
    with pytest.raises(SettingsError) as refused:
        started({**PRODUCTION, **settings})
    name = next(iter(settings)) if "same as" not in complaint else "HASH_SECRET"
    assert re.search(f"\n  {name}[ =]", str(refused.value)) and complaint in str(refused.value)


def test_production_may_choose_sqlite_and_any_address_on_purpose(caplog):
    with caplog.at_level(logging.WARNING, logger="wallet.settings"):
        config = started({**PRODUCTION, "DATABASE_URL": "sqlite:///w.db", "WALLET_ALLOW_SQLITE": "1",
                          "HASH_ALLOWED_IPS": "0.0.0.0/0,::/0", "HASH_API_URL": "https://hash.example",
                          "TRUSTED_PROXIES": "127.0.0.1, unix,10.0.0.0/8"})
    assert len(config["HASH_ALLOWED_IPS"]) == 2 and len(config["TRUSTED_PROXIES"]) == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["HASH_ALLOWED_IPS allows any address: only the secret keeps others out"] * 2  # v4, v6


def test_messages_never_show_a_secret_or_the_database_password():
    with pytest.raises(SettingsError) as refused:
        load_config({**PRODUCTION, "DATABASE_URL": "oracle://wallet:pa55word@db/wallet"})
    assert "pa55word" not in str(refused.value) and "DATABASE_URL" in str(refused.value)
    for secret in ("hunter2-is-short", "hunter2-is-long-enough-but-" + "z" * 8, "z" * 32, "z" * 33):
        with pytest.raises(SettingsError) as refused:
            started({**PRODUCTION, "HP_SECRET": secret, "HASH_SECRET": secret})
        assert "hunter2" not in str(refused.value) and "zzz" not in str(refused.value)


def test_gunicorn_with_a_bad_setting_exits_naming_it(tmp_path):
    result = start_refused({"DATABASE_URL": f"sqlite:///{tmp_path}/w.db", "MAX_BODY_BYTES": "lots"})
    assert result.returncode != 0
    assert "MAX_BODY_BYTES must be a whole number" in result.stdout + result.stderr


def test_flask_cli_with_a_bad_setting_exits_naming_it():
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "routes"], cwd=ROOT,
                            env={**os.environ, **TEST_CONFIG, "PROXY_COUNT": "two"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "PROXY_COUNT is replaced by TRUSTED_PROXIES" in result.stderr


def test_sandbox_demo_0_leaves_the_database_alone(tmp_path):
    """The tests' own switch: no schema, no demo player (a missing folder stays missing)."""
    app = create_app({**TEST_CONFIG, "DATABASE_URL": f"sqlite:///{tmp_path}/missing/w.db"})
    assert not (tmp_path / "missing").exists()
    assert app.test_client().get("/healthz").status_code == 503
    seeded = create_app({**TEST_CONFIG, "SANDBOX_DEMO": "1", "DATABASE_URL": f"sqlite:///{tmp_path}/w.db"})
    with seeded.extensions["engine"].connect() as conn:
        assert conn.execute(sa.select(schema.wallets.c.balance)).scalars().all() == [Decimal(1000)] * 2
    seeded.extensions["engine"].dispose()


def test_every_secret_printed_in_the_repository_is_refused_in_production():
    """Issue 26.3: a key, IV or secret written anywhere in the repository (docs' worked examples,
    tests, README, examples, bench, the kit) is public. Each one found is refused as HP_SECRET and
    as HASH_SECRET, in any letter case (published, guessable or not a key at all)."""
    assignment = re.compile(r"""(?i)(?:secret|key)\w*["']?\s*[:=]\s*["']([^"'\s$<>{}]{8,})["']""")
    hex_line = re.compile(r"(?im)^(?:key|iv) \(hex\): ([0-9a-f]{32,64})$")
    found = set()
    for path in [ROOT / "README.md", *ROOT.glob("docs/**/*.md"), *ROOT.glob("tests/*.py"), *ROOT.glob("bench/*.py"),
                 *ROOT.glob("examples/**/*.py"), *ROOT.glob("examples/**/*.md"), *ROOT.glob("conformance/*.py")]:
        text = path.read_text()
        found |= set(assignment.findall(text))
        for hex_value in hex_line.findall(text):
            found |= {hex_value, bytes.fromhex(hex_value).decode("latin-1")}
    assert {HASH_SECRET, HP_SECRET, "000102030405060708090a0b0c0d0e0f"} <= found  # the search works
    for value in sorted(found):
        for name in ("HP_SECRET", "HASH_SECRET"):
            for written in (value, value.upper(), value.swapcase()):
                with pytest.raises(SettingsError, match=f"\n  {name} "):
                    started({**PRODUCTION, name: written})
    assert HASH_SECRET.casefold() in PUBLISHED_SECRETS
