"""hash-reconcile on every database, against a fake Hash on loopback (real HTTP, our envelope):
open orders settled or refunded from order/details, an order Hash declares it never recorded
refunded once (and no refund on anything less), one order's failure reported without stopping the
run, and `--settled`, the books compared with Hash's order/list."""
import json
import os
import subprocess
import sys
import threading
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from conftest import HASH_SECRET, MERCHANT_ID, ROOT, TEST_CONFIG, ledger_rows, new_player, parallel
from fakehash import FakeHash, now_ms
from test_hash import Hash

from wallet.core import db, schema
from conftest import audit
from wallet.hash.client import HashClient
from wallet.hash.reconcile import reconcile_open_orders
from wallet.hash.sql_wallet import SqlHashWallet
from wallet.hash import schema as hash_schema


@pytest.fixture
def fake(app):
    server = FakeHash(HASH_SECRET)
    app.config["HASH_API_URL"] = server.url
    yield server
    server.close()


@pytest.fixture
def hash_declares_3002(monkeypatch):
    """The operator has set HASH_NOT_FOUND_CODES to the fake's "never recorded" code (fakehash.py)."""
    monkeypatch.setenv("HASH_NOT_FOUND_CODES", "3002")


@pytest.fixture
def player(app):
    return new_player(app, "1000", currency="USDT", extra_currencies=("TRX",))


def order_no() -> str:
    return uuid.uuid4().hex[:18]


def backdate(app, order_nos, minutes=60):
    """As if these orders were booked (and last changed) `minutes` ago: past Hash's retries."""
    with app.extensions["engine"].begin() as conn:
        conn.execute(sa.update(hash_schema.hash_orders).where(hash_schema.hash_orders.c.order_no.in_(list(order_nos)))
                     .values(created_at=schema.utcnow() - timedelta(minutes=minutes),
                             updated_at=schema.utcnow() - timedelta(minutes=minutes)))


def reconcile(app, *args, env=None):
    return app.test_cli_runner().invoke(args=["hash-reconcile", *args], env=env)


def statuses(app) -> dict:
    with app.extensions["engine"].connect() as conn:
        return dict(conn.execute(sa.select(hash_schema.hash_orders.c.order_no, hash_schema.hash_orders.c.status)).all())


def refunds(app, user_id, order):
    return [row.amount for row in ledger_rows(app, user_id) if row.ref == order and row.op == "order_refund"]


# Open orders: order/details -----------------------------------------------------------------

def test_open_orders_are_settled_refunded_or_left_open(app, fake, player, hash_declares_3002):
    user_id, token = player
    hash_api = Hash(app)
    won, cancelled, pending, unknown, young = (order_no() for _ in range(5))
    for order in (won, cancelled, pending, unknown, young):
        assert hash_api.add(token, user_id, order)["code"] == 0
    for minutes, order in enumerate((unknown, pending, cancelled, won), start=60):
        backdate(app, [order], minutes)                          # looked up oldest first
    fake.add_order(won, user_id, status=1, prize=30, tax=1)
    fake.add_order(cancelled, user_id, status=4)
    fake.add_order(pending, user_id, status=3)
    fake.add_order(young, user_id, status=1, prize=50)           # still inside Hash's retries
    result = reconcile(app)
    assert result.exit_code == 0, result.output
    assert f"{won}: settled (Hash status 1), balance 980" in result.output       # 1000 - 5 * 10 + 30
    assert f"{cancelled}: refunded (Hash status 4), balance 990" in result.output
    assert f"{pending}: still open at Hash (status 3)" in result.output
    assert f"{unknown}: refunded: never recorded at Hash, balance 1000" in result.output  # its stake back
    assert young not in result.output and "4 open order(s) looked up, 0 left open" in result.output
    # the next run finds only what is still open; Hash's late retries change nothing
    assert "1 open order(s) looked up" in reconcile(app).output
    assert hash_api.update(user_id, won, 1, prize=30, tax=1)["data"]["balance"] == 1000
    assert hash_api.update(user_id, unknown, 2)["data"]["balance"] == 1000          # the same refund
    assert hash_api.update(user_id, unknown, 1, prize=30)["code"] == 3003          # final: no payout
    assert refunds(app, user_id, unknown) == [10]
    assert audit(app.extensions["engine"]) == []
    assert statuses(app) == {won: 1, cancelled: 4, pending: 0, unknown: 2, young: 0}


