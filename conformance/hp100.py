"""100HP conformance: the cases of spec/100hp.md §15, played against any Game Flow API wallet.

Each case is data: requests with the fields that differ from the defaults (the secret and the test
session are added to every request), the status and `data` the spec expects, and how the player's
balance must move (`delta`), checked against the balance the wallet itself reports. Every answer is
also checked for §5.6: HTTP status = errCode, body {data, message, errCode}, JSON content type.
The cases leave the player's balance as it was, but for one cent of bonusWin (§15.19).
"""
import json
import re
from decimal import ROUND_DOWN, Decimal

from wallet.hp100.casino import MESSAGES

from .http import post
from .runner import Case, at_once, check

FUNDS_NEEDED = Decimal("20.00")
_CENTS = re.compile(r"-?[0-9]+\.[0-9]{2}\Z")


class Target:
    def __init__(self, url, secret, session, second_session=None):
        self.url, self.secret = url.rstrip("/"), secret
        self.session, self.second_session = session, second_session
        self.second_user = None

    def call(self, endpoint, fields: dict):
        body = {k: v for k, v in {"secret": self.secret, "sessionId": self.session, **fields}.items()
                if v is not None}
        got = post(f"{self.url}/{endpoint}", json.dumps(body).encode())
        sent = {"endpoint": f"/{endpoint}", **body, "secret": "***"}
        return sent, got

    def balance(self) -> Decimal:
        sent, (status, body, _) = self.call("balance", {})
        check(status == 200 and isinstance(body, dict) and "balance" in body, sent, [status, body],
              "200 with the test session's balance (is the session still valid?)")
        return Decimal(body["balance"])


def resolve(value, ids, target):
    if not isinstance(value, str) or not value.startswith("$"):
        return value
    if value == "$S2":
        return target.second_session
    if value == "$U2":
        return target.second_user
    if value == "$OVER":  # more than the player has
        return format(target.balance() + 1, "f")
    return ids[value[1:]]


def send(endpoint, status=200, data="", delta=None, echo=None, has=(), **fields):
    """A step: one request, its expected status (and `data` for a 400), the balance move."""
    def step(target, ids):
        values = {k: resolve(v, ids, target) for k, v in fields.items()}
        before = target.balance() if delta is not None else None
        sent, got = target.call(endpoint, values)
        verify(sent, got, status, data)
        answer = got[1]
        for name in has:
            check(name in answer, sent, got, f"the field {name} in the answer")
        for name, expected in (echo or {}).items():
            expected = target.session if expected == "$S" else resolve(expected, ids, target)
            check(answer.get(name) == expected, sent, got, f"{name} echoed: {expected}")
        if status == 200:
            check(isinstance(answer.get("balance"), str) and _CENTS.match(answer["balance"]), sent, got,
                  'balance as a string with two decimals, e.g. "104.23" (§5.3)')
        if delta is not None:
            own = values.get("sessionId", target.session) == target.session
            after = Decimal(answer["balance"]) if status == 200 and own else target.balance()
            want = before + Decimal(delta)
            check(after == want, sent, got, f"balance {want:.2f} ({before:.2f} {'+' if Decimal(delta) >= 0 else '-'}"
                  f" {abs(Decimal(delta)):.2f}; amounts truncated to cents, never rounded), "
                  f"the wallet reports {after:.2f}")
    return step


def verify(sent, got, status, data=""):
    """§5.6 for every answer: the status, and for an error the exact body."""
    code, body, content_type = got
    check(content_type.startswith("application/json"), sent, got, "Content-Type: application/json")
    check(code == status, sent, got, f"HTTP {status}" + (f" {MESSAGES[status]}" if status != 200 else ""))
    if status != 200:
        check(body == {"data": data, "message": MESSAGES[status], "errCode": status}, sent, got,
              f'the body {{"data": "{data}", "message": "{MESSAGES[status]}", "errCode": {status}}}')


def parallel_duplicates(target, ids):
    before = target.balance()
    calls = [lambda: target.call("withdrawal", {"txId": ids["T1"], "amount": "1"})] * 10
    results = at_once(calls)
    statuses = sorted(got[0] for _, got in results)
    check(statuses == [200] + [607] * 9, results[0][0], statuses, "one 200 and nine 607")
    send("rollback", txId="$T1", delta="1")(target, ids)
    check(target.balance() == before, None, str(target.balance()), f"balance back to {before}")


def parallel_beyond_balance(target, ids):
    before = target.balance()
    amount = (before / 4).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    names = [f"P{i}" for i in range(6)]
    results = at_once([lambda n=n: target.call("withdrawal", {"txId": ids[n], "amount": str(amount)})
                       for n in names])
    statuses = [got[0] for _, got in results]
    after = target.balance()
    check(statuses.count(200) == 4 and statuses.count(603) == 2, results[0][0], statuses,
          f"four 200 and two 603: six bets of {amount} on a balance of {before}")
    check(after == before - 4 * amount and after >= 0, None, str(after), f"balance {before - 4 * amount}")
    for name, status in zip(names, statuses):
        if status == 200:
            target.call("rollback", {"txId": ids[name]})


