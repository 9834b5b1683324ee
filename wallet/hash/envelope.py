"""The Hash Game protocol envelope (docs/hash.md §3): AES-256-CBC, PKCS7, Base64, in one field `x`.

Key: the 32-character secret as its 32 bytes (§3.3). The IV (§3.4; not published, our reading
in §11.1) travels in one of two forms:
- `prefix`: x = Base64(random IV[16] + ciphertext)
- `key16`:  x = Base64(ciphertext), with IV = the secret's first 16 bytes
HASH_IV_MODE names the one form accepted on the way in and used on the way out. `accept-both`
opens either (for a sandbox while the provider's form is unknown) and sends `prefix`.

What the envelope does not protect (§3.1, §11.1): it has no MAC, so it keeps `x` secret but not
intact. Without the key, whoever holds a captured `x` can set ANY 16-byte block of its plaintext
(CBC: plaintext block i = decrypt(ciphertext block i) XOR ciphertext block i-1): drop the blocks
before the one to change and send the block before it as the IV. This works in the prefix form
(where the IV is simply the first 16 bytes) and in key16 read as prefix. The result opens, pads
and parses whenever the kept blocks still make a JSON object, so "it decrypted" proves nothing
about who wrote it. What stops a rewritten message from moving money is only the rules in
wallet/hash/orders.py (an update must describe the stored bet, a settle may pay no more than the
stored bet could win, a request_id already applied with another body is an alarm); what would
close the hole is a MAC or a signature from Hash, which it does not publish (docs/hash.md §10).
One IV form is accepted, not both: a key16 `x` read as prefix would open with its first block
dropped, handing a rewriter a second reading of every capture.

No padding oracle: every failure to open `x` (not Base64, not whole blocks, bad padding, not UTF-8,
not JSON, not an object) raises the same EnvelopeError after the same work: every accepted form
is decrypted, its padding checked without an early return, and its text parsed, valid or not.
"""
import base64
import binascii
import hmac
import json
import os
from decimal import Decimal

from Crypto.Cipher import AES
from Crypto.Util.Padding import pad

from ..core.money import json_float, json_int

BLOCK = 16
# json.loads(..., parse_float=json_float, ...), its decoder built once
_JSON = json.JSONDecoder(parse_float=json_float, parse_int=json_int, parse_constant=Decimal)
IV_MODES = {"prefix": ("prefix",), "key16": ("key16",), "accept-both": ("prefix", "key16")}


class EnvelopeError(ValueError):
    """`x` does not open to a JSON object under this secret, in the accepted IV form(s)."""

    def __init__(self):
        super().__init__("cannot decrypt x")  # one message whatever went wrong: no oracle


def encrypt(payload: bytes, secret: str, iv_mode: str = "prefix", iv: bytes | None = None) -> str:
    """`x` for `payload`: key16 if `iv_mode` says so, else prefix (accept-both sends prefix). A
    fixed `iv` (prefix form) is for test vectors only: reusing one leaks data."""
    key = secret.encode()
    key16 = iv_mode == "key16"
    iv = key[:BLOCK] if key16 else (iv or os.urandom(BLOCK))
    sealed = AES.new(key, AES.MODE_CBC, iv).encrypt(pad(payload, BLOCK))  # PKCS7
    return base64.b64encode(sealed if key16 else iv + sealed).decode("ascii")


def decrypt(x: str, secret: str, iv_mode: str) -> dict:
    """The JSON object inside `x` in the form(s) `iv_mode` accepts (HASH_IV_MODE), numbers with a
    fraction (and NaN, Infinity) read as Decimal; a number text over MAX_NUMBER_TEXT characters is
    left unread as a LongNumber (wallet/core/money.py), which no field accepts (1001). With accept-both, prefix wins if both open."""
    raw = _base64(x)
    key = secret.encode()
    opened = []
    for form in IV_MODES[iv_mode]:
        iv, sealed = (raw[:BLOCK], raw[BLOCK:]) if form == "prefix" else (key[:BLOCK], raw)
        opened.append(_open(key, iv, sealed))  # every form, even after one has opened
    found = next((value for value in opened if isinstance(value, dict)), None)
    if found is None:
        raise EnvelopeError()
    return found


def _base64(x: str) -> bytes:
    """The bytes of standard Base64 (padding optional); b"" if `x` is not Base64."""
    try:
        return base64.b64decode(x + "=" * (-len(x) % 4), validate=True)
    except (binascii.Error, ValueError):
        return b""


def _open(key: bytes, iv: bytes, sealed: bytes):
    """The JSON value inside `sealed`, or None; the same steps whatever is wrong with it.

    Input that is not whole blocks is swapped for as many zero blocks, decrypted and parsed all the
    same, and refused at the end; so are bad padding and bad text."""
    whole = len(iv) == BLOCK and len(sealed) >= BLOCK and len(sealed) % BLOCK == 0
    if not whole:
        iv, sealed = bytes(BLOCK), bytes(BLOCK * max(1, len(sealed) // BLOCK))
    plain = AES.new(key, AES.MODE_CBC, iv).decrypt(sealed)
    text, padded = _unpad(plain)
    try:
        value = _JSON.decode(text.decode("utf-8"))
    except (ValueError, RecursionError):  # not UTF-8 (UnicodeDecodeError is a ValueError), not JSON
        value = None
    return value if whole and padded else None


def _unpad(plain: bytes) -> tuple[bytes, bool]:
    """PKCS7: the text without its padding, and whether the padding was right. A bad pad length is
    taken as a full block, and the pad bytes are compared in constant time, so the work does not
    depend on where the padding is wrong."""
    n = plain[-1]
    length_ok = 1 <= n <= BLOCK
    size = n if length_ok else BLOCK
    bytes_ok = hmac.compare_digest(plain[-size:], bytes([n]) * size)
    return plain[:-size], length_ok and bytes_ok
