"""Hash's settings and their production rules (the operations guide's settings table describes
each). Registered with the provider (wallet/hash/__init__.py `register`): a wallet without Hash
asks for none of them."""
import re

from ..settings import (Settings, allow_list_problems, flag, guessable, https_problems, networks, one_of,
                        secret, url, whole_number)


def hash_key(raw) -> str:
    """32 bytes in UTF-8, not 32 characters: a key with one non-ASCII character is 33 bytes, and
    AES-256 refuses it on every call (5000)."""
    size = len(secret(raw).encode("utf-8"))
    if size != 32:
        raise ValueError(f"must be 32 bytes in UTF-8: it is the AES-256 key (docs/hash.md §3.3); it has {size}")
    return raw


def merchant_id(raw) -> str:
    if not re.fullmatch(r"[!-~]{1,64}", raw):  # a header value: printable ASCII, no spaces
        raise ValueError(f"must be 1-64 printable characters without spaces, not {raw[:40]!r}")
    return raw


def production_problems(config) -> list:
    problems = []
    if why := guessable(config["HASH_SECRET"]):  # e.g. 32 zeros: a placeholder, not a key
        problems.append(f"HASH_SECRET {why}: a placeholder, not the key Hash gave you")
    # accept-both opens either IV form: a key16 capture read as prefix has its second block
    # settable without the key (docs/hash.md §3.4, §11.1)
    if config["HASH_IV_MODE"] == "accept-both":
        problems.append("HASH_IV_MODE=accept-both is refused in production: set the one IV form Hash "
                        "uses, prefix or key16")
    # the Hash envelope is AES-CBC without a MAC: bits of a captured one can be flipped without the
    # key, so who may send one at all is the network's to decide
    problems += allow_list_problems("HASH_ALLOWED_IPS", config["HASH_ALLOWED_IPS"], "Hash calls from")
    return problems + https_problems(config, ["HASH_API_URL", "HASH_LAUNCH_URL"])


SETTINGS = Settings({
    "HASH_MERCHANT_ID": ("1001", merchant_id),
    "HASH_SECRET": ("hash-sandbox-secret-0123456789ab", hash_key),
    "HASH_IV_MODE": ("prefix", one_of("prefix", "key16", "accept-both")),
    "HASH_API_URL": ("", url),
    "HASH_LAUNCH_URL": ("", url),
    "HASH_TIMESTAMP_WINDOW_MS": ("300000", whole_number(1000, 86_400_000)),
    "HASH_PAYOUT": ("prize+bonus", one_of("prize+bonus", "prize-tax+bonus")),
    "HASH_MAX_PAYOUT_MULTIPLE": ("1000", whole_number(1, 1_000_000)),
    "HASH_BONUS_ALLOWANCE": ("1", whole_number(0, 1_000_000)),
    "HASH_ENCRYPT_RESPONSES": ("0", flag),
    "HASH_ALLOWED_IPS": ("", networks),
}, production_problems, secrets=("HASH_SECRET",))
