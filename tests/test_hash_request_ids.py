"""The request_id rule of docs/hash.md §11.2 (wallet/hash/orders.py), on every database: only a
request that was applied is remembered, per endpoint, with a digest of its body; a re-send of it
(byte for byte, or encrypted afresh) is answered as the retry it is at any time within Hash's retry
schedule, whatever its timestamp's age; another body under it is 1005 and an alarm; a request not
applied before must be inside the window (order/update: the window plus Hash's 10 minutes of
re-sends). Old rows are purged a few at a time inside a call, never waiting for a held row. Times
are set in the requests' own timestamps and the rows' seen_at: nothing sleeps."""
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from conftest import TEST_CONFIG, new_player, wait_until_a_call_waits_for_a_lock
from test_hash import (BET_INFO, Hash, add_fields, hash_state, order_no, player_app,  # noqa: F401
                       seal)

from app import create_app
from wallet.core import schema
from wallet.core.db import DatabaseUnavailable
from wallet.hash import orders as hash_orders
from wallet.hash import schema as hash_schema
from wallet.hash.sql_wallet import SqlHashWallet

MINUTE_MS = 60_000
requests_table = hash_schema.hash_applied_requests


def update_fields(user_id, order, status, prize=0, **extra) -> dict:
    return {"user_id": str(user_id), "username": "u", "order_no": order, "entry_key": "pc28-1",
            "round_id": "72847940", "amount": 10, "currency": "USDT", "status": status, "prize": prize,
            "tax": 0, "bonus": 0, "bet_time": 1749200012000, "bet_info": BET_INFO,
            "is_win": prize > 0, **extra}


def stamped(minutes_ago: float, **fields) -> dict:
    """Fields with a timestamp `minutes_ago` in the past and a fresh request_id."""
    return {"timestamp": int(time.time() * 1000 - minutes_ago * MINUTE_MS),
            "request_id": uuid.uuid4().hex, **fields}


@pytest.fixture
def setup(player_app):  # noqa: F811
    app, player = player_app({})
    return Hash(app), app, player


def balance(hash_api, token):
    return hash_api.send("user/balance", {"token": token, "currency": "USDT"})["data"]["balance"]


# ---- a re-send of an applied request is the retry it is ------------------------------------------
@pytest.mark.parametrize("style", ["byte-identical", "encrypted afresh"])
def test_a_resent_add_and_update_are_answered_as_retries(setup, style):
    """Was: 1005 "duplicate request_id" on every re-send, so Hash never saw a success."""
    hash_api, app, (user_id, token) = setup
    order = order_no()
    bet, settle = stamped(0, **add_fields(token, int(user_id), order)), stamped(0, **update_fields(
        user_id, order, 1, prize=20))
    bodies = {"add": seal(bet), "settle": seal(settle)}

    def resend(path, name, plain):
        raw = bodies[name] if style == "byte-identical" else seal(plain)  # same plaintext, new IV
        return hash_api.send(path, {}, raw=raw)

    assert resend("order/add", "add", bet)["data"]["balance"] == 990
    assert resend("order/update", "settle", settle)["data"]["balance"] == 1010
    after = hash_state(app)
    for _ in range(3):  # the answers were lost: Hash sends them again
        assert resend("order/add", "add", bet) == {
            "code": 0, "msg": "SUCCESS", "data": {"order_no": order, "balance": 1010, "currency": "USDT"}}
        assert resend("order/update", "settle", settle)["data"] == {
            "order_no": order, "balance": 1010, "currency": "USDT"}
    assert hash_state(app) == after  # nothing moved


