"""`flask --app app expire-withdrawals`: the casino's own rollback of 100HP bets left open
(docs/100hp.md §6.7: 100HP recommends refunding after 2 weeks)."""
import re
from datetime import timedelta

import click
from flask import current_app
from flask.cli import with_appcontext

from .casino import CasinoError, utcnow

_DURATION = re.compile(r"(\d+)([dhm])\Z")


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if not match:
        raise click.BadParameter("use a number and d, h or m, e.g. 14d")
    unit = {"d": "days", "h": "hours", "m": "minutes"}[match.group(2)]
    return timedelta(**{unit: int(match.group(1))})


@click.command("expire-withdrawals")
@with_appcontext
@click.option("--older-than", default="14d", show_default=True, callback=lambda c, p, v: parse_duration(v),
              help="100HP recommends 2 weeks (changelog 2.4.0).")
def expire_withdrawals(older_than):
    """Refund 100HP withdrawals that got neither deposit nor rollback in time. Safe from cron while
    traffic flows: each refund is one locked transaction, and a bet settled meanwhile is left alone."""
    casino = current_app.extensions["casino"]
    refunded = 0
    for tx_id in casino.open_withdrawals(utcnow() - older_than):
        try:
            balance = casino.expire(tx_id)
        except CasinoError as exc:  # settled or refunded since we listed it
            click.echo(f"{tx_id}: left alone ({exc.err_code} {exc.message})")
            continue
        refunded += 1
        click.echo(f"{tx_id}: refunded, balance {balance:f}")
    click.echo(f"expire-withdrawals: {refunded} refunded")
