-- The 100HP table, SQLite, after the core tables of ddl/sqlite.sql.
-- The schema's source of truth, with wallet/hp100/schema.py mirroring it (tests/test_schema.py).

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
