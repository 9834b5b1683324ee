"""100HP Game Flow API through the Flask app: docs/100hp.md §7.4 (the checklist) and the rules of §4.

Every test runs against YourCasino on SQLite, PostgreSQL and MariaDB, and against TestCasino in
memory: the same answers are expected from each.
"""
import json
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from conftest import DATABASES, HP_SECRET, TEST_CONFIG, ledger_rows, new_player, prepare_database, tx

from wallet.app import create_app
from wallet.core import accounts, db, schema
from wallet.hp100.testcasino import TestCasino


class HpWallet:
    """One wallet under test, driven through its HTTP endpoints."""

    def __init__(self, app, memory: bool):
        self.app, self.memory, self.client = app, memory, app.test_client()
        self.casino = app.extensions["casino"]

    def call(self, endpoint, secret=HP_SECRET, **fields):
        response = self.client.post(f"/100hp/{endpoint}", json={"secret": secret, **fields})
        assert response.content_type == "application/json"
        body = response.get_json()
        if response.status_code != 200:  # §3.5: status = errCode, body {data, message, errCode}
            assert body["errCode"] == response.status_code and set(body) == {"data", "message", "errCode"}
        return response.status_code, body

    def raw(self, endpoint, data: bytes):
        response = self.client.post(f"/100hp/{endpoint}", data=data,
                                    headers={"Content-Type": "application/json"})
        return response.status_code, response.get_json()

    def player(self, balance="1000"):
        if self.memory:
            user_id = self.casino.add_player("p", "USD", Decimal(balance))
            return user_id, self.casino.open_session(user_id)
        return new_player(self.app, balance)

    def close_session(self, session_id):
        if self.memory:
            return self.casino.close_session(session_id)
        assert self.app.test_cli_runner().invoke(args=["close-session", session_id]).exit_code == 0

    def set_status(self, user_id, status):
        if self.memory:
            return self.casino.set_status(user_id, status)
        command = "block-player" if status == "blocked" else "unblock-player"
        assert self.app.test_cli_runner().invoke(args=[command, user_id]).exit_code == 0

    def expired_session(self, user_id):
        """A session whose lifetime has run out."""
        if self.memory:
            return self.casino.open_session(user_id, lifetime=timedelta(0))
        return db.transaction(self.app.extensions["engine"], lambda conn: accounts.create_session(
            conn, int(user_id), lifetime=timedelta(0)))

    def balance(self, session_id):
        return self.call("balance", sessionId=session_id)[1]["balance"]


@pytest.fixture(params=DATABASES + ("memory",))
def hp(request, tmp_path):
    kind = request.param
    url = prepare_database("sqlite" if kind == "memory" else kind, tmp_path)
    casino = TestCasino() if kind == "memory" else None
    app = create_app({**TEST_CONFIG, "DATABASE_URL": url}, casino=casino)
    yield HpWallet(app, memory=casino is not None)
    app.extensions["engine"].dispose()


# ---- §7.4 checklist -----------------------------------------------------------------------------
def test_auth_returns_the_player(hp):
    user_id, session = hp.player("1000")
    status, answer = hp.call("auth", sessionId=session)
    assert status == 200 and answer.pop("userName").startswith("p")
    assert answer == {"userId": user_id, "currency": "USD", "balance": "1000.00", "status": "active",
                      "type": "real"}


def test_wrong_secret_is_601_and_unknown_session_604(hp):
    _, session = hp.player()
    assert hp.call("auth", secret="wrong", sessionId=session) == (
        601, {"data": "", "message": "Invalid secret key", "errCode": 601})
    assert hp.call("auth", sessionId="no-such-session") == (
        604, {"data": "", "message": "Session not found", "errCode": 604})
    assert hp.call("balance", sessionId="no-such-session")[0] == 604


