"""The Hash envelope (docs/hash.md §3.4): golden vectors of §3.6, interop with `openssl enc` (an
implementation independent of ours) in both IV forms and both directions, one IV form accepted
unless accept-both, and one error for every envelope that does not open."""
import base64
import json
import subprocess
from decimal import Decimal

import pytest
from Crypto.Cipher import AES

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
    assert decrypt(X_PREFIX, SECRET, "prefix") == decrypt(X_KEY16, SECRET, "key16") == json.loads(PLAIN)
    assert decrypt(X_PREFIX, SECRET, "accept-both") == decrypt(X_KEY16, SECRET, "accept-both")


def test_each_form_refuses_the_other():
    with pytest.raises(EnvelopeError):
        decrypt(X_KEY16, SECRET, "prefix")
    with pytest.raises(EnvelopeError):
        decrypt(X_PREFIX, SECRET, "key16")


def test_accept_both_sends_the_prefix_form():
    raw = base64.b64decode(encrypt(PLAIN, SECRET, "accept-both"))
    assert openssl(["-d", "-K", SECRET.encode().hex(), "-iv", raw[:16].hex()], raw[16:]) == PLAIN


def test_prefix_form_uses_a_fresh_iv_each_time():
    assert encrypt(PLAIN, SECRET) != encrypt(PLAIN, SECRET)


def test_amounts_are_read_as_decimal_from_the_text():
    x = encrypt(b'{"amount": 0.1, "big": 12345678901234567.123456, "n": 7}', SECRET)
    assert decrypt(x, SECRET, "prefix") == {"amount": Decimal("0.1"), "big": Decimal("12345678901234567.123456"),
                                  "n": 7}


def openssl(args, data: bytes) -> bytes:
    return subprocess.run(["openssl", "enc", "-aes-256-cbc", "-nosalt", *args], input=data,
                          capture_output=True, check=True).stdout


@pytest.mark.parametrize("form", ["prefix", "key16"])
def test_openssl_encrypts_we_decrypt(form):
    iv = bytes(range(100, 116)) if form == "prefix" else SECRET[:16].encode()
    sealed = openssl(["-K", SECRET.encode().hex(), "-iv", iv.hex()], PLAIN)  # PKCS7 is openssl's default
    x = base64.b64encode((iv if form == "prefix" else b"") + sealed).decode()
    assert decrypt(x, SECRET, form) == json.loads(PLAIN)


@pytest.mark.parametrize("form", ["prefix", "key16"])
def test_we_encrypt_openssl_decrypts(form):
    raw = base64.b64decode(encrypt(PLAIN, SECRET, form))
    iv, sealed = (raw[:16], raw[16:]) if form == "prefix" else (SECRET[:16].encode(), raw)
    assert openssl(["-d", "-K", SECRET.encode().hex(), "-iv", iv.hex()], sealed) == PLAIN


def sealed_blocks(plain_with_padding: bytes) -> str:
    """A key16 `x` of exactly these bytes, padding included (for a wrong padding)."""
    cipher = AES.new(SECRET.encode(), AES.MODE_CBC, SECRET[:16].encode())
    return base64.b64encode(cipher.encrypt(plain_with_padding)).decode()


NOT_OPENING = [  # every way an `x` can fail to open, in both forms
    "", "not base64!", "AAAA", base64.b64encode(b"x" * 17).decode(),  # not whole blocks
    encrypt(PLAIN, "f" * 32), encrypt(PLAIN, "f" * 32, "key16"),       # another key
    encrypt(b"[1, 2]", SECRET), encrypt(b"[1, 2]", SECRET, "key16"),   # not an object
    encrypt(b"\xff\xfe", SECRET), encrypt(b"\xff\xfe", SECRET, "key16"),  # not UTF-8
    encrypt(b"{not json}", SECRET), encrypt(b"{not json}", SECRET, "key16"),
    encrypt(b"", SECRET), encrypt(b"", SECRET, "key16"),
    X_PREFIX[:-8] + "AAAAAAA=",                                         # tampered: bad padding
    sealed_blocks(b'{"a": 1}' + bytes([0]) * 8),                        # pad byte 0
    sealed_blocks(b'{"a": 1}' + bytes([3]) * 7 + bytes([8])),           # pad length right, bytes wrong
    sealed_blocks(b'{"a": 1}' + bytes([17]) * 8),                       # pad longer than a block
]


@pytest.mark.parametrize("mode", ["prefix", "key16", "accept-both"])
@pytest.mark.parametrize("x", NOT_OPENING)
def test_what_does_not_open_is_refused_with_one_message(x, mode):
    with pytest.raises(EnvelopeError) as refused:
        decrypt(x, SECRET, mode)
    assert str(refused.value) == "cannot decrypt x"  # the same whatever went wrong: no oracle


def test_a_right_padding_opens():  # the bad-padding cases above fail on their padding alone
    assert decrypt(sealed_blocks(b'{"a": 1}' + bytes([8]) * 8), SECRET, "key16") == {"a": 1}
