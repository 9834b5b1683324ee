"""Hash conformance: the merchant side of spec/hash.md §5 and §7, played against any wallet.

Requests are encrypted as Hash sends them (§3); answers must be HTTP 200 JSON envelopes. Hash's
error-code table was not found (§10), so an error is checked as "a non-zero code, nothing moved":
the code this project uses is named in the expectation for reference. Balances are read from the
wallet's own answers. The cases leave the balance as they found it.
"""
import json
import time
import uuid
from decimal import Decimal

from wallet.hash.blueprint import dumps
from wallet.hash.envelope import encrypt

from .http import post
from .runner import Case, at_once, check

FUNDS_NEEDED = Decimal("100")
BET_INFO = '[{"key":"Big","name":"Big","odds":200,"amount":10}]'


class Target:
    def __init__(self, url, merchant_id, secret, token, currency="USDT", iv_mode="prefix"):
        self.url, self.merchant_id, self.secret = url.rstrip("/"), merchant_id, secret
        self.token, self.currency, self.iv_mode = token, currency, iv_mode
        self.user_id = None

    def seal(self, plain: dict, secret=None, timestamp=None) -> bytes:
        plain = {"timestamp": timestamp or int(time.time() * 1000), "request_id": uuid.uuid4().hex,
                 **plain}
        return json.dumps({"x": encrypt(dumps(plain).encode(), secret or self.secret,
                                        self.iv_mode)}).encode()

    def call(self, path, plain: dict, body: bytes | None = None, merchant_id=None):
        got = post(f"{self.url}/api/v2/{path}", body or self.seal(plain),
                   {"merchant-id": merchant_id or self.merchant_id})
        return {"path": path, **plain, **({"token": "***"} if "token" in plain else {})}, got

    def balance(self) -> Decimal:
        sent, got = self.call("user/balance", {"token": self.token, "currency": self.currency})
        check(got[0] == 200 and isinstance(got[1], dict) and got[1].get("code") == 0, sent, got,
              "code 0 with the test token's balance (is the token still valid?)")
        return Decimal(got[1]["data"]["balance"])

    def order(self, order_no, amount=10, **changes) -> dict:
        return {"token": self.token, "user_id": self.user_id, "order_no": order_no, "username": "conformance",
                "entry_key": "pc28-1", "round_id": 1, "currency": self.currency, "amount": amount,
                "bet_info": BET_INFO, **changes}

    def update(self, order_no, status, amount=10, prize=0) -> dict:
        return {"user_id": str(self.user_id), "username": "conformance", "order_no": order_no,
                "entry_key": "pc28-1", "round_id": "1", "amount": amount, "currency": self.currency,
                "status": status, "prize": prize, "tax": 0, "bonus": 0, "bet_time": int(time.time() * 1000),
                "bet_info": BET_INFO, "is_win": prize > 0}


def envelope_ok(sent, got):
    check(got[0] == 200 and isinstance(got[1], dict) and isinstance(got[1].get("code"), int), sent, got,
          'HTTP 200 with a JSON envelope {"code": int, "msg": str, ...} (§3.7)')


def step(make, ok=True, delta=None, ours=None):
    """One request built by `make(target, ids)` -> (path, plain) or (path, plain, raw body, merchant);
    success (code 0) or an error (non-zero; `ours` is this project's code, for reference); the
    balance move."""
    def run(target, ids):
        path, plain, *raw = make(target, ids)
        before = target.balance() if delta is not None else None
        sent, got = target.call(path, plain, *raw)
        envelope_ok(sent, got)
        code = got[1]["code"]
        if ok:
            check(code == 0 and "data" in got[1], sent, got, "code 0 with data")
        else:
            check(code != 0 and isinstance(got[1].get("msg"), str), sent, got,
                  "a non-zero code and a msg" + (f" (this project answers {ours})" if ours else ""))
        if delta is not None:
            data = got[1].get("data") or {}
            after = Decimal(data["balance"]) if ok and "balance" in data else target.balance()
            want = before + Decimal(delta)
            check(after == want, sent, got, f"balance {want} ({before} + {delta}); the wallet reports {after}")
    return run


def add(order="O1", amount=10, **kw):
    return step(lambda t, ids: ("order/add", t.order(ids[order], amount)), **kw)


def update(order="O1", status=1, amount=10, prize=0, **kw):
    return step(lambda t, ids: ("order/update", t.update(ids[order], status, amount, prize)), **kw)


def bad(name, body_of, merchant=None):
    """An order/add whose envelope is wrong in one way: refused, nothing debited."""
    def make(t, ids):
        plain = t.order(ids["O1"])
        return "order/add", {"case": name, **plain}, body_of(t, plain), merchant
    return step(make, ok=False, delta="0", ours="1001-1004")


