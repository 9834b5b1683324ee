"""Proof by mutants: the kit catches deliberately broken wallets, and names the cases that show it.

Each mutant has one bug. 100HP mutants are small subclasses of the in-memory model (TestCasino,
with the rules of wallet/hp100/casino.py) or one patched rule of the blueprint; Hash mutants are this
SQL wallet on SQLite with one rule function patched. Mistakes a port makes in front of its rules
(a lost race answered 5000, a re-send refused, an error code rewritten) are a WSGI middleware in
front of a correct wallet (`Mutant`), which does not depend on how the wallet is written. Each is
served over real HTTP and the kit runs against it as against any wallet; the test asserts which
cases fail (FAIL: a provider's rule) or warn (WARN: a decision of this project's, a failure with
--strict), and that nothing else does.
"""
import contextlib
import io
import json
import threading
import time
import uuid
from decimal import ROUND_HALF_UP, Decimal
from types import SimpleNamespace

import pytest
from conftest import HASH_SECRET, TEST_CONFIG, init_schema, new_player
from flask import request
from test_conformance import (AWAITING_HASHRULES, CaseSensitive, all_sessions, hash_args, hp_args, kit,
                              memory_wallet, not_passed, serve)

from wallet.app import create_app
from conformance.envelope import seal, unseal
from wallet.core import money
from wallet.hash import blueprint as hash_api
from wallet.hash import fields as hash_fields
from wallet.hash import orders as hash_orders
from wallet.hp100 import blueprint as hp
from wallet.hp100 import fields as hp_fields
from wallet.hp100.casino import MESSAGES, OPEN, REFUNDED, WITHDRAWAL, CasinoError
from wallet.hp100.testcasino import TestCasino


# ---- a bug in front of a correct wallet ------------------------------------------------------------
class Mutant:
    """WSGI middleware with one bug. `before(path, body)` may answer instead of the wallet
    ((status, answer)) or change the body (bytes); `after(path, body, status, answer)` may change
    the wallet's answer ((status, answer)). Either returns None to leave things as they are."""

    def __init__(self, app, before=None, after=None):
        self.app, self.before, self.after = app, before, after

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        path = environ["PATH_INFO"]
        decided = self.before(path, body) if self.before else None
        if isinstance(decided, bytes):
            body, decided = decided, None
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        if decided is None:
            captured = []
            answer = b"".join(self.app(environ, lambda status, headers, exc_info=None: captured.append(status)))
            status, answer = int(captured[0].split()[0]), json.loads(answer)
            decided = (self.after and self.after(path, body, status, answer)) or (status, answer)
        status, answer = decided
        start_response(f"{status} MUTANT", [("Content-Type", "application/json")])
        return [json.dumps(answer).encode()]


def in_front(mutant_of):
    """A patch (monkeypatch, app) that puts `mutant_of(app.wsgi_app)` in front of the wallet."""
    def patch(monkeypatch, app):
        app.wsgi_app = mutant_of(app.wsgi_app)
    return patch


class LosesRaces:
    """`before`: a request arriving while one with the same key is in flight answers `failure`,
    as a port does that inserts without a lock and does not retry the unique-key error it gets."""

    def __init__(self, key_of, failure):
        self.key_of, self.failure, self.in_flight, self.lock = key_of, failure, set(), threading.Lock()

    def __call__(self, app):
        def before(path, body):
            key = self.key_of(path, body)
            if key is None:
                return None
            with self.lock:
                if key in self.in_flight:
                    return self.failure
                self.in_flight.add(key)
            time.sleep(0.3)  # the window the twins fall into (they are sent at once)
            return None

        def after(path, body, status, answer):
            with self.lock:
                self.in_flight.discard(self.key_of(path, body))
        return Mutant(app, before, after)