NOT_FOUND = {"code": 3002, "msg": "order not found"}
DECLARED = {"HASH_NOT_FOUND_CODES": "3002"}
REFUNDED, NEEDS_WORD = "refunded: never recorded at Hash", "left open, needs Hash's word: order/details answered"


@pytest.mark.parametrize("answer, env, exit_code, line", [
    (NOT_FOUND, DECLARED, 0, REFUNDED),
    ({"code": 4004, "msg": "no such order"}, {"HASH_NOT_FOUND_CODES": "4004, 4005"}, 0, REFUNDED),
    # nothing declared (the default): 3002 is this wallet's own code, not Hash's word
    (NOT_FOUND, None, 1, f"{NEEDS_WORD} code 3002, which HASH_NOT_FOUND_CODES does not declare"),
    (NOT_FOUND, {"HASH_NOT_FOUND_CODES": ""}, 1, f"{NEEDS_WORD} code 3002"),
    (NOT_FOUND, {"HASH_NOT_FOUND_CODES": "4004"}, 1, f"{NEEDS_WORD} code 3002"),
    ({"code": 4001, "msg": "merchant disabled"}, DECLARED, 1, f"{NEEDS_WORD} code 4001"),
    # a success without a record declares nothing, whatever is configured
    ({"code": 0, "msg": "SUCCESS", "data": None}, None, 1, f"{NEEDS_WORD} success with no order record"),
    ({"code": 0, "msg": "SUCCESS", "data": {}}, DECLARED, 1, f"{NEEDS_WORD} success with no order record"),
    ({"code": 0, "msg": "SUCCESS", "data": []}, DECLARED, 1, f"{NEEDS_WORD} success with no order record"),
    ({"code": 0, "msg": "SUCCESS"}, DECLARED, 1, f"{NEEDS_WORD} success with no order record"),
    ({"code": 0, "data": {"order_no": "another-order", "status": 4, "amount": 10}}, None, 1,
     "left open: Hash's record differs from ours on order_no"),
    ({"code": 0, "data": {"status": 9}}, None, 1, "left open: Hash's record: status 9"),
    # Hash not reached or not readable: never "never recorded"
    ((502, b"<html>bad gateway</html>"), DECLARED, 2, "left open: api/v2/order/details: HTTP 502"),
    ((200, b"<html>oops</html>"), DECLARED, 2, "not a JSON envelope"),
    ({"code": 0, "data": "order 77"}, DECLARED, 2, "the answer is not an order record"),
])
def test_only_a_declared_not_found_refunds(app, fake, player, answer, env, exit_code, line):
    user_id, token = player
    order = order_no()
    Hash(app).add(token, user_id, order)
    backdate(app, [order])
    fake.answers["/api/v2/order/details"] = lambda plain: answer
    result = reconcile(app, env=env)
    assert result.exit_code == exit_code and f"{order}: " in result.output and line in result.output
    assert refunds(app, user_id, order) == ([10] if exit_code == 0 else [])
    assert statuses(app)[order] == (2 if exit_code == 0 else 0)
    assert audit(app.extensions["engine"]) == []


def test_an_order_is_old_from_its_last_change_not_from_its_bet(app, fake, player, hash_declares_3002):
    """An order booked an hour ago that Hash moved to pending settlement (3) a minute ago is still
    inside Hash's retries for its settle: it is not looked up (nor refunded) until 10 minutes after
    that change."""
    user_id, token = player
    order, other = order_no(), order_no()
    hash_api = Hash(app)
    for each in (order, other):
        assert hash_api.add(token, user_id, each)["code"] == 0
    assert hash_api.update(user_id, order, 3)["code"] == 0
    with app.extensions["engine"].begin() as conn:                 # booked an hour ago, changed now
        conn.execute(sa.update(hash_schema.hash_orders).where(hash_schema.hash_orders.c.order_no == order)
                     .values(created_at=schema.utcnow() - timedelta(minutes=60)))
    backdate(app, [other])
    result = reconcile(app)
    assert order not in result.output and [path for path, _, plain in fake.received
                                           if plain["order_no"] == order] == []
    assert f"{other}: {REFUNDED}" in result.output and "1 open order(s) looked up" in result.output
    assert statuses(app)[order] == 3 and refunds(app, user_id, order) == []
    backdate(app, [order], minutes=11)                             # 11 minutes after its last change
    assert f"{order}: {REFUNDED}" in reconcile(app).output


