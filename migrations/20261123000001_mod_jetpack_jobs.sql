-- The worker's job table. WHMCS tables are never altered by these migrations.
-- Times are UTC (UTC_TIMESTAMP(6)), always compared with the database clock.
CREATE TABLE IF NOT EXISTS mod_jetpack_jobs (
    id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    service_id       INT UNSIGNED    NOT NULL COMMENT 'tblhosting.id',
    action           VARCHAR(16)     NOT NULL COMMENT 'provision | terminate',
    state            VARCHAR(16)     NOT NULL DEFAULT 'queued'
        COMMENT 'queued | running | waiting_dns | done | failed | cancelled',
    attempts         INT UNSIGNED    NOT NULL DEFAULT 0 COMMENT 'API attempts used (DNS re-checks excluded)',
    max_attempts     INT UNSIGNED    NULL COMMENT 'attempt budget; NULL = the worker''s JETPACK_MAX_ATTEMPTS',
    dns_checks       INT UNSIGNED    NOT NULL DEFAULT 0 COMMENT 're-checks of a plan waiting on DNS',
    run_at           DATETIME(6)     NOT NULL COMMENT 'due time; while running, the lease expiry',
    lease_owner      VARCHAR(128)    NULL,
    lease_token      VARCHAR(80)     NULL,
    lease_expires_at DATETIME(6)     NULL,
    reclaims         INT UNSIGNED    NOT NULL DEFAULT 0 COMMENT 'times an expired lease was taken over',
    outcome_unknown  TINYINT(1)      NOT NULL DEFAULT 0
        COMMENT '1 when a provision call may have acted without us seeing the answer',
    waiting_since    DATETIME(6)     NULL COMMENT 'first empty next_url: start of the 14-day window',
    follow_up        VARCHAR(16)     NULL COMMENT 'action requested while this job was in flight',
    in_module_queue  TINYINT(1)      NOT NULL DEFAULT 0
        COMMENT '1 once a failure of this job was put in WHMCS''s Module Queue',
    last_error       TEXT            NULL,
    result           TEXT            NULL,
    requested_by     VARCHAR(16)     NOT NULL COMMENT 'module | admin | cli | adopt',
    created_at       DATETIME(6)     NOT NULL,
    updated_at       DATETIME(6)     NOT NULL,
    finished_at      DATETIME(6)     NULL,
    -- The service id while the job is unfinished, NULL once finished: the UNIQUE index on it
    -- allows at most one unfinished job per service (NULLs never collide).
    unfinished_service_id INT UNSIGNED AS
        (IF(state IN ('queued', 'running', 'waiting_dns'), service_id, NULL)) STORED,
    -- The claim key: run_at for claimable jobs (queued, waiting_dns, running with a lease that
    -- can expire), NULL for finished ones, so claiming never reads finished rows.
    due_at DATETIME(6) AS
        (IF(state IN ('queued', 'running', 'waiting_dns'), run_at, NULL)) STORED,
    PRIMARY KEY (id),
    UNIQUE KEY uniq_unfinished_service (unfinished_service_id),
    KEY claim (due_at, id),
    KEY state_run_at (state, run_at, id),
    KEY service (service_id, id),
    KEY finished (finished_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