# ---- 100HP mutants: one bug each -------------------------------------------------------------------
class IgnoresUserIdOnSettle(TestCasino):
    """Deposit and rollback do not check that userId is the bet's player."""

    def deposit(self, tx_id, amount, session_id=None, user_id=None):
        return super().deposit(tx_id, amount, session_id)

    def rollback(self, tx_id, session_id=None, user_id=None):
        return super().rollback(tx_id, session_id)


class BonusWinIsAnOpenBet(TestCasino):
    """A bonusWin is stored like a withdrawal that is still open: a deposit on its txId pays again."""

    def bonus_win(self, session_id, tx_id, amount, promo_id, user_id=None):
        answer = super().bonus_win(session_id, tx_id, amount, promo_id, user_id)
        key = tx_id.lower()
        self.bets[key] = self.bets[key]._replace(kind=WITHDRAWAL, status=OPEN)
        return answer


class NoLock(TestCasino):
    """No lock: an operation reads the balance, and writes the balance it read plus the move (a
    write that takes as long as a database's lets another call read the same balance)."""

    def __init__(self):
        super().__init__()
        self._lock = contextlib.nullcontext()  # a failed call is still undone: only the lock is gone

    def move(self, store, wallet, amount, op, tx_id):
        time.sleep(0.02)
        self.wallets[wallet.id] = wallet._replace(balance=wallet.balance + amount)
        return wallet.balance + amount

    def add_bet(self, store, bet):
        time.sleep(0.02)  # a booking takes as long too: another call finds the txId still free
        super().add_bet(store, bet)


class RollbackRefundsTheRequestAmount(TestCasino):
    """A rollback refunds the amount its request carries, if any, instead of the bet's (served
    with `keeps_the_body`, so that it can read the request)."""

    def move(self, store, wallet, amount, op, tx_id):
        sent = (request.get_json(silent=True) or {}).get("amount")
        if op == "rollback" and sent:
            amount = Decimal(sent)
        return super().move(store, wallet, amount, op, tx_id)


class ForgetsEarlyRollbacks(TestCasino):
    """A rollback of an unknown txId answers 605 and forgets it: the late withdrawal is booked."""

    def rollback(self, tx_id, session_id=None, user_id=None):
        if self.find_bet(None, tx_id.lower()) is None:
            raise CasinoError(605)
        return super().rollback(tx_id, session_id, user_id)


class RefundsTwice(TestCasino):
    """A rollback does not close the bet: a repeated rollback refunds again."""

    def close_bet(self, store, tx_id, status, win_amount=None):
        if status != REFUNDED:
            super().close_bet(store, tx_id, status, win_amount)


class SettlesTwice(TestCasino):
    """A deposit does not close the bet: the resolver's repeated deposit pays again."""

    def close_bet(self, store, tx_id, status, win_amount=None):
        if status == REFUNDED:
            super().close_bet(store, tx_id, status, win_amount)


class DepositNeedsALiveSession(TestCasino):
    """A deposit is refused (604) without a live session, as if it were a bet."""

    def deposit(self, tx_id, amount, session_id=None, user_id=None):
        if session_id is None:
            raise CasinoError(604)
        self.atomically(lambda store: self._live_session(store, session_id), write=False)
        return super().deposit(tx_id, amount, session_id, user_id)


class BlockedPlayersBet(TestCasino):
    """A blocked player's bets are taken (a decision of ours that they are not)."""

    def find_session(self, store, session_id, lock=False):
        session = super().find_session(store, session_id, lock)
        return session and session._replace(status="active")


class BalanceAsNumber(TestCasino):
    """/balance answers the balance as a JSON number."""

    def balance(self, session_id):
        answer = super().balance(session_id)
        return {**answer, "balance": float(answer["balance"])}


class RefusesTheWholeBalance(TestCasino):
    """A bet of exactly the balance is 603 (`balance <= amount` where `<` was meant)."""

    def move(self, store, wallet, amount, op, tx_id):
        if op == WITHDRAWAL and wallet.balance + amount == 0:
            raise CasinoError(603)
        return super().move(store, wallet, amount, op, tx_id)


