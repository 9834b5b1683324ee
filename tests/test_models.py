"""Model-based tests (hypothesis): random sequences of operations, with repeated and unknown ids,
against the real wallet on each database and a model; every answer and every balance must agree.

100HP: YourCasino on the database against TestCasino in memory.
Hash: SqlHashWallet on the database against MemoryHashWallet, and both against a dozen lines of
the order lifecycle (docs/hash.md §6.2) below.
"""
import uuid
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from conftest import DATABASES, TEST_CONFIG, new_player, prepare_database

from app import create_app
from wallet.hash.memory_wallet import MemoryHashWallet
from wallet.hp100.casino import CasinoError
from wallet.hash.orders import HashError
from wallet.hp100.testcasino import TestCasino

TX_IDS = [str(uuid.UUID(int=i)) for i in range(1, 7)]
AMOUNTS = st.sampled_from([Decimal(a) for a in ("0.01", "1", "5.55", "20", "99.99", "400")])
BET = st.sampled_from([Decimal("1.5"), Decimal(30)])  # few values: repeats and conflicts are common
RUN = settings(max_examples=15, stateful_step_count=25, deadline=None,
               suppress_health_check=list(HealthCheck))


def outcome(call):
    try:
        return call()
    except (CasinoError, HashError) as exc:
        return getattr(exc, "err_code", None) or exc.code


@pytest.mark.parametrize("kind", DATABASES)
def test_your_casino_agrees_with_test_casino(kind, tmp_path_factory):
    class HpModel(RuleBasedStateMachine):
        @initialize()
        def start(self):
            url = prepare_database(kind, tmp_path_factory.mktemp("model"))
            self.app = create_app({**TEST_CONFIG, "DATABASE_URL": url})
            self.real, self.model = self.app.extensions["casino"], TestCasino()
            self.sessions, self.users = [], {}  # session pairs (real, model); model userId -> real
            for balance in ("100", "50"):
                real_user, real_session = new_player(self.app, balance)
                model_user = self.model.add_player("p", "USD", Decimal(balance))
                self.users[model_user] = real_user
                self.sessions.append((real_session, self.model.open_session(model_user)))
            self.sessions.append(("gone", "gone"))  # an unknown session
            self.real_session = {model: real for real, model in self.sessions}

        def both(self, method, *args, session=None, **kwargs):
            real_args = (session[0], *args) if session else args
            model_args = (session[1], *args) if session else args
            real = outcome(lambda: getattr(self.real, method)(*real_args, **kwargs))
            model = outcome(lambda: getattr(self.model, method)(*model_args, **kwargs))
            if isinstance(model, dict):  # the same answer, up to the names and ids each store made
                model = {**model, "userId": self.users[model["userId"]]}
                if "sessionId" in model:
                    model["sessionId"] = self.real_session[model["sessionId"]]
                real.pop("userName", None), model.pop("userName", None)
            assert real == model, (method, args)

        @rule(s=st.integers(0, 2))
        def auth(self, s):
            self.both("auth", session=self.sessions[s])

        @rule(s=st.integers(0, 2), tx=st.sampled_from(TX_IDS), amount=AMOUNTS)
        def withdrawal(self, s, tx, amount):
            self.both("withdrawal", tx, amount, session=self.sessions[s])

        @rule(tx=st.sampled_from(TX_IDS), amount=AMOUNTS | st.just(Decimal("0.00")))
        def deposit(self, tx, amount):
            self.both("deposit", tx, amount)

        @rule(tx=st.sampled_from(TX_IDS))
        def rollback(self, tx):
            self.both("rollback", tx)

        @rule(s=st.integers(0, 2), tx=st.sampled_from(TX_IDS), amount=AMOUNTS)
        def bonus_win(self, s, tx, amount):
            self.both("bonus_win", tx, amount, "promo", session=self.sessions[s])

        @invariant()
        def balances_agree(self):
            if hasattr(self, "real"):
                for pair in self.sessions[:2]:
                    self.both("balance", session=pair)

        def teardown(self):
            if hasattr(self, "app"):
                self.app.extensions["engine"].dispose()

    HpModel.TestCase.settings = RUN
    HpModel.TestCase().runTest()


class OrderModel:
    """docs/hash.md §6.2 in a dozen lines: what a merchant owes for each call."""

    def __init__(self, balance):
        self.balance, self.orders = balance, {}  # order_no -> [amount, status, debited, prize]

    def add(self, order_no, amount):
        if order_no in self.orders:
            known = self.orders[order_no]
            holds_stake = known[2] and known[1] not in (2, 4)  # a refunded order is no retry's
            return self.balance if holds_stake and known[0] == amount else 3001
        if self.balance < amount:
            return 2002
        self.balance -= amount
        self.orders[order_no] = [amount, 0, True, None]
        return self.balance

    def update(self, order_no, amount, status, prize):
        if order_no not in self.orders:
            if status not in (2, 4):
                return 3002
            self.orders[order_no] = [amount, status, False, prize]
            return self.balance
        order = self.orders[order_no]
        if order[0] != amount:
            return 3001
        if order[1] in (1, 2, 4):
            return 3003 if order[1] != status else self.balance if order[3] == prize else 3001
        self.balance += prize if status == 1 else order[0] if status in (2, 4) and order[2] else 0
        order[1], order[3] = status, prize
        return self.balance


@pytest.mark.parametrize("kind", DATABASES)
def test_hash_orders_agree_with_the_model(kind, tmp_path_factory):
    class HashModel(RuleBasedStateMachine):
        @initialize()
        def start(self):
            url = prepare_database(kind, tmp_path_factory.mktemp("hash"))
            self.app = create_app({**TEST_CONFIG, "DATABASE_URL": url})
            self.engine = self.app.extensions["engine"]
            user_id, self.token = new_player(self.app, "100", currency="USDT")
            self.user_id, self.model = int(user_id), OrderModel(Decimal(100))
            self.memory = MemoryHashWallet()
            self.memory.open_session(self.memory.add_player("p", {"USDT": Decimal(100)}, self.user_id),
                                     self.token)

        def check(self, call, model):
            """The same call on the SQL wallet and on the memory one: both answer as the model."""
            answers = [outcome(lambda: call(self.app.extensions["hash_wallet"])),
                       outcome(lambda: call(self.memory))]
            assert [a["balance"] if isinstance(a, dict) else a for a in answers] == [model, model]

        @rule(order=st.sampled_from("ABCD"), amount=BET)
        def add(self, order, amount):
            self.check(lambda wallet: wallet.order_add(
                token=self.token, user_id=self.user_id, order_no=order, currency="USDT",
                amount=amount, entry_key="e", round_id="1", bet_info="[]"),
                self.model.add(order, amount))

        @rule(order=st.sampled_from("ABCD"), amount=BET, status=st.sampled_from([0, 1, 1, 2, 3, 4]),
              prize=st.sampled_from([Decimal(0), Decimal("7.5"), Decimal(40)]))
        def update(self, order, amount, status, prize):
            self.check(lambda wallet: wallet.order_update(
                user_id=self.user_id, order_no=order, currency="USDT", amount=amount,
                status=status, prize=prize, tax=Decimal(0), bonus=Decimal(0), bet_info="[]",
                entry_key="e", round_id="1"), self.model.update(order, amount, status, prize))

        def teardown(self):
            if hasattr(self, "app"):
                self.engine.dispose()

    HashModel.TestCase.settings = settings(RUN, max_examples=30)
    HashModel.TestCase().runTest()
