-- The Hash table, SQLite, after the core tables of ddl/sqlite.sql.
-- The schema's source of truth, with wallet/hash/schema.py mirroring it (tests/test_schema.py).

-- Hash orders. The primary key makes order_no the idempotency key of order/add and order/update.
CREATE TABLE IF NOT EXISTS hash_orders (
    order_no   VARCHAR(64)  NOT NULL PRIMARY KEY,
    wallet_id  BIGINT       NOT NULL REFERENCES wallets (id),
    amount     TEXT         NOT NULL CHECK (CAST(amount AS NUMERIC) >= 0),
    status     SMALLINT     NOT NULL CHECK (status BETWEEN 0 AND 4),  -- Hash §6.1
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
-- hash-reconcile's open orders, oldest first
CREATE INDEX IF NOT EXISTS hash_orders_status_created ON hash_orders (status, created_at);

-- Hash requests applied (answered 0, or committed): (endpoint, request_id) with a digest of the
-- endpoint and the decrypted body, kept for as long as Hash may re-send them (docs/hash.md §11.2).
-- An identical re-send is answered as the retry it is, another body under the key is refused 1005.
-- wallet/hash/orders.py purges old rows a few at a time. Not part of the books. (It replaces the
-- table hash_requests of earlier versions, which may be dropped.)
CREATE TABLE IF NOT EXISTS hash_applied_requests (
    endpoint   VARCHAR(16)  NOT NULL,                        -- order/update, ...
    request_id VARCHAR(128) NOT NULL,
    digest     CHAR(64)     NOT NULL,                        -- SHA-256 hex of the endpoint and body
    seen_at    DATETIME     NOT NULL,                        -- ours, or its timestamp if later
    PRIMARY KEY (endpoint, request_id)
);
CREATE INDEX IF NOT EXISTS hash_applied_requests_seen ON hash_applied_requests (seen_at);