def test_a_result_truly_more_precise_is_settled_as_a_live_update_would_be(app, fake, player):
    """Was: Hash's record with a prize past 6 places (not a float64 artefact) was "left open" on
    every run, the stake held for ever, while the same live update is booked rounded toward the
    house (docs/hash.md §11.5). Reconcile and the books read it by the same rule."""
    user_id, token = player
    order = order_no()
    assert Hash(app).add(token, user_id, order)["code"] == 0
    backdate(app, [order])
    fake.add_order(order, user_id, status=1, prize=Decimal("12.3456789"), tax=Decimal("0.0000001"),
                   bonus=Decimal("0.9999999"))
    result = reconcile(app)
    assert result.exit_code == 0, result.output
    assert f"{order}: settled (Hash status 1), balance 1003.345677" in result.output  # 990 + 12.345678 + 0.999999
    assert Hash(app).update(user_id, order, 1, prize=Decimal("12.3456789"), tax=Decimal("0.0000001"),
                            bonus=Decimal("0.9999999"))["data"]["balance"] == Decimal("1003.345677")
    books = settled(app)
    assert books.exit_code == 0, books.output
    assert audit(app.extensions["engine"]) == []


HUGE_BET_INFO = "[" + ",".join(['{"key":"Big","name":"Big","odds":200,"amount":1}'] * 1400) + "]"


@pytest.mark.parametrize("bet_info, rule", [
    (HUGE_BET_INFO, "bet_info must be a string holding a JSON array, at most 65535 bytes"),  # MariaDB: Data too long
    ('[{"key":"Big","name":"\ud800"}]', "bet_info must be valid UTF-8 text"),               # a lone surrogate
])
def test_a_record_no_live_update_could_carry_is_that_orders_outcome(app, fake, player, bet_info, rule):
    """Hash's record is held to the field rules of a live order/update: one that breaks them leaves
    its order open and says why, and the orders after it are still settled."""
    assert len(HUGE_BET_INFO.encode()) > 65535
    user_id, token = player
    bad, good = order_no(), order_no()
    hash_api = Hash(app)
    for order in (bad, good):
        assert hash_api.add(token, user_id, order)["code"] == 0
    backdate(app, [bad], 70)                                        # looked up first
    backdate(app, [good], 60)
    fake.add_order(bad, user_id, status=1, prize=30, bet_info=bet_info)
    fake.add_order(good, user_id, status=1, prize=20)
    result = reconcile(app)
    assert result.exit_code == 1, result.output
    assert (f"{bad}: left open: Hash's record breaks a rule of order/update: invalid parameters: {rule}"
            in result.output)
    assert f"{good}: settled (Hash status 1), balance 1000" in result.output    # 1000 - 2 * 10 + 20
    assert "2 open order(s) looked up, 1 left open" in result.output
    assert statuses(app) == {bad: 0, good: 1}
    assert audit(app.extensions["engine"]) == []


def hold_wallet(database_url, wallet_id):
    """Another connection holding `wallet_id`'s row lock (SQLite, which has no row locks: the
    database's write lock). Returns it, to be rolled back."""
    engine = sa.create_engine(database_url)
    conn = engine.connect()
    if engine.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.begin()
        conn.execute(sa.select(schema.wallets.c.id).where(schema.wallets.c.id == wallet_id).with_for_update())
    return conn


def wallet_id_of(app, user_id, currency="USDT"):
    with app.extensions["engine"].connect() as conn:
        return conn.execute(sa.select(schema.wallets.c.id).where(
            schema.wallets.c.player_id == int(user_id), schema.wallets.c.currency == currency)).scalar()


