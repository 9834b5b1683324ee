"""Soak: play a provider for N minutes the way it behaves in production, then check the money.

Threads play rounds for the test players at once: bets and wins, lost rounds, duplicates (some sent
twice at once, on two connections: each must answer as the duplicate it is), bets that time out
and are rolled back (100HP) or failed (Hash), the 100HP billing resolver's late rollbacks and
repeated deposits, Hash's retried updates. The kit keeps, per player, the moves the
wallet confirmed (a 200 / code 0 it answered); a call that got no answer is settled the way the
provider settles it (a rollback, a retry) and counts as what that settlement shows. At the end each
player's balance, as the wallet reports it, must be its start plus those moves: less is money lost,
more is money doubled. A 702 or 5000 fails the soak too: it provokes none (its timeouts are its own,
on the client side), so each is a call a correct wallet would have answered. Hash's updates are
retried as Hash may: the same envelope byte for byte first (answered 0 if it was applied), then
sealed afresh; some prizes are computed in float64 (0.03 * 1.95 is written 0.058499999999999996)
and count as the 6-decimal value they stand for. Also printed: the calls by result code, and
p50/p99 latency.
"""
import json
import random
import statistics
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from decimal import ROUND_DOWN, Decimal

from . import hash as hash_cases
from .http import post
from .report import printable
from .runner import at_once

CENT = Decimal("0.01")
FUNDS_NEEDED = Decimal("10")


class Player:
    """One test player: its session or token, its balance at the start, the moves confirmed."""

    def __init__(self, credential, start: Decimal, user_id=None):
        self.credential, self.start, self.user_id = credential, start, user_id
        self.moves = Decimal(0)
        self._lock = threading.Lock()

    def moved(self, amount: Decimal):
        with self._lock:
            self.moves += amount