@pytest.mark.parametrize("endpoint", ["auth", "balance"])
@pytest.mark.parametrize("fields, rule", [
    ({}, "sessionId must be not empty"),
    ({"sessionId": ""}, "sessionId must be not empty"),
    ({"sessionId": "s" * 256}, "sessionId must be <= 255 characters"),
    ({"sessionId": 12345}, "sessionId must be a string"),
])
def test_session_id_rules(hp, endpoint, fields, rule):
    assert hp.call(endpoint, **fields) == (400, {"data": rule, "message": "Validation error",
                                                  "errCode": 400})


def test_bet_and_win_truncates_to_cents(hp):
    user_id, session = hp.player("1000")
    bet = tx()
    assert hp.call("withdrawal", sessionId=session, txId=bet, amount="10.129") == (200, {
        "userId": user_id, "currency": "USD", "balance": "989.88", "txId": bet, "sessionId": session})
    assert hp.call("withdrawal", sessionId=session, txId=bet, amount="10.129")[0] == 607
    assert hp.balance(session) == "989.88"
    assert hp.call("deposit", txId=bet, amount="20.999") == (200, {
        "userId": user_id, "currency": "USD", "balance": "1010.87", "sessionId": session})
    assert hp.call("deposit", txId=bet, amount="20") == (
        609, {"data": "", "message": "Transaction already settled", "errCode": 609})
    assert hp.call("rollback", txId=bet)[0] == 609
    assert hp.balance(session) == "1010.87"


def test_lost_round_settles_with_deposit_zero(hp):
    _, session = hp.player("100")
    bet = tx()
    assert hp.call("withdrawal", sessionId=session, txId=bet, amount="30")[0] == 200
    assert hp.call("deposit", txId=bet, amount="0")[1]["balance"] == "70.00"
    assert hp.call("rollback", txId=bet)[0] == 609  # settled: the bet is not refundable any more
    assert hp.balance(session) == "70.00"


def test_rollback_refunds_the_stored_amount_once(hp):
    _, session = hp.player("100")
    bet = tx()
    hp.call("withdrawal", sessionId=session, txId=bet, amount="40.50")
    # an amount in a rollback request is ignored: the refund is the stored withdrawal (§4.5)
    assert hp.call("rollback", txId=bet, amount="99999", sessionId="other")[1] == {
        **hp.call("balance", sessionId=session)[1], "balance": "100.00", "sessionId": "other"}
    assert hp.call("rollback", txId=bet) == (
        608, {"data": "", "message": "Transaction already refunded", "errCode": 608})
    assert hp.call("deposit", txId=bet, amount="10")[0] == 608
    assert hp.balance(session) == "100.00"


def test_unknown_transaction_is_605(hp):
    hp.player()
    missing = tx()
    assert hp.call("deposit", txId=missing, amount="1") == (
        605, {"data": "", "message": "Transaction not found", "errCode": 605})
    assert hp.call("rollback", txId=missing)[0] == 605


def test_bonus_win_is_not_a_bet(hp):
    _, session = hp.player("10")
    promo = tx()
    assert hp.call("bonusWin", sessionId=session, txId=promo, amount="5.555", promoId="promo_1"
                   )[1]["balance"] == "15.55"
    assert hp.call("bonusWin", sessionId=session, txId=promo, amount="5", promoId="promo_1")[0] == 607
    assert hp.call("rollback", txId=promo)[0] == 605      # not a withdrawal: nothing to refund
    assert hp.call("withdrawal", sessionId=session, txId=promo, amount="1")[0] == 607
    assert hp.balance(session) == "15.55"


def test_insufficient_balance_is_603_and_changes_nothing(hp):
    _, session = hp.player("10")
    bet = tx()
    assert hp.call("withdrawal", sessionId=session, txId=bet, amount="10.01") == (
        603, {"data": "", "message": "Insufficient balance", "errCode": 603})
    # a refused bet was never booked: its txId is still free
    assert hp.call("withdrawal", sessionId=session, txId=bet, amount="10.00")[1]["balance"] == "0.00"


