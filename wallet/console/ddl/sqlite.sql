-- The sandbox console's table, SQLite, after the core tables of ddl/sqlite.sql.
-- The schema's source of truth, with wallet/console/schema.py mirroring it (tests/test_schema.py).

-- The sandbox console's view of provider calls (wallet/console): written only when the console
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