def parallel_adds(target, ids):
    before = target.balance()
    results = at_once([lambda: target.call("order/add", target.order(ids["O1"]))] * 20)
    codes = [got[1].get("code") if isinstance(got[1], dict) else got for _, got in results]
    check(codes == [0] * 20, results[0][0], codes, "twenty code 0: a repeated add answers success")
    check(target.balance() == before - 10, None, str(target.balance()), f"balance {before - 10}: one debit")
    update("O1", 4, delta="10")(target, ids)


def parallel_settles(target, ids):
    add("O1", delta="-10")(target, ids)
    before = target.balance()
    results = at_once([lambda: target.call("order/update", target.update(ids["O1"], 1, prize=10))] * 10)
    codes = [got[1].get("code") if isinstance(got[1], dict) else got for _, got in results]
    check(codes == [0] * 10, results[0][0], codes, "ten code 0: a repeated update answers success")
    check(target.balance() == before + 10, None, str(target.balance()), f"balance {before + 10}: one credit")


def settle_racing_cancel(target, ids):
    add("O1", delta="-10")(target, ids)
    before = target.balance()
    results = at_once([lambda: target.call("order/update", target.update(ids["O1"], 1, prize=10)),
                       lambda: target.call("order/update", target.update(ids["O1"], 4))])
    codes = sorted(got[1].get("code") != 0 for _, got in results)
    check(codes == [False, True], results[0][0], [got for _, got in results], "exactly one applies")
    check(target.balance() == before + 10, None, str(target.balance()), f"balance {before + 10}")


def cases() -> list:
    return [
        Case("user/info returns user_id, username, avatar", [step(
            lambda t, ids: ("user/info", {"token": t.token}))]),
        Case("user/balance returns the balance", [step(
            lambda t, ids: ("user/balance", {"token": t.token, "currency": t.currency}), delta="0")]),
        Case("an unknown token is refused", [step(
            lambda t, ids: ("user/info", {"token": ids["T"]}), ok=False, ours=2001)]),
        Case("bet -> settle: status 1 credits the prize once", [
            add(delta="-10"), update(status=3, delta="0"), update(prize=20, delta="20"),
            update(prize=20, delta="0")]),
        Case("bet -> lose: status 1 with no prize", [add(delta="-10"), update(prize=0, delta="0")]),
        Case("bet -> cancel: status 4 refunds once", [add(delta="-10"), update(status=4, delta="10"),
                                                      update(status=4, delta="0")]),
        Case("bet -> fail: status 2 refunds once", [add(delta="-10"), update(status=2, delta="10"),
                                                    update(status=2, delta="0")]),
        Case("a repeated add answers success and debits once; other data is refused", [
            add(delta="-10"), add(delta="0"), add(amount=11, ok=False, delta="0", ours=3001),
            update(status=4, delta="10")]),
        Case("a final order never changes", [
            add(delta="-10"), update(prize=10, delta="10"), update(status=4, ok=False, delta="0", ours=3003)]),
        Case("an update of an unknown order", [
            update("O9", prize=5, ok=False, delta="0", ours=3002),
            update("O8", status=4, delta="0"), add("O8", ok=False, delta="0", ours=3001)]),
        Case("a bet above the balance is refused", [step(
            lambda t, ids: ("order/add", t.order(ids["O1"], amount=t.balance() + 1)),
            ok=False, delta="0", ours=2002)]),
        Case("bad envelopes are refused and move nothing", [
            bad("wrong merchant-id", lambda t, p: t.seal(p), merchant="not-" + "merchant"),
            bad("x not Base64", lambda t, p: b'{"x": "%%% not base64 %%%"}'),
            bad("wrong key", lambda t, p: t.seal(p, secret="k" * 32)),
            bad("stale timestamp", lambda t, p: t.seal(p, timestamp=1650123456789)),
            bad("plaintext not a JSON object", lambda t, p: json.dumps(
                {"x": encrypt(b"[1, 2]", t.secret, t.iv_mode)}).encode()),
            bad("bet_info not a JSON string", lambda t, p: t.seal({**p, "bet_info": [{"key": "Big"}]})),
            bad("negative amount", lambda t, p: t.seal({**p, "amount": -10}))]),
        Case("20 parallel identical adds debit once", [parallel_adds], concurrent=True),
        Case("10 parallel identical settles credit once", [parallel_settles], concurrent=True),
        Case("settle racing cancel: exactly one applies", [settle_racing_cancel], concurrent=True),
    ]
