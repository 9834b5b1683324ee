"""The Hash envelope (spec/hash.md §3.4): golden vectors of §3.11, and interop with `openssl enc`,
an implementation independent of ours, in both IV forms and both directions."""
import base64
import json
import subprocess
from decimal import Decimal

import pytest

from wallet.hash.envelope import EnvelopeError, decrypt, encrypt

SECRET = "0123456789abcdef0123456789abcdef"
PLAIN = (b'{"timestamp":1650123456789,"request_id":"abcd-1234-abcd-1234","username":"game001",'
         b'"user_id":"user123","amount":100}')
X_PREFIX = ("AAECAwQFBgcICQoLDA0OD+ZArHpeznUVT80jgjq9RXes+Yjn78gqpaRfV9zYdJpko0T6d2uqm4dHRyy6/pi5L/E1m1ra3s"
            "APpF0GQonDZpmqH0dgif64Yjite/jBPFh9sRSi8QXJuw1VgYTUaZ/pPEAYKFJGZSB1jcKqT982w3O32pcXEWDun/lIm"
            "qUT1MTQ")
X_KEY16 = ("gGnwSLQyOUQaBeUs8kYhSkxP7tmVSBonVXTLPUuEuAS1Wa7gAe5rQ/PKuFSw33PnNUXtiIl62N3eeoG5akOiEc8a/hlj6z"
           "VX8OZVIFUGfTFl7qRo6ZGUEaSSSr8p5fRJo+dW1vXvVKyucIG+E9CbmUvGM8gK+khqNCHCpjQU0dk=")


def test_golden_vectors_both_forms():
    assert encrypt(PLAIN, SECRET, "prefix", iv=bytes(range(16))) == X_PREFIX
    assert encrypt(PLAIN, SECRET, "key16") == X_KEY16
    assert decrypt(X_PREFIX, SECRET) == decrypt(X_KEY16, SECRET) == json.loads(PLAIN)


def test_prefix_form_uses_a_fresh_iv_each_time():
    assert encrypt(PLAIN, SECRET) != encrypt(PLAIN, SECRET)


def test_amounts_are_read_as_decimal_from_the_text():
    x = encrypt(b'{"amount": 0.1, "big": 12345678901234567.123456, "n": 7}', SECRET)
    assert decrypt(x, SECRET) == {"amount": Decimal("0.1"), "big": Decimal("12345678901234567.123456"),
                                  "n": 7}


def openssl(args, data: bytes) -> bytes:
    return subprocess.run(["openssl", "enc", "-aes-256-cbc", "-nosalt", *args], input=data,
                          capture_output=True, check=True).stdout


@pytest.mark.parametrize("form", ["prefix", "key16"])
def test_openssl_encrypts_we_decrypt(form):
    iv = bytes(range(100, 116)) if form == "prefix" else SECRET[:16].encode()
    sealed = openssl(["-K", SECRET.encode().hex(), "-iv", iv.hex()], PLAIN)  # PKCS7 is openssl's default
    x = base64.b64encode((iv if form == "prefix" else b"") + sealed).decode()
    assert decrypt(x, SECRET) == json.loads(PLAIN)


@pytest.mark.parametrize("form", ["prefix", "key16"])
def test_we_encrypt_openssl_decrypts(form):
    raw = base64.b64decode(encrypt(PLAIN, SECRET, form))
    iv, sealed = (raw[:16], raw[16:]) if form == "prefix" else (SECRET[:16].encode(), raw)
    assert openssl(["-d", "-K", SECRET.encode().hex(), "-iv", iv.hex()], sealed) == PLAIN


@pytest.mark.parametrize("x", [
    "", "not base64!", "AAAA", base64.b64encode(b"x" * 17).decode(),  # not whole blocks
    encrypt(PLAIN, "f" * 32),                                         # another key
    encrypt(b"[1, 2]", SECRET), encrypt(b"\xff\xfe", SECRET), encrypt(b"", SECRET),
    X_PREFIX[:-8] + "AAAAAAA=",                                       # tampered: bad padding
])
def test_what_does_not_open_is_refused(x):
    with pytest.raises(EnvelopeError):
        decrypt(x, SECRET)
