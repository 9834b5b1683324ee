"""The wallet's settings (environment variables): one table, a parser each, all checked at start.

`load_config()` reads every setting, parses it, and refuses to start (SettingsError, naming every
bad setting) rather than start and then fail every call. With nothing set the wallet is a sandbox
on SQLite with public secrets. `WALLET_ENV=production` adds the rules of `production_problems`:
secrets that are not the sandbox's and not guessable, a database server, IP allow-lists chosen on
purpose, https provider addresses, and no console.

A message never shows a secret's value or the database URL (it may hold a password).
"""
import logging
import os
import re
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from .guard import parse_networks

log = logging.getLogger(__name__)


class SettingsError(RuntimeError):
    """Settings the wallet will not run with; the message names each bad one."""


# ---- parsers: raw text -> value, or ValueError(why); the message reads "<NAME> <why>" ----------
def one_of(*choices):
    def parse(raw):
        if raw not in choices:
            raise ValueError(f"must be {' or '.join(choices)}, not {raw[:40]!r}")
        return raw
    return parse


def whole_number(low, high):
    def parse(raw):
        if not re.fullmatch(r"[0-9]{1,12}", raw) or not low <= int(raw) <= high:
            raise ValueError(f"must be a whole number from {low} to {high}, not {raw[:40]!r}")
        return int(raw)
    return parse


def flag(raw) -> bool:
    if raw not in ("0", "1"):
        raise ValueError(f"must be 0 or 1, not {raw[:40]!r}")
    return raw == "1"


def secret(raw) -> str:
    if not raw:
        raise ValueError("is empty")
    if raw != raw.strip():  # a copy-and-paste slip: the provider's secret has no blanks around it
        raise ValueError("has spaces or a line break around it")
    return raw


def hash_key(raw) -> str:
    if len(secret(raw)) != 32:
        raise ValueError(f"must be 32 characters: it is the AES-256 key (docs/hash.md §3.3); "
                         f"it has {len(raw)}")
    return raw


def merchant_id(raw) -> str:
    if not re.fullmatch(r"[!-~]{1,64}", raw):  # a header value: printable ASCII, no spaces
        raise ValueError(f"must be 1-64 printable characters without spaces, not {raw[:40]!r}")
    return raw


def url(raw) -> str:
    """Empty (not used), or an http(s) address with a host."""
    if raw:
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.hostname or re.search(r"\s", raw):
            raise ValueError(f"must be an http:// or https:// URL, not {raw[:60]!r}")
    return raw


def database_url(raw) -> str:
    try:
        parsed = make_url(raw)
    except (ArgumentError, ValueError):
        raise ValueError("is not a database URL (e.g. postgresql+psycopg://user:password@host/wallet)") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql", "mysql", "mariadb"):
        raise ValueError(f"must be SQLite, PostgreSQL or MySQL / MariaDB, not {parsed.get_backend_name()}")
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        raise ValueError(f"names a driver SQLAlchemy does not know: {parsed.drivername}") from None
    return raw


def networks(raw) -> list:
    return parse_networks(raw)


def host_list(raw) -> frozenset:
    """`CONSOLE_HOSTS`: more Host header values the console answers to, e.g. `wallet.lan:8000`."""
    hosts = [part.strip().lower() for part in raw.split(",") if part.strip()]
    for host in hosts:
        if not re.fullmatch(r"([a-z0-9.-]+|\[[0-9a-f:.]+\])(:[0-9]{1,5})?", host):
            raise ValueError(f"must be Host values like wallet.lan:8000, not {host[:60]!r}")
    return frozenset(hosts)