class Soak:
    """What both providers share: the clock, the counters, the loop, the report."""
    name = ""

    def __init__(self, args):
        self.args = args
        self.calls = Counter()              # (endpoint, result) -> count
        self.latency = defaultdict(list)    # endpoint -> seconds, for answered calls
        self.unexpected = []                # what the wallet answered that it should not have
        self.unresolved = []                # outcomes the kit could not settle
        self._lock = threading.Lock()
        self.players = []
        self.rng = random.Random()

    # ---- recording ----
    def record(self, endpoint, result, seconds=None):
        with self._lock:
            self.calls[(endpoint, result)] += 1
            if seconds is not None:
                self.latency[endpoint].append(seconds)

    def wrong(self, text: str):
        with self._lock:
            self.unexpected.append(text)

    # ---- the run ----
    def start(self):
        """The players, each with its balance now; ValueError or OSError if one cannot play."""
        for credential in self.credentials():
            player = Player(credential, self.balance(credential), self.user_id(credential))
            if player.start < FUNDS_NEEDED:
                raise ValueError(f"{self.label(player)} needs at least {FUNDS_NEEDED} (has {player.start})")
            self.players.append(player)

    def run(self) -> int:
        seconds = self.args.minutes * 60
        deadline = time.monotonic() + seconds
        threads = [threading.Thread(target=self.loop, args=(self.players[i % len(self.players)], deadline),
                                    daemon=True) for i in range(self.args.threads)]
        for thread in threads:
            thread.start()
        self.progress(threads, deadline, seconds)
        self.finish()
        return self.report()

    def loop(self, player, deadline):
        rng = random.Random()
        while time.monotonic() < deadline:
            try:
                self.play_round(player, rng)
            except Exception as exc:  # the kit's own mistake must not hide in a thread
                self.wrong(f"the soak itself failed: {type(exc).__name__}: {exc}")
                return

    def progress(self, threads, deadline, seconds):
        tty = sys.stderr.isatty()
        every = 1.0 if tty else 5.0
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(timeout=every / len(threads))
            left = max(0.0, deadline - time.monotonic())
            total = sum(self.calls.values())
            print(f"soak {self.name}: {seconds - left:5.0f}/{seconds:.0f} s, {total} calls, "
                  f"{self.timeouts()} timeouts, {len(self.unexpected)} unexpected",
                  end="\r" if tty else "\n", file=sys.stderr, flush=True)
        if tty:
            print(file=sys.stderr)

    def timeouts(self) -> int:
        return sum(n for (_, result), n in self.calls.items() if result == "no answer")

    def report(self) -> int:
        lines = [f"{self.name} soak: {self.args.url}, {self.args.minutes:g} min, {self.args.threads} threads, "
                 f"{len(self.players)} player(s)", "calls by result:"]
        for (endpoint, result), n in sorted(self.calls.items(), key=lambda item: (item[0][0], str(item[0][1]))):
            lines.append(f"  {endpoint:<14} {str(result):<10} {n}")
        every = [s for values in self.latency.values() for s in values]
        for endpoint, values in sorted(self.latency.items()) + [("all", every)]:
            if len(values) >= 2:
                q = statistics.quantiles(values, n=100, method="inclusive")
                lines.append(f"latency {endpoint:<14} p50 {q[49] * 1000:7.1f} ms  p99 {q[98] * 1000:7.1f} ms  "
                             f"({len(values)} calls)")
        ok = not self.unexpected and not self.unresolved
        for player in self.players:
            want = player.start + player.moves
            try:
                have = self.balance(player.credential)
            except (OSError, ValueError, KeyError, ArithmeticError) as exc:
                lines.append(f"{self.label(player)}: final balance unknown ({exc})")
                ok = False
                continue
            verdict = "ok" if have == want else f"{'LOST' if have < want else 'DOUBLED'} {abs(have - want)}"
            ok = ok and have == want
            lines.append(f"{self.label(player)}: start {player.start}, confirmed moves {player.moves:+}, "
                         f"expected {want}, the wallet reports {have}: {verdict}")
        for text in self.unexpected[:20]:
            lines.append(f"unexpected: {text}")
        for text in self.unresolved[:20]:
            lines.append(f"unresolved: {text}")
        if len(self.unexpected) > 20:
            lines.append(f"... and {len(self.unexpected) - 20} more unexpected answers")
        lines.append("soak: " + ("PASS, nothing lost or doubled" if ok else "FAIL"))
        print("\n".join(printable(line) for line in lines))  # lines quote the wallet's answers
        return 0 if ok else 1

    def label(self, player) -> str:
        return f"player {player.credential[:8]}..."

    def user_id(self, credential):
        return None

    def sleep(self, rng, at_most=0.05):
        time.sleep(rng.uniform(0, at_most))

    def timeout(self, rng, timed_out: bool) -> float:
        """A provider that gives up fast: 1-20 ms, so that some requests land after it gave up."""
        return rng.uniform(0.001, 0.02) if timed_out else self.args.timeout

    # supplied by each provider: credentials, balance, play_round, finish (and user_id, label)


