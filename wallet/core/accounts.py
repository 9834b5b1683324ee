"""Players, their per-currency wallets and their login sessions.

A session token is both the 100HP `sessionId` (docs/100hp.md §3.4) and the Hash `token`
(docs/hash.md §2.2): the casino issues it at game launch and the provider sends it back.
"""
import uuid
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import insert, select, update

from . import ledger
from .db import lock_wallet
from .schema import players, sessions, utcnow, wallets


def create_player(conn, name: str, currency: str = "USD", balance: Decimal = Decimal(0),
                  player_type: str = "real") -> int:
    """A player with one wallet; an opening balance is booked as an admin top-up."""
    player_id = conn.execute(insert(players).values(
        name=name, status="active", type=player_type, created_at=utcnow())).inserted_primary_key[0]
    open_wallet(conn, player_id, currency, balance)
    return player_id


def open_wallet(conn, player_id: int, currency: str, balance: Decimal = Decimal(0)) -> int:
    wallet_id = conn.execute(insert(wallets).values(
        player_id=player_id, currency=currency, balance=Decimal(0))).inserted_primary_key[0]
    if balance:
        top_up(conn, wallet_id, balance)
    return wallet_id


def top_up(conn, wallet_id: int, amount: Decimal) -> Decimal:
    """Credit a wallet by hand (sandbox funding); returns the new balance."""
    return ledger.post(conn, lock_wallet(conn, wallet_id), amount,
                       provider="admin", op="topup", ref=uuid.uuid4().hex)


def player_wallets(conn, player_id: int):
    return conn.execute(select(wallets).where(wallets.c.player_id == player_id)
                        .order_by(wallets.c.id)).all()


def create_session(conn, player_id: int, currency: str | None = None,
                   lifetime: timedelta = timedelta(days=1)) -> str:
    """A fresh token for the player, taking bets for `lifetime` (SESSION_LIFETIME_MINUTES) unless
    closed first. Its currency picks the 100HP wallet (default: the player's first)."""
    owned = [w.currency for w in player_wallets(conn, player_id)]
    if not owned:
        raise LookupError(f"player {player_id} not found")
    currency = currency or owned[0]
    if currency not in owned:
        raise LookupError(f"player {player_id} has no {currency} wallet")
    token = str(uuid.uuid4())
    now = utcnow()
    conn.execute(insert(sessions).values(token=token, player_id=player_id, currency=currency,
                                         created_at=now, expires_at=now + lifetime))
    return token


def close_session(conn, token: str) -> bool:
    """End a session now: no new bets on it (its open bets still settle). False if unknown or
    closed already."""
    closed = conn.execute(update(sessions).where(sessions.c.token == token,
                                                 sessions.c.closed_at.is_(None))
                          .values(closed_at=utcnow()))
    return closed.rowcount == 1


def set_player_status(conn, player_id: int, status: str) -> bool:
    """`blocked` refuses the player's new bets on every provider; `active` allows them again.
    False if there is no such player."""
    changed = conn.execute(update(players).where(players.c.id == player_id).values(status=status))
    return changed.rowcount == 1
