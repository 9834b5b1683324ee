"""`flask --app app hash-reconcile`: after an outage, ask Hash for each open order and apply what it
says (spec/hash.md §5.4, §7.3: order/update stops after 10 tries; "use order/details on restart").

An order still open here (debited, status 0 or 3) is looked up with order/details and passed through
the same `update_order` as a live order/update, so a settle or refund happens at most once even if
Hash's own retry arrives at the same moment. An order Hash cannot describe is reported, never guessed.
"""
from datetime import timedelta

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from . import hash_orders
from .db import hash_orders as orders_table
from .db import utcnow, wallets
from .hash_client import HashClient, HashServiceError
from .hash_orders import HashError
from .money import AmountError, parse_hash_amount


def open_orders(engine, older_than: timedelta):
    with engine.connect() as conn:
        return conn.execute(
            select(orders_table.c.order_no, orders_table.c.amount, orders_table.c.entry_key,
                   orders_table.c.round_id, orders_table.c.bet_info, wallets.c.player_id,
                   wallets.c.currency)
            .join(wallets)
            .where(orders_table.c.debited.is_(True),
                   orders_table.c.status.in_([hash_orders.PENDING, hash_orders.PENDING_SETTLEMENT]),
                   orders_table.c.created_at <= utcnow() - older_than)
            .order_by(orders_table.c.created_at)).all()


def reconcile_order(engine, client: HashClient, order, formula: str) -> str:
    """One line saying what happened to `order`."""
    try:
        details = client.order_details(order.order_no)
        status = details.get("status")
        if status not in hash_orders.FINAL:
            return f"{order.order_no}: still open at Hash (status {status})"
        money = {name: parse_hash_amount(details.get(name, 0)) for name in ("prize", "tax", "bonus")}
        answer = hash_orders.update_order(
            engine, user_id=order.player_id, order_no=order.order_no, currency=order.currency,
            amount=order.amount, status=status, bet_info=details.get("bet_info") or order.bet_info,
            entry_key=order.entry_key, round_id=order.round_id, formula=formula, **money)
    except (HashServiceError, HashError, AmountError) as exc:
        return f"{order.order_no}: left open: {exc}"
    verb = "settled" if status == hash_orders.SUCCESS else "refunded"
    return f"{order.order_no}: {verb} (Hash status {status}), balance {answer['balance']}"


@click.command("hash-reconcile")
@with_appcontext
@click.option("--older-than", type=int, default=10, show_default=True,
              help="Minutes: younger orders are still inside Hash's own retries.")
def hash_reconcile(older_than):
    """Settle or refund open Hash orders from Hash's order/details."""
    config, engine = current_app.config, current_app.extensions["engine"]
    try:
        client = HashClient.from_config(config)
    except HashServiceError as exc:
        raise click.ClickException(str(exc)) from None
    orders = open_orders(engine, timedelta(minutes=older_than))
    for order in orders:
        click.echo(reconcile_order(engine, client, order, config["HASH_PAYOUT"]))
    click.echo(f"hash-reconcile: {len(orders)} open order(s) looked up")
