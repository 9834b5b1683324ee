"""The async worked port (examples/port_fastapi): both providers in a FastAPI service on an existing
PostgreSQL accounts table in cents, served by Hypercorn, passes the kit with --strict for 100HP and
for Hash, and a short soak of each; its books agree; Hash's sub-cent amounts are kept to the
millionth, never rounded; its own schema refuses a second booking of one operation."""
import contextlib
import os
import subprocess
import sys
from decimal import Decimal

import pytest
import sqlalchemy as sa
from conftest import HASH_SECRET, HP_SECRET, MERCHANT_ID, ROOT, fresh_database, serving
from dbservers import free_port
from test_conformance import kit

from examples.port_fastapi import storage
from wallet.core import db
from wallet.hash.orders import CANCELLED, SUCCESS, HashError
from wallet.hp100.casino import CasinoError

TX = "0b7a4a4e-2a5c-4f57-9a53-6f7c1d2e3f40"

# The casino's own tables, as they were before the port (storage.py's docstring).
EXISTING = [
    "CREATE TABLE accounts (id BIGINT PRIMARY KEY, email TEXT NOT NULL, "
    "balance_cents BIGINT NOT NULL CHECK (balance_cents >= 0), currency CHAR(3) NOT NULL)",
    "CREATE TABLE login_tokens (token TEXT PRIMARY KEY, account_id BIGINT NOT NULL REFERENCES accounts, "
    "expires_at TIMESTAMP NOT NULL, revoked BOOLEAN NOT NULL DEFAULT false)",
    "INSERT INTO accounts VALUES (7, 'alice@example.com', 100000, 'USD'), (8, 'bob@example.com', 250000, 'USD')",
    "INSERT INTO login_tokens VALUES ('alice-token', 7, now() + interval '1 day', false), "
    "('bob-token', 8, now() + interval '1 day', false), ('alice-old', 7, now() + interval '1 day', true)",
]


@pytest.fixture
def casino_db(tmp_path):
    """The casino's database before the port: its own tables only."""
    url = fresh_database("postgres", tmp_path)
    engine = db.make_engine(url)
    with engine.begin() as conn:
        for statement in EXISTING:
            conn.exec_driver_sql(statement)
    yield url, engine
    engine.dispose()


@pytest.fixture
def engine(casino_db):
    """With the port's tables added: the storage alone, without a server."""
    storage.create_tables(casino_db[1])
    return casino_db[1]


