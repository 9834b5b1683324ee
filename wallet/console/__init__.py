"""The sandbox console: see the wallet move (GET /), without SQL or the command line.

Players and their wallets, the latest provider calls and ledger rows (refreshed every few seconds),
a page per player with the ledger and open bets, and forms to create a player, top up a wallet and
open a session. On in the sandbox; in any other WALLET_ENV only with CONSOLE=1. It has no login and
no CSRF protection: never expose it beyond a developer's machine. Optional: delete this module, its
templates and its line in app.py and the wallet is unchanged.
"""
import time
from pathlib import Path
from decimal import Decimal, InvalidOperation

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from sqlalchemy import desc, insert, select

from ..core import accounts, db
from ..core.schema import ledger, metadata, players, utcnow, wallets
from ..guard import REFERENCE, RESULT, STARTED, provider_of
from .schema import call_log

bp = Blueprint("console", __name__, template_folder="templates")


def enabled(config) -> bool:
    return config["CONSOLE"] == "1" or (config["CONSOLE"] == "auto" and config["WALLET_ENV"] == "sandbox")


def install(app) -> None:
    if not enabled(app.config):
        return
    app.register_blueprint(bp)
    app.extensions["wallet.ddl"].append(Path(__file__).resolve().parent / "ddl")

    @app.after_request
    def record_call(response):
        """One call_log row per provider call, after the call's own transaction."""
        provider = provider_of(request.path)
        if provider:
            started = request.environ.get(STARTED, time.perf_counter())
            row = {"at": utcnow(), "provider": provider,
                   "operation": request.path.split("/", 2 if provider == "100hp" else 3)[-1][:32],
                   "ref": request.environ.get(REFERENCE),
                   "result": request.environ.get(RESULT, response.status_code),
                   "duration_ms": int((time.perf_counter() - started) * 1000)}
            try:
                db.transaction(_engine(), lambda conn: conn.execute(insert(call_log), row))
            except Exception:  # the console must never break a provider call
                current_app.logger.warning("console: could not record a call", exc_info=True)
        return response


def _engine():
    return current_app.extensions["engine"]


def _amount(value) -> str:
    return "" if value is None else format(value.normalize(), "f") if value else "0"


@bp.app_template_filter("money")
def money_filter(value):
    return _amount(value)


def activity(conn) -> dict:
    calls = conn.execute(select(call_log).order_by(desc(call_log.c.id)).limit(30)).all()
    rows = conn.execute(select(ledger, wallets.c.currency, wallets.c.player_id)
                        .join(wallets).order_by(desc(ledger.c.id)).limit(30)).all()
    return {"calls": calls, "rows": rows}


@bp.get("/")
def index():
    with _engine().connect() as conn:
        everyone = conn.execute(select(players).order_by(desc(players.c.id)).limit(200)).all()
        owned = {}
        for wallet in conn.execute(select(wallets)).all():
            owned.setdefault(wallet.player_id, []).append(wallet)
        return render_template("console/index.html", players=everyone, wallets=owned, **activity(conn))


@bp.get("/console/activity")
def activity_fragment():
    with _engine().connect() as conn:
        return render_template("console/_activity.html", **activity(conn))


@bp.get("/players/<int:player_id>")
def player(player_id):
    with _engine().connect() as conn:
        found = conn.execute(select(players).where(players.c.id == player_id)).first()
        if found is None:
            abort(404)
        owned = accounts.player_wallets(conn, player_id)
        ids = [w.id for w in owned]
        rows = conn.execute(select(ledger, wallets.c.currency).join(wallets)
                            .where(ledger.c.wallet_id.in_(ids)).order_by(desc(ledger.c.id)).limit(200)).all()
        bets, orders = _open_bets(conn, ids)
    token = request.args.get("session")
    return render_template("console/player.html", player=found, wallets=owned, rows=rows, bets=bets,
                           orders=orders, token=token, examples=_examples(player_id, token) if token else None)


def _open_bets(conn, wallet_ids) -> tuple[list, list]:
    """The player's open 100HP bets and Hash orders, of the providers this app registered (a
    provider's table is in the metadata only if its package was imported)."""
    bets, orders = metadata.tables.get("hp_transactions"), metadata.tables.get("hash_orders")
    return ([] if bets is None else conn.execute(select(bets).where(
                bets.c.wallet_id.in_(wallet_ids), bets.c.status == "open")).all(),
            [] if orders is None else conn.execute(select(orders).where(
                orders.c.wallet_id.in_(wallet_ids), orders.c.status.in_([0, 3]),
                orders.c.debited.is_(True))).all())


def _examples(player_id, token) -> dict:
    config = current_app.config
    base = request.host_url.rstrip("/")
    return {
        "auth": f"curl -s -X POST {base}/100hp/auth -H 'Content-Type: application/json' "
                f"-d '{{\"secret\": \"{config['HP_SECRET']}\", \"sessionId\": \"{token}\"}}'",
        "launch_100hp": f"flask --app app launch 100hp {player_id} <GAME_ID>",
        "launch_hash": f"flask --app app launch hash {player_id}",
    }


def _decimal(text, default=None) -> Decimal:
    try:
        value = Decimal(text or default)
    except (InvalidOperation, TypeError):
        abort(400, "not an amount")
    if not value.is_finite() or value < 0 or value.adjusted() >= 18:
        abort(400, "amounts are >= 0 and below 1e18")
    return value


@bp.post("/console/players")
def create_player():
    name = (request.form.get("name") or "player").strip()[:255]
    currency = (request.form.get("currency") or "USD").strip().upper()[:16]
    balance = _decimal(request.form.get("balance"), "0")
    player_id = db.transaction(_engine(), lambda conn: accounts.create_player(conn, name, currency, balance))
    return redirect(url_for("console.player", player_id=player_id))


@bp.post("/console/topup")
def top_up():
    player_id = int(request.form["player_id"])
    currency = request.form.get("currency", "").strip().upper()[:16]
    amount = _decimal(request.form.get("amount"))

    def work(conn):
        owned = accounts.player_wallets(conn, player_id)
        if not owned:
            abort(404, "no such player")
        wallet = next((w for w in owned if w.currency == currency), None)
        if wallet is None:
            accounts.open_wallet(conn, player_id, currency, amount)  # a new currency: a new wallet
        elif amount:
            accounts.top_up(conn, wallet.id, amount)
    db.transaction(_engine(), work)
    return redirect(url_for("console.player", player_id=player_id))


@bp.post("/console/sessions")
def open_session():
    player_id = int(request.form["player_id"])
    currency = request.form.get("currency") or None
    try:
        token = db.transaction(_engine(), lambda conn: accounts.create_session(conn, player_id, currency))
    except LookupError as exc:
        abort(400, str(exc))
    return redirect(url_for("console.player", player_id=player_id, session=token))
