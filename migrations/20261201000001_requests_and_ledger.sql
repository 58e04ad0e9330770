-- Round two: the request inbox and the ledger. WHMCS tables are never altered.

-- What admins, checkouts, hooks and the CLI asked for, in the order they asked. Writers only
-- INSERT (no locking read, so a Create can never fail on a deadlock, a lock-wait timeout or a
-- Galera certification conflict); jetpack-worker applies the rows in id order, latest intent
-- winning, in the same short transaction that turns them into jobs (src/lifecycle.rs).
CREATE TABLE IF NOT EXISTS mod_jetpack_requests (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    service_id   INT UNSIGNED    NOT NULL COMMENT 'tblhosting.id',
    action       VARCHAR(16)     NOT NULL COMMENT 'provision | terminate | retry',
    requested_by VARCHAR(16)     NOT NULL COMMENT 'module | admin | cli | adopt | hook',
    created_at   DATETIME(6)     NOT NULL COMMENT 'UTC',
    applied_at   DATETIME(6)     NULL COMMENT 'UTC; NULL until the worker has applied it',
    job_id       BIGINT UNSIGNED NULL COMMENT 'the job that carries it out (or that it concerned)',
    decision     VARCHAR(255)    NULL COMMENT 'what the worker made of it, for admins',
    PRIMARY KEY (id),
    KEY unapplied (applied_at, id),
    KEY service (service_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- What each success left at the partner, per service and site: a provision adds or updates a
-- row, a cancel deletes it. A terminate cancels what this table holds, not what the Site URL
-- field says now (it may have been edited since).
CREATE TABLE IF NOT EXISTS mod_jetpack_ledger (
    id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    service_id INT UNSIGNED    NOT NULL COMMENT 'tblhosting.id',
    site       TEXT            NOT NULL COMMENT 'the site as sent to the partner API (normalised, percent-encoded)',
    site_hash  BINARY(32) AS (UNHEX(SHA2(site, 256))) STORED,
    plan       VARCHAR(64)     NOT NULL,
    pending    TINYINT(1)      NOT NULL DEFAULT 0 COMMENT '1 while the plan waits on the site''s DNS',
    since      DATETIME(6)     NOT NULL COMMENT 'UTC; first success for this site',
    updated_at DATETIME(6)     NOT NULL COMMENT 'UTC; last success',
    job_id     BIGINT UNSIGNED NOT NULL COMMENT 'the job of the last success',
    PRIMARY KEY (id),
    UNIQUE KEY service_site (service_id, site_hash)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
