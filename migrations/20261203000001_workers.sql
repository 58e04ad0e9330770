-- Round two: worker liveness. Each `jetpack-worker run` process upserts its row every few
-- seconds (one small INSERT … ON DUPLICATE KEY UPDATE, none per job) and sets stopped_at on a
-- clean shutdown; rows stopped or unseen for more than 7 days are deleted by the worker
-- (KEY seen). `jetpack-worker status`, the WHMCS service tab and the queue dashboard read it to
-- tell whether a worker is running. All times UTC (UTC_TIMESTAMP(6)). WHMCS tables are never
-- altered; like the other migrations this file can run again.
CREATE TABLE IF NOT EXISTS mod_jetpack_workers (
    owner         VARCHAR(191)  NOT NULL COMMENT 'the lease owner string: host:pid:random',
    host          VARCHAR(255)  NOT NULL,
    pid           INT UNSIGNED  NOT NULL,
    version       VARCHAR(64)   NOT NULL COMMENT 'the worker binary version',
    started_at    DATETIME(6)   NOT NULL COMMENT 'UTC',
    last_seen_at  DATETIME(6)   NOT NULL COMMENT 'UTC; the latest heartbeat',
    in_flight     INT UNSIGNED  NOT NULL DEFAULT 0 COMMENT 'jobs in flight at the latest heartbeat',
    stopped_at    DATETIME(6)   NULL COMMENT 'UTC; set on a clean shutdown',
    last_db_error VARCHAR(500)  NULL COMMENT 'the last database error the worker saw',
    PRIMARY KEY (owner),
    KEY seen (last_seen_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
