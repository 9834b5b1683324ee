"""The wallet's settings (environment variables): a table per part, a parser each, all checked at start.

`load_config()` reads the core's settings (this module's table), and each provider adds its own
table from its folder when it is registered (`add_settings`: wallet/hp100/settings.py,
wallet/hash/settings.py), so that a wallet with one provider asks for that provider's settings
only. A bad setting stops the app (SettingsError, naming every bad setting of its part) rather
than start and then fail every call.

With nothing set at all the wallet is a sandbox on SQLite with public secrets. A wallet given a
database or a secret of its own must say what it is: without `WALLET_ENV` it refuses to start (a
missing line in an env file must not turn a production wallet into a sandbox). `WALLET_ENV=production`
adds each part's production rules: secrets that are neither the sandbox's nor printed anywhere in
this repository nor guessable nor shared between providers, a database server, IP allow-lists
chosen on purpose, proxies named by address, https provider addresses, and no console.

A message never shows a secret's value or the database URL (it may hold a password).
"""
import ipaddress
import logging
import os
import re
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from .core.db import PREPARE_THRESHOLD, prepare_threshold
from .guard import UNIX, parse_networks, parse_proxies

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
    if not raw.isprintable():
        raise ValueError("has control characters in it")
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
    # the drivers in requirements.txt: the bounded waits and the BEGIN are written for them (wallet/core/db.py)
    driver = {"postgresql": "psycopg", "mysql": "pymysql", "mariadb": "pymysql"}.get(parsed.get_backend_name())
    if driver and parsed.get_driver_name() != driver:
        raise ValueError(f"must name the driver {driver}: {parsed.get_backend_name()}+{driver}://..., "
                         f"not {parsed.drivername}")
    if PREPARE_THRESHOLD in parsed.query:
        prepare_threshold(parsed.query[PREPARE_THRESHOLD])  # ValueError, naming it
    return raw


def networks(raw) -> list:
    return parse_networks(raw)


def proxies(raw) -> list:
    return parse_proxies(raw)


def host_list(raw) -> frozenset:
    """`CONSOLE_HOSTS`: more Host header values the console answers to, e.g. `wallet.lan:8000`."""
    hosts = [part.strip().lower() for part in raw.split(",") if part.strip()]
    for host in hosts:
        if not re.fullmatch(r"([a-z0-9.-]+|\[[0-9a-f:.]+\])(:[0-9]{1,5})?", host):
            raise ValueError(f"must be Host values like wallet.lan:8000, not {host[:60]!r}")
    return frozenset(hosts)


def replaced_by_trusted_proxies(raw) -> int:
    """`PROXY_COUNT`, retired: a count of proxies let anyone who reached the app directly (or put a
    header before the proxy's) choose the client address the allow-lists saw."""
    if raw not in ("", "0"):
        raise ValueError("is replaced by TRUSTED_PROXIES: the addresses of your own proxies "
                         "(e.g. 127.0.0.1 for an nginx on the same host); remove PROXY_COUNT")
    return 0


# ---- the parts: each a table name -> (sandbox default, parser), and its production rules ---------
@dataclass(frozen=True)
class Settings:
    """One part's settings: the core's (below) or a provider's (wallet/<provider>/settings.py)."""
    table: dict  # name -> (sandbox default, parser); the operations guide's settings table describes each
    production_problems: Callable[[dict], list] = lambda config: []  # beyond each parser, in production
    secrets: tuple = ()  # names holding secrets: never shown, never published, never one for two uses


CORE = Settings({
    "WALLET_ENV": ("sandbox", one_of("sandbox", "production")),
    "DATABASE_URL": ("sqlite:///wallet.db", database_url),
    "TRUSTED_PROXIES": ("", proxies),
    "PROXY_COUNT": ("0", replaced_by_trusted_proxies),
    "MAX_BODY_BYTES": ("65536", whole_number(1024, 16 * 1024 * 1024)),
    "WALLET_ALLOW_SQLITE": ("0", flag),
    "CONSOLE": ("auto", one_of("auto", "0", "1")),
    "CONSOLE_HOSTS": ("", host_list),
    "SANDBOX_DEMO": ("1", flag),
    "LOCK_TIMEOUT_MS": ("2000", whole_number(1, 60_000)),
    "CALL_DEADLINE_MS": ("2500", whole_number(1, 60_000)),
    "SESSION_LIFETIME_MINUTES": ("1440", whole_number(1, 525_600)),
    "METRICS_ALLOWED_IPS": ("127.0.0.1/32,::1", networks),
}, production_problems=lambda config: core_production_problems(config))
SETTINGS = CORE.table
SANDBOX_DEFAULTS = {name: default for name, (default, _) in SETTINGS.items()}

