"""`python -m conformance soak`: the provider played for a while as in production (concurrent
players, timeouts then rollbacks, late rollbacks and repeated deposits, Hash's retried updates, some
byte-identical, and float64-computed prizes). Against this wallet on real gunicorn nothing is lost or
doubled, and the books audit clean; against a wallet that pays a repeated deposit again, the soak says
money was doubled; a 702 the soak did not provoke fails it."""
import itertools

import pytest
from conftest import HASH_SECRET, HP_SECRET, MERCHANT_ID, audit, gunicorn
from test_conformance import kit, memory_wallet, sql_players
from test_conformance_mutants import HP_INTERNAL_ERROR, Mutant, SettlesTwice, in_front

MINUTES = "0.1"  # six seconds a provider


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)  # one database: it is a long test
def test_a_100hp_soak_of_this_wallet_loses_and_doubles_nothing(app, database_url):
    ids = sql_players(app)
    with gunicorn(database_url, workers=4) as base:
        status, out, err = kit("soak", "100hp", "--url", f"{base}/100hp", "--secret", HP_SECRET,
                               "--session", ids["session"], "--session", ids["second"], "--minutes", MINUTES)
    assert status == 0, out
    assert "soak: PASS, nothing lost or doubled" in out
    assert out.count(": ok") == 2  # both players' balances add up
    assert "withdrawal     no answer" in out and "rollback       200" in out  # timeouts, then rollbacks
    assert "deposit        609" in out and "deposit        608" in out  # the resolver's repeats
    assert " 702 " not in out  # none, or the soak would have failed
    assert "latency all" in out and " p50 " in out and " p99 " in out
    assert err.startswith("soak 100hp:")  # the progress line
    assert audit(app.extensions["engine"]) == []


# Hash re-sends some updates byte for byte, and computes some prizes in float64 (issue 25 items 1 and
# 3): the wallet takes both, which the soak checks.
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_hash_soak_of_this_wallet_loses_and_doubles_nothing(app, database_url):
    ids = sql_players(app)
    with gunicorn(database_url, workers=4) as base:
        status, out, err = kit("soak", "hash", "--url", base, "--merchant-id", MERCHANT_ID, "--secret", HASH_SECRET,
                               "--token", ids["session"], "--token", ids["second"], "--minutes", MINUTES)
    assert status == 0, out
    assert "soak: PASS, nothing lost or doubled" in out and out.count(": ok") == 2
    assert "order/update   0" in out and "no answer" in out
    assert " 5000 " not in out and " 1005 " not in out
    assert err.startswith("soak hash:")
    assert audit(app.extensions["engine"]) == []


def test_a_soak_finds_money_paid_twice(tmp_path):
    with memory_wallet(tmp_path, SettlesTwice()) as (base, casino, ids):
        status, out, _ = kit("soak", "100hp", "--url", f"{base}/100hp", "--secret", HP_SECRET,
                             "--session", ids["session"], "--minutes", "0.05", "--threads", "4")
    assert status == 1
    assert "DOUBLED" in out and "soak: FAIL" in out
    assert "unexpected: /deposit" in out and "answered 200, expected one of [609]" in out


def test_a_soak_that_cannot_start_exits_2(tmp_path):
    with memory_wallet(tmp_path) as (base, casino, ids):
        status, _, err = kit("soak", "100hp", "--url", f"{base}/100hp", "--secret", HP_SECRET,
                             "--session", "no-such-session", "--minutes", "0.01")
    assert status == 2 and "cannot start" in err


def every_seventh_withdrawal_702(app):
    """A wallet that now and then fails a withdrawal (702) and books nothing."""
    count = itertools.count(1)
    return Mutant(app, before=lambda path, body: HP_INTERNAL_ERROR
                  if path.endswith("/withdrawal") and next(count) % 7 == 0 else None)


def test_a_soak_fails_on_a_702_it_did_not_provoke(tmp_path, monkeypatch):
    prepare = lambda app: in_front(every_seventh_withdrawal_702)(monkeypatch, app)  # noqa: E731
    with memory_wallet(tmp_path, prepare=prepare) as (base, casino, ids):
        status, out, _ = kit("soak", "100hp", "--url", f"{base}/100hp", "--secret", HP_SECRET,
                             "--session", ids["session"], "--minutes", "0.03", "--threads", "2")
    assert status == 1 and "soak: FAIL" in out
    assert out.count(": ok") == 1  # no money lost or doubled: the 702s alone fail it
    assert "unexpected: /withdrawal" in out and "answered 702: a correct wallet answers every call" in out