class WithdrawalIgnoresUserId(TestCasino):
    def withdrawal(self, session_id, tx_id, amount, user_id=None):
        return super().withdrawal(session_id, tx_id, amount)


# Patches of the field rules (wallet/hp100/fields.py): the mistakes a port makes in its validation.
def rounds_amounts(monkeypatch, app):
    monkeypatch.setattr(money, "truncate_cents", lambda v: v.quantize(Decimal("0.01"), ROUND_HALF_UP))


def errors_as_200(monkeypatch, app):
    @app.after_request
    def everything_is_200(response):
        response.status_code = 200
        return response


def promo_id_optional(monkeypatch, app):
    rules = [hp_fields.text("promoId", required=False, max_len=255) if r.field == "promoId" else r
             for r in hp_fields.RULES["bonusWin"]]
    monkeypatch.setitem(hp_fields.RULES, "bonusWin", rules)


def user_id_unbounded(monkeypatch, app):
    for endpoint, rules in hp_fields.RULES.items():
        monkeypatch.setitem(hp_fields.RULES, endpoint, [hp_fields.text("userId", required=False) if r.field == "userId" else r
                                                 for r in rules])


def keeps_the_body(monkeypatch, app):
    @app.before_request
    def read_once():
        request.get_data()  # read and cached: the casino can read it too


def secret_before_fields(monkeypatch, app):
    honest = hp.validated

    def validated(endpoint):
        body = request.get_json(silent=True)
        secret = body.get("secret") if isinstance(body, dict) else None
        if isinstance(secret, str) and secret and secret != TEST_CONFIG["HP_SECRET"]:
            raise CasinoError(601)
        return honest(endpoint)
    monkeypatch.setattr(hp, "validated", validated)


def wrong_message(monkeypatch, app):
    monkeypatch.setitem(MESSAGES, 607, "Duplicate transaction")


def negative_deposits(monkeypatch, app):
    def amount(body):
        value = body.get("amount")
        if not isinstance(value, str):
            raise CasinoError(400, "amount must be a string" if value is not None else "amount must be not empty")
        return money.truncate_cents(Decimal(value))  # "-1" is taken, and debits
    amount.field = "amount"
    monkeypatch.setitem(hp_fields.RULES, "deposit", [amount if r.field == "amount" else r for r in hp_fields.RULES["deposit"]])


def deposits_not_truncated(monkeypatch, app):
    def amount(body):
        value = body.get("amount")
        if not isinstance(value, str):
            raise CasinoError(400, "amount must be a string" if value is not None else "amount must be not empty")
        if not value.replace(".", "", 1).isdigit():
            raise CasinoError(400, "amount must be greater than or equal to 0")
        return Decimal(value)  # "2.999999" credits 2.999999: only the balance shown is cut to cents
    amount.field = "amount"
    monkeypatch.setitem(hp_fields.RULES, "deposit", [amount if r.field == "amount" else r for r in hp_fields.RULES["deposit"]])


HP_INTERNAL_ERROR = (702, {"data": "", "message": "Internal Server Error", "errCode": 702})


def hp_tx(path, body):
    """The key of a 100HP money call: its endpoint and txId."""
    fields = json.loads(body or b"{}")
    return (path, str(fields.get("txId")).lower()) if isinstance(fields, dict) and "txId" in fields else None


def unknown_tx_is_702(app):
    """A txId that is not found answers 702 (the port's lookup raised), not 605."""
    return Mutant(app, after=lambda path, body, status, answer: HP_INTERNAL_ERROR if status == 605 else None)


DEPOSIT_USERID = "deposit and rollback name their player: another's userId is 605"
WITHDRAWAL_USERID = "withdrawal and bonusWin name their player: theirs is accepted, another's is 604"
RACES = {"10 parallel identical withdrawals debit once", "10 parallel rollbacks refund once",
         "10 parallel identical deposits settle once", "10 parallel identical bonusWins credit once",
         "parallel withdrawals beyond the balance never go negative",
         "a deposit racing a rollback: exactly one wins"}
