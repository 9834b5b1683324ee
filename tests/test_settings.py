"""Settings are checked at start (wallet/settings.py): a bad one stops the wallet with a message
naming it, in every environment, and production adds its own rules. The settings attacks of
issue 18, replayed against a real gunicorn, are in test_attacks.py."""
import logging
import os
import subprocess
import sys
from decimal import Decimal

import pytest
import sqlalchemy as sa
from conftest import HASH_SECRET, HP_SECRET, ROOT, TEST_CONFIG
from dbservers import free_port

from wallet.app import create_app
from wallet.core import schema
from wallet.settings import SANDBOX_DEFAULTS, SETTINGS, SettingsError, load_config

# A production configuration that starts: every test below breaks one thing in it.
PRODUCTION = {"WALLET_ENV": "production", "HP_SECRET": "a-real-100hp-secret", "HASH_SECRET": HASH_SECRET,
              "HASH_MERCHANT_ID": "1001", "DATABASE_URL": "postgresql+psycopg://wallet@db/wallet",
              "HP_ALLOWED_IPS": "203.0.113.0/24", "HASH_ALLOWED_IPS": "198.51.100.7", "CONSOLE": "auto"}


def start_refused(env: dict, workers=2) -> subprocess.CompletedProcess:
    """`gunicorn app:app` with `env` over TEST_CONFIG, expected to exit by itself: a wallet that
    starts instead runs into the timeout, and the test fails."""
    command = [sys.executable, "-m", "gunicorn", "app:app", "-w", str(workers), "-b", f"127.0.0.1:{free_port()}"]
    return subprocess.run(command, cwd=ROOT, env={**os.environ, **TEST_CONFIG, **env},
                          capture_output=True, text=True, timeout=60)


def test_a_complete_production_configuration_starts():
    config = load_config(PRODUCTION)
    assert config["WALLET_ENV"] == "production" and config["HASH_TIMESTAMP_WINDOW_MS"] == 300000
    assert [str(n) for n in config["HP_ALLOWED_NETWORKS"]] == ["203.0.113.0/24"]
    assert config["HASH_ENCRYPT_RESPONSES"] is False and config["PROXY_COUNT"] == 0


def test_every_setting_has_a_sandbox_default_that_parses():
    """The zero-configuration sandbox: nothing set, everything valid."""
    assert set(SANDBOX_DEFAULTS) == set(SETTINGS)
    config = load_config({})
    assert config["WALLET_ENV"] == "sandbox" and config["HP_SECRET"] == "hp-sandbox-secret"


