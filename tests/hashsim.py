"""Hash's side of the no-transfer wallet (a bet's order/add and its updates, docs/hash.md §4.3,
§4.4, re-sent as docs/hash.md §6.3 says), simulated as the provider may really behave, against a
wallet over real HTTP; for tests/test_hash_convergence.py.

What it does, per order: an order/add, once (Hash does not say it retries adds: one that gets no
success is failed at Hash and voided with a cancel, status 4); then, for a bet that stands,
maybe a pending-settlement update (3) and the final update: a win whose prize is computed in
float64 from the sub-bets' amount × odds (so `2.2424999999999997` goes out as Go or JavaScript
would write it), a loss, a cancel or a failure. Every update is re-sent once a minute, at most 10
times, until it is answered 0 (docs/hash.md §6.3), in the order's retry style:

- `identical`: the very bytes of the first send (same `x`, request_id and timestamp);
- `reencrypted`: the same plaintext under a fresh IV;
- `restamped`: the same request_id, a fresh timestamp (and so a fresh encryption);
- `fresh`: a new request_id and timestamp.

Faults it plays: an answer lost on the way back (the wallet applied it; Hash saw nothing), a wallet
that cannot be reached (the test stops gunicorn for some minutes), two sends of one order at once
(a retry overtaking the first, a pending-settlement update racing the settle), and late adds (the
add times out at Hash, its cancel goes out, the add arrives after or alongside it).

Time: the retry schedule runs on `minute`, a counter the test advances (`run_minute`): nothing
waits. Request timestamps are the wall clock's, since the wallet checks them against its own.

Hash's records (`orders`, as float64 numbers) go to tests/fakehash.py for hash-reconcile.
"""
import json
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpclient
from wallet.hash.fields import dumps
from wallet.hash.envelope import encrypt

MAX_TRIES = 10  # docs/hash.md §6.3: once a minute, at most 10 times
STAKES = [1.15, 0.1 + 0.2, 0.7 * 3, 2.5, 10.0, 33.33, 1.1 + 2.2, 0.45]  # float64, as Hash holds them
ODDS = [195, 200, 210, 980]  # × 100 (docs/hash.md §6.5)
STYLES = ("identical", "reencrypted", "restamped", "fresh")


@dataclass
class SimOrder:
    """Hash's record of one order (docs/hash.md §5.5), float64 amounts as Hash holds them."""
    order_no: str
    user_id: int
    token: str
    amount: float
    sub_bets: list            # [(amount, odds)]
    style: str
    status: int | None = None  # None until Hash decides
    prize: float = 0.0
    tax: float = 0.0
    bonus: float = 0.0
    add_code: int | None = None

    @property
    def bet_info(self) -> str:
        return json.dumps([{"key": f"K{i}", "name": f"K{i}", "odds": odds, "amount": amount}
                           for i, (amount, odds) in enumerate(self.sub_bets)], separators=(",", ":"))


@dataclass
class Delivery:
    """One request Hash keeps sending until it is answered 0 (an add: sent once)."""
    order: SimOrder
    path: str
    plain: dict
    due: int
    tries_left: int
    race: bool = False        # sent twice at once on its first minute
    x: str = ""               # the first send's envelope (the `identical` style re-sends it)
    answers: list = field(default_factory=list)  # (minute, code or None)
    done: bool = False
    acked: bool = False