@contextlib.contextmanager
def hypercorn(url):
    """`hypercorn examples.port_fastapi.app:app` on loopback, two worker processes; its base URL."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "HP_SECRET": HP_SECRET, "HASH_MERCHANT_ID": MERCHANT_ID,
           "HASH_SECRET": HASH_SECRET}
    log = open(f"{os.environ.get('TMPDIR', '/tmp')}/hypercorn-{port}.log", "w+")
    process = subprocess.Popen([sys.executable, "-m", "hypercorn", "examples.port_fastapi.app:app",
                                "-b", f"127.0.0.1:{port}", "-w", "2"],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    def no_tracebacks(output):
        assert "Traceback" not in output, output[-5000:]
    with serving("hypercorn", process, log, f"http://127.0.0.1:{port}", no_tracebacks) as base:
        yield base


def test_the_fastapi_port_passes_the_kit_strictly_for_both_providers(casino_db):
    url, engine = casino_db
    with hypercorn(url) as base:  # its two workers add the port's tables as they start
        status, out, err = kit("100hp", "--url", f"{base}/100hp", "--secret", HP_SECRET, "--session", "alice-token",
                               "--second-session", "bob-token", "--closed-session", "alice-old", "--strict")
        assert status == 0, out + err
        assert "0 failed, 0 warnings, 1 skipped" in out, out  # no blocked players in this port
        status, out, err = kit("hash", "--url", base, "--merchant-id", MERCHANT_ID, "--secret", HASH_SECRET,
                               "--token", "alice-token", "--second-token", "bob-token", "--strict")
        assert status == 0, out + err
        assert "0 failed, 0 warnings" in out, out
        # then each provider as in production for 6 s: concurrent players, timeouts, retries, duplicates
        status, out, err = kit("soak", "100hp", "--url", f"{base}/100hp", "--secret", HP_SECRET,
                               "--session", "alice-token", "--session", "bob-token", "--minutes", "0.1")
        assert status == 0, out + err
        status, out, err = kit("soak", "hash", "--url", base, "--merchant-id", MERCHANT_ID, "--secret", HASH_SECRET,
                               "--token", "alice-token", "--token", "bob-token", "--minutes", "0.1")
        assert status == 0, out + err

    with engine.connect() as conn:
        balances = {row.id: storage.exact(row) for row in conn.execute(sa.text(storage.ACCOUNT))}
        moved = dict(conn.execute(sa.text("SELECT account_id, SUM(amount) FROM wallet_ledger "
                                          "GROUP BY account_id")).all())
        open_bets = conn.execute(sa.text("SELECT COUNT(*) FROM hp_bets WHERE status = 'open'")).scalar()
        open_orders = conn.execute(sa.text("SELECT COUNT(*) FROM hash_orders WHERE status IN (0, 3)")).scalar()
    assert balances == {7: Decimal(1000) + moved[7], 8: Decimal(2500) + moved.get(8, 0)}
    assert open_bets == 0 and open_orders == 0


def test_hash_amounts_below_a_cent_are_kept_exactly_on_a_cents_table(engine):
    merchant = storage.PortHashWallet(engine)
    order = {"user_id": 7, "order_no": "H1", "currency": "USDT", "amount": Decimal("1.000001"),
             "entry_key": "pc28", "round_id": "1", "bet_info": "[]"}
    placed = merchant.order_add(token="alice-token", **order)
    assert placed["balance"] == Decimal("998.999999")  # not rounded to 999.00 in the player's favour
    settled = merchant.order_update(**order, status=SUCCESS, prize=Decimal("19.505"), tax=Decimal(0),
                                    bonus=Decimal(0))
    assert settled["balance"] == Decimal("1018.504999")  # not 1018.51: the sub-cent part is kept
    with engine.connect() as conn:
        cents, micros = conn.execute(sa.text("SELECT balance_cents, micros FROM accounts JOIN sub_cents "
                                             "ON account_id = id WHERE id = 7")).one()
        ledger = list(conn.execute(sa.text("SELECT amount, balance_after FROM wallet_ledger ORDER BY id")))
    assert (cents, micros) == (101850, 4999)  # the casino's balance: truncated to cents, never rounded up
    assert ledger == [(Decimal("-1.000001"), Decimal("998.999999")), (Decimal("19.505"), Decimal("1018.504999"))]


def test_an_unmapped_hash_currency_has_no_wallet(engine):
    merchant = storage.PortHashWallet(engine)
    with pytest.raises(HashError) as refused:
        merchant.user_balance("alice-token", "TRX")
    assert refused.value.code == 2003


def test_its_own_schema_refuses_a_second_booking_of_one_operation(engine):
    merchant = storage.PortHashWallet(engine)
    order = {"user_id": 7, "order_no": "H2", "currency": "USDT", "amount": Decimal(5),
             "entry_key": "pc28", "round_id": "1", "bet_info": "[]"}
    merchant.order_add(token="alice-token", **order)
    merchant.order_update(**order, status=CANCELLED, prize=Decimal(0), tax=Decimal(0), bonus=Decimal(0))

    def refund_again(conn):  # what a bug above the ledger would do: book the same refund twice
        return storage.move(conn, 7, Decimal(5), "hash", "order_refund", "H2")
    with pytest.raises(sa.exc.IntegrityError, match="wallet_ledger_provider_op_ref_key"):
        with engine.begin() as conn:
            refund_again(conn)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT balance_cents FROM accounts WHERE id = 7")).scalar() == 100000


def test_a_credit_past_the_cents_column_is_each_providers_refusal_and_writes_nothing(engine):
    """BIGINT cents hold less than the rules' balance limit (1e18): `storage.move` refuses a credit
    past them (OverLimit), which each provider answers in its own words: 100HP 400, Hash 1001."""
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE accounts SET balance_cents = {2**63 - 100} WHERE id = 8")
    hp, merchant = storage.PortCasino(engine), storage.PortHashWallet(engine)
    hp.withdrawal("bob-token", TX, Decimal(1))
    with pytest.raises(CasinoError) as refused:
        hp.deposit(TX, Decimal(200))
    assert (refused.value.err_code, refused.value.data) == (400, storage.LIMIT)
    order = {"user_id": 8, "order_no": "H3", "currency": "USDT", "amount": Decimal(1),
             "entry_key": "pc28", "round_id": "1", "bet_info": "[]"}
    merchant.order_add(token="bob-token", **order)
    with pytest.raises(HashError) as refused:
        merchant.order_update(**order, status=SUCCESS, prize=Decimal(200), tax=Decimal(0), bonus=Decimal(0))
    assert refused.value.code == 1001 and storage.LIMIT in refused.value.msg
    with engine.connect() as conn:  # the two debits only
        assert conn.execute(sa.text("SELECT balance_cents FROM accounts WHERE id = 8")).scalar() == 2**63 - 300