# ---- 100HP ----------------------------------------------------------------------------------------
class Hp100Soak(Soak):
    """Rounds as 100HP plays them. The resolver's state is `pending`: bets it will roll back late."""
    name = "100hp"

    def __init__(self, args):
        super().__init__(args)
        self.pending = []   # (due, player, txId, amount): bets left open for the resolver
        self.retry = []     # (player, endpoint, txId, amount): calls that got no answer

    def credentials(self):
        return self.args.session

    def send(self, endpoint, fields, timeout=None):
        """(status, body) or (None, None) when no answer came in time."""
        body = json.dumps({"secret": self.args.secret, **fields}).encode()
        started = time.monotonic()
        try:
            status, answer, _ = post(f"{self.args.url.rstrip('/')}/{endpoint}", body,
                                     timeout=timeout or self.args.timeout)
        except OSError:
            self.record(endpoint, "no answer")
            return None, None
        self.record(endpoint, status, time.monotonic() - started)
        if status == 702:  # the soak provokes none: a failure, then settled as an outcome unknown
            self.wrong(f"/{endpoint} {fields.get('txId', '')} answered 702: a correct wallet answers every call "
                       f"of the soak (a lost race on a unique key must be retried, not answered 702)")
        if status == 200 and not (isinstance(answer, dict) and isinstance(answer.get("balance"), str)):
            self.wrong(f"/{endpoint} answered 200 without a balance: {answer}")
        elif status == 200 and answer["balance"].startswith("-"):
            self.wrong(f"/{endpoint} reported a negative balance: {answer}")
        return status, answer

    def balance(self, session) -> Decimal:
        status, answer = self.send("balance", {"sessionId": session})
        if status != 200:
            raise ValueError(f"/balance answered {status} {answer}")
        return Decimal(answer["balance"])

    def expect(self, endpoint, status, allowed, tx_id):
        if status is not None and status not in allowed and status != 702:
            self.wrong(f"/{endpoint} {tx_id} answered {status}, expected one of {sorted(allowed)}")

    def play_round(self, player, rng):
        self.resolve_due(rng)
        session, tx_id = player.credential, str(uuid.uuid4())
        text = f"{rng.randint(1, 100) / 100:.2f}" + rng.choice(["", "", "9"])  # "0.379" is 0.37
        amount = Decimal(text).quantize(CENT, rounding=ROUND_DOWN)
        kind = rng.choices(["win", "loss", "duplicates", "rollback", "timeout", "resolver", "bonus"],
                           [35, 15, 10, 10, 10, 15, 5])[0]
        if kind == "bonus":
            self.bonus_win(player, tx_id)
            return
        timed_out = kind == "timeout"
        status, _ = self.send("withdrawal", {"sessionId": session, "txId": tx_id, "amount": text},
                              self.timeout(rng, timed_out))
        if status is None or status == 702:  # 100HP rolls back a bet it got no answer for
            self.roll_back(player, tx_id, amount, unknown=True)
            return
        self.expect("withdrawal", status, {200, 603}, tx_id)
        if status != 200:
            return
        player.moved(-amount)
        if kind == "duplicates":  # two repeats at once, on two connections: each is the duplicate it is
            repeat = {"sessionId": session, "txId": tx_id, "amount": text}
            for status, _ in at_once([lambda: self.send("withdrawal", repeat)] * 2):
                self.expect("withdrawal", status, {607}, tx_id)
        if kind == "rollback":
            self.roll_back(player, tx_id, amount)
            self.expect("deposit", self.send("deposit", {"txId": tx_id, "amount": text})[0], {608}, tx_id)
            return
        if kind == "resolver":  # no win in time: the resolver rolls it back later
            with self._lock:
                self.pending.append((time.monotonic() + rng.uniform(0.5, 3), player, tx_id, amount))
            return
        self.sleep(rng)
        win = Decimal(0) if kind == "loss" else Decimal(rng.randint(0, 200)) / 100
        self.deposit(player, tx_id, win)
        if kind == "duplicates":  # the resolver's "second chance" twice at once, then a late rollback
            for status, _ in at_once([lambda: self.send("deposit", {"txId": tx_id, "amount": f"{win:.2f}"})] * 2):
                self.expect("deposit", status, {609}, tx_id)
            self.expect("rollback", self.send("rollback", {"txId": tx_id})[0], {609}, tx_id)

    def bonus_win(self, player, tx_id, attempts=5):
        """A promo win of a cent, re-sent until answered; then once more (607, no second credit)."""
        fields = {"sessionId": player.credential, "txId": tx_id, "amount": "0.01", "promoId": "soak"}
        for attempt in range(attempts):
            status, _ = self.send("bonusWin", fields)
            if status == 200 or status == 607 and attempt > 0:  # 607: an earlier try did credit it
                player.moved(CENT)
                self.expect("bonusWin", self.send("bonusWin", fields)[0], {607}, tx_id)
                return
            self.expect("bonusWin", status, {200}, tx_id)
            if status not in (None, 702):
                return
            time.sleep(0.1)
        self.unresolved.append(f"bonusWin {tx_id}: no answer after {attempts} tries")

    def deposit(self, player, tx_id, win, attempts=5):
        for _ in range(attempts):
            status, _ = self.send("deposit", {"txId": tx_id, "amount": f"{win:.2f}", "sessionId": player.credential})
            if status in (200, 609):  # 609: an earlier try that got no answer did settle it
                player.moved(win)
                return
            self.expect("deposit", status, {200, 609}, tx_id)
            if status not in (None, 702):
                return
            time.sleep(0.1)
        self.unresolved.append(f"deposit {tx_id}: no answer after {attempts} tries")

    def roll_back(self, player, tx_id, amount, unknown=False, attempts=5):
        """100HP's rollback. After a withdrawal with no answer (`unknown`), 605 means the bet was
        never booked, and must never be: 100HP is done with it."""
        for _ in range(attempts):
            status, _ = self.send("rollback", {"txId": tx_id})
            if status == 200:
                if not unknown:
                    player.moved(amount)
                return
            if status == 605 and unknown:
                return
            if status == 608 and not unknown:  # an earlier try that got no answer did refund it
                player.moved(amount)
                return
            self.expect("rollback", status, {200, 605} if unknown else {200, 608}, tx_id)
            if status not in (None, 702):
                return
            time.sleep(0.1)
        self.unresolved.append(f"rollback {tx_id}: no answer after {attempts} tries")

    def resolve_due(self, rng, everything=False):
        now = time.monotonic()
        with self._lock:
            due = [p for p in self.pending if everything or p[0] <= now]
            self.pending = [p for p in self.pending if p not in due]
        for _, player, tx_id, amount in due:
            self.roll_back(player, tx_id, amount)
            self.expect("deposit", self.send("deposit", {"txId": tx_id, "amount": "1.00"})[0], {608}, tx_id)

    def finish(self):
        self.resolve_due(self.rng, everything=True)