# Every secret, key and IV printed in this repository (docs, README, tests, examples, bench): public,
# so never a production secret, in any letter case. tests/test_settings.py searches the repository
# for more and fails if one is missing here.
PUBLISHED_SECRETS = frozenset(value.casefold() for value in (
    "0123456789abcdef0123456789abcdef",  # docs/hash.md §3.6's worked example key, and the tests' key
    "0123456789abcdef",  # its half
    "3031323334353637383961626364656630313233343536373839616263646566",  # the same, in hex
    "000102030405060708090a0b0c0d0e0f",  # docs/hash.md §3.6's IV
    "hp-sandbox-secret", "hash-sandbox-secret-0123456789ab",  # the sandbox defaults
    "0123456789abcdefghijklmnopqrstuv", "test-hp-secret", "a-real-100hp-secret", "not-the-secret",
    "bench-hp-secret", "bench-hash-secret-0123456789abcd", "hunter2-is-short",
))


def given(name: str, overrides) -> bool:
    return name in overrides or name in os.environ


def _parse(part: Settings, source, config: dict) -> list:
    """Parse each of `part`'s settings from `source` (then the environment, then the default) into
    `config`; the problems, each "<NAME> <why>"."""
    problems = []
    for name, (default, parse) in part.table.items():
        raw = str(source[name]) if name in source else os.environ.get(name, default)
        try:
            config[name] = parse(raw)
        except ValueError as exc:
            problems.append(f"{name} {exc}")
    return problems


def _refuse(problems: list) -> None:
    if problems:
        raise SettingsError("refusing to start; fix these settings:\n  " + "\n  ".join(problems))


def load_config(overrides=None) -> dict:
    """The core's settings, parsed: `overrides` first, then the environment, then the sandbox
    default. Other keys in `overrides` (a provider's settings, Flask's own) are passed through as
    they are: `add_settings` reads a provider's from there."""
    overrides = dict(overrides or {})
    config = dict(overrides)
    problems = _parse(CORE, overrides, config)
    config["WALLET_ENV_GIVEN"] = given("WALLET_ENV", overrides)
    if not config["WALLET_ENV_GIVEN"] and given("DATABASE_URL", overrides):
        problems.append(undeclared("DATABASE_URL"))
    if not problems:
        problems = limits_problems(config)
        if config["WALLET_ENV"] == "production":
            problems += CORE.production_problems(config)
    _refuse(problems)
    config["WALLET_SECRETS"] = {}  # name -> value of each part's secrets, as they are added
    return config


def add_settings(config: dict, part: Settings) -> None:
    """A provider's settings, parsed into the app's `config` (which holds what create_app was given,
    see `load_config`) at the provider's registration; refuses to start like `load_config`."""
    parsed = {}
    problems = _parse(part, config, parsed)
    if not config["WALLET_ENV_GIVEN"]:
        problems += [undeclared(name) for name in part.secrets if given(name, config)]
    if not problems and config["WALLET_ENV"] == "production":
        problems = secret_problems(part, parsed, config["WALLET_SECRETS"]) + part.production_problems(parsed)
    _refuse(problems)
    config.update(parsed)
    config["WALLET_SECRETS"].update({name: parsed[name] for name in part.secrets})


def undeclared(name: str) -> str:
    return (f"WALLET_ENV is not set, but {name} is: a wallet with a database or secrets of its own "
            "must say what it is, WALLET_ENV=production or WALLET_ENV=sandbox")