def test_a_wallet_busy_past_the_deadline_is_that_orders_outcome(app, fake, player, database_url):
    """The first order's wallet is locked by another transaction past the deadline: that order is
    reported left open, and the run goes on to the next, which is settled (SQLite: once the lock
    is gone, since it locks the whole database). Each outcome comes as soon as it is known."""
    user_id, token = player
    other_id, other_token = new_player(app, "1000", currency="USDT")
    busy, free = order_no(), order_no()
    assert Hash(app).add(token, user_id, busy)["code"] == 0
    assert Hash(app).add(other_token, other_id, free)["code"] == 0
    backdate(app, [busy], 70)
    backdate(app, [free], 60)
    fake.add_order(busy, user_id, status=1, prize=30)
    fake.add_order(free, other_id, status=1, prize=20)
    engine = db.make_engine(database_url, db.Limits(lock_timeout=0.2, deadline=0.5))
    client = HashClient(fake.url, MERCHANT_ID, HASH_SECRET)
    blocker = hold_wallet(database_url, wallet_id_of(app, user_id))
    try:
        outcomes = reconcile_open_orders(engine, SqlHashWallet(engine), client, timedelta(minutes=10), set())
        first = next(outcomes)
        assert first.line.startswith(f"{busy}: left open: the wallet could not be written") and first.status == 1
        assert [plain["order_no"] for path, _, plain in fake.received] == [busy]   # not yet the next
    finally:
        blocker.rollback()
        blocker.close()
    rest = list(outcomes)
    assert [outcome.line for outcome in rest] == [f"{free}: settled (Hash status 1), balance 1010"]
    assert statuses(app) == {busy: 0, free: 1}
    assert f"{busy}: settled (Hash status 1), balance 1020" in reconcile(app).output   # the next run
    engine.dispose()
    assert audit(app.extensions["engine"]) == []


def test_each_line_is_printed_as_its_order_is_reached(app, fake, player, database_url):
    """The real command, its output a pipe (as under cron or a pager): the first order's line is
    on stdout while Hash is still answering about the second."""
    user_id, token = player
    first, second = order_no(), order_no()
    for order in (first, second):
        assert Hash(app).add(token, user_id, order)["code"] == 0
    backdate(app, [first], 70)
    backdate(app, [second], 60)
    fake.add_order(first, user_id, status=4)
    fake.add_order(second, user_id, status=4)
    line_read, released_by_the_test = threading.Event(), []

    def details(plain):
        if plain["order_no"] == second:                             # held until line 1 is read
            released_by_the_test.append(line_read.wait(8))
        return fake.order_details(plain)
    fake.answers["/api/v2/order/details"] = details
    env = {**os.environ, **TEST_CONFIG, "DATABASE_URL": database_url, "HASH_API_URL": fake.url}
    command = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "hash-reconcile"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
    try:
        assert command.stdout.readline().startswith(f"{first}: refunded (Hash status 4)")
        line_read.set()
        rest = command.stdout.read()
    finally:
        line_read.set()
        command.wait(30)
    assert released_by_the_test == [True]                          # not by the 8 s timeout
    assert f"{second}: refunded (Hash status 4)" in rest and command.returncode == 0


def test_an_unreachable_hash_leaves_orders_open(app, player):
    user_id, token = player
    order = order_no()
    Hash(app).add(token, user_id, order)
    backdate(app, [order])
    app.config["HASH_API_URL"] = "http://127.0.0.1:9/"
    result = reconcile(app)
    assert result.exit_code == 2
    assert f"{order}: left open: api/v2/order/details: cannot reach Hash" in result.output
    assert statuses(app)[order] == 0 and refunds(app, user_id, order) == []


def test_reconcile_settings_are_checked(app):
    result = reconcile(app)
    assert result.exit_code == 2 and "HASH_API_URL is not set" in result.output
    app.config["HASH_API_URL"] = "http://127.0.0.1:9/"
    for value in ("3002,x", "0", "3002, 0"):
        bad = reconcile(app, env={"HASH_NOT_FOUND_CODES": value})
        assert bad.exit_code == 2 and "HASH_NOT_FOUND_CODES must be non-zero integer codes" in bad.output
    assert reconcile(app, "--json").exit_code == 2      # --json, --from, --to go with --settled
    assert "is not YYYY-MM-DD" in reconcile(app, "--settled", "--from", "last week").output
    backwards = reconcile(app, "--settled", "--from", "2025-06-02", "--to", "2025-06-01")
    assert backwards.exit_code == 2 and "--from 2025-06-02 is after --to 2025-06-01" in backwards.output


