-- Wallet schema, SQLite. The core tables; the source of truth: wallet/core/schema.py mirrors them and
-- tests/test_schema.py proves on every database that the two agree.
-- SQLite has no fixed-point type: money is stored as decimal TEXT ('104.230000'), never REAL,
-- and read back as Decimal (wallet/core/schema.py, Money). Timestamps are UTC.

CREATE TABLE IF NOT EXISTS players (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,            -- 100HP userId, Hash user_id
    name       VARCHAR(255) NOT NULL,
    status     VARCHAR(16)  NOT NULL DEFAULT 'active',       -- 100HP /auth status: active | blocked
    type       VARCHAR(16)  NOT NULL DEFAULT 'real',         -- 100HP /auth type: real | test
    created_at DATETIME     NOT NULL
);

CREATE TABLE IF NOT EXISTS wallets (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    player_id  BIGINT      NOT NULL REFERENCES players (id),
    currency   VARCHAR(16) NOT NULL,
    balance    TEXT        NOT NULL CHECK (CAST(balance AS NUMERIC) >= 0),  -- never negative
    UNIQUE (player_id, currency)                              -- one wallet per currency
);

-- A login token: the 100HP sessionId and the Hash token.
CREATE TABLE IF NOT EXISTS sessions (
    token      VARCHAR(255) NOT NULL PRIMARY KEY,
    player_id  BIGINT      NOT NULL REFERENCES players (id),
    currency   VARCHAR(16) NOT NULL,                         -- the 100HP wallet of this session
    created_at DATETIME    NOT NULL,
    expires_at DATETIME    NOT NULL,                         -- no bets after (SESSION_LIFETIME_MINUTES)
    closed_at  DATETIME    NULL                              -- close-session: no bets after
);

-- Append-only: one row per balance change, with the balance after it. Only wallet/core/ledger.py writes it.
-- (provider, op, ref) is unique: no operation can be booked twice, whatever the code above it does.
CREATE TABLE IF NOT EXISTS ledger (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    wallet_id     BIGINT      NOT NULL REFERENCES wallets (id),
    provider      VARCHAR(16) NOT NULL,                      -- 100hp | hash | admin
    op            VARCHAR(16) NOT NULL,                      -- withdrawal, deposit, rollback, ...
    ref           VARCHAR(64) NOT NULL,                      -- txId / order_no / admin reference
    amount        TEXT        NOT NULL,                      -- signed: debits are negative
    balance_after TEXT        NOT NULL CHECK (CAST(balance_after AS NUMERIC) >= 0),
    created_at    DATETIME    NOT NULL,
    UNIQUE (provider, op, ref)
);
CREATE INDEX IF NOT EXISTS ledger_wallet ON ledger (wallet_id, id);
