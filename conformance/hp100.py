"""100HP conformance: 100HP's side of the Game Flow API (auth, balance, withdrawal, deposit,
rollback, bonusWin), played against any wallet.

Each case is data: requests with the fields that differ from the defaults (the secret and the test
session are added to every request unless a step leaves them out), the status and `data` expected,
and how the player's balance must move (`delta`), checked against the balance the wallet itself
reports. Every answer is also checked for 100HP's format: HTTP status = errCode, an error body
{data, message, errCode} with the message of 100HP's table, JSON content type, balances as strings
with two decimals.

A 702 is never an answer to a call a correct wallet must answer: it fails the case, whoever's rule
the case checks, and the report says which call got it (a lost race on a unique key must be answered
as the duplicate it is). A call the wallet closes the connection on shows the request and the likely
cause (uvicorn drops any status above 599). Amounts carry more than two decimals on every money call,
and one bet is the whole balance.

Where a rule comes from: the provider's documentation (field rules, error codes and their order,
the duplicate rules), or this project's decisions where the documentation is silent (a case with
`ours=`; its failures are warnings unless --strict). A case leaves the balance as it found it: it
settles what it bet, and its clean-up rolls back any bet still open, pass or fail (bonusWin cases
credit a cent each: a win cannot be taken back; the lost round costs a cent).
"""
import json
import threading
from decimal import ROUND_DOWN, Decimal

from .http import CLOSED, NoAnswer, post
from .runner import OURS, PROVIDER, Case, CaseFailed, at_once

# 100HP's error table: errCode -> message (the errCode is also the HTTP status).
MESSAGES = {
    400: "Validation error",
    601: "Invalid secret key",
    603: "Insufficient balance",
    604: "Session not found",
    605: "Transaction not found",
    607: "Transaction already exists",
    608: "Transaction already refunded",
    609: "Transaction already settled",
    702: "Internal Server Error",
}
INTERNAL_ERROR = 702
INTERNAL_ERROR_TEXTS = ("Internal Server Error", "Internal wallet error")  # 702: both appear in the docs
FUNDS_NEEDED = Decimal("20.00")
MASK = "***"


class Target:
    """The wallet under test, as 100HP sees it: a URL, the shared secret, a test player's session.
    It remembers the bets a case left open (a withdrawal answered 200, not yet settled) so that
    the case's clean-up can roll them back."""

    def __init__(self, url, secret, session, timeout=15.0):
        self.url, self.secret, self.session, self.timeout = url.rstrip("/"), secret, session, timeout
        self.user_id = None                       # the test player's userId (from /auth)
        self.second_session = self.second_user = None
        self.blocked_session = self.closed_session = None
        self.open_bets = {}                       # txId as sent -> its sessionId
        self._lock = threading.Lock()

    def call(self, endpoint, fields: dict, raw: bytes | None = None):
        """POST one request: the secret and the test session, then `fields` (None leaves a field
        out). Returns (the request as sent, with a sent secret masked; (status, body, type))."""
        body = {k: v for k, v in {"secret": self.secret, "sessionId": self.session, **fields}.items()
                if v is not None}
        if raw is not None:
            sent = {"endpoint": f"/{endpoint}", "body": raw.decode("utf-8", "replace")}
        else:
            sent = {"endpoint": f"/{endpoint}", **body}
            if body.get("secret") == self.secret:
                sent["secret"] = MASK  # it was sent; its value is not for the report
        try:
            got = post(f"{self.url}/{endpoint}", raw if raw is not None else json.dumps(body).encode(),
                       timeout=self.timeout)
        except NoAnswer as exc:
            exc.sent = sent  # the report shows the request that got no answer
            raise
        self._track(endpoint, body, got[0])
        return sent, got

    @staticmethod
    def no_answer(exc: NoAnswer, expected_status=None) -> str:
        """What the report expects of a call that got no answer, with the likely cause."""
        wanted = "an answer" if expected_status is None else f"HTTP {expected_status}"
        if exc.kind != CLOSED:
            return wanted
        if expected_status is None or expected_status > 599:
            return (f"{wanted}: the connection closed instead. 100HP's errors are HTTP statuses above 599 "
                    "(601-609, 702), and some servers close the connection rather than send one (uvicorn "
                    "does, for any status above 599): send them through a server that writes them, or "
                    "check the wallet's log for the status it could not send")
        return f"{wanted}: the wallet closed the connection without answering (see its log)"

    def _track(self, endpoint, body, status):
        tx_id = body.get("txId")
        if status != 200 or not isinstance(tx_id, str):
            return
        with self._lock:
            if endpoint == "withdrawal":
                self.open_bets[tx_id] = body.get("sessionId")
            elif endpoint in ("deposit", "rollback"):
                settled = [t for t in self.open_bets if t.lower() == tx_id.lower()]
                for t in ([tx_id] if tx_id in self.open_bets else settled[:1]):
                    del self.open_bets[t]

    def balance(self, session=None) -> Decimal:
        sent, got = self.call("balance", {"sessionId": session or self.session})
        status, body, _ = got
        if status != 200 or not isinstance(body, dict) or "balance" not in body:
            raise CaseFailed(sent, got, "200 with the session's balance (is the session still valid?)")
        return Decimal(body["balance"])

    # ---- the runner's hooks ----
    def begin_case(self):
        with self._lock:
            self.open_bets.clear()

    def clean_up(self) -> list[str]:
        """Roll back the bets the case left open; what could not be rolled back, said."""
        left = []
        for tx_id in list(self.open_bets):
            try:
                _, (status, body, _) = self.call("rollback", {"txId": tx_id, "sessionId": None})
            except OSError as exc:
                status, body = None, str(exc)
            if status != 200:
                left.append(f"withdrawal {tx_id}: the clean-up's rollback answered {status} "
                            f"{json.dumps(body, default=str)}")
                self.open_bets.pop(tx_id, None)
        return left


