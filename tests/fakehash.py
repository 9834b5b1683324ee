"""A fake Hash Game API on loopback for the client tests: real HTTP, our envelope, canned answers.

`answers[path]` is a function of the decrypted request returning (status, body bytes) or a dict
envelope; every request is kept in `received` as (path, headers, plaintext).
"""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from wallet.hash_crypto import decrypt


class FakeHash:
    def __init__(self, secret):
        self.secret, self.answers, self.received, self.delay = secret, {}, [], 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                parts = urlsplit(self.path)
                plain = decrypt(parse_qs(parts.query)["x"][0], fake.secret, "accept-both")
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake.received.append((parts.path, headers, plain))
                time.sleep(fake.delay)
                answer = fake.answers[parts.path](plain)
                status, body = answer if isinstance(answer, tuple) else (200, json.dumps(answer).encode())
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
