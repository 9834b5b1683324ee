"""The Hash Game protocol envelope (spec/hash.md §3): AES-256-CBC, PKCS7, Base64, in one field `x`.

Key: the 32-character secret as its 32 bytes (§3.3). The IV (§3.4, NOT FOUND in the doc) travels in
one of two forms, and we accept both on the way in:
- `prefix`: x = Base64(random IV[16] + ciphertext)
- `key16`:  x = Base64(ciphertext), with IV = the secret's first 16 bytes
Outgoing, the form is chosen by HASH_IV_MODE. A JSON-object check after decryption tells the two
forms apart (§3.4, "Why this is unambiguous").
"""
import base64
import binascii
import json
import os
from decimal import Decimal

from Crypto.Cipher import AES
from Crypto.Util.Padding import pad, unpad

BLOCK = 16


class EnvelopeError(ValueError):
    """`x` is not Base64, not AES under our key, or not a JSON object inside."""


def encrypt(payload: bytes, secret: str, iv_mode: str = "prefix", iv: bytes | None = None) -> str:
    """`x` for `payload`. A fixed `iv` (prefix mode) is for test vectors only: reusing one leaks data."""
    key = secret.encode()
    iv = (iv or os.urandom(BLOCK)) if iv_mode == "prefix" else key[:BLOCK]
    sealed = AES.new(key, AES.MODE_CBC, iv).encrypt(pad(payload, BLOCK))  # PKCS7
    return base64.b64encode((iv if iv_mode == "prefix" else b"") + sealed).decode("ascii")


def decrypt(x: str, secret: str) -> dict:
    """The JSON object inside `x`, numbers with a fraction (and NaN, Infinity) read as Decimal."""
    try:
        raw = base64.b64decode(x + "=" * (-len(x) % 4), validate=True)  # standard alphabet
    except (binascii.Error, ValueError):
        raise EnvelopeError("x is not Base64") from None
    if not raw or len(raw) % BLOCK:
        raise EnvelopeError("x is not whole AES blocks")
    key = secret.encode()
    forms = [(raw[:BLOCK], raw[BLOCK:])] if len(raw) >= 2 * BLOCK else []  # prefix
    forms.append((key[:BLOCK], raw))                                        # key16
    for iv, sealed in forms:
        try:
            value = json.loads(unpad(AES.new(key, AES.MODE_CBC, iv).decrypt(sealed), BLOCK),
                               parse_float=Decimal, parse_constant=Decimal)
        except (ValueError, RecursionError):  # bad padding, not UTF-8, not JSON
            continue
        if isinstance(value, dict):
            return value
    raise EnvelopeError("x does not decrypt to a JSON object under this secret")
