"""The kit against wallets it does not trust (issue 26 item 9) or that break in transit (issue 29
item 5), each a real HTTP server on loopback in a thread of this test:

- an answer dripped a byte at a time ends at --timeout (a total deadline, not one per read);
- an answer of 300 MB is not read whole (at most 1 MB, then the call is no answer);
- escape sequences in an answer reach the terminal escaped, and cannot forge report lines;
- the secret comes from the environment or a file, not only the command line (which ps shows);
- a server that closes the connection instead of sending a status above 599 (as uvicorn does) gets a
  report that shows the request sent, says the connection closed, and names the likely cause.
"""
import contextlib
import http.client
import json
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import HASH_SECRET, HP_SECRET
from test_conformance import hash_args, hp_args, kit, memory_wallet
from test_conformance_mutants import Mutant, in_front

from conformance.http import CLOSED, MAX_ANSWER_BYTES, TIMED_OUT, TOO_LARGE, NoAnswer, post


@contextlib.contextmanager
def raw_server(answer):
    """A TCP server on loopback: reads one request, then `answer(socket)` writes what it wants.
    Yields (base URL, what it recorded: {"sent": bytes written})."""
    record = {"sent": 0}

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = self.request.recv(65536)
                if not chunk:
                    return
                data += chunk
            try:
                answer(self.request, record)
            except OSError:  # the kit hung up: what this test wants to see
                pass

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", record
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def drip(head: bytes, every: float, stop_after: float = 10):
    """`head` at once, then one byte every `every` seconds (within the headers or the body)."""
    def answer(conn, record):
        conn.sendall(head)
        ends = time.monotonic() + stop_after
        while time.monotonic() < ends:
            time.sleep(every)
            conn.sendall(b"0")
    return answer


def flood(head: bytes, total: int = 300_000_000):
    """`head`, then zeros up to `total` bytes, as fast as the kit reads them."""
    def answer(conn, record):
        conn.sendall(head)
        block = b"0" * 65536
        while record["sent"] < total:
            conn.sendall(block)
            record["sent"] += len(block)
    return answer


# ---- time: a total deadline per call -----------------------------------------------------------------
@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n",  # in the body
    b"HTTP/1.1 200 OK\r\nX-Slow: ",                                                   # in the headers
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"])                    # no length
def test_an_answer_dripped_a_byte_at_a_time_ends_at_the_timeout(head):
    """A byte every 0.3 s never trips a 1 s timeout per read; the call still ends at 1 s."""
    with raw_server(drip(head, every=0.3)) as (base, _):
        started = time.monotonic()
        with pytest.raises(NoAnswer) as caught:
            post(f"{base}/auth", b"{}", timeout=1)
        elapsed = time.monotonic() - started
    assert caught.value.kind == TIMED_OUT and "no complete answer within 1 s" in str(caught.value)
    assert elapsed < 2.5  # the deadline the issue asks for: --timeout, not --timeout per byte


def test_the_kit_run_against_a_dripping_wallet_stops_at_its_timeout():
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    with raw_server(drip(head, every=0.3)) as (base, _):
        started = time.monotonic()
        status, _, err = kit("100hp", "--url", base, "--secret", "s", "--session", "s", "--timeout", "1")
        elapsed = time.monotonic() - started
    assert status == 2 and "no complete answer within 1 s (--timeout)" in err
    assert elapsed < 2.5


# ---- size: at most 1 MB read -------------------------------------------------------------------------
@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 300000000\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"])  # no length: until it closes
def test_a_300_mb_answer_is_not_read_whole(head):
    with raw_server(flood(head)) as (base, record):
        with pytest.raises(NoAnswer) as caught:
            post(f"{base}/auth", b"{}", timeout=30)
        time.sleep(0.2)  # the server's last writes fail once the kit has hung up
    assert caught.value.kind == TOO_LARGE and f"larger than {MAX_ANSWER_BYTES} bytes" in str(caught.value)
    assert record["sent"] < 40_000_000  # the kit read 1 MB and hung up; the rest sat in socket buffers


# ---- what is printed: escaped -------------------------------------------------------------------------
ESCAPES = "\x1b]0;owned\x07\x1b[2J\x1b[H\u202e\n  PASS  a forged line"


def escapes_in_every_error(app):
    """Every refusal's data carries terminal escape sequences and a line break."""
    def after(path, body, status, answer):
        if status != 200:
            return status, {**answer, "data": ESCAPES}
    return Mutant(app, after=after)


def test_escape_sequences_in_answers_reach_the_terminal_escaped(tmp_path, monkeypatch):
    prepare = lambda app: in_front(escapes_in_every_error)(monkeypatch, app)  # noqa: E731
    with memory_wallet(tmp_path, prepare=prepare) as (base, casino, ids):
        status, out, err = kit(*hp_args(base, ids, "--only", "rules"))
    assert status == 1 and "FAIL  secret rules" in out  # the data texts are wrong: shown, escaped
    assert "\\u001b]0;owned\\u0007\\u001b[2J\\u001b[H\\u202e\\n  PASS  a forged line" in out  # as JSON
    assert not any(c in out + err for c in "\x1b\x07\u202e")
    assert "\n  PASS  a forged line" not in out