def test_a_resend_restamped_or_written_by_another_encoder_is_a_retry(setup, caplog):
    """A third retry style: the first send's request_id kept, a fresh timestamp, and numbers and
    ids written as another encoder does: 10 as 10.0, and a user_id or round_id as a number or a
    string (both read as text, docs/hash.md §4.5). The wallet reads those bodies as the same
    request, so they are the retry they are. Was: 1005 and an ERROR "rewritten copy?" alarm on
    every re-send."""
    hash_api, app, (user_id, token) = setup
    order = order_no()
    bet = stamped(0, **add_fields(token, int(user_id), order))
    settle = stamped(0, **update_fields(user_id, order, 1, prize=20))
    assert hash_api.send("order/add", {}, raw=seal(bet))["data"]["balance"] == 990
    assert hash_api.send("order/update", {}, raw=seal(settle))["data"]["balance"] == 1010
    after = hash_state(app)
    later = {"timestamp": settle["timestamp"] + 2 * MINUTE_MS}
    with caplog.at_level(logging.ERROR, logger="wallet.hash.orders"):
        assert hash_api.send("order/add", {}, raw=seal({**bet, **later, "amount": Decimal("10.0"),
                                                        "round_id": "72847940"}))["code"] == 0
        for resend in ({}, {"user_id": int(user_id), "amount": Decimal("10.00"), "prize": Decimal("20.0"),
                            "round_id": 72847940}):
            assert hash_api.send("order/update", {}, raw=seal({**settle, **later, **resend})) == {
                "code": 0, "msg": "SUCCESS", "data": {"order_no": order, "balance": 1010, "currency": "USDT"}}
    assert hash_state(app) == after
    assert [r for r in caplog.records if getattr(r, "alarm", None)] == []


def test_an_applied_update_resent_with_its_old_timestamp_is_acknowledged(setup):
    """Was: 1004 once the first send's timestamp was older than the 5-minute window."""
    hash_api, app, (user_id, token) = setup
    order = order_no()
    hash_api.add(token, user_id, order)
    settle = seal(stamped(0.1, **update_fields(user_id, order, 1, prize=20)))
    assert hash_api.send("order/update", {}, raw=settle)["data"]["balance"] == 1010
    after = hash_state(app)
    age_rows(app, timedelta(minutes=9))  # 9 minutes later: the row, not the clock, moves
    assert hash_api.send("order/update", {}, raw=settle)["data"]["balance"] == 1010
    assert hash_state(app) == after


@pytest.mark.parametrize("minutes_ago", [6, 9, 15.5])
def test_an_update_first_sent_minutes_ago_and_never_applied_is_applied(setup, minutes_ago):
    """Hash re-sends an update for 10 minutes, maybe byte for byte: its timestamp may be that old
    (plus the window for clock skew). Was: 1004 past 5 minutes."""
    hash_api, app, (user_id, token) = setup
    order = order_no()
    hash_api.add(token, user_id, order)
    settle = seal(stamped(minutes_ago, **update_fields(user_id, order, 1, prize=20)))
    assert hash_api.send("order/update", {}, raw=settle)["data"]["balance"] == 1010


def test_what_no_retry_schedule_explains_is_still_out_of_the_window(setup):
    hash_api, app, (user_id, token) = setup
    order = order_no()
    assert hash_api.send("order/add", {}, raw=seal(stamped(5.5, **add_fields(token, int(user_id), order)))
                         )["code"] == 1004  # an add is not re-sent for minutes: the window only
    hash_api.add(token, user_id, order)
    before = hash_state(app)
    for minutes_ago in (16.5, -5.5):  # past the window and the 11 minutes of re-sends; ahead of our clock
        assert hash_api.send("order/update", {}, raw=seal(stamped(
            minutes_ago, **update_fields(user_id, order, 1, prize=20))))["code"] == 1004
    assert hash_state(app) == before


def test_a_resent_add_for_an_order_refunded_since_is_refused(setup):
    """The retry answer is the order's current state: a refunded order no longer holds a bet."""
    hash_api, app, (user_id, token) = setup
    order = order_no()
    bet = seal(stamped(0, **add_fields(token, int(user_id), order)))
    assert hash_api.send("order/add", {}, raw=bet)["code"] == 0
    assert hash_api.update(user_id, order, 4)["data"]["balance"] == 1000
    before = hash_state(app)
    assert hash_api.send("order/add", {}, raw=bet) == {
        "code": 3001, "msg": "order_no already used with different data: the order was refunded"}
    assert hash_state(app) == before


