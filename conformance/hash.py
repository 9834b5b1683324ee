"""Hash conformance: Hash Game's side of the no-transfer wallet API (user/info, user/balance,
order/add, order/update), played against any merchant wallet.

Requests are sealed as Hash sends them: the business fields plus `timestamp` and `request_id`,
AES-256-CBC in `{"x": ...}`, the `merchant-id` header. Answers must be HTTP 200 JSON envelopes
{"code", "msg", "data"} (an encrypted answer `{"x": ...}` is opened first). Balances are read from
the wallet's own answers.

Hash's error-code table was not found, so a refusal is checked as "a non-zero code, nothing moved"
(the provider's rule); the code this project answers is checked too, as a rule of ours (a warning
unless --strict). 5000 (internal error) is never a refusal: a correct wallet answers every request
the cases send, so a 5000 fails the case and the report says which request got it. Other rules of
ours (the timestamp window, the IV form, the changed-data and payout limits, text no database can
store) are cases with `ours=`.

The amounts are what Hash sends: float64 (a prize computed as 1.15 * 1.95 is written
2.2424999999999997 and stands for 2.2425), up to 6 decimals, with a tax and a bonus paid by the
wallet's HASH_PAYOUT formula (--payout, or learned from the first settle and then held to). Hash's
retries are both kinds it may send: the same envelope byte for byte (answered 0 once applied) and a
fresh one; another request under a used request_id is refused. The cases leave the balance as they
found it: every order they place is settled, refunded, or cancelled by the clean-up, and a case
that wins loses it again (give_back).
"""
import json
import threading
import time
import uuid
from decimal import Decimal
from typing import NamedTuple

from .envelope import IV_FORMS, seal, unseal
from .http import CLOSED, NoAnswer, post
from .runner import OURS, PROVIDER, Case, CaseFailed, at_once

FUNDS_NEEDED = Decimal("100")
BET_INFO = '[{"key":"Big","name":"Big","odds":200,"amount":10}]'
PENDING, SUCCESS, FAILED, PENDING_SETTLEMENT, CANCELLED = 0, 1, 2, 3, 4  # Hash's order statuses
FINAL = (SUCCESS, FAILED, CANCELLED)
INTERNAL_ERROR = 5000
# What a settle (status 1) pays: `prize` is "tax included" (docs/hash.md §6.2), so a wallet reads it
# as net (prize + bonus) or gross (prize - tax + bonus): its HASH_PAYOUT, or this kit's --payout.
PAYOUTS = {"prize+bonus": lambda prize, tax, bonus: prize + bonus,
           "prize-tax+bonus": lambda prize, tax, bonus: prize - tax + bonus}
MASK = "***"


class Request(NamedTuple):
    path: str
    plain: dict                 # the business fields (timestamp and request_id are added)
    body: bytes | None = None   # the body to send instead of a fresh envelope
    how: str = ""               # how `body` was made, for the report
    merchant: str | None = None


def number(value):
    """An amount as a JSON number: an int, or a float whose shortest form is the decimal itself
    (so the wire carries exactly `value`). A float is sent as it is: a value computed in float64,
    as Hash computes it, written as Go, JavaScript and Python write it (1.15 * 1.95 is
    2.2424999999999997)."""
    if isinstance(value, float):
        return value
    value = Decimal(value)
    if value == value.to_integral_value():
        return int(value)
    if Decimal(repr(float(value))) != value:
        raise ValueError(f"{value} cannot be sent exactly as a JSON number by this kit")
    return float(value)