# ---- the table: name -> (sandbox default, parser); the README's settings table describes each ----
SETTINGS = {
    "WALLET_ENV": ("sandbox", one_of("sandbox", "production")),
    "DATABASE_URL": ("sqlite:///wallet.db", database_url),
    "HP_SECRET": ("hp-sandbox-secret", secret),
    "HASH_MERCHANT_ID": ("1001", merchant_id),
    "HASH_SECRET": ("hash-sandbox-secret-0123456789ab", hash_key),
    "HASH_IV_MODE": ("prefix", one_of("prefix", "key16", "accept-both")),
    "HASH_API_URL": ("", url),
    "HP_API_URL": ("", url),
    "HASH_LAUNCH_URL": ("", url),
    "HASH_TIMESTAMP_WINDOW_MS": ("300000", whole_number(1000, 86_400_000)),
    "HASH_PAYOUT": ("prize+bonus", one_of("prize+bonus", "prize-tax+bonus")),
    "HASH_MAX_PAYOUT_MULTIPLE": ("1000", whole_number(1, 1_000_000)),
    "HASH_ENCRYPT_RESPONSES": ("0", flag),
    "HP_ALLOWED_IPS": ("", networks),
    "HASH_ALLOWED_IPS": ("", networks),
    "PROXY_COUNT": ("0", whole_number(0, 10)),
    "MAX_BODY_BYTES": ("65536", whole_number(1024, 16 * 1024 * 1024)),
    "WALLET_ALLOW_SQLITE": ("0", flag),
    "CONSOLE": ("auto", one_of("auto", "0", "1")),
    "CONSOLE_HOSTS": ("", host_list),
    "SANDBOX_DEMO": ("1", flag),
    "LOCK_TIMEOUT_MS": ("2000", whole_number(1, 60_000)),
    "CALL_DEADLINE_MS": ("2500", whole_number(1, 60_000)),
    "SESSION_LIFETIME_MINUTES": ("1440", whole_number(1, 525_600)),
    "METRICS_ALLOWED_IPS": ("127.0.0.1/32,::1", networks),
}
SANDBOX_DEFAULTS = {name: default for name, (default, _) in SETTINGS.items()}
HTTPS_IN_PRODUCTION = ("HP_API_URL", "HASH_API_URL", "HASH_LAUNCH_URL")  # they carry secrets and tokens
ALLOW_LISTS = {"HP_ALLOWED_IPS": "100HP", "HASH_ALLOWED_IPS": "Hash"}


def load_config(overrides=None) -> dict:
    """Every setting, parsed: `overrides` first, then the environment, then the sandbox default.
    Other keys in `overrides` (Flask's own, say) are passed through as they are."""
    overrides = dict(overrides or {})
    config, problems = dict(overrides), []
    for name, (default, parse) in SETTINGS.items():
        raw = str(overrides.get(name, os.environ.get(name, default)))
        try:
            config[name] = parse(raw)
        except ValueError as exc:
            problems.append(f"{name} {exc}")
    if not problems:
        problems = limits_problems(config)
        if config["WALLET_ENV"] == "production":
            problems += production_problems(config)
    if problems:
        raise SettingsError("refusing to start; fix these settings:\n  " + "\n  ".join(problems))
    config["HP_ALLOWED_NETWORKS"] = config["HP_ALLOWED_IPS"]  # the names hp.py / hash.py read
    config["HASH_ALLOWED_NETWORKS"] = config["HASH_ALLOWED_IPS"]
    return config


def limits_problems(config) -> list[str]:
    """Bounds that cannot all be kept, in every WALLET_ENV: a lock wait is part of a call."""
    if config["LOCK_TIMEOUT_MS"] > config["CALL_DEADLINE_MS"]:
        return [f"LOCK_TIMEOUT_MS ({config['LOCK_TIMEOUT_MS']}) is larger than CALL_DEADLINE_MS "
                f"({config['CALL_DEADLINE_MS']}): a lock wait must fit in the call's deadline"]
    return []


def production_problems(config) -> list[str]:
    """What a real wallet must not run with, beyond each setting's own parser."""
    problems = []
    for name, provider in (("HP_SECRET", "100HP"), ("HASH_SECRET", "Hash")):
        if config[name] == SANDBOX_DEFAULTS[name]:
            problems.append(f"{name} is the public sandbox default: set {name} to the secret {provider} gave you")
    if len(config["HP_SECRET"]) < 16:  # a short secret can be guessed, and it moves money
        problems.append(f"HP_SECRET is {len(config['HP_SECRET'])} characters long: production needs at least 16")
    if len(set(config["HASH_SECRET"])) < 8:  # e.g. 32 zeros: a placeholder, not a key
        problems.append(f"HASH_SECRET has too little variety ({len(set(config['HASH_SECRET']))} distinct "
                        "characters; a real key has at least 8)")
    if config["DATABASE_URL"].startswith("sqlite") and not config["WALLET_ALLOW_SQLITE"]:
        problems.append("DATABASE_URL is SQLite: set DATABASE_URL to PostgreSQL or MySQL "
                        "(or WALLET_ALLOW_SQLITE=1 for a wallet on one host)")
    for name, provider in ALLOW_LISTS.items():
        if not config[name]:  # the Hash envelope is AES-CBC without a MAC: bits of a captured one can be
            # flipped without the key, so who may send one at all is the network's to decide
            problems.append(f"{name} is required in production: the addresses {provider} calls from "
                            "(0.0.0.0/0,::/0 to allow any address, on purpose)")
        elif any(network.prefixlen == 0 for network in config[name]):
            log.warning("%s allows any address: only the secret keeps others out", name)
    if config["CONSOLE"] == "1":
        problems.append("CONSOLE=1 is refused in production: the console has no login and tops up wallets")
    for name in HTTPS_IN_PRODUCTION:
        if config[name] and not config[name].startswith("https://"):
            problems.append(f"{name} must be an https:// URL in production")
    return problems