# ---- another body under an applied request_id ----------------------------------------------------
def test_another_body_under_an_applied_request_id_is_1005_and_an_alarm(setup, caplog):
    hash_api, app, (user_id, token) = setup
    lost, won = order_no(), order_no()
    hash_api.add(token, user_id, lost)
    hash_api.add(token, user_id, won)
    settle = stamped(0, **update_fields(user_id, lost, 1, prize=0))
    assert hash_api.send("order/update", {}, raw=seal(settle))["code"] == 0
    before = hash_state(app)
    with caplog.at_level(logging.ERROR, logger="wallet.hash.orders"):
        for rewrite in ({"prize": 20}, {"order_no": won, "prize": 20}):
            assert hash_api.send("order/update", {}, raw=seal({**settle, **rewrite})) == {
                "code": 1005, "msg": "duplicate request_id"}
    assert hash_state(app) == before
    alarms = [r for r in caplog.records if getattr(r, "alarm", None) == "hash_request_id_reused"]
    assert len(alarms) == 2 and all(r.levelname == "ERROR" for r in alarms)
    assert settle["request_id"] in alarms[0].getMessage()
    assert hash_api.update(user_id, won, 1, prize=20)["data"]["balance"] == 1000  # Hash's own, fresh id


def test_the_alarm_is_counted_in_the_metrics(setup):
    hash_api, app, (user_id, token) = setup
    info = stamped(0, token=token)
    assert hash_api.send("user/info", {}, raw=seal(info))["code"] == 0
    metric = 'wallet_alarms_total{reason="hash_request_id_reused"}'

    def count():
        text = app.test_client().get("/metrics").get_data(as_text=True)
        return float(next((line.split()[-1] for line in text.splitlines() if line.startswith(metric)), 0))
    before = count()
    assert hash_api.send("user/info", {}, raw=seal({**info, "token": token + "x"}))["code"] == 1005
    assert count() == before + 1


# ---- only what was applied is remembered, per endpoint -------------------------------------------
def test_a_request_id_used_on_one_endpoint_is_free_on_another(setup):
    """Was: an order/add body first delivered to user/balance made Hash's real bet 1005."""
    hash_api, app, (user_id, token) = setup
    bet = stamped(0, **add_fields(token, int(user_id)))
    assert hash_api.send("user/balance", {}, raw=seal(bet))["code"] == 0  # it reads token and currency
    assert hash_api.send("order/add", {}, raw=seal(bet))["data"]["balance"] == 990


def test_a_new_request_out_of_the_window_leaves_nothing_remembered(setup):
    """Its request_id is claimed first, then the 1004 rolls the claim back with the call."""
    hash_api, app, (user_id, token) = setup
    late = stamped(5.5, **add_fields(token, int(user_id)))
    assert hash_api.send("order/add", {}, raw=seal(late))["code"] == 1004
    assert ("order/add", late["request_id"]) not in rows(app)
    assert hash_api.send("order/add", {}, raw=seal({**late, "timestamp": int(time.time() * 1000)})
                         )["data"]["balance"] == 990  # the same request in the window: applied


def test_a_refused_call_leaves_its_request_id_free(setup):
    """A copy rewritten without the key and refused cannot use up the request_id of Hash's own."""
    hash_api, app, (user_id, token) = setup
    order = order_no()
    hash_api.add(token, user_id, order)
    settle = stamped(0, **update_fields(user_id, order, 1, prize=20))
    assert hash_api.send("order/update", {}, raw=seal({**settle, "amount": 11}))["code"] == 3001
    assert hash_api.send("order/update", {}, raw=seal(settle))["data"]["balance"] == 1010


class CommitThenNoAnswer(SqlHashWallet):
    """A database whose COMMIT lands and whose answer is lost once (the outcome the wallet cannot
    know: db.py answers 5000 and never runs it again)."""
    fail_next = False

    def atomically(self, work, write=True):
        result = super().atomically(work, write)
        if self.fail_next:
            self.fail_next = False
            raise DatabaseUnavailable("COMMIT of unknown outcome")
        return result