class Target:
    """The wallet under test, as Hash sees it. It remembers the orders a case placed and did not
    finish, so that the case's clean-up can cancel them."""

    def __init__(self, url, merchant_id, secret, token, currency="USDT", iv_form="prefix", timeout=15.0):
        self.url, self.merchant_id, self.secret = url.rstrip("/"), merchant_id, secret
        self.token, self.currency, self.iv_form, self.timeout = token, currency, iv_form, timeout
        self.user_id = None
        self.second_token = self.second_user = None
        self.payout = None     # the wallet's HASH_PAYOUT formula if known (--payout), else learned
        self.open_orders = {}  # order_no -> the order/add plaintext
        self._lock = threading.Lock()

    def seal(self, plain: dict, *, secret=None, iv_form=None, timestamp=None, request_id=None) -> tuple[bytes, dict]:
        """The body Hash would send for `plain`, and the plaintext with the common fields."""
        full = {"timestamp": timestamp or int(time.time() * 1000), "request_id": request_id or uuid.uuid4().hex,
                **plain}
        x = seal(json.dumps(full, separators=(",", ":")).encode(), secret or self.secret,
                 iv_form or self.iv_form)
        return json.dumps({"x": x}).encode(), full

    def call(self, request: Request):
        """POST one request. Returns (the request as sent, for the report; (status, envelope, type))."""
        if request.body is None:
            body, plain = self.seal(request.plain)
            how = f"sealed, IV form {self.iv_form}"
        else:
            body, plain, how = request.body, request.plain, request.how
        merchant = self.merchant_id if request.merchant is None else request.merchant
        sent = {"path": f"/api/v2/{request.path}", "merchant-id": merchant, "envelope": how}
        if how.startswith("raw"):
            sent["body"] = body.decode("utf-8", "replace")
        elif isinstance(plain, dict) and plain.get("token") == self.token:
            sent["plaintext"] = {**plain, "token": MASK}  # it was sent; its value is not for the report
        else:
            sent["plaintext"] = plain
        try:
            status, answer, content_type = post(f"{self.url}/api/v2/{request.path}", body,
                                                {"merchant-id": merchant}, timeout=self.timeout)
        except NoAnswer as exc:
            exc.sent = sent  # the report shows the request that got no answer
            raise
        if isinstance(answer, dict) and isinstance(answer.get("x"), str) and "code" not in answer:
            try:  # an encrypted answer
                answer = unseal(answer["x"], self.secret, self.iv_form)
            except ValueError:
                pass
        self._track(request.path, plain, answer)
        return sent, (status, answer, content_type)

    def _track(self, path, plain, answer):
        if not (isinstance(answer, dict) and answer.get("code") == 0 and isinstance(plain, dict)
                and isinstance(plain.get("order_no"), str) and "user_id" in plain):
            return
        with self._lock:
            if path == "order/add":
                self.open_orders.setdefault(plain.get("order_no"), plain)
            elif path == "order/update" and plain.get("status") in FINAL:
                self.open_orders.pop(plain.get("order_no"), None)

    @staticmethod
    def no_answer(exc: NoAnswer, expected=None) -> str:
        """What the report expects of a call that got no answer, with the likely cause."""
        if exc.kind == CLOSED:
            return ("an HTTP 200 answer: the wallet closed the connection without answering (see its log; "
                    "Hash's answers are HTTP 200 with the outcome in code)")
        return "an answer"

    def balance(self, token=None) -> Decimal:
        sent, got = self.call(Request("user/balance", {"token": token or self.token, "currency": self.currency}))
        status, answer, _ = got
        if not (status == 200 and isinstance(answer, dict) and answer.get("code") == 0
                and isinstance((answer.get("data") or {}).get("balance"), (int, Decimal))):
            raise CaseFailed(sent, got, "code 0 with the token's balance (is the token still valid?)")
        return Decimal(answer["data"]["balance"])

    def order(self, order_no, stake=10, **changes) -> dict:
        """An order/add plaintext: the fields and types of Hash's table; `changes` are sent as given."""
        return {"token": self.token, "user_id": self.user_id, "order_no": order_no, "username": "conformance",
                "entry_key": "pc28-1", "round_id": 1, "currency": self.currency, "amount": number(stake),
                "bet_info": BET_INFO, **changes}

    def update(self, order: dict, status, prize=0, **changes) -> dict:
        """An order/update plaintext for a placed order (user_id a string, as Hash's table says)."""
        return {"user_id": str(order["user_id"]), "username": order["username"], "order_no": order["order_no"],
                "entry_key": order["entry_key"], "round_id": str(order["round_id"]), "amount": order["amount"],
                "currency": order["currency"], "status": status, "prize": number(prize), "tax": 0, "bonus": 0,
                "bet_time": int(time.time() * 1000), "bet_info": order["bet_info"], "is_win": Decimal(prize) > 0,
                **changes}

    # ---- the runner's hooks ----
    def begin_case(self):
        with self._lock:
            self.open_orders.clear()

    def clean_up(self) -> list[str]:
        """Cancel the orders the case left open (Hash's status 4 refunds the stake)."""
        left = []
        for order_no, order in list(self.open_orders.items()):
            try:
                _, (_, answer, _) = self.call(Request("order/update", self.update(order, CANCELLED)))
            except (OSError, KeyError, ValueError) as exc:  # no answer; an order the kit cannot cancel
                answer = f"{type(exc).__name__}: {exc}"
            if not (isinstance(answer, dict) and answer.get("code") == 0):
                left.append(f"order {order_no}: the clean-up's cancel answered {json.dumps(answer, default=str)}")
                self.open_orders.pop(order_no, None)
        return left