EVERY_CASE = "every case"
# name: (the broken casino, a patch of the blueprint, the cases that catch it and their verdicts,
#        cases that may catch it too, depending on how requests interleave)
MUTANTS_100HP = {
    "deposit and rollback ignore userId": (IgnoresUserIdOnSettle, None, {
        DEPOSIT_USERID: "WARN"}, ()),
    "promoId is optional": (TestCasino, promo_id_optional, {
        "bonusWin rules: nothing is credited for a bad request": "FAIL"}, ()),
    "a deposit on a bonusWin's txId pays": (BonusWinIsAnOpenBet, None, {
        "a deposit on a bonusWin's txId is 605, and so is a rollback": "FAIL"}, ()),
    "amounts rounded, not truncated": (TestCasino, rounds_amounts, {
        "a withdrawal truncates to cents; its repeat is 607": "FAIL",
        "deposit rules: nothing is credited for a bad request": "FAIL", "bonusWin credits once": "FAIL",
        "amounts past two decimals are truncated on every money call": "FAIL"}, ()),
    "errors answered HTTP 200": (TestCasino, errors_as_200, {
        "a wrong secret is 601": "FAIL", "an unknown txId is 605": "FAIL", "secret rules": "FAIL",
        "a withdrawal truncates to cents; its repeat is 607": "FAIL"}, EVERY_CASE),
    "no lock: concurrent calls overdraw": (NoLock, None, {
        "parallel withdrawals beyond the balance never go negative": "FAIL",
        "10 parallel identical withdrawals debit once": "FAIL"}, RACES),
    "a rollback refunds the request's amount": (RollbackRefundsTheRequestAmount, keeps_the_body, {
        "a rollback refunds the stored bet, whatever amount its request carries": "FAIL"}, ()),
    "a wrong message text": (TestCasino, wrong_message, {
        "a withdrawal truncates to cents; its repeat is 607": "FAIL", "bonusWin credits once": "FAIL",
        "a txId in upper case is the same transaction": "FAIL"}, ()),
    "601 before 400": (TestCasino, secret_before_fields, {"a bad field with a wrong secret: 400 wins": "WARN"}, ()),
    "txIds case-sensitive": (CaseSensitive, None, {"a txId in upper case is the same transaction": "WARN"}, ()),
    "a late withdrawal is booked after its rollback": (ForgetsEarlyRollbacks, None, {
        "a rollback before its withdrawal: 605, then the withdrawal books nothing": "FAIL"}, ()),
    "a repeated rollback refunds again": (RefundsTwice, None, {
        "a rollback refunds the bet once; then 608": "FAIL", "10 parallel rollbacks refund once": "FAIL"}, RACES),
    "a repeated deposit pays again": (SettlesTwice, None, {
        "a deposit settles once; a rollback after it is 609": "FAIL", "a lost round: deposit 0": "FAIL",
        "a txId in upper case is the same transaction": "WARN"}, RACES),
    "a deposit needs a live session": (DepositNeedsALiveSession, None, {
        "deposit and rollback need no session": "FAIL",
        "a closed session: auth, balance and bets are 604; deposits, rollbacks, bonusWins settle": "FAIL"}, ()),
    "a blocked player may bet": (BlockedPlayersBet, None, {
        "a blocked player: auth and balance answer, a bet is 604, a bonusWin pays": "WARN"}, ()),
    "the balance as a JSON number": (BalanceAsNumber, None, {
        "balance returns the balance": "FAIL",
        "a blocked player: auth and balance answer, a bet is 604, a bonusWin pays": "FAIL"}, ()),
    "a withdrawal ignores userId": (WithdrawalIgnoresUserId, None, {WITHDRAWAL_USERID: "WARN"}, ()),
    "userId of any length": (TestCasino, user_id_unbounded, {
        "field limits: userId and promoId at most 255 characters": "FAIL"}, ()),
    "a negative deposit is taken": (TestCasino, negative_deposits, {
        "deposit rules: nothing is credited for a bad request": "FAIL"}, ()),
    # issue 29
    "a bet of the whole balance is refused": (RefusesTheWholeBalance, None, {
        "a bet of exactly the whole balance is taken": "FAIL"},
        {"parallel withdrawals beyond the balance never go negative"}),
    "deposits not truncated to cents": (TestCasino, deposits_not_truncated, {
        "amounts past two decimals are truncated on every money call": "FAIL"},
        {"deposit rules: nothing is credited for a bad request"}),
    "a lost race on a txId answered 702": (TestCasino, in_front(LosesRaces(hp_tx, HP_INTERNAL_ERROR)), {
        "10 parallel identical withdrawals debit once": "FAIL", "10 parallel rollbacks refund once": "FAIL",
        "10 parallel identical deposits settle once": "FAIL", "10 parallel identical bonusWins credit once": "FAIL"},
        RACES),
    "an unknown txId answered 702": (TestCasino, in_front(unknown_tx_is_702), {
        "an unknown txId is 605": "FAIL", DEPOSIT_USERID: "FAIL",  # a decision's case: FAIL, not WARN
        "a bet above the balance is 603 and is never booked": "FAIL",
        "a deposit on a bonusWin's txId is 605, and so is a rollback": "FAIL",
        "a rollback before its withdrawal: 605, then the withdrawal books nothing": "FAIL"}, ()),
}
ONLY_100HP = {"a lost race on a txId answered 702": "parallel"}  # its 0.3 s per call: only where it shows


