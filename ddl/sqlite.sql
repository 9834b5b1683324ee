-- Wallet schema, SQLite. The schema's source of truth: wallet/db.py mirrors these tables and
-- tests/test_schema.py proves on every database that the two agree.
-- SQLite has no fixed-point type: money is stored as decimal TEXT ('104.230000'), never REAL,
-- and read back as Decimal (wallet/db.py, Money). Timestamps are UTC.

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

-- 100HP bets and promo wins. The primary key makes a second booking of a txId impossible (607).
-- kind 'rollback': a rollback that arrived before its withdrawal, kept so the late bet never books.
CREATE TABLE IF NOT EXISTS hp_transactions (
    tx_id      VARCHAR(50)  NOT NULL PRIMARY KEY,     -- SQLite: a text key needs NOT NULL
    kind       VARCHAR(16)  NOT NULL CHECK (kind IN ('withdrawal', 'bonusWin', 'rollback')),
    wallet_id  BIGINT       NULL REFERENCES wallets (id),    -- NULL: a rollback before its bet
    session_id VARCHAR(255) NULL,
    amount     TEXT         NOT NULL CHECK (CAST(amount AS NUMERIC) >= 0),
    status     VARCHAR(16)  NOT NULL CHECK (status IN ('open', 'settled', 'refunded')),
    win_amount TEXT         NULL,                            -- the deposit that settled it
    promo_id   VARCHAR(255) NULL,                            -- bonusWin only
    created_at DATETIME     NOT NULL,
    closed_at  DATETIME     NULL
);
CREATE INDEX IF NOT EXISTS hp_transactions_status_created ON hp_transactions (status, created_at);

-- Hash orders. The primary key makes order_no the idempotency key of order/add and order/update.
CREATE TABLE IF NOT EXISTS hash_orders (
    order_no   VARCHAR(64)  NOT NULL PRIMARY KEY,
    wallet_id  BIGINT       NOT NULL REFERENCES wallets (id),
    amount     TEXT         NOT NULL CHECK (CAST(amount AS NUMERIC) >= 0),
    status     SMALLINT     NOT NULL CHECK (status BETWEEN 0 AND 4),  -- Hash §7.1
    debited    BOOLEAN      NOT NULL,                        -- false: a cancel that arrived before any add
    payout     TEXT         NULL,                            -- credited on status 1
    prize      TEXT         NULL,
    tax        TEXT         NULL,
    bonus      TEXT         NULL,
    entry_key  VARCHAR(64)  NOT NULL,
    round_id   VARCHAR(64)  NOT NULL,
    bet_info   TEXT         NOT NULL,
    created_at DATETIME     NOT NULL,
    updated_at DATETIME     NOT NULL
);

-- Hash request_ids seen within the timestamp window (HASH_TIMESTAMP_WINDOW_MS): a repeat is refused
-- (1005). wallet/hash_orders.py purges the old rows now and then. Not part of the books.
CREATE TABLE IF NOT EXISTS hash_requests (
    request_id VARCHAR(128) NOT NULL PRIMARY KEY,
    seen_at    DATETIME     NOT NULL                         -- ours, or its timestamp if later
);
CREATE INDEX IF NOT EXISTS hash_requests_seen ON hash_requests (seen_at);

-- Append-only: one row per balance change, with the balance after it. Only wallet/ledger.py writes it.
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

-- The sandbox console's view of provider calls (wallet/console.py): written only when the console
-- is on. Not part of the books.
CREATE TABLE IF NOT EXISTS call_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          DATETIME    NOT NULL,
    provider    VARCHAR(16) NOT NULL,                        -- 100hp | hash
    operation   VARCHAR(32) NOT NULL,                        -- withdrawal, order/add, ...
    ref         VARCHAR(64) NULL,                            -- txId / order_no
    result      INTEGER     NOT NULL,                        -- errCode / HTTP status, or Hash code
    duration_ms INTEGER     NOT NULL
);