def test_a_raw_answer_with_escapes_is_printed_escaped_when_the_run_cannot_start():
    answer = ("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 30\r\n\r\n"
              "\x1b]0;owned\x07\x1b[2Jgotcha      ").encode("latin-1")
    with raw_server(lambda conn, record: conn.sendall(answer)) as (base, _):
        status, out, err = kit("100hp", "--url", base, "--secret", "s", "--session", "s")
    assert status == 2 and "cannot start: --session: /auth answered 200" in err
    assert "\\x1b]0;owned\\x07\\x1b[2Jgotcha" in err and "\x1b" not in err + out


# ---- secrets: not only on the command line -----------------------------------------------------------
def without_secret(args: list) -> list:
    at = args.index("--secret")
    return args[:at] + args[at + 2:]


def test_the_secret_from_the_environment_or_a_file(tmp_path, monkeypatch):
    monkeypatch.delenv("HP_SECRET", raising=False)
    monkeypatch.delenv("HASH_SECRET", raising=False)
    secret_file = tmp_path / "hp_secret"
    secret_file.write_text(HP_SECRET + "\n")  # as an editor or `echo` leaves it
    with memory_wallet(tmp_path) as (base, casino, ids):
        args = without_secret(hp_args(base, ids, "--only", "truncates to cents"))
        status, _, err = kit(*args)
        assert status == 2
        assert "no secret: set $HP_SECRET in the environment, or give --secret-file FILE" in err
        status, out, _ = kit(*args, "--secret-file", secret_file)
        assert status == 0 and "1 passed" in out, out
        status, _, err = kit(*args, "--secret-file", tmp_path / "missing")
        assert status == 2 and "--secret-file" in err
        monkeypatch.setenv("HP_SECRET", HP_SECRET)
        status, out, _ = kit(*args)
        assert status == 0 and "1 passed" in out, out
        monkeypatch.setenv("HP_SECRET", "not-the-secret")
        status, out, _ = kit(*args, "--secret-file", secret_file)  # a file given wins over the environment
        assert status == 0, out
    monkeypatch.setenv("HASH_SECRET", HASH_SECRET)
    args = without_secret(hash_args("http://127.0.0.1:9", "t"))
    assert args.count(HASH_SECRET) == 0
    status, _, err = kit(*args)
    assert status == 2 and "did not answer" in err  # it got as far as calling: the secret was found


# ---- a connection closed instead of an answer ------------------------------------------------------
@contextlib.contextmanager
def like_uvicorn(upstream: str):
    """A proxy in front of `upstream` that, as uvicorn does, closes the connection instead of
    sending an HTTP status above 599."""
    target = upstream.split("//")[1]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            connection = http.client.HTTPConnection(target, timeout=10)
            connection.request("POST", self.path, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = response.read()
            connection.close()
            if response.status > 599:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)  # no status line, no headers: closed
                return
            self.send_response(response.status)
            self.send_header("Content-Type", response.getheader("Content-Type"))
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_dropped_connection_shows_the_request_and_the_likely_cause(tmp_path):
    with memory_wallet(tmp_path) as (wallet, casino, ids), like_uvicorn(wallet) as base:
        status, out, _ = kit(*hp_args(base, ids, "--only", "an unknown txId", "--json"))
        status_text, text, _ = kit(*hp_args(base, ids, "--only", "an unknown txId"))
    assert status == status_text == 1
    problem, = json.loads(out)["cases"][0]["problems"]
    assert problem["sent"]["endpoint"] == "/rollback" and problem["sent"]["secret"] == "***"
    assert problem["sent"]["sessionId"] == ids["session"] and "txId" in problem["sent"]
    assert problem["got"].startswith("no answer: the connection was closed without an answer")
    assert problem["expected"].startswith("HTTP 605: the connection closed instead. 100HP's errors are HTTP "
                                          "statuses above 599")
    assert "uvicorn does, for any status above 599" in problem["expected"]
    assert 'sent:     {"endpoint": "/rollback"' in text and "sent:     null" not in text


def test_no_answer_kinds_are_told_apart():
    """A closed connection and a refused one are different reports."""
    with raw_server(lambda conn, record: conn.shutdown(socket.SHUT_RDWR)) as (base, _):
        with pytest.raises(NoAnswer) as caught:
            post(f"{base}/auth", b"{}", timeout=5)
    assert caught.value.kind == CLOSED
    with pytest.raises(NoAnswer) as caught:
        post(f"{base}/auth", b"{}", timeout=5)  # the server has stopped
    assert caught.value.kind == "unreachable"