@pytest.mark.parametrize("name, value", [
    ("WALLET_ENV", "Production"), ("WALLET_ENV", "prod"), ("WALLET_ENV", "test"), ("WALLET_ENV", ""),
    ("WALLET_ENV", "production "),
    ("DATABASE_URL", "db.example:5432"), ("DATABASE_URL", "oracle://db/wallet"),
    ("DATABASE_URL", "postgresql://wallet@db:port/wallet"), ("DATABASE_URL", "postgresql+nosuch://db/wallet"),
    ("HP_SECRET", ""), ("HP_SECRET", HP_SECRET + " "), ("HP_SECRET", "\t" + HP_SECRET),
    ("HASH_SECRET", "short"), ("HASH_SECRET", HASH_SECRET + "0"), ("HASH_SECRET", HASH_SECRET[:31] + "\n"),
    ("HASH_MERCHANT_ID", ""), ("HASH_MERCHANT_ID", "10 01"),
    ("HASH_IV_MODE", "cbc"), ("HASH_IV_MODE", "Prefix"),
    ("HASH_API_URL", "hash.example/api"), ("HP_API_URL", "ftp://100hp.example"), ("HASH_LAUNCH_URL", "https://"),
    ("HASH_TIMESTAMP_WINDOW_MS", "abc"), ("HASH_TIMESTAMP_WINDOW_MS", "0"), ("HASH_TIMESTAMP_WINDOW_MS", "-1"),
    ("HASH_TIMESTAMP_WINDOW_MS", "3e5"), ("HASH_TIMESTAMP_WINDOW_MS", " 300000"),
    ("HASH_PAYOUT", "prize"), ("HASH_ENCRYPT_RESPONSES", "true"), ("HASH_ENCRYPT_RESPONSES", ""),
    ("HP_ALLOWED_IPS", "10.0.0.0/33"), ("HASH_ALLOWED_IPS", "10.0.0.1/8"), ("HASH_ALLOWED_IPS", "hash.example"),
    ("PROXY_COUNT", "one"), ("PROXY_COUNT", "-1"), ("PROXY_COUNT", "11"),
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
    config = load_config({**TEST_CONFIG, "HASH_TIMESTAMP_WINDOW_MS": "1000", "HASH_ENCRYPT_RESPONSES": "1",
                          "HASH_IV_MODE": "accept-both", "CONSOLE_HOSTS": "Wallet.LAN:8000, [::1]:9000"})
    assert config["HASH_TIMESTAMP_WINDOW_MS"] == 1000 and config["HASH_ENCRYPT_RESPONSES"] is True
    assert config["HASH_IV_MODE"] == "accept-both"
    assert config["CONSOLE_HOSTS"] == {"wallet.lan:8000", "[::1]:9000"}


@pytest.mark.parametrize("settings, complaint", [
    ({"HP_SECRET": "hp-sandbox-secret"}, "HP_SECRET is the public sandbox default"),
    ({"HASH_SECRET": "hash-sandbox-secret-0123456789ab"}, "HASH_SECRET is the public sandbox default"),
    ({"HP_SECRET": "x" * 15}, "HP_SECRET is 15 characters long"),
    ({"HASH_SECRET": "ab" * 16}, "HASH_SECRET has too little variety"),
    ({"HASH_SECRET": "0123456" * 4 + "0123"}, "HASH_SECRET has too little variety"),
    ({"HP_ALLOWED_IPS": ""}, "HP_ALLOWED_IPS is required in production"),
    ({"HASH_ALLOWED_IPS": " , "}, "HASH_ALLOWED_IPS is required in production"),
    ({"CONSOLE": "1"}, "CONSOLE=1 is refused in production"),
    ({"DATABASE_URL": "sqlite:///w.db"}, "set DATABASE_URL"),
    ({"HASH_API_URL": "http://hash.example"}, "HASH_API_URL must be an https:// URL in production"),
    ({"HP_API_URL": "http://100hp.example"}, "HP_API_URL must be an https:// URL in production"),
])
def test_production_rules(settings, complaint):
    with pytest.raises(SettingsError, match=complaint):
        load_config({**PRODUCTION, **settings})


def test_production_may_choose_sqlite_and_any_address_on_purpose(caplog):
    with caplog.at_level(logging.WARNING, logger="wallet.settings"):
        config = load_config({**PRODUCTION, "DATABASE_URL": "sqlite:///w.db", "WALLET_ALLOW_SQLITE": "1",
                              "HASH_ALLOWED_IPS": "0.0.0.0/0,::/0", "HASH_API_URL": "https://hash.example"})
    assert len(config["HASH_ALLOWED_NETWORKS"]) == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["HASH_ALLOWED_IPS allows any address: only the secret keeps others out"]


def test_messages_never_show_a_secret_or_the_database_password():
    with pytest.raises(SettingsError) as refused:
        load_config({**PRODUCTION, "HP_SECRET": "hunter2-is-short", "HASH_SECRET": "z" * 32,
                     "DATABASE_URL": "oracle://wallet:pa55word@db/wallet"})
    assert "hunter2" not in str(refused.value) and "zzz" not in str(refused.value)
    assert "pa55word" not in str(refused.value) and "DATABASE_URL" in str(refused.value)


def test_gunicorn_with_a_bad_setting_exits_naming_it(tmp_path):
    result = start_refused({"DATABASE_URL": f"sqlite:///{tmp_path}/w.db", "MAX_BODY_BYTES": "lots"})
    assert result.returncode != 0
    assert "MAX_BODY_BYTES must be a whole number" in result.stdout + result.stderr


def test_flask_cli_with_a_bad_setting_exits_naming_it():
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "routes"], cwd=ROOT,
                            env={**os.environ, **TEST_CONFIG, "PROXY_COUNT": "two"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "PROXY_COUNT must be a whole number" in result.stderr


def test_sandbox_demo_0_leaves_the_database_alone(tmp_path):
    """The tests' own switch: no schema, no demo player (a missing folder stays missing)."""
    app = create_app({**TEST_CONFIG, "DATABASE_URL": f"sqlite:///{tmp_path}/missing/w.db"})
    assert not (tmp_path / "missing").exists()
    assert app.test_client().get("/healthz").status_code == 503
    seeded = create_app({**TEST_CONFIG, "SANDBOX_DEMO": "1", "DATABASE_URL": f"sqlite:///{tmp_path}/w.db"})
    with seeded.extensions["engine"].connect() as conn:
        assert conn.execute(sa.select(schema.wallets.c.balance)).scalars().all() == [Decimal(1000)] * 2
    seeded.extensions["engine"].dispose()
