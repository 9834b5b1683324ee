"""A fake Hash Game API on loopback for the client and reconcile tests: real HTTP, our envelope.

Two ways to answer:
- `orders`, a dict order_no -> order record (docs/hash.md §5.5), served by order/list (filtered
  on bet_time by start_time / end_time, in id order, page by page, at most `max_page_size` a
  page) and order/details (the record without its `id`, or `not_found` for an order it lacks).
  `add_order` fills in a whole record the way Hash's documented example looks.
- `answers[path]`, a function of the decrypted request returning (status, body bytes) or a dict
  envelope; it replaces the stateful answer for that path.
Every request is kept in `received` as (path, headers, plaintext).
"""
import itertools
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from wallet.hash.fields import dumps
from wallet.hash.envelope import decrypt

ORDER_NOT_FOUND = {"code": 3002, "msg": "order not found"}  # Hash's real code is not published (Hash §7)


def now_ms() -> int:
    return int(time.time() * 1000)


class FakeHash:
    def __init__(self, secret):
        self.secret, self.answers, self.received, self.delay = secret, {}, [], 0
        self.orders, self.not_found, self.max_page_size = {}, ORDER_NOT_FOUND, 100
        self._ids = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                parts = urlsplit(self.path)
                plain = decrypt(parse_qs(parts.query)["x"][0], fake.secret, "accept-both")
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake.received.append((parts.path, headers, plain))
                time.sleep(fake.delay)
                answer = fake.answers.get(parts.path, fake.stateful.get(parts.path))(plain)
                status, body = answer if isinstance(answer, tuple) else (200, dumps(answer).encode())
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.stateful = {"/api/v2/order/list": self.order_list,
                         "/api/v2/order/details": self.order_details}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def add_order(self, order_no, user_id, status=1, amount=10, prize=0, tax=0, bonus=0,
                  currency="USDT", bet_time=None, **other) -> dict:
        """A Hash §5.5 record in `orders`; final ones (1, 2, 4) get a reckon_time a second after the bet."""
        bet_time = now_ms() - 3_600_000 if bet_time is None else bet_time  # an hour ago
        record = {
            "id": next(self._ids), "order_no": order_no, "block_id": "00000000045792",
            "user_id": int(user_id), "username": "RSwVUYp", "game_code": "pc28", "entry_key": "pc28-1", "entry_name": "",
            "room_id": 1, "room_name": "", "round_id": 72847940, "amount": amount, "currency": currency,
            "status": status, "bill": 0, "profit": 0, "prize": prize, "tax": tax, "bonus": bonus,
            "bet_time": bet_time, "reckon_time": bet_time + 1000 if status in (1, 2, 4) else 0,
            "bet_info": '[{"key":"Big","name":"Big","odds":200,"amount":10}]', "result": "",
            "is_win": prize > 0, "remark": "", **other}
        self.orders[order_no] = record
        return record

    def order_list(self, plain):
        """Hash §5.3; without start_time / end_time, today (UTC) as the doc's default."""
        today = int(datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
                    .timestamp() * 1000)
        start, end = plain.get("start_time", today), plain.get("end_time", today + 86_400_000 - 1)
        size = min(plain["page_size"], self.max_page_size)
        matching = sorted((r for r in self.orders.values() if start <= r["bet_time"] <= end),
                          key=lambda r: r["id"])
        page = matching[(plain["page"] - 1) * size:plain["page"] * size]
        return {"code": 0, "msg": "SUCCESS", "data": {"list": page, "page": plain["page"], "page_size": size}}

    def order_details(self, plain):
        """Hash §5.4: the record without `id`."""
        record = self.orders.get(plain["order_no"])
        if record is None:
            return self.not_found
        return {"code": 0, "msg": "SUCCESS", "data": {k: v for k, v in record.items() if k != "id"}}

    def close(self):
        self.server.shutdown()
        self.server.server_close()