# ---- steps ----------------------------------------------------------------------------------------
def failed_instead(expected: str) -> str:
    """Why a 5000 is a failure, not a refusal (the report says it under the call)."""
    return (f"{expected}, not 5000: a correct wallet answers this request, and 5000 (internal error) "
            "says the wallet failed on it (a crash, a lost race on a unique key that was not retried, a "
            "database error); Hash retries it, and a wallet that always fails leaves the order open")


def internal_errors(ctx, results, expected: str):
    """Requests sent at once: none may have answered 5000."""
    for sent, got in results:
        if isinstance(got[1], dict) and got[1].get("code") == INTERNAL_ERROR:
            raise CaseFailed(sent, got, failed_instead(expected))


def envelope_ok(ctx, sent, got, expected="code 0, or a refusal with the wallet's own code"):
    """Hash's answer format, for every answer: HTTP 200, a JSON envelope with an int code; an
    error has a msg, a success a data object. Never 5000: that is a failure, not a refusal."""
    status, answer, _ = got
    ok = status == 200 and isinstance(answer, dict) and type(answer.get("code")) is int
    if ok and answer["code"] == INTERNAL_ERROR:
        raise CaseFailed(sent, got, failed_instead(expected))
    if ok and answer["code"] != 0:
        ok = isinstance(answer.get("msg"), str)
    elif ok:
        ok = isinstance(answer.get("data"), dict)
    ctx.check(ok, sent, got, 'HTTP 200 with {"code": int, "msg": str, "data": {...}} ("msg" on errors, '
                             '"data" on success)', PROVIDER)


def step(make, ok=True, delta=None, code=None, rule=None, money_rule=None):
    """One request built by `make(ctx)` -> Request: success (code 0) or a refusal (non-zero; `code`
    is the one this project answers, a rule of ours); the balance move `delta`."""
    def run(ctx):
        target = ctx.target
        request = make(ctx)
        fields = request.plain if isinstance(request.plain, dict) else {}
        before = target.balance() if delta is not None else None
        sent, got = target.call(request)
        expected = "code 0" if ok else "a refusal" + (f" (this project answers {code})" if code else "")
        envelope_ok(ctx, sent, got, expected)
        answer = got[1]
        if ok:
            ctx.check(answer["code"] == 0, sent, got, "code 0", rule)
            if answer["code"] == 0 and request.path.startswith("order/"):
                data = answer["data"]
                ctx.check(data.get("order_no") == fields.get("order_no")
                          and type(data.get("balance")) in (int, Decimal) and isinstance(data.get("currency"), str),
                          sent, got,
                          "data {order_no (echoed), balance (a number), currency}", PROVIDER)
        else:
            refused = ctx.check(answer["code"] != 0, sent, got,
                                "a refusal: a non-zero code" + (f" (this project answers {code})" if code else ""),
                                rule)
            if refused and code is not None:
                codes = code if isinstance(code, tuple) else (code,)
                ctx.check(answer["code"] in codes, sent, got, f"code {' or '.join(map(str, codes))} "
                                                              "(this project's code; Hash's table is unknown)", OURS)
        if delta is not None:
            data = answer.get("data") or {}
            own = (fields.get("token", target.token) == target.token
                   and str(fields.get("user_id", target.user_id)) == str(target.user_id))
            after = (Decimal(data["balance"]) if answer["code"] == 0 and "balance" in data and own
                     else target.balance())
            want = before + Decimal(delta)
            ctx.check(after == want, sent, got, f"balance {want} ({before} + {delta}); the wallet reports {after}",
                      money_rule)
    return run


def add(order="O1", amount=10, **kw):
    return step(lambda ctx: Request("order/add", ctx.target.order(ctx.ids[order], amount)), **kw)


def fresh_order(target, **changes) -> dict:
    """A new order/add (a fresh order_no): a refusal case uses one per request, so that a wallet
    that wrongly accepts one request does not change the answer to the next."""
    return target.order(str(uuid.uuid4()), **changes)