def test_parallel_runs_and_late_updates_refund_at_most_once(app, fake, player):
    """Two reconcile runs at once, while Hash's own late updates arrive: an order Hash's
    order/details calls unknown gets one refund whoever wins, or, if Hash's late settle locks
    first, its payout and no refund."""
    user_id, token = player
    late_refund = [order_no() for _ in range(6)]   # Hash's late order/update: status 2, the same refund
    late_settle = [order_no() for _ in range(6)]   # Hash's late order/update: status 1, prize 25
    hash_api = Hash(app)
    for order in late_refund + late_settle:
        assert hash_api.add(token, user_id, order)["code"] == 0
    backdate(app, late_refund + late_settle)
    engine = app.extensions["engine"]
    client = HashClient(fake.url, MERCHANT_ID, HASH_SECRET)
    start = threading.Barrier(3)

    def run():
        start.wait()
        return list(reconcile_open_orders(engine, SqlHashWallet(engine), client, timedelta(minutes=10),
                                          {3002}))

    def late_updates():
        late = Hash(app)  # its own test client in this thread
        start.wait()
        return ([late.update(user_id, order, 2)["code"] for order in late_refund],
                [late.update(user_id, order, 1, prize=25)["code"] for order in late_settle])

    first, second, (refund_codes, settle_codes) = parallel([run, run, late_updates])
    assert refund_codes == [0] * 6                  # the same refund, applied once whoever came first
    for order, code in zip(late_settle, settle_codes):
        ops = [row.op for row in ledger_rows(app, user_id) if row.ref == order]
        assert ops == (["order_add", "order_settle"] if code == 0 else ["order_add", "order_refund"])
        assert code in (0, 3003)                    # 3003: refunded by reconcile before it came
    for order in late_refund:
        assert refunds(app, user_id, order) == [10]
    for outcome in first + second:
        assert REFUNDED in outcome.line or "already final here" in outcome.line
        assert outcome.status == 0
    assert audit(engine) == []
    assert set(statuses(app).values()) <= {1, 2}


# --settled: the books compared ---------------------------------------------------------------

def settled(app, *args, env=None):
    return reconcile(app, "--settled", "--from", "yesterday", *args, env=env)


def settled_json(app, *args):
    result = settled(app, "--json", *args)
    return result.exit_code, json.loads(result.output)


def by_order(report, section="differences") -> dict:
    return {f["order_no"]: f for f in report[section]}


def book(app, token, user_id, order, status=None, amount=10, currency="USDT", **money):
    """An order booked through the live endpoints: order/add, then order/update if `status`."""
    hash_api = Hash(app)
    assert hash_api.add(token, user_id, order, amount=amount, override={"currency": currency})["code"] == 0
    if status is not None:
        answer = hash_api.update(user_id, order, status, amount=amount, currency=currency, **money)
        assert answer["code"] == 0, answer


