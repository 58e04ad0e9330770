-- The dashboard's "created on" filter (whmcs/modules/addons/jetpack_queue): jobs of one day,
-- newest first, read by this index instead of walking the primary key back from the newest
-- job. Idempotent like the ledger's product column (the PHP tests and `migrate` may both run
-- it), on MariaDB and MySQL alike.
SET @jetpack_jobs_created = IF(
    (SELECT COUNT(*) FROM information_schema.STATISTICS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'mod_jetpack_jobs' AND INDEX_NAME = 'created') = 0,
    'ALTER TABLE mod_jetpack_jobs ADD KEY created (created_at, id)',
    'DO 0');
PREPARE jetpack_jobs_created FROM @jetpack_jobs_created;
EXECUTE jetpack_jobs_created;
DEALLOCATE PREPARE jetpack_jobs_created;