def test_deposit_and_rollback_work_after_the_session_ended(hp):
    _, session = hp.player("100")
    won, refunded = tx(), tx()
    hp.call("withdrawal", sessionId=session, txId=won, amount="10")
    hp.call("withdrawal", sessionId=session, txId=refunded, amount="10")
    hp.close_session(session)
    assert hp.call("withdrawal", sessionId=session, txId=tx(), amount="1")[0] == 604
    assert hp.call("deposit", txId=won, amount="50")[1]["balance"] == "130.00"
    assert hp.call("rollback", txId=refunded)[1]["balance"] == "140.00"
    assert hp.call("deposit", txId=won, amount="50", sessionId=session)[0] == 609


def test_user_id_must_match(hp):
    user_id, session = hp.player("100")
    bet = tx()
    assert hp.call("withdrawal", sessionId=session, txId=bet, amount="1", userId="999999")[0] == 604
    assert hp.call("withdrawal", sessionId=session, txId=bet, amount="1", userId=user_id)[0] == 200
    assert hp.call("rollback", txId=bet, userId="999999")[0] == 605
    assert hp.call("rollback", txId=bet, userId=user_id)[0] == 200


# ---- validation (§4 rule texts, §3.8 order) -------------------------------------------------------
WITHDRAWAL_RULES = [
    ({"secret": None}, "secret must be not empty"),
    ({"secret": 42}, "secret must be a string"),
    ({"txId": None}, "txId must be not empty"),
    ({"txId": "abc"}, "txId must be a UUID"),
    ({"txId": 17}, "txId must be a UUID"),
    ({"sessionId": None}, "sessionId must be not empty"),
    ({"amount": None}, "amount must be not empty"),
    ({"amount": 10}, "amount must be a string"),
    ({"amount": 10.5}, "amount must be a string"),
    ({"amount": "0"}, "amount must be greater than 0"),
    ({"amount": "0.009"}, "amount must be greater than 0"),
    ({"amount": "-1"}, "amount must be greater than 0"),
    ({"amount": "-0"}, "amount must be greater than 0"),
    ({"amount": " 10"}, "amount must be greater than 0"),
    ({"amount": "NaN"}, "amount must be greater than 0"),
    ({"amount": "Infinity"}, "amount must be greater than 0"),
    ({"amount": "1e309"}, "amount must be greater than 0"),
    ({"amount": "1,5"}, "amount must be greater than 0"),
    ({"amount": "1" * 19}, "amount must be < 1e18"),
    ({"userId": 5}, "userId must be a string"),
]


@pytest.mark.parametrize("change, rule", WITHDRAWAL_RULES)
def test_withdrawal_rules(hp, change, rule):
    _, session = hp.player("100")
    body = {"secret": HP_SECRET, "sessionId": session, "txId": tx(), "amount": "1", **change}
    body = {k: v for k, v in body.items() if v is not None}
    status, answer = hp.raw("withdrawal", json.dumps(body).encode())
    assert (status, answer) == (400, {"data": rule, "message": "Validation error", "errCode": 400})
    assert hp.balance(session) == "100.00"


@pytest.mark.parametrize("endpoint, fields, rule", [
    ("deposit", {"txId": "0" * 51}, "txId must be <= 50 characters"),
    ("deposit", {"txId": "x"}, "txId must be a UUID"),
    ("deposit", {"amount": "-0.01"}, "amount must be greater than or equal to 0"),
    ("deposit", {"amount": None}, "amount must be not empty"),
    ("rollback", {"txId": None}, "txId must be not empty"),
    ("rollback", {"txId": "0" * 51}, "txId must be <= 50 characters"),
    ("bonusWin", {"promoId": None}, "promoId must be not empty"),
    ("bonusWin", {"amount": "0"}, "amount must be greater than 0"),
])
def test_settlement_rules(hp, endpoint, fields, rule):
    _, session = hp.player()
    body = {"txId": tx(), "amount": "1", "sessionId": session, "promoId": "p", **fields}
    assert hp.call(endpoint, **{k: v for k, v in body.items() if v is not None}) == (
        400, {"data": rule, "message": "Validation error", "errCode": 400})