def test_agreeing_books_exit_0(app, fake, player):
    user_id, token = player
    won, lost, cancelled, still_open, trx_won, dropped, old = (order_no() for _ in range(7))
    book(app, token, user_id, won, 1, prize=Decimal("30.5"), tax=1, bonus=2)
    book(app, token, user_id, lost, 1)
    book(app, token, user_id, cancelled, 4)
    book(app, token, user_id, still_open, 3)
    book(app, token, user_id, trx_won, 1, amount=5, currency="TRX", prize=12)
    assert Hash(app).update(user_id, dropped, 4)["code"] == 0     # cancelled before its add: no money
    book(app, token, user_id, old, 1, prize=20)                   # three days ago: outside the range
    backdate(app, [won, lost, cancelled, still_open, trx_won, dropped])
    backdate(app, [old], minutes=3 * 24 * 60)
    fake.add_order(won, user_id, 1, prize=Decimal("30.5"), tax=1, bonus=2)
    fake.add_order(lost, user_id, 1)
    fake.add_order(cancelled, user_id, 4)
    fake.add_order(still_open, user_id, 0)                        # 0 and 3 both mean "open"
    fake.add_order(trx_won, user_id, 1, amount=5, currency="TRX", prize=12)
    fake.add_order(dropped, user_id, 4)
    before = ledger_rows(app, user_id)
    result = settled(app)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "hash-reconcile --settled: the books agree, 0 pending"
    assert "  USDT       diff          0                    0                    0" in result.output
    code, report = settled_json(app)
    assert code == 0 and report["agree"] and report["differences"] == [] and report["pending"] == []
    assert report["totals"] == {
        "TRX": {"ours": {"orders": 1, "stakes": "5", "payout": "12"},
                "hash": {"orders": 1, "stakes": "5", "payout": "12"},
                "difference": {"orders": 0, "stakes": "0", "payout": "0"}},
        "USDT": {"ours": {"orders": 2, "stakes": "20", "payout": "32.5"},   # prize + bonus
                 "hash": {"orders": 2, "stakes": "20", "payout": "32.5"},
                 "difference": {"orders": 0, "stakes": "0", "payout": "0"}}}
    assert ledger_rows(app, user_id) == before                    # it changes nothing
    # the payout is compared by the configured rule: under the other one, the tax is a difference
    app.config["HASH_PAYOUT"] = "prize-tax+bonus"
    code, report = settled_json(app)
    assert code == 1 and by_order(report)[won]["fields"] == {"payout": {"ours": "32.5", "hash": "31.5"}}


def test_every_kind_of_difference_is_reported_exit_1(app, fake, player, hash_declares_3002):
    user_id, token = player
    other_user, _ = new_player(app, "0", currency="USDT")
    names = ("prize", "user", "amount", "currency", "tax", "bonus", "status", "hash_only",
             "open_settled", "open_cancelled", "open_unknown", "not_at_hash", "unreadable", "boundary")
    o = {name: order_no() for name in names}
    for name in ("prize", "user", "amount", "currency", "tax", "bonus", "status", "not_at_hash", "boundary"):
        book(app, token, user_id, o[name], 1, prize=30, tax=1)
    for name in ("open_settled", "open_cancelled", "open_unknown", "unreadable"):
        book(app, token, user_id, o[name])
    backdate(app, o.values())
    fake.add_order(o["prize"], user_id, 1, prize=40, tax=1)
    fake.add_order(o["user"], other_user, 1, prize=30, tax=1)
    fake.add_order(o["amount"], user_id, 1, amount=11, prize=30, tax=1)
    fake.add_order(o["currency"], user_id, 1, currency="TRX", prize=30, tax=1)
    fake.add_order(o["tax"], user_id, 1, prize=30, tax=2)
    fake.add_order(o["bonus"], user_id, 1, prize=30, tax=1, bonus=1)
    fake.add_order(o["status"], user_id, 3)                        # we paid; Hash has not settled
    fake.add_order(o["hash_only"], user_id, 1, prize=15)           # never booked here
    fake.add_order(o["open_settled"], user_id, 1, prize=18)
    fake.add_order(o["open_cancelled"], user_id, 4)
    fake.add_order(o["unreadable"], user_id, 1, prize=Decimal("-1"))      # past 6 places would be read (§11.5)
    # Hash's list filters on its own clock: an order it dates three days back is looked up, and agrees
    fake.add_order(o["boundary"], user_id, 1, prize=30, tax=1, bet_time=now_ms() - 3 * 86_400_000)
    before = ledger_rows(app, user_id), statuses(app)
    code, report = settled_json(app)
    assert code == 1 and not report["agree"]
    found = by_order(report)

    def fields(name):
        assert found[o[name]]["kind"] == "differ" and found[o[name]]["fix"] is None
        return found[o[name]]["fields"]
    assert fields("prize") == {"prize": {"ours": "30", "hash": "40"}, "payout": {"ours": "30", "hash": "40"}}
    assert fields("user") == {"user_id": {"ours": user_id, "hash": other_user}}
    assert fields("amount") == {"amount": {"ours": "10", "hash": "11"}}
    assert fields("currency") == {"currency": {"ours": "USDT", "hash": "TRX"}}
    assert fields("tax") == {"tax": {"ours": "1", "hash": "2"}}        # prize+bonus: the payout agrees
    assert fields("bonus") == {"bonus": {"ours": "0", "hash": "1"}, "payout": {"ours": "30", "hash": "31"}}
    assert fields("status") == {"status": {"ours": 1, "hash": 3}, "payout": {"ours": "30", "hash": "0"}}
    assert found[o["hash_only"]]["kind"] == "not_booked_here" and found[o["hash_only"]]["fix"] is None
    for name in ("open_settled", "open_cancelled", "open_unknown"):
        assert found[o[name]]["kind"] == "open_here"
        assert found[o[name]]["fix"] == "flask --app app hash-reconcile"
    assert found[o["open_unknown"]]["what"] == "we hold it open; Hash has no record of it"
    assert found[o["not_at_hash"]]["kind"] == "not_at_hash"
    assert found[o["unreadable"]]["kind"] == "unreadable" and "prize" in found[o["unreadable"]]["what"]
    assert o["boundary"] not in found and len(found) == len(names) - 1
    # ours: 9 settled, 90 staked, 30 paid each; Hash's USDT: prize, user, amount, tax, bonus,
    # hash_only, open_settled and boundary settled (status 3, TRX and the unreadable one are not)
    assert report["totals"]["USDT"]["ours"] == {"orders": 9, "stakes": "90", "payout": "270"}
    assert report["totals"]["USDT"]["difference"] == {"orders": -1, "stakes": "-9", "payout": "-46"}
    assert report["totals"]["TRX"]["hash"] == {"orders": 1, "stakes": "10", "payout": "30"}
    assert (ledger_rows(app, user_id), statuses(app)) == before    # nothing changed
    text = settled(app).output
    assert (f"  {o['open_cancelled']:<32} open_here        Hash has it cancelled; we hold it open; "
            "status 0 here, 4 at Hash -> run: flask --app app hash-reconcile") in text
    assert text.splitlines()[-1] == "hash-reconcile --settled: 13 difference(s), 0 pending"
    # the fix it points at settles what it can; the rest stays for a person
    fixing = reconcile(app)
    assert fixing.exit_code == 1 and f"{o['unreadable']}: left open: Hash's record: prize" in fixing.output
    assert settled_json(app)[1]["differences"] != [] and all(
        f["kind"] != "open_here" for f in settled_json(app)[1]["differences"])