# ---- values in the cases: "$NAME" is resolved per case ---------------------------------------------
def resolve(value, ctx):
    """$T1.. a fresh txId per case ($T1:upper, the same in upper case); $S the test session, $U its
    userId; $S2/$U2 the second player's; $OTHER a userId that is not the test player's; $BLOCKED,
    $CLOSED the sessions given by option; $WRONG a wrong secret; $OVER more than the balance."""
    if not isinstance(value, str) or not value.startswith("$"):
        return value
    t = ctx.target
    named = {"$S": t.session, "$U": t.user_id, "$S2": t.second_session, "$U2": t.second_user,
             "$BLOCKED": t.blocked_session, "$CLOSED": t.closed_session, "$WRONG": "not-the-secret"}
    if value in named:
        return named[value]
    if value == "$OTHER":
        return t.second_user or f"not-{t.user_id}"
    if value == "$OVER":
        return format(t.balance() + 1, "f")
    name, _, form = value[1:].partition(":")
    return ctx.ids[name].upper() if form == "upper" else ctx.ids[name]


class StartsWith(str):
    """An expected `data` text that may go on after these words."""


class OneOf(tuple):
    """An expected `data` that may be any of these texts."""

    def __str__(self):
        return '" or "'.join(self)


# The --closed-session's refusals: closed (close-session, or a port's equivalent) or past its
# lifetime, in this project's texts for each (docs/100hp.md §4.1: auth on it is 604)
NOT_LIVE = OneOf(("session is closed", "session has expired"))