@pytest.mark.parametrize("path", ["order/add", "order/update"])
def test_a_retry_after_a_5000_whose_commit_landed_succeeds(database_url, path):
    """Was: 1005 on every retry of the very same request (the README said it "still goes through")."""
    app = create_app({**TEST_CONFIG, "DATABASE_URL": database_url})
    app.extensions["hash_wallet"] = wallet = CommitThenNoAnswer(app.extensions["engine"])
    user_id, token = new_player(app, "1000", currency="USDT")
    hash_api, order = Hash(app), order_no()
    bet = seal(stamped(0, **add_fields(token, int(user_id), order)))
    settle = seal(stamped(0, **update_fields(user_id, order, 1, prize=20)))
    request = bet if path == "order/add" else settle
    if path == "order/update":
        assert hash_api.send("order/add", {}, raw=bet)["code"] == 0
    wallet.fail_next = True
    assert hash_api.send(path, {}, raw=request) == {"code": 5000, "msg": "internal error"}
    after = hash_state(app)
    assert hash_api.send(path, {}, raw=request)["data"]["balance"] == (990 if path == "order/add" else 1010)
    assert hash_state(app) == after
    app.extensions["engine"].dispose()


# ---- how long a row is kept, and the purge -------------------------------------------------------
def age_rows(app, by: timedelta) -> None:
    """Every remembered request as if seen `by` earlier."""
    with app.extensions["engine"].begin() as conn:
        for key, seen_at in rows(app).items():
            conn.execute(sa.update(requests_table).where(
                requests_table.c.endpoint == key[0], requests_table.c.request_id == key[1])
                .values(seen_at=seen_at - by))


def rows(app) -> dict:
    with app.extensions["engine"].connect() as conn:
        return {(r.endpoint, r.request_id): r.seen_at for r in conn.execute(sa.select(requests_table))}


def remember(app, request_id, seen_at, endpoint="user/info", digest="0" * 64):
    with app.extensions["engine"].begin() as conn:
        conn.execute(sa.insert(requests_table).values(endpoint=endpoint, request_id=request_id,
                                                      digest=digest, seen_at=seen_at))


def test_a_row_past_every_re_send_is_a_new_request(setup):
    hash_api, app, (_, token) = setup
    retention = timedelta(milliseconds=300_000) + hash_orders.RETRY_SPAN
    remember(app, "old", schema.utcnow() - retention - timedelta(seconds=1))
    remember(app, "recent", schema.utcnow() - retention + timedelta(seconds=30))
    assert hash_api.send("user/info", {"token": token, "request_id": "old"})["code"] == 0
    assert hash_api.send("user/info", {"token": token, "request_id": "recent"})["code"] == 1005
    assert rows(app)["user/info", "old"] > schema.utcnow() - timedelta(seconds=60)  # claimed afresh


def test_a_request_stamped_ahead_of_our_clock_is_remembered_from_its_timestamp(setup):
    hash_api, app, (_, token) = setup
    ahead = int(time.time() * 1000) + 200_000
    assert hash_api.send("user/info", {"token": token, "request_id": "ahead", "timestamp": ahead}
                         )["code"] == 0
    seen = rows(app)["user/info", "ahead"]
    assert abs((seen - datetime(1970, 1, 1)).total_seconds() * 1000 - ahead) < 1


def test_old_rows_are_purged_a_bounded_batch_at_a_time(setup):
    hash_api, app, (_, token) = setup
    old = schema.utcnow() - timedelta(days=1)
    for n in range(hash_orders.PURGE_BATCH + 5):
        remember(app, f"old-{n}", old + timedelta(seconds=n))
    for _ in range(hash_orders.PURGE_EVERY):  # one purge in PURGE_EVERY calls of a process
        assert hash_api.send("user/info", {"token": token})["code"] == 0
    left = [key for key in rows(app) if key[1].startswith("old-")]
    assert sorted(left) == sorted(("user/info", f"old-{n}") for n in range(hash_orders.PURGE_BATCH,
                                                                            hash_orders.PURGE_BATCH + 5))
    for _ in range(hash_orders.PURGE_EVERY):
        hash_api.send("user/info", {"token": token})
    assert not [key for key in rows(app) if key[1].startswith("old-")]
    assert len(rows(app)) == 2 * hash_orders.PURGE_EVERY  # the recent ones stay