def test_validation_comes_before_the_secret_and_in_order(hp):
    _, session = hp.player()
    # a bad field is reported even with a wrong secret (§3.8: validate, then check the secret)
    assert hp.call("withdrawal", secret="wrong", sessionId=session, txId="abc", amount="1")[1][
        "data"] == "txId must be a UUID"
    # several bad fields: the first in the documented order wins
    assert hp.call("withdrawal", sessionId=12, txId="abc", amount=1)[1]["data"] == "txId must be a UUID"


@pytest.mark.parametrize("body", [
    b"", b"not json", b"[]", b'"text"', b"null", b"\xff\xfe\x00", b"[" * 100000,
    b'{"secret": "' + b"a" * 70000 + b'"}',  # over MAX_BODY_BYTES
])
def test_malformed_bodies_are_400(hp, body):
    status, answer = hp.raw("withdrawal", body)
    assert status == 400 and answer["message"] == "Validation error" and answer["errCode"] == 400


def test_a_megabyte_body_is_400_without_reading_it(hp):
    status, answer = hp.raw("deposit", b"{" + b" " * 1_000_000 + b"}")
    assert (status, answer["data"]) == (400, "request body is too large")


def test_unknown_fields_are_ignored(hp):
    _, session = hp.player("5")
    assert hp.call("balance", sessionId=session, extra={"nested": [1, 2]}, currency="EUR") == (
        200, hp.call("balance", sessionId=session)[1])


def test_wrong_method_and_unknown_path_answer_json(hp):
    response = hp.client.get("/100hp/withdrawal")
    assert response.status_code == 405 and response.get_json()["errCode"] == 405
    response = hp.client.post("/100hp/transfer", json={})
    assert response.status_code == 404 and response.get_json()["errCode"] == 404


# ---- the ledger (SQL only) ------------------------------------------------------------------------
def test_every_balance_change_has_its_ledger_row(app, client):
    user_id, session = new_player(app, "100")
    calls = [("withdrawal", {"sessionId": session, "txId": (a := tx()), "amount": "10"}),
             ("deposit", {"txId": a, "amount": "0"}),
             ("withdrawal", {"sessionId": session, "txId": (b := tx()), "amount": "20.5"}),
             ("rollback", {"txId": b}),
             ("withdrawal", {"sessionId": session, "txId": (c := tx()), "amount": "7"}),
             ("deposit", {"txId": c, "amount": "14.01"}),
             ("bonusWin", {"sessionId": session, "txId": tx(), "amount": "3", "promoId": "p"})]
    for endpoint, fields in calls:
        assert client.post(f"/100hp/{endpoint}", json={"secret": HP_SECRET, **fields}).status_code == 200
    rows = ledger_rows(app, user_id)
    assert [(r.op, r.amount) for r in rows] == [
        ("topup", 100), ("withdrawal", -10), ("deposit", 0), ("withdrawal", Decimal("-20.5")),
        ("rollback", Decimal("20.5")), ("withdrawal", -7), ("deposit", Decimal("14.01")),
        ("bonusWin", 3)]
    running = Decimal(0)
    for row in rows:
        running += row.amount
        assert row.balance_after == running
    assert client.post("/100hp/balance", json={"secret": HP_SECRET, "sessionId": session}
                       ).get_json()["balance"] == f"{running:.2f}" == "100.01"


def test_the_database_refuses_a_negative_balance(app):
    user_id, _ = new_player(app, "1")
    with pytest.raises(sa.exc.DBAPIError, match="(?i)check|constraint"):  # MariaDB: error 4025
        with app.extensions["engine"].begin() as conn:
            conn.execute(sa.update(schema.wallets).where(schema.wallets.c.player_id == int(user_id))
                         .values(balance=Decimal("-0.01")))