def send(endpoint, status=200, data=None, delta=None, echo=None, has=(), rule=None, data_rule=None,
         money_rule=None, balance_of=None, raw=None, **fields):
    """A step: one request; its expected status, `data` (an error's exact text, StartsWith the
    words it begins with, or OneOf its texts; None: any text),
    the balance move `delta` (of the test player, or of `balance_of`'s session). `rule`,
    `data_rule`, `money_rule`: whose rule each expectation is (default: the case's)."""
    def step(ctx):
        target = ctx.target
        values = {k: resolve(v, ctx) for k, v in fields.items()}
        watched = resolve(balance_of, ctx) if balance_of else target.session
        before = target.balance(watched) if delta is not None else None
        try:
            sent, got = target.call(endpoint, values, raw)
        except NoAnswer as exc:
            raise CaseFailed(exc.sent, f"no answer: {exc}", target.no_answer(exc, status)) from None
        answer_format(ctx, sent, got)
        code, answer, _ = got
        if code == INTERNAL_ERROR != status:
            raise CaseFailed(sent, got, failed_instead(f"HTTP {status} {MESSAGES.get(status, 'OK')}"))
        ctx.check(code == status, sent, got, f"HTTP {status} {MESSAGES.get(status, 'OK')}", rule)
        if status != 200 and code == status and data is not None:
            found = answer.get("data")
            matches = (found.startswith(data) if isinstance(data, StartsWith)
                       else found in data if isinstance(data, OneOf) else found == data)
            ctx.check(matches, sent, got, f'data "{data}{"..." if isinstance(data, StartsWith) else ""}"',
                      data_rule or rule)
        if code == 200:
            for name in has:
                ctx.check(name in answer, sent, got, f"the field {name} in the answer", rule)
            for name, expected in (echo or {}).items():
                expected = resolve(expected, ctx)
                ctx.check(answer.get(name) == expected, sent, got, f"{name} echoed: {expected}", rule)
        if delta is not None:
            same_session = values.get("sessionId", target.session) == watched
            after = (Decimal(answer["balance"]) if code == 200 and same_session
                     else target.balance(watched))
            want = before + Decimal(delta)
            ctx.check(after == want, sent, got,
                      f"balance {want:.2f} ({before:.2f} {'+' if Decimal(delta) >= 0 else '-'} "
                      f"{abs(Decimal(delta)):.2f}; amounts truncated to cents, never rounded), "
                      f"the wallet reports {after:.2f}", money_rule)
    return step


def failed_instead(expected: str) -> str:
    """Why a 702 is a failure, not a refusal (the report says it under the call)."""
    return (f"{expected}, not 702: a correct wallet answers this call, and 702 says the wallet failed "
            "on it (a crash, a lost race on a unique key that was not retried, a database error). "
            "100HP retries or rolls back; it never counts a 702 as an answer")


def answer_format(ctx, sent, got):
    """100HP's format, for every answer (a provider's rule in every case)."""
    code, body, content_type = got
    ctx.check(content_type.startswith("application/json"), sent, got,
              "Content-Type: application/json, on errors too", PROVIDER)
    if code == 200:
        ctx.check(isinstance(body, dict) and isinstance(body.get("balance"), str)
                  and _two_decimals(body["balance"]), sent, got,
                  'balance as a string with two decimals, e.g. "104.23"', PROVIDER)
        return
    message = MESSAGES.get(code)
    ctx.check(isinstance(body, dict) and set(body) == {"data", "message", "errCode"}
              and body["errCode"] == code and isinstance(body["data"], str)
              and (body["message"] == message or code == 702 and body["message"] in INTERNAL_ERROR_TEXTS),
              sent, got, 'an error body {"data": str, "message": <the code\'s message>, "errCode": N} '
              "whose errCode is the HTTP status, N one of 100HP's codes", PROVIDER)


def _two_decimals(text: str) -> bool:
    whole, _, cents = text.lstrip("-").partition(".")
    return whole.isdigit() and len(cents) == 2 and cents.isdigit()


# ---- steps that send several requests at once -----------------------------------------------------
def internal_errors(results, expected: str):
    """Requests sent at once: none may have answered 702 (a lost race must be answered as the
    duplicate it is)."""
    for sent, got in results:
        if got[0] == INTERNAL_ERROR:
            raise CaseFailed(sent, got, failed_instead(expected))


def parallel_duplicates(ctx):
    target = ctx.target
    before = target.balance()
    results = at_once([lambda: target.call("withdrawal", {"txId": ctx.ids["T1"], "amount": "1"})] * 10)
    internal_errors(results, "200 once, then 607 (Transaction already exists)")
    statuses = sorted(got[0] for _, got in results)
    ctx.check(statuses == [200] + [607] * 9, results[0][0], statuses, "one 200 and nine 607")
    ctx.check(target.balance() == before - 1, None, str(target.balance()), f"balance {before - 1}: one debit")