def placing(**changes):
    """A request: a fresh order/add with `changes`, each a value or a function of the target."""
    def make(ctx):
        values = {k: v(ctx.target) if callable(v) else v for k, v in changes.items()}
        return Request("order/add", {**fresh_order(ctx.target), **values})
    return make


def update(order="O1", status=SUCCESS, prize=0, amount=10, fields=None, **kw):
    """An order/update of the case's order `order` (placed for `amount`), with `fields` changed
    (each a value or a function of the target)."""
    def make(ctx):
        placed = ctx.target.order(ctx.ids[order], amount)
        changes = {k: v(ctx.target) if callable(v) else v for k, v in (fields or {}).items()}
        return Request("order/update", ctx.target.update(placed, status, prize, **changes))
    return step(make, **kw)


def sealed(how, merchant=None, **seal_options):
    """A fresh order/add sealed another way (another key, IV form or timestamp; iv_form "other":
    the form the wallet is not configured for), or sent with another merchant-id."""
    def make(ctx):
        target, options = ctx.target, dict(seal_options)
        if options.get("iv_form") == "other":
            options["iv_form"] = next(form for form in IV_FORMS if form != target.iv_form)
        body, full = target.seal(fresh_order(target), **options)
        return Request("order/add", full, body, how, merchant)
    return make


def raw(how, plain_of):
    """An order/add whose envelope holds `plain_of(target, order)` as it is: no timestamp or
    request_id added (a plaintext that is not even a JSON object, if so made)."""
    def make(ctx):
        target = ctx.target
        plain = plain_of(target, fresh_order(target))
        x = seal(json.dumps(plain).encode(), target.secret, target.iv_form)
        return Request("order/add", plain, json.dumps({"x": x}).encode(), how)
    return make


def body(how, raw_body: bytes):
    """An order/add whose body is `raw_body`."""
    return lambda ctx: Request("order/add", {}, raw_body, f"raw: {how}")


def refused(make, code, rule=None, money_rule=None):
    return step(make, ok=False, delta="0", code=code, rule=rule, money_rule=money_rule)


# ---- steps that need more than one request -------------------------------------------------------------
def resent(path):
    """Hash re-sends a request whose answer it lost: the same envelope, byte for byte (the same
    request_id and timestamp). The first was applied; the re-send is answered 0 and moves nothing."""
    def run(ctx):
        target = ctx.target
        placed = target.order(ctx.ids["O1"])
        plain = placed if path == "order/add" else target.update(placed, SUCCESS, 10)
        body, full = target.seal(plain)
        step(lambda _: Request(path, full, body, "sealed once"), delta="-10" if path == "order/add" else "10")(ctx)
        step(lambda _: Request(path, full, body, "the same envelope again, byte for byte (same request_id): "
                                                 "Hash's retry of a request whose answer it lost"), delta="0")(ctx)
    return run


def reused_request_id(ctx):
    """Another request under a request_id already used (on the same endpoint): never from Hash,
    which makes one per request; a rewritten or replayed capture looks like this. Refused, nothing
    moves, and the request it imitates is still taken with a fresh request_id."""
    target = ctx.target
    body, first = target.seal(target.order(ctx.ids["O1"]))
    step(lambda _: Request("order/add", first, body, "sealed"), delta="-10")(ctx)
    other = target.order(ctx.ids["O2"])
    body, full = target.seal(other, request_id=first["request_id"])
    step(lambda _: Request("order/add", full, body, "another order/add under the first one's request_id"),
         ok=False, delta="0", code=1005)(ctx)
    step(lambda _: Request("order/add", other), delta="-10")(ctx)  # its own request_id: taken
    body, settle = target.seal(target.update(target.order(ctx.ids["O1"]), SUCCESS, 10))
    step(lambda _: Request("order/update", settle, body, "sealed"), delta="10")(ctx)
    body, full = target.seal(target.update(other, CANCELLED), request_id=settle["request_id"])
    step(lambda _: Request("order/update", full, body, "a cancel of the second order under the settle's "
                                                       "request_id"), ok=False, delta="0", code=1005)(ctx)


