-- Wallet schema, MySQL 8.0.16+ / MariaDB 10.4+ (InnoDB; CHECK constraints enforced). The schema's
-- core tables; wallet/core/schema.py mirrors them and tests/test_schema.py proves on every
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

-- Append-only: one row per balance change, with the balance after it. Only wallet/core/ledger.py writes it.
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