def test_settled_asks_for_hashs_word_unless_not_found_is_declared(app, fake, player):
    """--settled: an order of ours Hash's list lacks, and whose order/details answer is no record and
    no declared "never recorded", is reported as needing Hash's word, not as unknown at Hash."""
    user_id, token = player
    order = order_no()
    book(app, token, user_id, order, 1, prize=5)
    backdate(app, [order])
    code, report = settled_json(app)
    assert code == 1 and by_order(report)[order]["kind"] == "ask_hash"
    assert by_order(report)[order]["what"].startswith(
        "Hash's answer: order/details answered code 3002, which HASH_NOT_FOUND_CODES does not declare")
    assert report["totals"] == {}                                  # not counted on either side
    declared = settled(app, "--json", env=DECLARED)
    assert declared.exit_code == 1 and by_order(json.loads(declared.output))[order]["kind"] == "not_at_hash"


def test_a_settle_rewritten_in_transit_is_reported(app, fake, player):
    """Hash settled the order (status 1, prize 30), but what reached us said cancelled (4): we
    refunded the stake. The next --settled run shows it."""
    user_id, token = player
    order = order_no()
    book(app, token, user_id, order, 4)
    backdate(app, [order])
    fake.add_order(order, user_id, 1, prize=30)
    result = settled(app)
    assert result.exit_code == 1
    assert (f"  {order:<32} differ           the books disagree; status 4 here, 1 at Hash; "
            "payout 0 here, 30 at Hash") in result.output
    code, report = settled_json(app)
    assert by_order(report)[order]["fields"] == {"status": {"ours": 4, "hash": 1},
                                                 "payout": {"ours": "0", "hash": "30"}}
    assert report["totals"]["USDT"]["difference"] == {"orders": 1, "stakes": "10", "payout": "30"}


