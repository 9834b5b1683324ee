"""The Hash Game envelope as the provider writes it: AES-256-CBC, PKCS7, Base64, in one field `x`.

Key: the 32-character secret as its 32 bytes. The IV travels in one of two forms, and a wallet is
configured for one of them (Hash's documentation does not say which):
- `prefix`: x = Base64(random IV[16] + ciphertext)
- `key16`:  x = Base64(ciphertext), the IV being the secret's first 16 bytes
The kit's own small copy (it imports nothing from the wallet), with pycryptodome doing the AES.
"""
import base64
import json
import os
from decimal import Decimal

from Crypto.Cipher import AES
from Crypto.Util.Padding import pad, unpad

BLOCK = 16
IV_FORMS = ("prefix", "key16")


def seal(payload: bytes, secret: str, iv_form: str) -> str:
    """`x` for `payload` in the IV form `iv_form`."""
    key = secret.encode()
    iv = os.urandom(BLOCK) if iv_form == "prefix" else key[:BLOCK]
    sealed = AES.new(key, AES.MODE_CBC, iv).encrypt(pad(payload, BLOCK))
    return base64.b64encode(iv + sealed if iv_form == "prefix" else sealed).decode("ascii")


def unseal(x: str, secret: str, iv_form: str):
    """The JSON value inside `x` (an encrypted answer), numbers with a fraction as Decimal.
    Raises ValueError if it does not open in that form."""
    raw = base64.b64decode(x + "=" * (-len(x) % 4), validate=True)
    key = secret.encode()
    iv, sealed = (raw[:BLOCK], raw[BLOCK:]) if iv_form == "prefix" else (key[:BLOCK], raw)
    plain = unpad(AES.new(key, AES.MODE_CBC, iv).decrypt(sealed), BLOCK)
    return json.loads(plain, parse_float=Decimal)
