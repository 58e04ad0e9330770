-- Round two: the client's activation email, sent by the WHMCS module's AfterCronJob hook
-- (whmcs/modules/servers/jetpack/lib/Email.php) once a provision job ends done or starts
-- waiting on DNS. One row per (job, kind) is the claim: whoever inserts it sends the email,
-- so a second cron run or a second WHMCS server never sends it again. WHMCS tables are never
-- altered.
CREATE TABLE IF NOT EXISTS mod_jetpack_emails (
    job_id      BIGINT UNSIGNED NOT NULL COMMENT 'mod_jetpack_jobs.id',
    kind        VARCHAR(16)     NOT NULL COMMENT 'activated | waiting_dns',
    service_id  INT UNSIGNED    NOT NULL COMMENT 'tblhosting.id',
    status      VARCHAR(16)     NOT NULL COMMENT 'sending | sent | failed | gave_up | skipped',
    attempts    INT UNSIGNED    NOT NULL DEFAULT 1 COMMENT 'SendEmail calls made, the first included',
    claim_token VARCHAR(64)     NOT NULL COMMENT 'the cron run that holds the claim',
    claimed_at  DATETIME(6)     NOT NULL COMMENT 'UTC; the latest claim',
    sent_at     DATETIME(6)     NULL COMMENT 'UTC; when SendEmail returned success',
    error       TEXT            NULL COMMENT 'why the last send failed, or why it was skipped',
    PRIMARY KEY (job_id, kind),
    KEY retry (status, claimed_at),
    KEY service (service_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
-- The hook finds its jobs with mod_jetpack_jobs' existing keys: `finished` (finished_at, a
-- range over the last 7 days) for done jobs, `state_run_at` for jobs waiting on DNS. Like the
-- other migrations this file can run again (the PHP tests load it before the worker migrates).