def test_the_purge_skips_a_row_another_transaction_holds_and_never_waits(setup):
    """Was: every 100th call purged in a transaction of its own before the call; one that met a held
    row answered after 5 s. Now the purge is part of the call and takes only free rows."""
    hash_api, app, (_, token) = setup
    if app.extensions["engine"].dialect.name == "sqlite":
        pytest.skip("SQLite has no row locks: a call's transaction holds the whole database")
    old = schema.utcnow() - timedelta(days=1)
    for name in ("held", "free"):
        remember(app, name, old)
    holder = sa.create_engine(app.config["DATABASE_URL"]).connect()
    holder.begin()
    holder.execute(sa.select(requests_table).where(  # by its primary key: that one row only
        requests_table.c.endpoint == "user/info", requests_table.c.request_id == "held")
                   .with_for_update()).all()
    try:
        for _ in range(hash_orders.PURGE_EVERY):
            started = time.monotonic()
            assert hash_api.send("user/info", {"token": token})["code"] == 0
            assert time.monotonic() - started < 1.0  # LOCK_TIMEOUT_MS is 2 s: it did not wait
    finally:
        holder.rollback()
        holder.close()
    assert ("user/info", "held") in rows(app) and ("user/info", "free") not in rows(app)


def test_twins_in_flight_apply_once_and_both_answer_0(setup):
    """The same request twice at once: the second waits on the first's row, then finds it applied."""
    from conftest import parallel
    hash_api, app, (user_id, token) = setup
    bet = seal(stamped(0, **add_fields(token, int(user_id))))
    answers = parallel([lambda: Hash(app).send("order/add", {}, raw=bet)] * 4)
    assert [a["code"] for a in answers] == [0] * 4
    assert balance(hash_api, token) == Decimal(990)


class HeldBeforeItsMove(SqlHashWallet):
    """A wallet whose first call stops before moving money, its claims made and its transaction
    open, until the test lets it go: the call in flight a twin meets."""
    def __init__(self, engine):
        super().__init__(engine)
        self.holding, self.go = threading.Event(), threading.Event()

    def move(self, conn, wallet, amount, op, order_no):
        if not self.holding.is_set():
            self.holding.set()
            assert self.go.wait(30), "the test never let the first call go"
        return super().move(conn, wallet, amount, op, order_no)


def in_flight_app(database_url):
    """An app whose calls wait up to 20 s for a lock (the wait is the subject) and a player with
    1000 USDT: (app, user_id, token). SQLite is skipped: it runs one write at a time, so no call
    is ever in flight beside another."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite runs one write at a time: no call is ever in flight beside another")
    patient = {"LOCK_TIMEOUT_MS": "20000", "CALL_DEADLINE_MS": "25000"}
    app = create_app({**TEST_CONFIG, "DATABASE_URL": database_url, **patient})
    return (app, *new_player(app, "1000", currency="USDT"))


def second_waits_for_the_first(database_url, held, first, second) -> tuple[dict, dict]:
    """`first` runs until `held` stops it before its move; `second` starts and waits for a lock;
    then the first goes on. Both answers."""
    with ThreadPoolExecutor(2) as pool:
        first_call = pool.submit(first)
        assert held.holding.wait(30)
        second_call = pool.submit(second)
        try:
            wait_until_a_call_waits_for_a_lock(database_url, second_call)
        finally:
            held.go.set()
        return first_call.result(), second_call.result()


@pytest.mark.parametrize("twin, code, balance_after", [
    ("the same request", 0, 990),                          # case 1: the retry's answer, one debit
    ("another body under its request_id", 1005, 990),     # case 2
    ("the same order under another request_id", 0, 990),  # the order's own retry answer
    ("a refund of the order", 0, 1000),                    # runs after the add, on its order
])
def test_a_twin_waits_for_the_call_in_flight_then_meets_its_rows(database_url, twin, code, balance_after):
    """The second call waits on the first's claims (its request_id, its wallet), then meets what the
    first committed, as if it had come after it. PostgreSQL's ON CONFLICT DO NOTHING and MariaDB's
    INSERT IGNORE wait for the key's twin in flight; SQLite runs one writer at a time."""
    app, user_id, token = in_flight_app(database_url)
    app.extensions["hash_wallet"] = held = HeldBeforeItsMove(app.extensions["engine"])
    order = order_no()
    bet = stamped(0, **add_fields(token, int(user_id), order))
    second = {"the same request": bet,
              "another body under its request_id": {**bet, "amount": 11},
              "the same order under another request_id": {**bet, "request_id": uuid.uuid4().hex},
              "a refund of the order": stamped(0, **update_fields(user_id, order, 2))}[twin]
    path = "order/update" if "status" in second else "order/add"
    first, waiting = second_waits_for_the_first(
        database_url, held, lambda: Hash(app).send("order/add", {}, raw=seal(bet)),
        lambda: Hash(app).send(path, {}, raw=seal(second)))
    assert first["data"]["balance"] == 990
    assert waiting["code"] == code
    assert balance(Hash(app), token) == balance_after
    app.extensions["engine"].dispose()


