"""The sandbox console: see the wallet move (GET /), without SQL or the command line.

Players and their wallets, the latest provider calls and ledger rows (refreshed every few seconds),
a page per player with the ledger and open bets, and forms to create a player, top up a wallet and
open a session. On in the sandbox (CONSOLE=auto or 1); the wallet refuses to start with it in
production. Optional: delete this module, its templates and its line in app.py and the wallet is
unchanged.

It has no login, so it is a tool for a developer's own machine, and it defends itself against the
pages that machine's browser opens:
- DNS rebinding: every page answers only to the Host names it is served at (`served_hosts`).
- Cross-site forms: a POST needs an `Origin` (when the browser sends one) equal to its own address,
  and a CSRF token: a random value in a cookie (HttpOnly, SameSite=Lax) that the form repeats.
  Another site can neither read it nor make the browser send it with a POST. (A signing key held
  in memory would differ between gunicorn's workers; this "double submit" needs none.)
- It never shows a secret: the curl examples say `$HP_SECRET`.
- A top-up or opening balance is at most MAX_CREDIT, booked in the ledger as an admin top-up.
- Refused provider calls are not recorded in call_log (see `reached_the_wallet`).
"""
import hmac
import ipaddress
import re
import secrets
import time
from decimal import Decimal
from pathlib import Path

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for
from sqlalchemy import desc, insert, select
from werkzeug.exceptions import HTTPException

from ..core import accounts, db
from ..core.schema import ledger, metadata, players, utcnow, wallets
from ..guard import REFERENCE, RESULT, STARTED, provider_of
from .schema import call_log

bp = Blueprint("console", __name__, template_folder="templates")
MAX_CREDIT = Decimal(1_000_000)  # per top-up and per opening balance: a sandbox needs no more
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
CSRF_COOKIE, CSRF_FIELD = "console_csrf", "csrf_token"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}\Z")  # secrets.token_urlsafe(32)
_AMOUNT = re.compile(r"[0-9]{1,7}(\.[0-9]{1,6})?\Z")  # plain, at most 6 places like the columns
_CURRENCY = re.compile(r"[A-Z0-9]{1,16}\Z")
_SESSION = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")  # a uuid4 token


def enabled(config) -> bool:
    return config["CONSOLE"] == "1" or (config["CONSOLE"] == "auto" and config["WALLET_ENV"] == "sandbox")


def install(app) -> None:
    if not enabled(app.config):
        return
    app.register_blueprint(bp)
    app.extensions["wallet.ddl"].append(Path(__file__).resolve().parent / "ddl")

    @app.after_request
    def record_call(response):
        """One call_log row per provider call that reached the wallet, after the call's own
        transaction, in the same budget (CALL_DEADLINE_MS): a call never waits longer for its row."""
        provider = provider_of(request.path)
        result = request.environ.get(RESULT, response.status_code)
        if provider and reached_the_wallet(provider, result):
            if db.time_left(_engine()) <= 0:  # the call's budget is spent: no write, no wait
                current_app.logger.warning("console: call not recorded, its deadline passed")
                return response
            started = request.environ.get(STARTED, time.perf_counter())
            row = {"at": utcnow(), "provider": provider,
                   "operation": request.path.split("/", 2 if provider == "100hp" else 3)[-1][:32],
                   "ref": request.environ.get(REFERENCE), "result": result,
                   "duration_ms": int((time.perf_counter() - started) * 1000)}
            try:  # within what is left of the call's budget (wallet/guard.py CallBudget)
                db.transaction(_engine(), lambda conn: conn.execute(insert(call_log), row))
            except db.DatabaseUnavailable as exc:
                current_app.logger.warning("console: call not recorded: %s", exc)
            except Exception:  # the console must never break a provider call
                current_app.logger.warning("console: could not record a call", exc_info=True)
        return response


def reached_the_wallet(provider: str, result: int) -> bool:
    """False for a call refused by a check anyone on the network can fail: 100HP's 4xx (validation,
    unknown path) and 601 (wrong secret, outside HP_ALLOWED_IPS); Hash's 1001-1004 (fields,
    envelope, merchant-id or HASH_ALLOWED_IPS, timestamp). Only the other calls get a call_log row,
    so a flood of refused calls writes nothing: it can neither grow the table nor queue writes.
    Refused calls still have their log line (wallet.calls), one each."""
    if provider == "100hp":
        return not (400 <= result < 500 or result == 601)
    return not 1001 <= result <= 1004