def deposit_racing_rollback(target, ids):
    send("withdrawal", txId="$T1", amount="2", delta="-2")(target, ids)
    before = target.balance()
    (_, deposit), (_, rollback) = at_once([
        lambda: target.call("deposit", {"txId": ids["T1"], "amount": "2"}),
        lambda: target.call("rollback", {"txId": ids["T1"]})])
    outcome = (deposit[0], rollback[0])
    check(outcome in ((200, 609), (608, 200)), None, outcome,
          "exactly one wins; the loser names the winner: (200, 609) or (608, 200)")
    check(target.balance() == before + 2, None, str(target.balance()), f"balance {before + 2}")


def cases(second_session: bool) -> list:
    found = [
        Case("§15.1 auth returns the player", [send("auth", has=("userId", "currency", "balance", "userName"))]),
        Case("§15.2 a wrong secret is 601", [send("auth", secret="$WRONG", status=601)]),
        Case("§15.3 an unknown session is 604", [send("auth", sessionId="$T9", status=604)]),
        Case("§15.4 sessionId rules", [
            send("auth", sessionId=None, status=400, data="sessionId must be not empty"),
            send("auth", sessionId="s" * 256, status=400, data="sessionId must be <= 255 characters"),
            send("auth", sessionId=12345, status=400, data="sessionId must be a string")]),
        Case("§15.5 balance", [send("balance", has=("userId", "currency", "balance"))]),
        Case("§15.6-7 a withdrawal truncates to cents, its repeat is 607", [
            send("withdrawal", txId="$T1", amount="10.129", delta="-10.12",
                 echo={"txId": "$T1", "sessionId": "$S"}),
            send("withdrawal", txId="$T1", amount="10.129", status=607, delta="0"),
            send("deposit", txId="$T1", amount="10.12", delta="10.12")]),
        Case("§15.8 withdrawal rules", [
            send("withdrawal", txId="$T1", amount="0", status=400, data="amount must be greater than 0", delta="0"),
            send("withdrawal", txId="$T1", amount="-1", status=400, data="amount must be greater than 0"),
            send("withdrawal", txId="$T1", amount=10, status=400, data="amount must be a string"),
            send("withdrawal", txId="abc", amount="1", status=400, data="txId must be a UUID"),
            send("withdrawal", txId=None, amount="1", status=400, data="txId must be not empty"),
            send("withdrawal", txId="$T1", amount="1", secret=None, status=400, data="secret must be not empty")]),
        Case("§15.9 a bet above the balance is 603 and is never booked", [
            send("withdrawal", txId="$T1", amount="$OVER", status=603, delta="0"),
            send("rollback", txId="$T1", status=605)]),
        Case("§15.10-12 a deposit settles once; a rollback after it is 609", [
            send("withdrawal", txId="$T1", amount="10", delta="-10"),
            send("deposit", txId="$T1", amount="15", delta="15", echo={"sessionId": "$S"}),
            send("deposit", txId="$T1", amount="15", status=609, delta="0"),
            send("rollback", txId="$T1", status=609, delta="0")]),
        Case("§15.13 a lost round: deposit 0", [
            send("withdrawal", txId="$T1", amount="5", delta="-5"),
            send("deposit", txId="$T1", amount="0", delta="0")]),
        Case("§15.14-16 a rollback refunds the bet once; then 608", [
            send("withdrawal", txId="$T1", amount="7.77", delta="-7.77"),
            send("rollback", txId="$T1", delta="7.77"),
            send("rollback", txId="$T1", status=608, delta="0"),
            send("deposit", txId="$T1", amount="1", status=608, delta="0")]),
        Case("§15.17 an unknown txId is 605", [
            send("rollback", txId="$T9", status=605, delta="0"),
            send("deposit", txId="$T9", amount="1", status=605, delta="0")]),
        Case("§15.18 deposit and rollback need no session (100HP's resolver)", [
            send("withdrawal", txId="$T1", amount="3", delta="-3"),
            send("deposit", txId="$T1", amount="3", sessionId=None, delta="3"),
            send("withdrawal", txId="$T2", amount="3", delta="-3"),
            send("rollback", txId="$T2", sessionId=None, delta="3")]),
        Case("§15.19 bonusWin credits once", [
            send("bonusWin", txId="$T1", amount="0.019", promoId="conformance", delta="0.01"),
            send("bonusWin", txId="$T1", amount="0.01", promoId="conformance", status=607, delta="0")]),
        Case("§15.20 parallel identical withdrawals debit once", [parallel_duplicates], concurrent=True),
        Case("§15.20 parallel withdrawals beyond the balance never go negative",
             [parallel_beyond_balance], concurrent=True),
        Case("§15.21 a deposit racing a rollback: exactly one wins", [deposit_racing_rollback],
             concurrent=True),
    ]
    if second_session:
        found += [
            Case("another player's userId is 604", [
                send("withdrawal", txId="$T1", amount="1", userId="$U2", status=604, delta="0")]),
            Case("players are isolated", [
                send("withdrawal", sessionId="$S2", txId="$T1", amount="1", delta="0"),
                send("rollback", txId="$T1", sessionId="$S2", delta="0")]),
        ]
    return found