def parallel_rollbacks(ctx):
    target = ctx.target
    send("withdrawal", txId="$T1", amount="3", delta="-3")(ctx)
    before = target.balance()
    results = at_once([lambda: target.call("rollback", {"txId": ctx.ids["T1"]})] * 10)
    internal_errors(results, "200 once, then 608 (Transaction already refunded)")
    statuses = sorted(got[0] for _, got in results)
    ctx.check(statuses == [200] + [608] * 9, results[0][0], statuses, "one 200 and nine 608")
    ctx.check(target.balance() == before + 3, None, str(target.balance()), f"balance {before + 3}: one refund")


def parallel_beyond_balance(ctx):
    target = ctx.target
    before = target.balance()
    amount = (before / 4).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    names = [f"P{i}" for i in range(6)]
    results = at_once([lambda n=n: target.call("withdrawal", {"txId": ctx.ids[n], "amount": str(amount)})
                       for n in names])
    internal_errors(results, "200, or 603 (Insufficient balance)")
    statuses = [got[0] for _, got in results]
    after = target.balance()
    ctx.check(sorted(statuses) == [200] * 4 + [603] * 2, results[0][0], statuses,
              f"four 200 and two 603: six bets of {amount} on a balance of {before}")
    ctx.check(after == before - 4 * amount, None, str(after), f"balance {before - 4 * amount}")


def parallel_settles(endpoint, duplicate):
    """Ten identical settling calls at once (deposit on a bet, or bonusWin): one 200, nine `duplicate`."""
    def run(ctx):
        target = ctx.target
        if endpoint == "deposit":  # a win of the stake: the case ends where it started
            send("withdrawal", txId="$T1", amount="2", delta="-2")(ctx)
            fields = {"txId": ctx.ids["T1"], "amount": "2"}
        else:
            fields = {"txId": ctx.ids["T1"], "amount": "0.01", "promoId": "conformance"}
        before = target.balance()
        results = at_once([lambda: target.call(endpoint, fields)] * 10)
        internal_errors(results, f"200 once, then {duplicate} ({MESSAGES[duplicate]})")
        statuses = sorted(got[0] for _, got in results)
        ctx.check(statuses == [200] + [duplicate] * 9, results[0][0], statuses, f"one 200 and nine {duplicate}")
        credit = Decimal(fields["amount"])
        ctx.check(target.balance() == before + credit, None, str(target.balance()),
                  f"balance {before + credit}: one credit")
    return run


def whole_balance(ctx):
    """A bet of exactly the balance is taken (the balance becomes 0.00), then rolled back."""
    before = ctx.target.balance()
    send("withdrawal", txId="$T1", amount=f"{before:.2f}", delta=f"-{before}")(ctx)
    send("rollback", txId="$T1", delta=f"{before}")(ctx)


def deposit_racing_rollback(ctx):
    target = ctx.target
    send("withdrawal", txId="$T1", amount="2", delta="-2")(ctx)
    before = target.balance()
    results = at_once([lambda: target.call("deposit", {"txId": ctx.ids["T1"], "amount": "2"}),
                       lambda: target.call("rollback", {"txId": ctx.ids["T1"]})])
    internal_errors(results, "200 for the winner; 609 or 608 for the loser")
    (_, deposit), (_, rollback) = results
    outcome = (deposit[0], rollback[0])
    ctx.check(outcome in ((200, 609), (608, 200)), None, outcome,
              "exactly one wins; the loser names the winner: (200, 609) or (608, 200)")
    ctx.check(target.balance() == before + 2, None, str(target.balance()), f"balance {before + 2}")


def not_json(endpoint, raw: bytes):
    return send(endpoint, status=400, raw=raw)


# ---- the cases ----------------------------------------------------------------------------------------
P = PROVIDER  # a step of a decision case that checks a provider's rule