# ---- who may use the console (see the module docstring) ---------------------------------------
def served_hosts() -> set:
    """The Host values this console answers to: a loopback name or the address the server is bound
    to, with the port it listens on (`gunicorn -b 127.0.0.1:8000`: `127.0.0.1:8000`,
    `localhost:8000`, `[::1]:8000`; the port may be left out when it is the scheme's default), and
    CONSOLE_HOSTS. A rebinding attack sends its own domain name as Host, which none of these is."""
    bound, port = request.environ.get("SERVER_NAME", ""), request.environ.get("SERVER_PORT", "")
    names = set(LOOPBACK_NAMES)
    if _is_address(bound):
        # as gunicorn reports its socket; on a unix socket SERVER_NAME comes from the Host header
        # itself, and only an address (never a rebound name) is accepted from there
        names.add(f"[{bound}]" if ":" in bound else bound)
    hosts = {f"{name}:{port}" for name in names}
    if port == {"http": "80", "https": "443"}.get(request.scheme):
        hosts |= names
    return hosts | current_app.config["CONSOLE_HOSTS"]


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@bp.before_request
def only_from_here():
    host = request.host.lower()
    if host not in served_hosts():
        abort(403, f"this console answers to {sorted(served_hosts())[0]} (or a name in CONSOLE_HOSTS), "
                   "not to the Host this request named")
    if request.method == "POST":
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() != f"{request.scheme}://{host}":
            abort(403, "a form from another site")  # a browser always names the page's origin
        cookie, field = request.cookies.get(CSRF_COOKIE, ""), request.form.get(CSRF_FIELD, "")
        if not _TOKEN.match(cookie) or not hmac.compare_digest(cookie.encode(), field.encode()):
            abort(403, "the form's CSRF token is missing or stale: reload the page and send it again")


@bp.app_template_global()
def csrf_token() -> str:
    """This browser's token: its cookie's, or a new one (set on the response, below)."""
    token = request.cookies.get(CSRF_COOKIE, "")
    if not _TOKEN.match(token):
        token = g.setdefault("new_csrf_token", secrets.token_urlsafe(32))
    return token


@bp.after_request
def set_csrf_cookie(response):
    if "new_csrf_token" in g:
        response.set_cookie(CSRF_COOKIE, g.new_csrf_token, httponly=True, samesite="Lax")
    return response


@bp.errorhandler(HTTPException)
def refused(exc: HTTPException):
    """A refusal in plain words (app.py's handler would answer only the status's name)."""
    return f"{exc.code} {exc.name}: {exc.description}\n", exc.code, {"Content-Type": "text/plain; charset=utf-8"}


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
    token = request.args.get("session", "")
    if not _SESSION.match(token):  # it goes into a shell command: only a token this console made
        token = None
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
    """Ready-made calls for a new session. The secret appears as `$HP_SECRET`, never its value:
    a page can be seen, screenshotted or cached by more than whoever runs the wallet."""
    config = current_app.config
    base = request.host_url.rstrip("/")
    fields = f'{{"secret": "$HP_SECRET", "sessionId": "{token}"}}'
    in_double_quotes = '"' + fields.replace('"', r'\"') + '"'  # so that the shell fills in $HP_SECRET
    examples = {
        "auth": f"curl -s -X POST {base}/100hp/auth -H 'Content-Type: application/json' -d {in_double_quotes}",
        "launch_100hp": f"flask --app app launch 100hp {player_id} <GAME_ID>",
    }
    if "hash" in current_app.blueprints:  # the Hash provider is registered
        from ..hash.client import launch_url
        examples["hash_url"] = launch_url(config["HASH_LAUNCH_URL"] or "https://<HASH_LAUNCH_URL>",
                                          config["HASH_MERCHANT_ID"], "lobby", "USDT", token)
    return examples


# ---- forms ---------------------------------------------------------------------------------------
def _credit(field: str, default: str = "") -> Decimal:
    """A top-up or opening balance: a plain amount from 0 to MAX_CREDIT."""
    text = (request.form.get(field) or default).strip()
    if not _AMOUNT.match(text) or Decimal(text) > MAX_CREDIT:
        abort(400, f"{field} must be an amount from 0 to {MAX_CREDIT} with at most 6 decimal places")
    return Decimal(text)


def _player_id() -> int:
    text = request.form.get("player_id", "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        abort(400, "player_id must be a player's number")
    return int(text)


def _currency(default: str = "") -> str:
    currency = (request.form.get("currency") or default).strip().upper()
    if not _CURRENCY.match(currency):
        abort(400, "currency must be 1-16 letters or digits, e.g. USD")
    return currency


@bp.post("/console/players")
def create_player():
    name = (request.form.get("name") or "player").strip()[:255]
    currency, balance = _currency("USD"), _credit("balance", "0")
    player_id = db.transaction(_engine(), lambda conn: accounts.create_player(conn, name, currency, balance))
    return redirect(url_for("console.player", player_id=player_id))


@bp.post("/console/topup")
def top_up():
    player_id, currency, amount = _player_id(), _currency(), _credit("amount")

    def work(conn):
        owned = accounts.player_wallets(conn, player_id)
        if not owned:
            abort(404, "no such player")
        wallet = next((w for w in owned if w.currency == currency), None)
        if wallet is None:
            accounts.open_wallet(conn, player_id, currency, amount)  # a new currency: a new wallet
        elif amount:
            accounts.top_up(conn, wallet.id, amount)  # an admin top-up row in the ledger
    db.transaction(_engine(), work)
    return redirect(url_for("console.player", player_id=player_id))


@bp.post("/console/sessions")
def open_session():
    player_id = _player_id()
    currency = _currency() if request.form.get("currency") else None
    try:
        token = db.transaction(_engine(), lambda conn: accounts.create_session(
            conn, player_id, currency, current_app.config["SESSION_LIFETIME"]))
    except LookupError as exc:
        abort(400, str(exc))
    return redirect(url_for("console.player", player_id=player_id, session=token))