@pytest.mark.parametrize("name", MUTANTS_100HP)
def test_the_kit_catches_a_broken_100hp_wallet(name, tmp_path, monkeypatch):
    casino_class, patch, expected, maybe = MUTANTS_100HP[name]
    only = ("--only", ONLY_100HP[name]) if name in ONLY_100HP else ()
    with memory_wallet(tmp_path, casino_class(), lambda app: patch and patch(monkeypatch, app)) as (base, _, ids):
        status, out, _ = kit(*hp_args(base, ids, *all_sessions(ids), "--json", *only))
    found = not_passed(out)
    assert status == (1 if "FAIL" in found.values() else 0)
    assert expected.items() <= found.items(), found
    if maybe != EVERY_CASE:
        assert set(found) - set(expected) <= set(maybe), found


# ---- Hash mutants: this SQL wallet on SQLite with one rule patched -------------------------------
def settles_again(monkeypatch, app):
    monkeypatch.setattr(hash_orders, "FINAL", (hash_orders.FAILED, hash_orders.CANCELLED))  # 1 is not final


def any_merchant(monkeypatch, app):
    monkeypatch.setattr(hash_api, "hmac", SimpleNamespace(compare_digest=lambda a, b: True))


def failed_is_not_a_refund(monkeypatch, app):
    monkeypatch.setattr(hash_orders, "FAILED", 99)  # status 2 closes the order without refunding it


def bet_info_unchecked(monkeypatch, app):
    monkeypatch.setattr(hash_fields, "bet_info", lambda plain: str(plain.get("bet_info")))


def blanks_around_keys(monkeypatch, app):
    monkeypatch.setattr(hash_fields, "key", lambda plain, name, max_len=255: hash_fields.text(plain, name, max_len=max_len))


def no_timestamp_window(monkeypatch, app):
    app.config["HASH_TIMESTAMP_WINDOW_MS"] = str(10**13)


def errors_as_http_400(monkeypatch, app):
    @app.after_request
    def refuse_with_400(response):
        if request.path.startswith("/api/v2/") and response.get_json().get("code"):
            response.status_code = 400
        return response


def balance_as_text(monkeypatch, app):
    def answer(order_no, balance, currency):
        return {"order_no": order_no, "balance": f"{balance:f}", "currency": currency}
    monkeypatch.setattr(hash_orders, "_answer", answer)  # in order answers


