-- Wallet schema, MySQL 8.0.16+ / MariaDB 10.4+ (InnoDB; CHECK constraints enforced). The schema's
-- source of truth: wallet/db.py mirrors these tables and tests/test_schema.py proves on every
-- database that the two agree. Indexes are declared inline because MySQL has no CREATE INDEX IF NOT
-- EXISTS. Timestamps are UTC.

CREATE TABLE IF NOT EXISTS players (
    id         BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,  -- 100HP userId, Hash user_id
    name       VARCHAR(255) NOT NULL,
    status     VARCHAR(16)  NOT NULL DEFAULT 'active',       -- 100HP /auth status: active | blocked
    type       VARCHAR(16)  NOT NULL DEFAULT 'real',         -- 100HP /auth type: real | test
    created_at DATETIME(6)  NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS wallets (
    id         BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    player_id  BIGINT        NOT NULL,
    currency   VARCHAR(16)   NOT NULL,
    balance    DECIMAL(24, 6) NOT NULL CHECK (balance >= 0),  -- never negative
    UNIQUE (player_id, currency),                             -- one wallet per currency
    FOREIGN KEY (player_id) REFERENCES players (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- A login token: the 100HP sessionId and the Hash token.
CREATE TABLE IF NOT EXISTS sessions (
    token      VARCHAR(255) NOT NULL PRIMARY KEY,
    player_id  BIGINT       NOT NULL,
    currency   VARCHAR(16)  NOT NULL,                        -- the 100HP wallet of this session
    created_at DATETIME(6)  NOT NULL,
    expires_at DATETIME(6)  NOT NULL,                        -- no bets after (SESSION_LIFETIME_MINUTES)
    closed_at  DATETIME(6)  NULL,                            -- close-session: no bets after
    FOREIGN KEY (player_id) REFERENCES players (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- 100HP bets and promo wins. The primary key makes a second booking of a txId impossible (607).
-- kind 'rollback': a rollback that arrived before its withdrawal, kept so the late bet never books.
CREATE TABLE IF NOT EXISTS hp_transactions (
    tx_id      VARCHAR(50)    NOT NULL PRIMARY KEY,
    kind       VARCHAR(16)    NOT NULL CHECK (kind IN ('withdrawal', 'bonusWin', 'rollback')),
    wallet_id  BIGINT         NULL,                          -- NULL: a rollback before its bet
    session_id VARCHAR(255)   NULL,
    amount     DECIMAL(24, 6) NOT NULL CHECK (amount >= 0),
    status     VARCHAR(16)    NOT NULL CHECK (status IN ('open', 'settled', 'refunded')),
    win_amount DECIMAL(24, 6) NULL,                          -- the deposit that settled it
    promo_id   VARCHAR(255)   NULL,                          -- bonusWin only
    created_at DATETIME(6)    NOT NULL,
    closed_at  DATETIME(6)    NULL,
    INDEX hp_transactions_status_created (status, created_at),
    FOREIGN KEY (wallet_id) REFERENCES wallets (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Hash orders. The primary key makes order_no the idempotency key of order/add and order/update.
CREATE TABLE IF NOT EXISTS hash_orders (
    order_no   VARCHAR(64)    NOT NULL PRIMARY KEY,
    wallet_id  BIGINT         NOT NULL,
    amount     DECIMAL(24, 6) NOT NULL CHECK (amount >= 0),
    status     SMALLINT       NOT NULL CHECK (status BETWEEN 0 AND 4),  -- Hash §7.1
    debited    BOOLEAN        NOT NULL,                      -- false: a cancel that arrived before any add
    payout     DECIMAL(24, 6) NULL,                          -- credited on status 1
    prize      DECIMAL(24, 6) NULL,
    tax        DECIMAL(24, 6) NULL,
    bonus      DECIMAL(24, 6) NULL,
    entry_key  VARCHAR(64)    NOT NULL,
    round_id   VARCHAR(64)    NOT NULL,
    bet_info   TEXT           NOT NULL,
    created_at DATETIME(6)    NOT NULL,
    updated_at DATETIME(6)    NOT NULL,
    FOREIGN KEY (wallet_id) REFERENCES wallets (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Hash request_ids seen within the timestamp window (HASH_TIMESTAMP_WINDOW_MS): a repeat is refused
-- (1005). wallet/hash_orders.py purges the old rows now and then. Not part of the books.
CREATE TABLE IF NOT EXISTS hash_requests (
    request_id VARCHAR(128) NOT NULL PRIMARY KEY,
    seen_at    DATETIME(6)  NOT NULL,                        -- ours, or its timestamp if later
    INDEX hash_requests_seen (seen_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Append-only: one row per balance change, with the balance after it. Only wallet/ledger.py writes it.
-- (provider, op, ref) is unique: no operation can be booked twice, whatever the code above it does.
CREATE TABLE IF NOT EXISTS ledger (
    id            BIGINT         NOT NULL AUTO_INCREMENT PRIMARY KEY,
    wallet_id     BIGINT         NOT NULL,
    provider      VARCHAR(16)    NOT NULL,                   -- 100hp | hash | admin
    op            VARCHAR(16)    NOT NULL,                   -- withdrawal, deposit, rollback, ...
    ref           VARCHAR(64)    NOT NULL,                   -- txId / order_no / admin reference
    amount        DECIMAL(24, 6) NOT NULL,                   -- signed: debits are negative
    balance_after DECIMAL(24, 6) NOT NULL CHECK (balance_after >= 0),
    created_at    DATETIME(6)    NOT NULL,
    UNIQUE (provider, op, ref),
    INDEX ledger_wallet (wallet_id, id),
    FOREIGN KEY (wallet_id) REFERENCES wallets (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The sandbox console's view of provider calls (wallet/console.py): written only when the console
-- is on. Not part of the books.
CREATE TABLE IF NOT EXISTS call_log (
    id          BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at          DATETIME(6) NOT NULL,
    provider    VARCHAR(16) NOT NULL,                        -- 100hp | hash
    operation   VARCHAR(32) NOT NULL,                        -- withdrawal, order/add, ...
    ref         VARCHAR(64) NULL,                            -- txId / order_no
    result      INTEGER     NOT NULL,                        -- errCode / HTTP status, or Hash code
    duration_ms INTEGER     NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