# ---- production rules shared by every part ----------------------------------------------------------
def secret_problems(part: Settings, parsed: dict, earlier: dict) -> list:
    """A secret that anyone could know: a sandbox default, one printed in this repository (in any
    letter case), or the same as another setting's secret."""
    problems = []
    for name in part.secrets:
        value = parsed[name].casefold()
        if value == part.table[name][0].casefold():
            problems.append(f"{name} is the public sandbox default (in some letter case): set {name} "
                            "to the secret the provider gave you")
        elif value in PUBLISHED_SECRETS:
            problems.append(f"{name} is printed in this repository's docs, tests or examples "
                            "(in some letter case): anyone may know it")
        problems += [f"{name} is the same as {other}: each provider needs its own secret"
                     for other, value_there in earlier.items() if value_there.casefold() == value]
    return problems


def guessable(value: str) -> str | None:
    """Why a secret can be guessed, or None: one character or one pattern repeated, too few
    different characters."""
    repeated = re.fullmatch(r"(.+?)\1+", value, re.DOTALL)
    if repeated:
        return f"is one pattern of {len(repeated.group(1))} character(s) repeated"
    if len(set(value)) < 8:
        return f"has too little variety ({len(set(value))} distinct characters; at least 8)"
    return None


EVERY_ADDRESS = {4: ipaddress.ip_network("0.0.0.0/0"), 6: ipaddress.ip_network("::/0")}


def covers_every_address(networks: list, version: int) -> bool:
    """Whether `networks` together cover every IPv`version` address (one /0, or ranges adding up)."""
    ranges = [network for network in networks if network.version == version]
    return bool(ranges) and list(ipaddress.collapse_addresses(ranges)) == [EVERY_ADDRESS[version]]


def allow_list_problems(name: str, networks: list, who: str) -> list:
    """An allow-list in production: required; every address allowed only when said with a /0
    range (a WARNING then), never by ranges that together happen to cover everything."""
    if not networks:
        return [f"{name} is required in production: the addresses {who} (0.0.0.0/0,::/0 to allow "
                "any address, on purpose)"]
    problems = []
    for version, everything in EVERY_ADDRESS.items():
        if everything in networks:
            log.warning("%s allows any address: only the secret keeps others out", name)
        elif covers_every_address(networks, version):
            problems.append(f"{name} covers every IPv{version} address with its ranges together: "
                            f"write {everything} to allow any address on purpose, or name {who}")
    return problems


def limits_problems(config) -> list[str]:
    """Bounds that cannot all be kept, in every WALLET_ENV: a lock wait is part of a call."""
    if config["LOCK_TIMEOUT_MS"] > config["CALL_DEADLINE_MS"]:
        return [f"LOCK_TIMEOUT_MS ({config['LOCK_TIMEOUT_MS']}) is larger than CALL_DEADLINE_MS "
                f"({config['CALL_DEADLINE_MS']}): a lock wait must fit in the call's deadline"]
    return []


def core_production_problems(config) -> list:
    """The core's production rules, beyond each setting's own parser."""
    problems = []
    if config["DATABASE_URL"].startswith("sqlite") and not config["WALLET_ALLOW_SQLITE"]:
        problems.append("DATABASE_URL is SQLite: set DATABASE_URL to PostgreSQL or MySQL "
                        "(or WALLET_ALLOW_SQLITE=1 for a wallet on one host)")
    if config["CONSOLE"] == "1":
        problems.append("CONSOLE=1 is refused in production: the console has no login and tops up wallets")
    if not config["METRICS_ALLOWED_IPS"]:
        problems.append("METRICS_ALLOWED_IPS is empty: anyone could read /metrics; name who scrapes it "
                        "(0.0.0.0/0,::/0 to allow any address, on purpose)")
    else:
        problems += allow_list_problems("METRICS_ALLOWED_IPS", config["METRICS_ALLOWED_IPS"],
                                        "your Prometheus scrapes from")
    proxies = [network for network in config["TRUSTED_PROXIES"] if network != UNIX]
    if any(covers_every_address(proxies, version) for version in EVERY_ADDRESS):
        problems.append("TRUSTED_PROXIES covers every address: anyone could then write the client "
                        "address the allow-lists see; name your own proxies")
    return problems


def https_problems(config, names) -> list:
    """Provider addresses carry secrets and tokens: https in production."""
    return [f"{name} must be an https:// URL in production"
            for name in names if config[name] and not config[name].startswith("https://")]