def cancel_before_add(ctx):
    """Hash cancels an order it never got an answer for; the order/add may still arrive. If the
    wallet accepted the cancel (code 0), Hash is done with that order: the late add must debit
    nothing. If it refused, Hash retries the cancel, so the add may debit."""
    target = ctx.target
    placed = target.order(ctx.ids["O8"])
    before = target.balance()
    sent, got = target.call(Request("order/update", target.update(placed, CANCELLED)))
    envelope_ok(ctx, sent, got)
    accepted = got[1]["code"] == 0
    ctx.check(accepted, sent, got, "code 0: a cancel of an order never placed is accepted, as a no-op", OURS)
    ctx.check(target.balance() == before, sent, got, f"balance {before}: nothing was debited, nothing is refunded",
              PROVIDER)
    if accepted:
        step(lambda _: Request("order/add", placed), ok=False, delta="0", code=3001, money_rule=PROVIDER)(ctx)


def taxed_settles(ctx):
    """Settles with a tax and a bonus: each credit is one formula's (PAYOUTS), the same formula every
    time: the one --payout names, else the one the first settle shows. A repeated settle (Hash's
    retry, a fresh request_id) moves nothing."""
    target = ctx.target
    formulas = [target.payout] if target.payout else list(PAYOUTS)
    for name, prize, tax, bonus in (("O1", "19.5", "0.5", "1.25"), ("O2", "7.123456", "2.000001", "0.333333")):
        add(name, delta="-10")(ctx)
        request = Request("order/update", target.update(target.order(ctx.ids[name]), SUCCESS, prize,
                                                        tax=number(tax), bonus=number(bonus)))
        before = target.balance()
        sent, got = target.call(request)
        envelope_ok(ctx, sent, got, "code 0")
        ctx.check(got[1]["code"] == 0, sent, got, "code 0")
        credited = target.balance() - before
        wants = {f: PAYOUTS[f](Decimal(prize), Decimal(tax), Decimal(bonus)) for f in formulas}
        how = (f"--payout {target.payout}" if target.payout else
               "one of HASH_PAYOUT's formulas" if name == "O1" else "the formula of the first settle")
        ctx.check(any(want == credited for want in wants.values()), sent, got,
                  f"a credit by {how}: " + " or ".join(f"{want} ({f})" for f, want in wants.items())
                  + f"; the wallet credited {credited}")
        formulas = [f for f, want in wants.items() if want == credited]
        step(lambda _: request, delta="0")(ctx)


def remember_balance(ctx):
    """The first step of a case that wins: the balance to come back to (give_back)."""
    ctx.start_balance = ctx.target.balance()


def give_back(ctx):
    """The last step of a case that won: one lost bet of what it won, so that the cases end where
    they started (and the lost bet is booked to the last place too)."""
    won = ctx.target.balance() - ctx.start_balance
    if won > 0:
        add("LOST", amount=won, delta=f"-{won}")(ctx)
        update("LOST", amount=won, prize=0, delta="0")(ctx)


def whole_balance(ctx):
    """A bet of exactly the balance is taken (the balance becomes 0), then cancelled."""
    before = ctx.target.balance()
    add(amount=before, delta=f"-{before}")(ctx)
    update(amount=before, status=CANCELLED, delta=f"{before}")(ctx)


def parallel_cancels(ctx):
    target = ctx.target
    add(delta="-10")(ctx)
    before = target.balance()
    request = Request("order/update", target.update(target.order(ctx.ids["O1"]), CANCELLED))
    results = at_once([lambda: target.call(request)] * 10)
    internal_errors(ctx, results, "code 0: a repeated cancel answers success")
    codes = [got[1].get("code") if isinstance(got[1], dict) else got for _, got in results]
    ctx.check(codes == [0] * 10, results[0][0], codes, "ten code 0: a repeated cancel answers success")
    ctx.check(target.balance() == before + 10, None, str(target.balance()), f"balance {before + 10}: one refund")


def parallel_adds(ctx):
    target = ctx.target
    before = target.balance()
    request = Request("order/add", target.order(ctx.ids["O1"]))
    results = at_once([lambda: target.call(request)] * 20)
    internal_errors(ctx, results, "code 0: a repeated add answers success")
    codes = [got[1].get("code") if isinstance(got[1], dict) else got for _, got in results]
    ctx.check(codes == [0] * 20, results[0][0], codes, "twenty code 0: a repeated add answers success")
    ctx.check(target.balance() == before - 10, None, str(target.balance()), f"balance {before - 10}: one debit")