def cases() -> list:
    W, D, R, B = "withdrawal", "deposit", "rollback", "bonusWin"
    return [
        # auth and balance
        Case("auth returns the player", [send("auth", has=("userId", "currency", "balance", "userName"))],
             "100HP §4.1"),
        Case("balance returns the balance", [send("balance", has=("userId", "currency", "balance"))],
             "100HP §4.2"),
        Case("a wrong secret is 601", [send("auth", secret="$WRONG", status=601),
                                       send(W, txId="$T1", amount="1", secret="$WRONG", status=601,
                                            delta="0")],
             "100HP §3.2, §3.6"),
        Case("an unknown session is 604", [send("auth", sessionId="$T9", status=604),
                                           send(W, sessionId="$T9", txId="$T1", amount="1", status=604)],
             "100HP §4.1, §4.3"),
        Case("secret rules", [
            send("auth", secret=None, status=400, data="secret must be not empty"),
            send("auth", secret=12345, status=400, data="secret must be a string"),
            send(W, txId="$T1", amount="1", secret=None, status=400, data="secret must be not empty",
                 delta="0")],
            "100HP §4.1, §4.3 (their rule texts)"),
        Case("sessionId rules", [
            send("auth", sessionId=None, status=400, data="sessionId must be not empty"),
            send("auth", sessionId="s" * 256, status=400, data="sessionId must be <= 255 characters"),
            send("auth", sessionId=12345, status=400, data="sessionId must be a string"),
            send(W, sessionId=None, txId="$T1", amount="1", status=400, data="sessionId must be not empty"),
            send(B, sessionId="s" * 256, txId="$T1", amount="1", promoId="p", status=400,
                 data="sessionId must be <= 255 characters", delta="0")],
            "100HP §3.4, §4.1-§4.3, §4.6 (their rule texts)"),
        Case("a body that is not a JSON object is 400", [
            not_json("auth", b"not json"), not_json(W, b"[1, 2]"), not_json(D, b'"text"')],
            "100HP §3.1, §3.6"),

        # withdrawal
        Case("a withdrawal truncates to cents; its repeat is 607", [
            send(W, txId="$T1", amount="10.129", delta="-10.12", echo={"txId": "$T1", "sessionId": "$S"}),
            send(W, txId="$T1", amount="10.129", status=607, delta="0"),
            send(D, txId="$T1", amount="10.12", delta="10.12")],
            "100HP §3.3, §3.7, §4.3"),
        Case("withdrawal rules", [
            send(W, txId="$T1", amount="0", status=400, data="amount must be greater than 0", delta="0"),
            send(W, txId="$T1", amount="-1", status=400, data="amount must be greater than 0"),
            send(W, txId="$T1", amount="abc", status=400, data="amount must be greater than 0"),
            send(W, txId="$T1", amount=10, status=400, data="amount must be a string"),
            send(W, txId="$T1", amount=None, status=400, data="amount must be not empty"),
            send(W, txId="abc", amount="1", status=400, data="txId must be a UUID"),
            send(W, txId=None, amount="1", status=400, data="txId must be not empty", delta="0")],
            "100HP §4.3 (its rule texts)"),
        Case("a bet of exactly the whole balance is taken", [whole_balance], "100HP §3.6 (603 only above it), §4.3"),
        Case("a bet above the balance is 603 and is never booked", [
            send(W, txId="$T1", amount="$OVER", status=603, delta="0"),
            send(R, txId="$T1", status=605)],
            "100HP §3.6, §4.3"),

        Case("amounts past two decimals are truncated on every money call", [
            send(W, txId="$T1", amount="2.999999", delta="-2.99"),
            send(D, txId="$T1", amount="2.999999", delta="2.99"),
            send(W, txId="$T2", amount="1.23456789", delta="-1.23"),
            send(D, txId="$T2", amount="1.23999", delta="1.23"),
            send(W, txId="$T3", amount="0.019", delta="-0.01"),
            send(R, txId="$T3", delta="0.01"),
            send(B, txId="$T4", amount="0.0199999", promoId="conformance", delta="0.01")],
            "100HP §3.3 (cut off, not rounded, on every amount)"),

        # deposit
        Case("a deposit settles once; a rollback after it is 609", [
            send(W, txId="$T1", amount="10", delta="-10"),
            send(D, txId="$T1", amount="10", delta="10", echo={"sessionId": "$S"}),
            send(D, txId="$T1", amount="10", status=609, delta="0"),
            send(R, txId="$T1", status=609, delta="0")],
            "100HP §3.7, §4.4"),
        Case("a lost round: deposit 0", [send(W, txId="$T1", amount="0.01", delta="-0.01"),
                                         send(D, txId="$T1", amount="0", delta="0"),
                                         send(R, txId="$T1", status=609, delta="0")],
             "100HP §6.3"),
        Case("deposit rules: nothing is credited for a bad request", [
            send(W, txId="$T1", amount="5", delta="-5"),
            send(D, txId="$T1", amount="-1", status=400, data="amount must be greater than or equal to 0",
                 delta="0"),
            send(D, txId="$T1", amount="abc", status=400, data="amount must be greater than or equal to 0"),
            send(D, txId="$T1", amount=5, status=400, data="amount must be a string"),
            send(D, txId="$T1", amount=None, status=400, data="amount must be not empty"),
            send(D, txId=None, amount="5", status=400, data="txId must be not empty"),
            send(D, txId="abc", amount="5", status=400, data="txId must be a UUID"),
            send(D, txId="0" * 51, amount="5", status=400, data="txId must be <= 50 characters", delta="0"),
            send(D, txId="$T1", amount="5.009", delta="5")],
            "100HP §3.3, §4.4 (its rule texts)"),
        Case("a deposit on a bonusWin's txId is 605, and so is a rollback", [
            send(B, txId="$T1", amount="0.01", promoId="conformance", delta="0.01"),
            send(D, txId="$T1", amount="1", status=605, delta="0"),
            send(R, txId="$T1", status=605, delta="0")],
            "100HP §3.6 (605: no withdrawal with that txId), §4.4, §4.5"),

        # rollback
        Case("a rollback refunds the bet once; then 608", [
            send(W, txId="$T1", amount="7.77", delta="-7.77"),
            send(R, txId="$T1", delta="7.77", echo={"sessionId": "$S"}),
            send(R, txId="$T1", status=608, delta="0"),
            send(D, txId="$T1", amount="1", status=608, delta="0")],
            "100HP §3.7, §4.5"),
        Case("a rollback refunds the stored bet, whatever amount its request carries", [
            send(W, txId="$T1", amount="1.50", delta="-1.50"),
            send(R, txId="$T1", amount="100", delta="1.50")],
            "100HP §4.5 (a rollback has no amount: it cancels the withdrawal)"),
        Case("rollback rules", [
            send(W, txId="$T1", amount="1", delta="-1"),
            send(R, txId=None, status=400, data="txId must be not empty", delta="0"),
            send(R, txId="abc", status=400, data="txId must be a UUID"),
            send(R, txId="0" * 51, status=400, data="txId must be <= 50 characters", delta="0"),
            send(R, txId="$T1", delta="1")],
            "100HP §4.5 (its rule texts)"),
        Case("an unknown txId is 605", [send(R, txId="$T9", status=605, delta="0"),
                                        send(D, txId="$T8", amount="1", status=605, delta="0")],
             "100HP §3.6, §4.4, §4.5"),
        Case("deposit and rollback need no session", [
            send(W, txId="$T1", amount="3", delta="-3"),
            send(D, txId="$T1", amount="3", sessionId=None, delta="3"),
            send(W, txId="$T2", amount="3", delta="-3"),
            send(R, txId="$T2", sessionId=None, delta="3", echo={"sessionId": "$S"})],
            "100HP §3.6, §4.4, §4.5 (604 is not among their errors), §6.6"),

        # bonusWin
        Case("bonusWin credits once", [
            send(B, txId="$T1", amount="0.019", promoId="conformance", delta="0.01", echo={"sessionId": "$S"}),
            send(B, txId="$T1", amount="0.01", promoId="conformance", status=607, delta="0")],
            "100HP §3.3, §3.7, §4.6"),
        Case("bonusWin rules: nothing is credited for a bad request", [
            send(B, txId="$T1", amount="0.01", promoId=None, status=400, data="promoId must be not empty",
                 delta="0"),
            send(B, txId="$T1", amount="0", promoId="p", status=400, data="amount must be greater than 0"),
            send(B, txId="abc", amount="0.01", promoId="p", status=400, data="txId must be a UUID", delta="0")],
            "100HP §4.6 (its rule texts)"),

        # the project's decisions where 100HP publishes none
        Case("a bad field with a wrong secret: 400 wins", [
            send("auth", sessionId="s" * 256, secret="$WRONG", status=400,
                 data="sessionId must be <= 255 characters"),
            send(W, txId="$T1", amount="0", secret="$WRONG", status=400,
                 data="amount must be greater than 0", delta="0", money_rule=P),
            send(D, txId="abc", amount="1", secret="$WRONG", status=400, data="txId must be a UUID")],
            "100HP §3.8, §9.1", ours="fields are validated before the secret is compared"),
        Case("withdrawal and bonusWin name their player: theirs is accepted, another's is 604", [
            send(W, txId="$T1", amount="1", userId="$U", delta="-1", rule=P, money_rule=P),
            send(W, txId="$T2", amount="1", userId="$OTHER", status=604, delta="0"),
            send(B, txId="$T3", amount="0.01", promoId="p", userId="$OTHER", status=604, delta="0"),
            send(R, txId="$T1", userId="$U", delta="1", rule=P, money_rule=P)],
            "100HP §3.4, §9.2, §10 (userId since 2.9.1)",
            ours="a userId that is not the session's player is 604"),
        Case("deposit and rollback name their player: another's userId is 605", [
            send(W, txId="$T1", amount="2", delta="-2", rule=P, money_rule=P),
            send(D, txId="$T1", amount="2", userId="$OTHER", status=605, delta="0"),
            send(R, txId="$T1", userId="$OTHER", status=605, delta="0"),
            send(D, txId="$T1", amount="2", userId="$U", delta="2")],
            "100HP §3.4, §9.2, §10 (userId since 2.9.1)",
            ours="a userId that is not the bet's player is 605"),
        Case("a rollback before its withdrawal: 605, then the withdrawal books nothing", [
            send(R, txId="$T1", status=605, delta="0", rule=P),
            send(W, txId="$T1", amount="4", status=608,
                 data="txId was rolled back before this withdrawal arrived", delta="0", money_rule=P),
            send(R, txId="$T1", status=605, delta="0")],
            "100HP §3.6 (605), §6.5, §9.3",
            ours="the late withdrawal answers 608 and its data text; a money move is a failure: "
                 "100HP considers that bet rolled back"),
        Case("field limits: userId and promoId at most 255 characters", [
            send(W, txId="$T1", amount="1", userId="u" * 256, status=400, data="userId must be <= 255 characters",
                 rule=P, data_rule=OURS, delta="0", money_rule=P),
            send(B, txId="$T2", amount="0.01", promoId="p" * 256, status=400,
                 data="promoId must be <= 255 characters", delta="0")],
            "100HP §3.4 (userId at most 255), §9.1", ours="the data texts; promoId's limit (255)"),
        Case("text no database can store (a lone surrogate, NUL) is 400", [
            send("auth", sessionId="\ud800", status=400, data=StartsWith("sessionId must be valid UTF-8 text")),
            send(W, txId="$T1", amount="1", userId="a\x00b", status=400, delta="0"),
            send(B, txId="$T2", amount="0.01", promoId="promo\ud800", status=400,
                 data=StartsWith("promoId must be valid UTF-8 text"), delta="0"),
            send(B, txId="$T3", amount="0.01", promoId="promo\x00", status=400, delta="0")],
            "100HP §9.1", ours="such text is refused 400, \"<field> must be valid UTF-8 text...\""),
        Case("a txId in upper case is the same transaction", [
            send(W, txId="$T1", amount="2", delta="-2", rule=P, money_rule=P),
            send(W, txId="$T1:upper", amount="2", status=607, delta="0"),
            send(D, txId="$T1:upper", amount="2", delta="2"),
            send(R, txId="$T1", status=609, delta="0")],
            "100HP §3.4, §9.3", ours="txIds compared case-insensitively (a UUID's hex digits)"),

        # players and sessions the operator passes in
        Case("a blocked player: auth and balance answer, a bet is 604, a bonusWin pays", [
            send("auth", sessionId="$BLOCKED", echo={"status": "blocked"}),
            send("balance", sessionId="$BLOCKED"),
            send(W, sessionId="$BLOCKED", txId="$T1", amount="0.01", status=604, data="player is blocked",
                 delta="0", balance_of="$BLOCKED"),
            send(B, sessionId="$BLOCKED", txId="$T2", amount="0.01", promoId="conformance", delta="0.01",
                 balance_of="$BLOCKED")],
            "100HP §4.1 (status blocked), §9.2", ours="a blocked player takes no new stakes; wins still pay",
            needs="--blocked-session"),
        Case("a closed session: auth, balance and bets are 604; deposits, rollbacks, bonusWins settle", [
            send("auth", sessionId="$CLOSED", status=604, data=NOT_LIVE),
            send("balance", sessionId="$CLOSED", status=604, data=NOT_LIVE),
            send(W, sessionId="$CLOSED", txId="$T1", amount="0.01", status=604, data=NOT_LIVE,
                 delta="0"),
            send(W, txId="$T2", amount="1", delta="-1", rule=P, money_rule=P),
            send(D, txId="$T2", amount="1", sessionId="$CLOSED", delta="1", rule=P, money_rule=P),
            send(W, txId="$T3", amount="1", delta="-1", rule=P, money_rule=P),
            send(R, txId="$T3", sessionId="$CLOSED", delta="1", rule=P, money_rule=P),
            send(B, sessionId="$CLOSED", txId="$T4", amount="0.01", promoId="conformance", delta="0.01")],
            "100HP §4.4, §4.5 (deposits and rollbacks need no session), §9.2",
            ours="a closed session takes no new stakes; auth and balance are 604; a bonusWin pays",
            needs="--closed-session"),

        # two players
        Case("players are isolated", [
            send(W, sessionId="$S2", txId="$T1", amount="1", delta="0"),
            send(R, txId="$T1", sessionId="$S2", delta="0")],
            "100HP §4.3, §4.5", needs="--second-session"),

        # concurrency
        Case("10 parallel identical withdrawals debit once", [parallel_duplicates], "100HP §3.7 (607)",
             concurrent=True),
        Case("10 parallel rollbacks refund once", [parallel_rollbacks], "100HP §3.7 (608)", concurrent=True),
        Case("parallel withdrawals beyond the balance never go negative", [parallel_beyond_balance],
             "100HP §3.6 (603)", concurrent=True),
        Case("10 parallel identical deposits settle once", [parallel_settles(D, 609)], "100HP §3.7 (609)",
             concurrent=True),
        Case("10 parallel identical bonusWins credit once", [parallel_settles(B, 607)], "100HP §3.7 (607), §4.6",
             concurrent=True),
        Case("a deposit racing a rollback: exactly one wins", [deposit_racing_rollback], "100HP §3.7",
             concurrent=True),
        # last: a wallet without this rule credits almost 1e18, which no clean-up can take back
        Case("a credit past the wallet's limit is 400 and credits nothing", [
            send(W, txId="$T1", amount="1", delta="-1", rule=P, money_rule=P),
            send(D, txId="$T1", amount="999999999999999999", status=400,
                 data="amount would take the balance over the wallet's limit", delta="0"),
            send(D, txId="$T1", amount="1", delta="1")],
            "100HP §9.1", ours="a balance stays below 1e18 (18 integer digits)"),
    ]
