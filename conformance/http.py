"""One HTTP POST with the standard library: (status, JSON body or raw text, content type).

Numbers with a fraction are read as Decimal, so a balance is compared digit for digit.

The wallet under test is not trusted, so each call is bounded:
- in time: the whole call (connect, status line, headers, body) ends `timeout` seconds after it
  began, however slowly the answer drips in. A socket timeout alone bounds each read, and a byte
  every few seconds would go on for ever; a timer shuts the socket at the deadline instead.
- in size: at most MAX_ANSWER_BYTES of body are read; a longer answer is no answer (and the rest is
  never read). http.client bounds the status line and the headers itself.
A call that ends without an answer raises NoAnswer (an OSError), which says why: the wallet closed
the connection, the deadline passed, the answer was too large, or no connection could be made.
"""
import http.client
import json
import socket
import threading
from decimal import Decimal
from urllib.parse import urlsplit

MAX_ANSWER_BYTES = 1_000_000
CLOSED, TIMED_OUT, TOO_LARGE, UNREACHABLE = "closed", "timed out", "too large", "unreachable"


class NoAnswer(OSError):
    """The call ended without an answer to read. `kind` says why (CLOSED, TIMED_OUT, TOO_LARGE,
    UNREACHABLE); `sent` is set by the caller that knows what the request was, for the report."""

    def __init__(self, kind: str, text: str):
        super().__init__(text)
        self.kind, self.sent = kind, None


def post(url: str, body: bytes, headers=None, timeout: float = 15):
    parts = urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname, parts.port, timeout=timeout)
    expired, connected = threading.Event(), []

    def cut():  # the deadline: a read waiting on the socket returns at once
        expired.set()
        for sock in connected:  # not connection.sock: an answer without a length takes it over
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
    timer = threading.Timer(timeout, cut)
    timer.daemon = True
    timer.start()
    try:
        connection.connect()
        connected.append(connection.sock)
        connection.request("POST", parts.path, body=body,
                           headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        raw = response.read(MAX_ANSWER_BYTES + 1)
        if expired.is_set():  # an answer without a length may just stop at the cut: not an answer
            raise socket.timeout()
        if len(raw) > MAX_ANSWER_BYTES:
            raise NoAnswer(TOO_LARGE, f"the answer is larger than {MAX_ANSWER_BYTES} bytes (not read further)")
        try:
            parsed = json.loads(raw, parse_float=Decimal)
        except (ValueError, RecursionError):
            parsed = raw.decode("utf-8", "replace")[:500]
        return response.status, parsed, response.getheader("Content-Type", "")
    except NoAnswer:
        raise
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set() or isinstance(exc, TimeoutError):
            raise NoAnswer(TIMED_OUT, f"no complete answer within {timeout:g} s (--timeout)") from None
        if not connected:  # no connection was made
            raise NoAnswer(UNREACHABLE, f"no connection ({type(exc).__name__}: {exc})") from None
        raise NoAnswer(CLOSED, f"the connection was closed without an answer "
                               f"({type(exc).__name__}: {exc})") from None
    finally:
        timer.cancel()
        connection.close()
