-- Hold / Resume per partner account (issue 21). A row here holds processing for one partner
-- account: the Client ID of a product's (or addon's) partner credentials. The worker reads the
-- held accounts once per poll and gives such an account's jobs back to the queue without a
-- partner call and without counting an attempt (as its breaker does), so they run, in order,
-- once the row is deleted (Resume). The queue dashboard records and removes the rows (the PHP
-- side records; the worker decides); `jetpack-worker status` lists them. Never a secret: the
-- client id only. All times UTC (UTC_TIMESTAMP(6)). Idempotent like the other migrations.
CREATE TABLE IF NOT EXISTS mod_jetpack_holds (
    account  VARCHAR(191) NOT NULL COMMENT 'the partner Client ID whose jobs are held',
    held_at  DATETIME(6)  NOT NULL COMMENT 'UTC',
    held_by  VARCHAR(191) NOT NULL COMMENT 'who held it: admin:<id> or cli',
    reason   VARCHAR(500) NOT NULL DEFAULT '' COMMENT 'why, as the admin wrote it',
    PRIMARY KEY (account)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
