"""`flask --app app audit` on every database: a provider's ledger row booked on a wallet that is not
its bet's or order's (the player's other currency, another player's) is a problem, although every
balance still sums to its ledger (wallet/core/audit.py, rows_on_another_wallet)."""
import uuid
from decimal import Decimal

import sqlalchemy as sa
from conftest import HP_SECRET, audit, new_player, tx
from test_hash import Hash

from wallet.core import db, ledger, schema
from wallet.hash import schema as hash_schema
from wallet.hp100 import schema as hp_schema


def wallet_of(app, user_id, currency):
    with app.extensions["engine"].connect() as conn:
        return conn.execute(sa.select(schema.wallets.c.id).where(
            schema.wallets.c.player_id == int(user_id), schema.wallets.c.currency == currency)).scalar()


def plant(app, wallet_id, provider, op, ref, amount, mark_settled):
    """A credit booked the way the app books one (balance and ledger row together, so every
    balance still sums to its ledger), but on `wallet_id`; `mark_settled(conn)` records the
    settle on the bet or order, as the app would."""
    def work(conn):
        ledger.post(conn, db.lock_wallet(conn, wallet_id), Decimal(amount), provider=provider, op=op, ref=ref)
        mark_settled(conn)
    db.transaction(app.extensions["engine"], work)


def settle_order(order_no, prize):
    return lambda conn: conn.execute(
        sa.update(hash_schema.hash_orders).where(hash_schema.hash_orders.c.order_no == order_no)
        .values(status=1, payout=prize, prize=prize, tax=0, bonus=0, updated_at=schema.utcnow()))


def settle_bet(tx_id, win):
    return lambda conn: conn.execute(
        sa.update(hp_schema.hp_transactions).where(hp_schema.hp_transactions.c.tx_id == tx_id)
        .values(status="settled", win_amount=win, closed_at=schema.utcnow()))


def test_a_settle_on_another_wallet_is_a_problem(app):
    player, token = new_player(app, "1000", currency="USDT", extra_currencies=("TRX",))
    stranger, _ = new_player(app, "1000", currency="USDT")
    hash_api = Hash(app)
    other_currency, other_player, honest = (uuid.uuid4().hex[:18] for _ in range(3))
    for order in (other_currency, other_player, honest):
        assert hash_api.add(token, player, order)["code"] == 0
    assert hash_api.update(player, honest, 1, prize=30)["code"] == 0
    assert audit(app.extensions["engine"]) == []
    usdt, trx, strangers = wallet_of(app, player, "USDT"), wallet_of(app, player, "TRX"), wallet_of(app, stranger, "USDT")
    plant(app, trx, "hash", "order_settle", other_currency, 30, settle_order(other_currency, 30))
    plant(app, strangers, "hash", "order_settle", other_player, 30, settle_order(other_player, 30))

    hp_player, session = new_player(app, "100")                    # USD
    hp_stranger, _ = new_player(app, "100")
    bet = tx()
    assert app.test_client().post("/100hp/withdrawal", json={
        "secret": HP_SECRET, "sessionId": session, "txId": bet, "amount": "10"}).status_code == 200
    hp_strangers = wallet_of(app, hp_stranger, "USD")
    plant(app, hp_strangers, "100hp", "deposit", bet, 25, settle_bet(bet, 25))

    with app.extensions["engine"].connect() as conn:
        row_of = dict(conn.execute(sa.select(schema.ledger.c.ref, schema.ledger.c.id).where(
            schema.ledger.c.op.in_(["order_settle", "deposit"]))).all())
    assert sorted(audit(app.extensions["engine"])) == sorted([
        f"ledger row {row_of[other_currency]} (hash order_settle {other_currency}) is on wallet {trx} "
        f"(player {player}, TRX), not on its order's wallet {usdt} (player {player}, USDT)",
        f"ledger row {row_of[other_player]} (hash order_settle {other_player}) is on wallet {strangers} "
        f"(player {stranger}, USDT), not on its order's wallet {usdt} (player {player}, USDT)",
        f"ledger row {row_of[bet]} (100hp deposit {bet}) is on wallet {hp_strangers} (player "
        f"{hp_stranger}, USD), not on its bet's wallet {wallet_of(app, hp_player, 'USD')} "
        f"(player {hp_player}, USD)"])
    result = app.test_cli_runner().invoke(args=["audit"])
    assert result.exit_code == 1 and f"(hash order_settle {other_currency}) is on wallet {trx}" in result.output