def parallel_settles(ctx):
    target = ctx.target
    add(delta="-10")(ctx)
    before = target.balance()
    request = Request("order/update", target.update(target.order(ctx.ids["O1"]), SUCCESS, 10))
    results = at_once([lambda: target.call(request)] * 10)
    internal_errors(ctx, results, "code 0: a repeated update answers success")
    codes = [got[1].get("code") if isinstance(got[1], dict) else got for _, got in results]
    ctx.check(codes == [0] * 10, results[0][0], codes, "ten code 0: a repeated update answers success")
    ctx.check(target.balance() == before + 10, None, str(target.balance()), f"balance {before + 10}: one credit")


def settle_racing_cancel(ctx):
    target = ctx.target
    add(delta="-10")(ctx)
    before = target.balance()
    placed = target.order(ctx.ids["O1"])
    results = at_once([lambda: target.call(Request("order/update", target.update(placed, SUCCESS, 10))),
                       lambda: target.call(Request("order/update", target.update(placed, CANCELLED)))])
    internal_errors(ctx, results, "code 0 for the one that applies, a refusal (final: 3003) for the other")
    applied = sorted(isinstance(got[1], dict) and got[1].get("code") == 0 for _, got in results)
    ctx.check(applied == [False, True], results[0][0], [got for _, got in results], "exactly one applies")
    ctx.check(target.balance() == before + 10, None, str(target.balance()), f"balance {before + 10}")


def parallel_beyond_balance(ctx):
    target = ctx.target
    before = target.balance()
    amount = (before / 4).quantize(Decimal("0.01"), rounding="ROUND_DOWN")
    names = [f"P{i}" for i in range(6)]
    results = at_once([lambda n=n: target.call(Request("order/add", target.order(ctx.ids[n], amount)))
                       for n in names])
    internal_errors(ctx, results, "code 0, or a refusal for lack of funds (this project answers 2002)")
    codes = [got[1].get("code") if isinstance(got[1], dict) else got for _, got in results]
    after = target.balance()
    ctx.check(sum(c == 0 for c in codes) == 4, results[0][0], codes,
              f"four code 0 and two refusals: six bets of {amount} on a balance of {before}")
    ctx.check(after == before - 4 * amount, None, str(after), f"balance {before - 4 * amount}")