class HashSim:
    def __init__(self, base: str, secret: str, merchant_id: str, seed: int, *, lose_answers=0.2,
                 races=0.15, late_adds=0.1):
        self.base, self.secret, self.merchant_id = base, secret, merchant_id
        self.rng = random.Random(seed)
        self.lose_answers, self.races, self.late_adds = lose_answers, races, late_adds
        self.minute = 0
        self.orders: dict[str, SimOrder] = {}
        self.deliveries: list[Delivery] = []
        self.sent = 0
        self._lock = threading.Lock()

    # ---- what Hash decides ------------------------------------------------------------------------
    def place(self, user_id: int, token: str, at_minute: int) -> SimOrder:
        """A new bet of the player's, sent as order/add at `at_minute`."""
        stake = self.rng.choice(STAKES)
        split = self.rng.random() < 0.3 and stake in (10.0, 33.33)
        sub_bets = ([(stake / 2, self.rng.choice(ODDS))] * 2 if split
                    else [(stake, self.rng.choice(ODDS))])
        order = SimOrder(uuid.uuid4().hex[:20], user_id, token, stake, sub_bets,
                         self.rng.choice(STYLES))
        self.orders[order.order_no] = order
        plain = {"token": token, "user_id": user_id, "order_no": order.order_no, "username": "u",
                 "entry_key": "pc28-1", "round_id": 72847940, "currency": "USDT",
                 "amount": stake, "bet_info": order.bet_info}
        add = Delivery(order, "order/add", plain, at_minute, 1)
        if self.rng.random() < self.late_adds:  # it times out at Hash, which voids it (status 4);
            order.status = 4                    # the add itself arrives with the cancel, or after it
            self._update(order, at_minute + 1, 4)
            add.due = at_minute + self.rng.choice((1, 2))
        self.deliveries.append(add)
        return order

    def _settle(self, order: SimOrder, minute: int) -> None:
        """The add stood: Hash decides the outcome (maybe via pending settlement first)."""
        roll = self.rng.random()
        if roll < 0.45:  # a win: the prize computed in float64, as Hash's engine would
            order.status = 1
            order.prize = sum(amount * odds / 100 for amount, odds in order.sub_bets)
            if self.rng.random() < 0.2:
                order.bonus = order.amount * 0.1
            if self.rng.random() < 0.3:
                order.tax = order.prize * 0.05
        else:
            order.status = 1 if roll < 0.8 else (4 if roll < 0.9 else 2)
        if self.rng.random() < 0.5:
            self._update(order, minute + 1, 3)
            self._update(order, minute + (1 if self.rng.random() < 0.3 else 2), order.status)
        else:
            self._update(order, minute + 1, order.status)

    def _update(self, order: SimOrder, due: int, status: int) -> None:
        final = status != 3
        plain = {"user_id": str(order.user_id), "username": "u", "order_no": order.order_no,
                 "entry_key": "pc28-1", "round_id": 72847940, "amount": order.amount,
                 "currency": "USDT", "status": status,
                 "prize": order.prize if final else 0.0, "tax": order.tax if final else 0.0,
                 "bonus": order.bonus if final else 0.0, "bet_time": int(time.time() * 1000),
                 "bet_info": order.bet_info, "is_win": final and order.prize > 0}
        self.deliveries.append(Delivery(order, "order/update", plain, due, MAX_TRIES,
                                        race=self.rng.random() < self.races))

    # ---- the wire -----------------------------------------------------------------------------------
    def run_minute(self, pool: ThreadPoolExecutor) -> None:
        """Send everything due this minute (at once, as Hash's workers would), then a minute passes."""
        due = [d for d in self.deliveries if not d.done and d.due <= self.minute
               and not self._superseded(d)]
        sends = [d for d in due for _ in range(2 if d.race and not d.answers else 1)]
        codes = list(pool.map(self._send, sends))
        for delivery, code in zip(sends, codes):
            delivery.answers.append((self.minute, code))
        for delivery in due:
            self._after(delivery)
        self.minute += 1

    def _superseded(self, delivery: Delivery) -> bool:
        """A pending-settlement update still being retried once the final one is acknowledged."""
        if delivery.plain.get("status") != 3:
            return False
        final = [d for d in self.deliveries if d.order is delivery.order
                 and d.path == "order/update" and d.plain["status"] != 3]
        if any(d.acked for d in final):
            delivery.done = True
            return True
        return False

    def _after(self, delivery: Delivery) -> None:
        acked = any(code == 0 for minute, code in delivery.answers if minute == self.minute)
        delivery.tries_left -= 1
        if delivery.path == "order/add":
            delivery.done = True
            delivery.order.add_code = next((c for m, c in delivery.answers if c is not None), None)
            if delivery.order.status is not None:
                return  # a late add: Hash had already given up on it
            if acked:
                self._settle(delivery.order, self.minute)
            else:  # no success: failed at Hash, and voided at the merchant (the stake may be held)
                delivery.order.status = 4
                self._update(delivery.order, self.minute + 1, 4)
            return
        if acked:
            delivery.done = delivery.acked = True
        elif delivery.tries_left <= 0:
            delivery.done = True  # Hash gives up: hash-reconcile's job now (docs/hash.md §8.4)
        else:
            delivery.due = self.minute + 1

    def _send(self, delivery: Delivery) -> int | None:
        """The answer's code, or None: no answer reached Hash (lost, or the wallet unreachable)."""
        with self._lock:
            self.sent += 1
            x = self._envelope(delivery)
            lose = self.rng.random() < self.lose_answers
        try:
            status, answer = httpclient.post(self.base, f"/api/v2/{delivery.path}",
                                             json.dumps({"x": x}).encode(),
                                             {"merchant-id": self.merchant_id})
        except OSError:
            return None
        assert status == 200, (status, answer)
        return None if lose else answer["code"]

    def _envelope(self, delivery: Delivery) -> str:
        """The `x` of this send, in the order's retry style (called under the lock)."""
        style = delivery.order.style
        if not delivery.x or style == "fresh":
            delivery.plain = {**delivery.plain, "timestamp": int(time.time() * 1000),
                              "request_id": uuid.uuid4().hex}
        elif style == "restamped":
            delivery.plain = {**delivery.plain, "timestamp": int(time.time() * 1000)}
        if not delivery.x or style != "identical":
            delivery.x = encrypt(dumps(delivery.plain).encode(), self.secret)
        return delivery.x

    # ---- the end --------------------------------------------------------------------------------------
    def busy(self) -> bool:
        return any(not d.done for d in self.deliveries)

    def gave_up(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.path == "order/update" and d.done and not d.acked
                and not self._superseded(d) and d.plain["status"] != 3]