def test_a_database_failure_is_702_and_writes_nothing(app, client):
    _, session = new_player(app, "100")
    casino, bet = app.extensions["casino"], tx()
    # the ledger's write fails after the txId was claimed: the transaction must take both back
    casino.move = lambda *a: (_ for _ in ()).throw(RuntimeError("disk full"))
    body = {"secret": HP_SECRET, "sessionId": session, "txId": bet, "amount": "10"}
    response = client.post("/100hp/withdrawal", json=body)
    assert (response.status_code, response.get_json()) == (
        702, {"data": "", "message": "Internal Server Error", "errCode": 702})
    assert client.post("/100hp/balance", json={"secret": HP_SECRET, "sessionId": session}
                       ).get_json()["balance"] == "100.00"
    del casino.move
    assert client.post("/100hp/withdrawal", json=body).status_code == 200  # the txId was not spent


# ---- money at the edges (ours: README "Decisions") ------------------------------------------------
def test_a_rollback_before_its_withdrawal_spends_the_txid(hp):
    _, session = hp.player("100")
    bet = tx()
    assert hp.call("rollback", txId=bet)[0] == 605          # as documented: nothing to refund yet
    assert hp.call("withdrawal", sessionId=session, txId=bet, amount="10") == (
        608, {"data": "txId was rolled back before this withdrawal arrived",
              "message": "Transaction already refunded", "errCode": 608})
    assert hp.call("rollback", txId=bet)[0] == 605          # still nothing was ever booked
    assert hp.call("deposit", txId=bet, amount="5")[0] == 605
    assert hp.balance(session) == "100.00"


def test_a_rollback_before_its_bonus_win_says_why_nothing_is_credited(hp):
    """A bonusWin 100HP rolled back before it arrived credits nothing, and its answer says so
    (its txId a tombstone, docs/100hp.md §9.3), instead of a bare 607 that reads as "already paid"."""
    _, session = hp.player("100")
    promo = tx()
    assert hp.call("rollback", txId=promo)[0] == 605
    assert hp.call("bonusWin", sessionId=session, txId=promo, amount="5", promoId="p") == (
        608, {"data": "txId was rolled back before this bonusWin arrived",
              "message": "Transaction already refunded", "errCode": 608})
    assert hp.call("bonusWin", sessionId=session, txId=promo.upper(), amount="5", promoId="p")[0] == 608
    assert hp.balance(session) == "100.00"


def test_a_txid_is_one_transaction_whatever_its_case(hp):
    _, session = hp.player("100")
    bet = tx().upper()
    assert hp.call("withdrawal", sessionId=session, txId=bet, amount="10")[1]["txId"] == bet
    assert hp.call("withdrawal", sessionId=session, txId=bet.lower(), amount="10")[0] == 607
    assert hp.call("deposit", txId=bet.lower(), amount="1")[1]["balance"] == "91.00"
    assert hp.call("rollback", txId=bet)[0] == 609
    promo = tx()
    assert hp.call("bonusWin", sessionId=session, txId=promo, amount="1", promoId="p")[0] == 200
    assert hp.call("bonusWin", sessionId=session, txId=promo.upper(), amount="1", promoId="p")[0] == 607
    assert hp.balance(session) == "92.00"


def test_a_blocked_player_cannot_bet_but_every_win_and_refund_settles(hp):
    user_id, session = hp.player("100")
    won, refunded = tx(), tx()
    hp.call("withdrawal", sessionId=session, txId=won, amount="10")
    hp.call("withdrawal", sessionId=session, txId=refunded, amount="10")
    hp.set_status(user_id, "blocked")
    assert hp.call("auth", sessionId=session)[1]["status"] == "blocked"
    assert hp.call("withdrawal", sessionId=session, txId=tx(), amount="1") == (
        604, {"data": "player is blocked", "message": "Session not found", "errCode": 604})
    assert hp.call("deposit", txId=won, amount="30")[1]["balance"] == "110.00"
    assert hp.call("rollback", txId=refunded)[1]["balance"] == "120.00"
    assert hp.call("bonusWin", sessionId=session, txId=tx(), amount="5", promoId="p")[0] == 200
    hp.set_status(user_id, "active")
    assert hp.call("withdrawal", sessionId=session, txId=tx(), amount="1")[1]["balance"] == "124.00"