# ---- the cases ---------------------------------------------------------------------------------------
def cases() -> list:
    user_info = lambda token: lambda ctx: Request("user/info", {"token": token(ctx)})  # noqa: E731
    other_user = lambda t: str(t.second_user or t.user_id + 1)  # noqa: E731
    return [
        Case("user/info returns user_id, username, avatar", [check_user_info], "Hash §4.1"),
        Case("user/balance returns the balance as a number", [step(
            lambda ctx: Request("user/balance", {"token": ctx.target.token, "currency": ctx.target.currency}),
            delta="0"), check_balance_answer], "Hash §3.7, §4.2"),
        Case("an unknown token is refused", [
            refused(user_info(lambda ctx: ctx.ids["T"]), 2001),
            refused(placing(token="not-a-token-" + uuid.uuid4().hex), 2001)],
            "Hash §4.1, §4.3"),

        # the order lifecycle
        Case("bet -> settle: status 1 credits the prize once", [
            add(delta="-10"), update(status=PENDING_SETTLEMENT, delta="0"), update(prize=20, delta="20"),
            update(prize=20, delta="0")], "Hash §4.4, §6.3 (retried until success; never settled twice)"),
        Case("bet -> lose: status 1 with no prize", [add(delta="-10"), update(prize=0, delta="0")], "Hash §6.2"),
        Case("bet -> cancel: status 4 refunds once", [add(delta="-10"), update(status=CANCELLED, delta="10"),
                                                      update(status=CANCELLED, delta="0")], "Hash §6.1, §6.2"),
        Case("bet -> fail: status 2 refunds once", [add(delta="-10"), update(status=FAILED, delta="10"),
                                                    update(status=FAILED, delta="0")], "Hash §6.1, §6.2"),
        Case("a repeated add debits once; one with other data is refused", [
            add(delta="-10"), add(delta="0"), add(amount=11, ok=False, delta="0", code=3001),
            update(status=CANCELLED, delta="10")], "Hash §6.3 (idempotent on order_no)"),
        Case("a final order never changes", [
            add(delta="-10"), update(prize=10, delta="10"),
            update(status=CANCELLED, ok=False, delta="0", code=3003, rule=OURS)],
            "Hash §4.4 (never settled twice), §11.4"),
        Case("an update of an unknown order credits nothing", [
            update("O9", prize=5, ok=False, delta="0", code=3002)], "Hash §6.2"),
        Case("a cancel before its order/add: the late add debits nothing", [cancel_before_add],
             "Hash §8.3, §11.4",
             ours="a cancel of an unknown order is accepted and remembered; the late add is 3001"),
        Case("a bet of exactly the whole balance is taken", [whole_balance], "Hash §4.3, §6.2"),
        Case("a bet above the balance is refused", [
            refused(placing(amount=lambda t: number(t.balance() + 1)), 2002)], "Hash §4.3, §6.2"),

        # the envelope
        Case("bad envelopes are refused and move nothing", [
            refused(sealed("sealed, sent with a wrong merchant-id", merchant="not-a-merchant"), 1003),
            refused(sealed("sealed, sent with an empty merchant-id", merchant=""), 1003),
            refused(body("x not Base64", b'{"x": "%%% not base64 %%%"}'), 1002),
            refused(body("no x", b'{"order_no": "O1", "amount": 10}'), 1001),
            refused(sealed("sealed with another key", secret="k" * 32), 1002),
            refused(raw("x holds a JSON array", lambda t, order: [1, 2]), 1002),
            refused(raw("x holds no timestamp", lambda t, order: {**order, "request_id": uuid.uuid4().hex}), 1001)],
            "Hash §3.2, §3.4, §3.7"),
        Case("a timestamp from 2022 is refused", [
            refused(sealed("sealed with timestamp 1650123456789", timestamp=1650123456789), 1004)],
            "Hash §3.8, §11.2", ours="timestamps outside a window (5 minutes by default) are refused"),
        Case("an envelope in the other IV form is refused", [
            refused(sealed("sealed in the IV form the wallet is not configured for", iv_form="other"), 1002)],
            "Hash §3.4, §11.1", ours="only the IV form the wallet is configured for (HASH_IV_MODE) is accepted"),
        Case("an identical re-send of an applied request is answered 0, nothing moves", [
            resent("order/add"), resent("order/update")],
            "Hash §6.3 (retried until success), §10 (whether a retry keeps its request_id is not published)"),
        Case("another request under a used request_id is refused, nothing moves", [reused_request_id],
             "Hash §3.2 (a request_id per request), §3.8, §11.2"),

        # fields
        Case("order/add rules: nothing is debited for a bad request", [
            refused(placing(bet_info=[{"key": "Big"}]), 1001),
            refused(placing(amount=-10), 1001),
            refused(placing(order_no=None), 1001),
            refused(placing(user_id=lambda t: int(other_user(t))), 2001, rule=OURS, money_rule=OURS),
            refused(placing(currency="XXX"), 2003)],
            "Hash §4.3, §6.5 (bet_info is a string); §11.3 (user_id is the token's: ours)"),
        Case("order/add limits: zero, more than 6 decimals, an amount as text", [
            refused(placing(amount=0), 1001),
            refused(placing(amount=0.1234567), 1001),
            refused(placing(amount="10"), 1001)],
            "Hash §6.4, §11.5", ours="a bet is > 0, with at most 6 decimals, a JSON number"),
        Case("text no database can store (a lone surrogate, NUL) is refused", [
            refused(placing(order_no=lambda t: uuid.uuid4().hex + "\ud800"), 1001),
            refused(placing(entry_key="pc28\x001"), 1001),
            refused(placing(bet_info='[{"key":"\ud800"}]'), 1001)],
            "Hash §4.5", ours="such text is refused 1001"),
        Case("an order_no with a blank at either end is refused", [
            add(delta="-10", rule=PROVIDER, money_rule=PROVIDER),
            refused(lambda ctx: Request("order/add", ctx.target.order(ctx.ids["O1"] + " ")), 1001),
            refused(lambda ctx: Request("order/add", ctx.target.order(" " + ctx.ids["O1"])), 1001),
            update(status=CANCELLED, delta="10", rule=PROVIDER, money_rule=PROVIDER)],
            "Hash §4.5, §11.4", ours="an order_no, request_id or token with a blank at either end is "
                                     "refused 1001 (MySQL compares \"O1 \" equal to \"O1\")"),
        Case("an update whose data differ from its order's is refused", [
            add(delta="-10", rule=PROVIDER, money_rule=PROVIDER),
            update(prize=10, fields={"amount": 11}, ok=False, delta="0", code=3001),
            update(prize=10, fields={"round_id": "2"}, ok=False, delta="0", code=3001),
            update(prize=10, fields={"entry_key": "pc28-2"}, ok=False, delta="0", code=3001),
            update(prize=10, fields={"user_id": other_user}, ok=False, delta="0", code=(3001, 3002))],
            "Hash §6.2, §11.4", ours="an update must match its order (user_id, amount, currency, round_id, "
                              "entry_key): else 3001 (or 3002 for another player's order)"),
        Case("a repeated settle with another prize credits nothing more", [
            add(delta="-10"), update(prize=10, delta="10"),
            update(prize=50, ok=False, delta="0", code=3001, rule=OURS)],
            "Hash §4.4 (never settled twice), §11.4"),
        Case("amounts with 6 decimals are booked to the last place", [
            remember_balance,
            add(amount="1.123456", delta="-1.123456"),
            update(amount="1.123456", prize="19.505", delta="19.505"),
            add("O2", amount="0.000001", delta="-0.000001"),
            update("O2", amount="0.000001", status=CANCELLED, delta="0.000001"),
            give_back],
            "Hash §4.3, §4.4, §6.4 (float64 amounts; USDT has 6 decimals)"),
        Case("float64-written amounts are booked as the values they stand for", [
            remember_balance,
            add(amount=1.15, delta="-1.15"),
            update(amount=1.15, prize=1.15 * 1.95, delta="2.2425"),  # written 2.2424999999999997
            update(amount=1.15, prize=1.15 * 1.95, delta="0"),
            add("O2", amount=0.1 + 0.2, delta="-0.3"),  # written 0.30000000000000004
            update("O2", amount=0.1 + 0.2, status=CANCELLED, delta="0.3"),
            give_back],
            "Hash §6.4 (amounts are float64: 1.15 x 1.95 in float64 is written 2.2424999999999997)"),
        Case("a settle with a tax and a bonus pays by one formula, the same every time",
             [remember_balance, taxed_settles, give_back],
             "Hash §4.4 (prize is \"tax included\"), §6.2 (HASH_PAYOUT, or the kit's --payout)"),
        Case("a settle above 1000 times the stake is refused", [
            add(amount="0.01", delta="-0.01", rule=PROVIDER, money_rule=PROVIDER),
            update(amount="0.01", prize="10.01", ok=False, delta="0", code=3001)],
            "Hash §6.2, §11.4", ours="a payout above HASH_MAX_PAYOUT_MULTIPLE (1000) times the stake is refused 3001"),

        # concurrency
        Case("20 parallel identical adds debit once", [parallel_adds], "Hash §6.3", concurrent=True),
        Case("10 parallel identical settles credit once", [parallel_settles], "Hash §4.4", concurrent=True),
        Case("10 parallel identical cancels refund once", [parallel_cancels], "Hash §6.2, §6.3", concurrent=True),
        Case("settle racing cancel: exactly one applies", [settle_racing_cancel], "Hash §6.2", concurrent=True),
        Case("parallel adds beyond the balance never go negative", [parallel_beyond_balance], "Hash §6.2",
             concurrent=True),
    ]


def check_user_info(ctx):
    sent, got = ctx.target.call(Request("user/info", {"token": ctx.target.token}))
    envelope_ok(ctx, sent, got)
    ctx.check(got[1]["code"] == 0, sent, got, "code 0")
    data = got[1]["data"]
    ctx.check(type(data.get("user_id")) is int and isinstance(data.get("username"), str)
              and isinstance(data.get("avatar"), str), sent, got,
              "data {user_id (an int64), username (a string), avatar (a string)}")


def check_balance_answer(ctx):
    target = ctx.target
    sent, got = target.call(Request("user/balance", {"token": target.token, "currency": target.currency}))
    envelope_ok(ctx, sent, got)
    data = got[1].get("data") or {}
    ctx.check(type(data.get("balance")) in (int, Decimal) and data.get("currency") == target.currency
              and data.get("user_id") == target.user_id, sent, got,
              "data {user_id, balance (a number, not a string), currency (echoed)}")
