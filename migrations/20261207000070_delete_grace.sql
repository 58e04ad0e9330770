-- The grace period on delete (issue 21): WHMCS's delete is mostly for a service added to the
-- wrong client, so a deleted service's (or addon's) plan is cancelled only once
-- JETPACK_DELETE_GRACE has passed, and the queue page offers Cancel now and Keep the plan
-- meanwhile. Idempotent like 20261207120001_job_details.sql (the PHP tests and `migrate` may
-- both run it), on MariaDB and MySQL alike; each ADD COLUMN is of a NULL column (instant on
-- MariaDB 10.3+ and MySQL 8), the index is built online.

-- A deleted target's terminate waits out its grace period until then (its run_at is the same
-- time); NULL for every other job, and set NULL when Cancel now makes it due. The queue page
-- lists the terminates still waiting (grace_until in the future) by this index.
SET @jetpack_jobs_grace = IF(
    (SELECT COUNT(*) FROM information_schema.COLUMNS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'mod_jetpack_jobs' AND COLUMN_NAME = 'grace_until') = 0,
    'ALTER TABLE mod_jetpack_jobs ADD COLUMN grace_until DATETIME(6) NULL',
    'DO 0');
PREPARE jetpack_jobs_grace FROM @jetpack_jobs_grace;
EXECUTE jetpack_jobs_grace;
DEALLOCATE PREPARE jetpack_jobs_grace;

SET @jetpack_jobs_grace_key = IF(
    (SELECT COUNT(*) FROM information_schema.STATISTICS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'mod_jetpack_jobs' AND INDEX_NAME = 'grace') = 0,
    'ALTER TABLE mod_jetpack_jobs ADD KEY grace (grace_until)',
    'DO 0');
PREPARE jetpack_jobs_grace_key FROM @jetpack_jobs_grace_key;
EXECUTE jetpack_jobs_grace_key;
DEALLOCATE PREPARE jetpack_jobs_grace_key;

-- An admin kept the plan of the deleted target (Keep the plan): the deleted-target sweep
-- leaves the row alone, and a terminate of another target on the site counts it as held.
SET @jetpack_ledger_kept = IF(
    (SELECT COUNT(*) FROM information_schema.COLUMNS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'mod_jetpack_ledger' AND COLUMN_NAME = 'kept_at') = 0,
    'ALTER TABLE mod_jetpack_ledger ADD COLUMN kept_at DATETIME(6) NULL',
    'DO 0');
PREPARE jetpack_ledger_kept FROM @jetpack_ledger_kept;
EXECUTE jetpack_ledger_kept;
DEALLOCATE PREPARE jetpack_ledger_kept;

-- The client (tblclients.id) when the requester knows it and the target may be gone: the
-- ServiceDelete hook's userid, the queue page's Cancel now and Keep the plan. The page lists a
-- deleted service with its client, and the worker's activity line goes to that client.
SET @jetpack_requests_client = IF(
    (SELECT COUNT(*) FROM information_schema.COLUMNS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'mod_jetpack_requests' AND COLUMN_NAME = 'client_id') = 0,
    'ALTER TABLE mod_jetpack_requests ADD COLUMN client_id INT UNSIGNED NULL',
    'DO 0');
PREPARE jetpack_requests_client FROM @jetpack_requests_client;
EXECUTE jetpack_requests_client;
DEALLOCATE PREPARE jetpack_requests_client;
