-- The Hash table, MySQL / MariaDB, after the core tables of ddl/mysql.sql.
-- The schema's source of truth, with wallet/hash/schema.py mirroring it (tests/test_schema.py).

-- Hash orders. The primary key makes order_no the idempotency key of order/add and order/update.
CREATE TABLE IF NOT EXISTS hash_orders (
    order_no   VARCHAR(64)    NOT NULL PRIMARY KEY,
    wallet_id  BIGINT         NOT NULL,
    amount     DECIMAL(24, 6) NOT NULL CHECK (amount >= 0),
    status     SMALLINT       NOT NULL CHECK (status BETWEEN 0 AND 4),  -- Hash §6.1
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
    INDEX hash_orders_status_created (status, created_at),  -- hash-reconcile's open orders, oldest first
    FOREIGN KEY (wallet_id) REFERENCES wallets (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Hash requests applied (answered 0, or committed): (endpoint, request_id) with a digest of the
-- endpoint and the decrypted body, kept for as long as Hash may re-send them (docs/hash.md §11.2).
-- An identical re-send is answered as the retry it is, another body under the key is refused 1005.
-- wallet/hash/orders.py purges old rows a few at a time. Not part of the books. (It replaces the
-- table hash_requests of earlier versions, which may be dropped.)
CREATE TABLE IF NOT EXISTS hash_applied_requests (
    endpoint   VARCHAR(16)  NOT NULL,                        -- order/update, ...
    request_id VARCHAR(128) NOT NULL,
    digest     CHAR(64)     NOT NULL,                        -- SHA-256 hex of the endpoint and body
    seen_at    DATETIME(6)  NOT NULL,                        -- ours, or its timestamp if later
    PRIMARY KEY (endpoint, request_id),
    INDEX hash_applied_requests_seen (seen_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