def cents_payout(monkeypatch, app):
    honest = hash_orders.payout
    monkeypatch.setattr(hash_orders, "payout", lambda *args: honest(*args).quantize(Decimal("0.01"), ROUND_HALF_UP))


def bonus_from_tax(monkeypatch, app):
    monkeypatch.setattr(hash_orders, "payout", lambda prize, tax, bonus, formula="prize+bonus": prize + tax)


def refuses_the_whole_balance(monkeypatch, app):
    honest = hash_orders.HashWallet._move

    def move(self, store, wallet, amount, op, order_no):  # `balance <= amount` where `<` was meant
        if op == "order_add" and wallet.balance + amount == 0:
            raise hash_orders.HashError(2002)
        return honest(self, store, wallet, amount, op, order_no)
    monkeypatch.setattr(hash_orders.HashWallet, "_move", move)


HASH_INTERNAL_ERROR = (200, {"code": 5000, "msg": "internal error"})


def hash_plain(body: bytes):
    """The plaintext of a Hash request (prefix IV form, the tests' secret); None if it does not open."""
    try:
        return unseal(json.loads(body)["x"], HASH_SECRET, "prefix")
    except (ValueError, KeyError, TypeError):
        return None


def hash_order(path, body):
    """The key of an order call: the endpoint, the order_no and the status."""
    plain = hash_plain(body)
    if path in ("/api/v2/order/add", "/api/v2/order/update") and isinstance(plain, dict):
        return path, str(plain.get("order_no")), plain.get("status")
    return None


def unknown_order_is_5000(app):
    """An update of an order it does not know answers 5000 (the port's lookup raised), not 3002."""
    return Mutant(app, after=lambda path, body, status, answer: HASH_INTERNAL_ERROR if answer.get("code") == 3002
                  else None)


def refuses_resends(app):
    """A request_id is refused the second time whatever came with it: Hash's byte-identical
    re-send of a request whose answer it lost is 1005 for ever."""
    seen, lock = set(), threading.Lock()

    def before(path, body):
        with lock:
            if path.startswith("/api/v2/order/") and body in seen:
                return 200, {"code": 1005, "msg": "duplicate request_id"}
            seen.add(body)
    return Mutant(app, before)


def forgets_request_ids(app):
    """No request_id memory: every request is given a fresh one before the wallet sees it."""
    def before(path, body):
        plain = hash_plain(body)
        if not isinstance(plain, dict):
            return None
        plain["request_id"] = uuid.uuid4().hex
        return json.dumps({"x": seal(json.dumps(plain, default=float).encode(), HASH_SECRET, "prefix")}).encode()
    return Mutant(app, before)


def refuses_float64(app):
    """An amount with more than 6 decimals is refused, a float64 artefact (2.2424999999999997) too."""
    def before(path, body):
        plain = hash_plain(body)
        if isinstance(plain, dict) and any(isinstance(plain.get(name), Decimal) and plain[name].as_tuple().exponent < -6
                                           for name in ("amount", "prize", "tax", "bonus")):
            return 200, {"code": 1001, "msg": "invalid parameters: more than 6 decimal places"}
    return Mutant(app, before)


RESENT = "an identical re-send of an applied request is answered 0, nothing moves"
FLOAT64 = "float64-written amounts are booked as the values they stand for"
SIX_DECIMALS = "amounts with 6 decimals are booked to the last place"
TAXED = "a settle with a tax and a bonus pays by one formula, the same every time"
# AWAITING_HASHRULES (test_conformance.py): until the hashrules branch is merged, every Hash mutant,
# built on this wallet, fails those two cases as well.
assert AWAITING_HASHRULES <= {RESENT, FLOAT64}
HASH_RACES = {"20 parallel identical adds debit once", "10 parallel identical settles credit once",
              "10 parallel identical cancels refund once"}
