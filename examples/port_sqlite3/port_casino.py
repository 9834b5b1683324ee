"""PortCasino: the 100HP Casino (the rules of wallet/hp100/casino.py) on the standard library's sqlite3,
against a casino's existing `users` table, as an integrator would port it to their own stack.

The existing table, kept as it is:
    users(id INTEGER PRIMARY KEY, name TEXT, balance_cents INTEGER NOT NULL CHECK (balance_cents >= 0))
`init()` adds sessions, bets (one row per txId) and ledger (one row per balance change, (op, txId)
unique: the guard that books each operation once whatever happens above it). Balances
are integer cents: the blueprint has truncated every amount to cents already (docs/100hp.md §3.3), so a
Decimal becomes cents exactly, never through float. One currency (USD); no blocked players.
Each call is one transaction, run again while its deadline allows when SQLite says the next run
may win (docs/porting.md, "The storage you write").
"""
import sqlite3
import time
import uuid
from contextlib import closing
from datetime import datetime, timedelta
from decimal import Decimal

from wallet.hp100.casino import WITHDRAWAL, Bet, Casino, CasinoError, Session, Wallet, utcnow

TABLES = """
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    expires_at TEXT NOT NULL,
    closed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS bets (
    tx_id TEXT PRIMARY KEY,                   -- lower case: one transaction per UUID
    kind TEXT NOT NULL CHECK (kind IN ('withdrawal', 'bonusWin', 'rollback')),  -- rollback: before its bet
    user_id INTEGER REFERENCES users(id),
    session_id TEXT,
    amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0),
    status TEXT NOT NULL CHECK (status IN ('open', 'settled', 'refunded')),
    promo_id TEXT,
    booked_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger (          -- (op, tx_id) unique: no operation is booked twice
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    op TEXT NOT NULL,
    tx_id TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    balance_cents INTEGER NOT NULL CHECK (balance_cents >= 0),
    at TEXT NOT NULL,
    UNIQUE (op, tx_id));
"""
CURRENCY = "USD"
MAX_CENTS = 2**63 - 1  # SQLite's INTEGER
CALL_DEADLINE = 2.5  # s per call (docs/100hp.md §7.3): past it, 702 with nothing written
LOCK_TIMEOUT = 1.0   # s: the longest one run waits for the database lock
ATTEMPTS = 4         # a race lost 4 times running is no race
RUN_AGAIN = ("UNIQUE constraint failed", "database is locked")  # a lost race; a lock wait that ran out


def cents(amount: Decimal) -> int:
    """Whole cents, exactly (the blueprint truncated the amount to cents before it got here)."""
    value = amount * 100
    if value != value.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of cents")
    return int(value)


def units(amount_cents: int) -> Decimal:
    return Decimal(amount_cents) / 100