@pytest.mark.parametrize("second, code", [
    ("the same settle under another request_id", 0),  # Hash's re-send of an update: paid once
    ("a cancel", 3003),                                # the order is final
])
def test_an_update_waiting_for_a_settle_in_flight_meets_the_settled_order(database_url, second, code):
    """The second update waits for the first's locks (lock_order: its order and its wallet), then
    reads the order as the first left it, settled, not as it was before the wait: the win is paid
    once."""
    app, user_id, token = in_flight_app(database_url)
    order = order_no()
    assert Hash(app).send("order/add", add_fields(token, int(user_id), order))["code"] == 0
    app.extensions["hash_wallet"] = held = HeldBeforeItsMove(app.extensions["engine"])
    settle = update_fields(user_id, order, 1, prize=15)
    then = {"the same settle under another request_id": settle,
            "a cancel": update_fields(user_id, order, 4)}[second]
    first, waiting = second_waits_for_the_first(
        database_url, held, lambda: Hash(app).send("order/update", {}, raw=seal(stamped(0, **settle))),
        lambda: Hash(app).send("order/update", {}, raw=seal(stamped(0, **then))))
    assert first["data"]["balance"] == 1005
    assert waiting["code"] == code
    assert balance(Hash(app), token) == 1005
    app.extensions["engine"].dispose()


def test_an_update_and_a_repeated_add_of_its_order_never_wait_for_each_other_for_ever(database_url, caplog):
    """wallet/hash/orders.py, Locks: MariaDB locks an update's order before its wallet, and a
    repeated add holds the wallet, then waits for the order's key. The database ends that cycle as
    a deadlock and the loser runs again; PostgreSQL's insert-or-nothing does not wait for the
    order. Either way the update is applied once and the repeat books nothing."""
    app, user_id, token = in_flight_app(database_url)
    order = order_no()
    assert Hash(app).send("order/add", add_fields(token, int(user_id), order))["code"] == 0
    wallet, engine = app.extensions["hash_wallet"], app.extensions["engine"]
    settle = seal(stamped(0, **update_fields(user_id, order, 1, prize=15)))
    with caplog.at_level(logging.INFO, logger="wallet.core.db"), engine.connect() as repeat, \
            ThreadPoolExecutor(1) as pool:
        repeat.begin()
        _, its_wallet = wallet.lock_session_wallet(repeat, token, "USDT")  # the repeated add's first lock
        update = pool.submit(Hash(app).send, "order/update", {}, raw=settle)
        wait_until_a_call_waits_for_a_lock(database_url, update)  # holding its order, on MariaDB
        repeat_ended = False
        try:  # the repeated add's second step: its order, booked already
            found = wallet.claim_order(repeat, hash_orders.Order(
                order, its_wallet.id, Decimal(10), hash_orders.PENDING, True, None, None, None, None,
                "pc28-1", "72847940", BET_INFO))
            assert found.order_no == order
        except sa.exc.DBAPIError as exc:
            assert "Deadlock" in str(exc.orig)
            repeat_ended = True
        repeat.rollback()
        assert update.result()["data"]["balance"] == 1005
    update_run_again = any(getattr(record, "retry_reason", None) == "deadlock" for record in caplog.records)
    assert (repeat_ended or update_run_again) == (engine.dialect.name != "postgresql")  # the cycle, ended
    assert balance(Hash(app), token) == 1005
    engine.dispose()