def test_closed_and_expired_sessions_take_no_bets(hp):
    user_id, session = hp.player("100")
    bet = tx()
    hp.call("withdrawal", sessionId=session, txId=bet, amount="10")
    hp.close_session(session)
    expired = hp.expired_session(user_id)
    for token, why in ((session, "session is closed"), (expired, "session has expired")):
        refused = (604, {"data": why, "message": "Session not found", "errCode": 604})
        assert hp.call("auth", sessionId=token) == refused
        assert hp.call("balance", sessionId=token) == refused
        assert hp.call("withdrawal", sessionId=token, txId=tx(), amount="1") == refused
        # a promo win is a win: it still credits (ours: a win is never lost)
        assert hp.call("bonusWin", sessionId=token, txId=tx(), amount="1", promoId="p")[0] == 200
    assert hp.call("deposit", txId=bet, amount="20")[1]["balance"] == "112.00"


def test_a_credit_past_the_balance_limit_is_refused_and_writes_nothing(hp):
    _, session = hp.player("999999999999999990")
    bet = tx()
    hp.call("withdrawal", sessionId=session, txId=bet, amount="1")
    too_much = (400, {"data": "amount would take the balance over the wallet's limit",
                      "message": "Validation error", "errCode": 400})
    assert hp.call("deposit", txId=bet, amount="999999999999999999.99") == too_much
    assert hp.call("bonusWin", sessionId=session, txId=tx(), amount="11", promoId="p") == too_much
    assert hp.balance(session) == "999999999999999989.00"
    assert hp.call("deposit", txId=bet, amount="10.99")[1]["balance"] == "999999999999999999.99"


@pytest.mark.parametrize("bad, rule", [("\\ud800", "must be valid UTF-8 text without NUL"),
                                       ("a\\u0000b", "must be valid UTF-8 text without NUL")])
@pytest.mark.parametrize("field", ["secret", "sessionId", "userId", "promoId"])
def test_text_no_database_can_store_is_400(hp, field, bad, rule):
    _, session = hp.player("100")
    fields = {"secret": HP_SECRET, "sessionId": session, "txId": tx(), "amount": "1", "promoId": "p"}
    fields.pop(field, None)  # each key once (a repeated one is refused as such)
    body = json.dumps(fields)[:-1] + f', "{field}": "{bad}"}}'  # the escape as written: json.dumps would not
    assert hp.raw("bonusWin", body.encode()) == (
        400, {"data": f"{field} {rule}", "message": "Validation error", "errCode": 400})
    assert hp.balance(session) == "100.00"


@pytest.mark.parametrize("field, limit", [("sessionId", 255), ("userId", 255), ("promoId", 255)])
def test_each_text_field_at_its_limit_and_one_past_it(hp, field, limit):
    """The same answer on every database: the rule's 400 past the limit, never a 702 or a cut."""
    user_id, session = hp.player("100")
    fields = {"sessionId": session, "userId": user_id, "promoId": "p", "amount": "1"}
    at_limit = "\U0001F3B0" * limit  # 4 bytes in UTF-8 each: characters count, not bytes
    expected = {"sessionId": 604, "userId": 604, "promoId": 200}[field]
    assert hp.call("bonusWin", txId=tx(), **{**fields, field: at_limit})[0] == expected
    assert hp.call("bonusWin", txId=tx(), **{**fields, field: at_limit + "x"}) == (
        400, {"data": f"{field} must be <= {limit} characters", "message": "Validation error",
              "errCode": 400})
