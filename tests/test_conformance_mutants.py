"""Proof by mutants: the kit catches deliberately broken wallets, and names the cases that show it.

Each mutant has one bug. 100HP mutants are small subclasses of the in-memory model (TestCasino,
with the rules of wallet/hp100/casino.py) or one patched rule of the blueprint; Hash mutants are this
SQL wallet on SQLite with one rule function patched. Each is served over real HTTP and the kit
runs against it as against any wallet; the test asserts which cases fail (FAIL: a provider's rule)
or warn (WARN: a decision of this project's, a failure with --strict), and that nothing else does.
"""
import contextlib
import time
from decimal import ROUND_HALF_UP, Decimal
from types import SimpleNamespace

import pytest
from conftest import TEST_CONFIG, init_schema, new_player
from flask import request
from test_conformance import (CaseSensitive, all_sessions, hash_args, hp_args, kit, memory_wallet, not_passed,
                              serve)

from wallet.app import create_app
from wallet.core import money
from wallet.hash import blueprint as hash_api
from wallet.hash import orders as hash_orders
from wallet.hp100 import blueprint as hp
from wallet.hp100.casino import MESSAGES, OPEN, REFUNDED, WITHDRAWAL, CasinoError
from wallet.hp100.testcasino import TestCasino


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


class WithdrawalIgnoresUserId(TestCasino):
    def withdrawal(self, session_id, tx_id, amount, user_id=None):
        return super().withdrawal(session_id, tx_id, amount)


# Patches of the blueprint's rules (wallet/hp100/blueprint.py): the mistakes a port makes in its validation.
def rounds_amounts(monkeypatch, app):
    monkeypatch.setattr(money, "truncate_cents", lambda v: v.quantize(Decimal("0.01"), ROUND_HALF_UP))


def errors_as_200(monkeypatch, app):
    @app.after_request
    def everything_is_200(response):
        response.status_code = 200
        return response


def promo_id_optional(monkeypatch, app):
    rules = [hp.text("promoId", required=False, max_len=255) if r.field == "promoId" else r
             for r in hp.RULES["bonusWin"]]
    monkeypatch.setitem(hp.RULES, "bonusWin", rules)


def user_id_unbounded(monkeypatch, app):
    for endpoint, rules in hp.RULES.items():
        monkeypatch.setitem(hp.RULES, endpoint, [hp.text("userId", required=False) if r.field == "userId" else r
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
    monkeypatch.setitem(hp.RULES, "deposit", [amount if r.field == "amount" else r for r in hp.RULES["deposit"]])


DEPOSIT_USERID = "deposit and rollback name their player: another's userId is 605"
WITHDRAWAL_USERID = "withdrawal and bonusWin name their player: theirs is accepted, another's is 604"
RACES = {"10 parallel identical withdrawals debit once", "10 parallel rollbacks refund once",
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
        "deposit rules: nothing is credited for a bad request": "FAIL", "bonusWin credits once": "FAIL"}, ()),
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
}


@pytest.mark.parametrize("name", MUTANTS_100HP)
def test_the_kit_catches_a_broken_100hp_wallet(name, tmp_path, monkeypatch):
    casino_class, patch, expected, maybe = MUTANTS_100HP[name]
    with memory_wallet(tmp_path, casino_class(), lambda app: patch and patch(monkeypatch, app)) as (base, _, ids):
        status, out, _ = kit(*hp_args(base, ids, *all_sessions(ids), "--json"))
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
    monkeypatch.setattr(hash_api, "bet_info", lambda plain: str(plain.get("bet_info")))


def blanks_around_keys(monkeypatch, app):
    monkeypatch.setattr(hash_api, "key", lambda plain, name, max_len=255: hash_api.text(plain, name, max_len=max_len))


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


MUTANTS_HASH = {
    "a retried settle credits again": (settles_again, {
        "bet -> settle: status 1 credits the prize once": "FAIL", "a final order never changes": "FAIL",
        "10 parallel identical settles credit once": "FAIL"},
        {"settle racing cancel: exactly one applies", "a repeated settle with another prize credits nothing more"}),
    "any merchant-id is taken": (any_merchant, {"bad envelopes are refused and move nothing": "FAIL"}, ()),
    "status 2 (failed) does not refund": (failed_is_not_a_refund, {
        "bet -> fail: status 2 refunds once": "FAIL"}, ()),
    "bet_info is not checked": (bet_info_unchecked, {
        "order/add rules: nothing is debited for a bad request": "FAIL",
        "text no database can store (a lone surrogate, NUL) is refused": "WARN"}, ()),
    "an order_no with a trailing blank is another order": (blanks_around_keys, {
        "an order_no with a blank at either end is refused": "WARN"}, ()),
    "no timestamp window": (no_timestamp_window, {"a timestamp from 2022 is refused": "WARN"}, ()),
    "refusals answered HTTP 400": (errors_as_http_400, {
        "an unknown token is refused": "FAIL", "bad envelopes are refused and move nothing": "FAIL",
        "a bet above the balance is refused": "FAIL"}, EVERY_CASE),
    "order answers give the balance as a string": (balance_as_text, {
        "bet -> settle: status 1 credits the prize once": "FAIL", "bet -> cancel: status 4 refunds once": "FAIL"},
        EVERY_CASE),
}


@pytest.mark.parametrize("name", MUTANTS_HASH)
def test_the_kit_catches_a_broken_hash_wallet(name, tmp_path, monkeypatch):
    patch, expected, maybe = MUTANTS_HASH[name]
    app = create_app({**TEST_CONFIG, "DATABASE_URL": f"sqlite:///{tmp_path}/hash.db"})
    init_schema(app.extensions["engine"])
    _, token = new_player(app, "1000", extra_currencies=("USDT",))
    _, second = new_player(app, "1000", extra_currencies=("USDT",))
    patch(monkeypatch, app)
    with serve(app) as base:
        status, out, _ = kit(*hash_args(base, token, "--second-token", second, "--json"))
    found = not_passed(out)
    assert status == (1 if "FAIL" in found.values() else 0)
    assert expected.items() <= found.items(), found
    if maybe != EVERY_CASE:
        assert set(found) - set(expected) <= set(maybe), found
    app.extensions["engine"].dispose()