# ---- Hash ---------------------------------------------------------------------------------------------
class HashSoak(Soak):
    """Rounds as Hash plays them: add, then updates, each update retried until code 0."""
    name = "hash"

    def __init__(self, args):
        super().__init__(args)
        self.target = hash_cases.Target(args.url, args.merchant_id, args.secret, args.token[0],
                                        args.currency, args.iv_mode, args.timeout)

    def credentials(self):
        return self.args.token

    def send(self, path, plain, timeout=None, body=None):
        """The answer's code (and data), or (None, None) when no answer came in time. `body`: an
        envelope sealed before (sent again: the same request_id)."""
        body = body or self.target.seal(plain)[0]
        started = time.monotonic()
        try:
            status, answer, _ = post(f"{self.target.url}/api/v2/{path}", body,
                                     {"merchant-id": self.args.merchant_id}, timeout=timeout or self.args.timeout)
        except OSError:
            self.record(path, "no answer")
            return None, None
        if not (status == 200 and isinstance(answer, dict) and type(answer.get("code")) is int):
            self.record(path, f"http {status}", time.monotonic() - started)
            self.wrong(f"{path} answered HTTP {status}: {str(answer)[:200]}")
            return None, None
        self.record(path, answer["code"], time.monotonic() - started)
        if answer["code"] == hash_cases.INTERNAL_ERROR:  # the soak provokes none
            self.wrong(f"{path} {plain.get('order_no', '')} answered 5000: a correct wallet answers every request "
                       f"of the soak (a lost race on a unique key must be retried, not answered 5000)")
        return answer["code"], answer.get("data") or {}

    def balance(self, token) -> Decimal:
        code, data = self.send("user/balance", {"token": token, "currency": self.args.currency})
        if code != 0:
            raise ValueError(f"user/balance answered code {code}")
        return Decimal(data["balance"])

    def user_id(self, token) -> int:
        code, data = self.send("user/info", {"token": token})
        if code != 0:
            raise ValueError(f"user/info answered code {code} (is the token valid?)")
        return data["user_id"]

    def play_round(self, player, rng):
        order_no = f"soak-{uuid.uuid4().hex[:20]}"
        amount = Decimal(rng.randint(1, 100)) / 100
        order = {**self.target.order(order_no, amount), "token": player.credential, "user_id": player.user_id}
        kind = rng.choices(["settle", "lose", "refund", "duplicate", "add timeout", "update timeout"],
                           [40, 15, 15, 10, 10, 10])[0]
        code, _ = self.send("order/add", order, self.timeout(rng, kind == "add timeout"))
        if code is None or code == 5000:  # no answer: the bet failed, Hash says so (status 2)
            self.update(player, order, hash_cases.FAILED, Decimal(0), unknown=True)
            return
        if code != 0:
            if code != 2002:  # insufficient balance is a fair answer
                self.wrong(f"order/add {order_no} answered code {code}")
            return
        player.moved(-amount)
        if kind == "duplicate":  # two repeats at once, on two connections: each answers success
            for again, _ in at_once([lambda: self.send("order/add", order)] * 2):
                if again not in (0, None):
                    self.wrong(f"a repeated order/add {order_no} answered code {again}, expected 0")
        self.update(player, order, hash_cases.PENDING_SETTLEMENT, Decimal(0))
        self.sleep(rng)
        if kind == "refund":
            self.update(player, order, rng.choice([hash_cases.FAILED, hash_cases.CANCELLED]), Decimal(0))
            return
        prize = Decimal(0) if kind == "lose" else Decimal(rng.randint(0, 200)) / 100
        if kind == "settle" and rng.random() < 0.5:  # computed in float64, as Hash computes it
            prize = float(amount) * 1.95  # e.g. 0.03 * 1.95 is written 0.058499999999999996
        self.update(player, order, hash_cases.SUCCESS, prize, first_timeout=kind == "update timeout", rng=rng)
        self.update(player, order, hash_cases.SUCCESS, prize, retry=True)  # Hash's retry: no second credit

    def update(self, player, order, status, prize, unknown=False, first_timeout=False, retry=False, rng=None,
               attempts=6):
        """Send an order/update until code 0, as Hash retries; count its move once. `unknown`: the
        order/add got no answer, so a refund is not counted (nothing was counted for the add)."""
        plain = self.target.update(order, status, prize)
        first, _ = self.target.seal(plain)
        for attempt in range(attempts):
            timeout = self.timeout(rng, True) if first_timeout and attempt == 0 else None
            # the first retry re-sends the same envelope (a retry may reuse its request_id), later
            # ones are sealed afresh
            code, _ = self.send("order/update", plain, timeout, first if attempt < 2 else None)
            if code == 1005 and attempt == 1:  # the same envelope again must be answered as the retry it is
                self.wrong(f"order/update {order['order_no']}: an identical re-send (same request_id) answered "
                           f"1005, expected 0 (the request was applied: it is a retry)")
                code = 0  # the request_id was seen: the first try was applied
            if code == 0:
                if retry or unknown:
                    return
                if status == hash_cases.SUCCESS:
                    player.moved(booked(prize))
                elif status in (hash_cases.FAILED, hash_cases.CANCELLED):
                    player.moved(Decimal(str(order["amount"])))
                return
            if code == 3002 and unknown:  # not arrived yet, or never: Hash retries until it knows
                if attempt == attempts - 1:
                    return  # it never arrived: nothing to refund
            elif code not in (None, 5000):
                written = f" (prize written {plain['prize']!r}: a float64)" if isinstance(prize, float) else ""
                self.wrong(f"order/update {order['order_no']} status {status} answered code {code}{written}")
                return
            time.sleep(0.1)
        self.unresolved.append(f"order/update {order['order_no']}: no code 0 after {attempts} tries")

    def label(self, player) -> str:
        return f"player user_id {player.user_id}"

    def finish(self):
        pass


def booked(prize) -> Decimal:
    """What a prize stands for: a float64 is the value of at most 6 decimals it is closest to
    (docs/hash.md §6.4: 2.2424999999999997, 1.15 * 1.95 in float64, is 2.2425)."""
    if isinstance(prize, float):
        return Decimal(repr(prize)).quantize(Decimal("0.000001"))
    return prize


def main(args) -> int:
    soak = Hp100Soak(args) if args.provider == "100hp" else HashSoak(args)
    try:
        soak.start()
    except (OSError, ValueError, KeyError, ArithmeticError) as exc:  # no answer, or not one to read
        print(printable(f"cannot start: {exc}"), file=sys.stderr)
        return 2
    return soak.run()