MUTANTS_HASH = {
    "a retried settle credits again": (settles_again, {
        "bet -> settle: status 1 credits the prize once": "FAIL", "a final order never changes": "FAIL",
        "10 parallel identical settles credit once": "FAIL", TAXED: "FAIL", FLOAT64: "FAIL"},
        {"settle racing cancel: exactly one applies", "a repeated settle with another prize credits nothing more"}),
    "any merchant-id is taken": (any_merchant, {"bad envelopes are refused and move nothing": "FAIL"}, ()),
    "status 2 (failed) does not refund": (failed_is_not_a_refund, {
        "bet -> fail: status 2 refunds once": "FAIL"}, ()),
    "bet_info is not checked": (bet_info_unchecked, {
        "order/add rules: nothing is debited for a bad request": "FAIL",
        # the wallet stores what no database can: 5000, a failure (not a refusal)
        "text no database can store (a lone surrogate, NUL) is refused": "FAIL"}, ()),
    "an order_no with a trailing blank is another order": (blanks_around_keys, {
        "an order_no with a blank at either end is refused": "WARN"}, ()),
    "no timestamp window": (no_timestamp_window, {"a timestamp from 2022 is refused": "WARN"}, ()),
    "refusals answered HTTP 400": (errors_as_http_400, {
        "an unknown token is refused": "FAIL", "bad envelopes are refused and move nothing": "FAIL",
        "a bet above the balance is refused": "FAIL"}, EVERY_CASE),
    "order answers give the balance as a string": (balance_as_text, {
        "bet -> settle: status 1 credits the prize once": "FAIL", "bet -> cancel: status 4 refunds once": "FAIL"},
        EVERY_CASE),
    # issue 29
    "payouts rounded to cents": (cents_payout, {SIX_DECIMALS: "FAIL", TAXED: "FAIL", FLOAT64: "FAIL"}, ()),
    "bonus read from the tax field": (bonus_from_tax, {TAXED: "FAIL"}, ()),
    "a bet of the whole balance is refused": (refuses_the_whole_balance, {
        "a bet of exactly the whole balance is taken": "FAIL"}, {"parallel adds beyond the balance never go negative"}),
    "an update of an unknown order answered 5000": (in_front(unknown_order_is_5000), {
        "an update of an unknown order credits nothing": "FAIL"},
        {"an update whose data differ from its order's is refused"}),
    "a lost race on an order answered 5000": (in_front(LosesRaces(hash_order, HASH_INTERNAL_ERROR)), {
        race: "FAIL" for race in HASH_RACES}, {"settle racing cancel: exactly one applies"}),
    "an identical re-send refused 1005": (in_front(refuses_resends), {RESENT: "FAIL"}, ()),
    "no request_id memory": (in_front(forgets_request_ids), {
        "another request under a used request_id is refused, nothing moves": "FAIL"}, ()),
    "float64 artefacts refused": (in_front(refuses_float64), {FLOAT64: "FAIL"}, ()),
}
ONLY_HASH = {"a lost race on an order answered 5000": "parallel"}  # its 0.3 s per call: only where it shows


@pytest.mark.parametrize("name", MUTANTS_HASH)
def test_the_kit_catches_a_broken_hash_wallet(name, tmp_path, monkeypatch):
    patch, expected, maybe = MUTANTS_HASH[name]
    app = create_app({**TEST_CONFIG, "DATABASE_URL": f"sqlite:///{tmp_path}/hash.db"})
    init_schema(app.extensions["engine"])
    _, token = new_player(app, "1000", extra_currencies=("USDT",))
    _, second = new_player(app, "1000", extra_currencies=("USDT",))
    patch(monkeypatch, app)
    only = ("--only", ONLY_HASH[name]) if name in ONLY_HASH else ()
    with serve(app) as base:
        status, out, _ = kit(*hash_args(base, token, "--second-token", second, "--json", *only))
    found = not_passed(out)
    assert status == (1 if "FAIL" in found.values() else 0)
    assert expected.items() <= found.items(), found
    if maybe != EVERY_CASE:
        assert set(found) - set(expected) <= set(maybe) | AWAITING_HASHRULES, found
    app.extensions["engine"].dispose()