class PortCasino(Casino):
    def __init__(self, path: str):
        self.path = path

    def connect(self, lock_timeout=LOCK_TIMEOUT):
        # autocommit mode: every transaction is begun explicitly below; timeout: the lock wait
        return sqlite3.connect(self.path, timeout=lock_timeout, isolation_level=None)

    def init(self):
        with closing(self.connect()) as conn:
            conn.executescript(TABLES)

    # ---- the operator's side ----
    def open_session(self, user_id: int, lifetime=timedelta(days=1)) -> str:
        session_id = str(uuid.uuid4())
        with closing(self.connect()) as conn:
            conn.execute("INSERT INTO sessions (session_id, user_id, expires_at) VALUES (?, ?, ?)",
                         (session_id, user_id, (utcnow() + lifetime).isoformat(" ")))
        return session_id

    def close_session(self, session_id: str):
        with closing(self.connect()) as conn:
            conn.execute("UPDATE sessions SET closed = 1 WHERE session_id = ?", (session_id,))

    # ---- the storage primitives of Casino ----
    def atomically(self, work, write=True):
        deadline = time.monotonic() + CALL_DEADLINE
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self._run(work, write, deadline)
            except (sqlite3.IntegrityError, sqlite3.OperationalError) as exc:
                if not any(reason in str(exc) for reason in RUN_AGAIN) or attempt == ATTEMPTS:
                    raise  # a CHECK, a NOT NULL, a bug: the same every time
                if time.monotonic() >= deadline:  # 702; 100HP retries or rolls back
                    raise TimeoutError(f"no answer within {CALL_DEADLINE} s: {exc}") from exc

    def _run(self, work, write, deadline):
        with closing(self.connect(max(0.0, min(LOCK_TIMEOUT, deadline - time.monotonic())))) as conn:
            try:
                # IMMEDIATE: a writer takes the database's write lock first, so calls for one player
                # run one after another (the wallet lock of casino.py's lock order)
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                result = work(conn)
                conn.execute("COMMIT")  # "database is locked" here: nothing committed, run again
                return result
            except BaseException:
                if conn.in_transaction:  # not when BEGIN itself timed out: keep its error
                    conn.execute("ROLLBACK")
                raise

    def find_session(self, conn, session_id, lock=False):  # BEGIN IMMEDIATE has locked already
        row = conn.execute("SELECT s.expires_at, s.closed, u.id, u.name, u.balance_cents FROM sessions s "
                           "JOIN users u ON u.id = s.user_id WHERE s.session_id = ?", (session_id,)).fetchone()
        if row is None:
            return None
        expires_at, closed, user_id, name, balance = row
        return Session(session_id, Wallet(user_id, str(user_id), CURRENCY, units(balance)), name or "",
                       "active", "real", datetime.fromisoformat(expires_at), bool(closed))

    def lock_wallet(self, conn, wallet_id):
        balance, = conn.execute("SELECT balance_cents FROM users WHERE id = ?", (wallet_id,)).fetchone()
        return Wallet(wallet_id, str(wallet_id), CURRENCY, units(balance))

    def find_bet(self, conn, tx_id):
        row = conn.execute("SELECT tx_id, kind, user_id, session_id, amount_cents, status, promo_id "
                           "FROM bets WHERE tx_id = ?", (tx_id,)).fetchone()
        return None if row is None else Bet(*row[:4], units(row[4]), *row[5:])

    def add_bet(self, conn, bet):
        conn.execute("INSERT INTO bets (tx_id, kind, user_id, session_id, amount_cents, status, promo_id, "
                     "booked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (bet.tx_id, bet.kind, bet.wallet_id, bet.session_id, cents(bet.amount), bet.status,
                      bet.promo_id, utcnow().isoformat(" ")))

    def close_bet(self, conn, tx_id, status, win_amount=None):
        conn.execute("UPDATE bets SET status = ? WHERE tx_id = ?", (status, tx_id))

    def move(self, conn, wallet, amount, op, tx_id):
        change = cents(amount)
        balance, = conn.execute("SELECT balance_cents FROM users WHERE id = ?", (wallet.id,)).fetchone()
        if balance + change > MAX_CENTS:  # the rules refuse credits past 1e18; our column holds less
            raise CasinoError(400, "amount would take the balance over the wallet's limit")
        if balance + change < 0:  # the rules refused it (603); the CHECKs are the last line
            raise ValueError("the balance would go below zero")
        conn.execute("UPDATE users SET balance_cents = ? WHERE id = ?", (balance + change, wallet.id))
        conn.execute("INSERT INTO ledger (user_id, op, tx_id, amount_cents, balance_cents, at) "
                     "VALUES (?, ?, ?, ?, ?, ?)", (wallet.id, op, tx_id, change, balance + change,
                                                   utcnow().isoformat(" ")))
        return units(balance + change)

    def open_withdrawals(self, created_before):
        with closing(self.connect()) as conn:
            rows = conn.execute("SELECT tx_id FROM bets WHERE kind = ? AND status = 'open' AND booked_at < ? "
                                "ORDER BY booked_at", (WITHDRAWAL, created_before.isoformat(" "))).fetchall()
        return [tx_id for tx_id, in rows]
