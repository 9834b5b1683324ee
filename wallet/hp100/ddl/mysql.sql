-- The 100HP table, MySQL / MariaDB, after the core tables of ddl/mysql.sql.
-- The schema's source of truth, with wallet/hp100/schema.py mirroring it (tests/test_schema.py).

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