def test_orders_inside_the_retry_window_are_pending(app, fake, player, hash_declares_3002):
    user_id, token = player
    settling, hash_only, ours_only = order_no(), order_no(), order_no()
    book(app, token, user_id, settling)                            # Hash's order/update on its way
    book(app, token, user_id, ours_only, 1, prize=5)               # Hash's list not caught up yet
    fake.add_order(settling, user_id, 1, prize=20, bet_time=now_ms() - 5000)
    fake.add_order(hash_only, user_id, 1, bet_time=now_ms() - 5000)  # our order/add still running
    code, report = settled_json(app)
    assert code == 0 and report["agree"] and report["differences"] == []
    assert {k: (f["kind"], f["fix"]) for k, f in by_order(report, "pending").items()} == {
        settling: ("open_here", None), hash_only: ("not_booked_here", None), ours_only: ("not_at_hash", None)}
    assert report["totals"] == {}                                  # pending orders are not counted
    assert settled(app).output.splitlines()[-1] == "hash-reconcile --settled: the books agree, 3 pending"
    code, report = settled_json(app, "--older-than", "0")          # no window: all three differ
    assert code == 1 and len(report["differences"]) == 3 and report["pending"] == []


def test_order_list_is_read_page_by_page(app, fake, player):
    user_id, token = player
    orders = [order_no() for _ in range(5)]
    for order in orders:
        book(app, token, user_id, order, 1, prize=3)
        fake.add_order(order, user_id, 1, prize=3)
    backdate(app, orders)
    fake.max_page_size = 2                                         # Hash serves fewer than we ask
    code, report = settled_json(app, "--to", "today")
    assert code == 0 and report["listed_by_hash"] == 5 and report["totals"]["USDT"]["hash"]["orders"] == 5
    pages = [plain for path, _, plain in fake.received if path == "/api/v2/order/list"]
    assert [p["page"] for p in pages] == [1, 2, 3, 4]              # 2 + 2 + 1, then an empty page
    assert all("max_id" not in p for p in pages)                   # only inferred to be a cursor
    midnight = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday, tomorrow = midnight - timedelta(days=1), midnight + timedelta(days=1)
    assert {(p["start_time"], p["end_time"]) for p in pages} == {
        (int(yesterday.timestamp() * 1000), int(tomorrow.timestamp() * 1000) - 1)}
    assert not [plain for path, _, plain in fake.received if path == "/api/v2/order/details"]
    # a Hash that ignores `page` would make us see page 1 forever: an error, not a short list
    first_page = fake.order_list({"page": 1, "page_size": 2, "start_time": 0, "end_time": now_ms()})
    fake.answers["/api/v2/order/list"] = lambda plain: first_page
    result = settled(app)
    assert result.exit_code == 2 and "page 2 repeats orders already listed" in result.output


@pytest.mark.parametrize("breakage", ["unreachable", "list 502", "details 502", "list error code", "no url"])
def test_hash_not_reached_exit_2(app, fake, player, breakage):
    user_id, token = player
    order = order_no()
    book(app, token, user_id, order, 1, prize=5)                   # not listed: looked up by details
    backdate(app, [order])
    if breakage == "unreachable":
        app.config["HASH_API_URL"] = "http://127.0.0.1:9/"
    elif breakage == "list 502":
        fake.answers["/api/v2/order/list"] = lambda plain: (502, b"bad gateway")
    elif breakage == "details 502":
        fake.answers["/api/v2/order/details"] = lambda plain: (502, b"bad gateway")
    elif breakage == "list error code":
        fake.answers["/api/v2/order/list"] = lambda plain: {"code": 4001, "msg": "merchant disabled"}
    else:
        app.config["HASH_API_URL"] = ""
    result = settled(app)
    assert result.exit_code == 2 and "differences" not in result.output
    as_json = settled(app, "--json")
    assert as_json.exit_code == 2
    error = json.loads(as_json.output)["error"]
    assert ("HASH_API_URL is not set" if breakage == "no url" else "Hash could not be reached") in error
