-- Jobs, requests and the ledger name their target (issue 12): a service (addon_id = 0) or one
-- product addon on it (addon_id = tblhostingaddons.id, service_id = its parent tblhosting.id
-- when the request was recorded). Actions gain 'change' (WHMCS ChangePackage: provision the
-- plan the service or addon now has over the current one). At most one unfinished job per
-- target: the one-unfinished-job UNIQUE index becomes (unfinished_service_id, addon_id).
-- Idempotent like the ledger's product column (the PHP tests and `migrate` may both run it),
-- on MariaDB and MySQL alike.
SET @jetpack_jobs_target = IF(
    (SELECT COUNT(*) FROM information_schema.COLUMNS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'mod_jetpack_jobs' AND COLUMN_NAME = 'addon_id') = 0,
    'ALTER TABLE mod_jetpack_jobs
       ADD COLUMN addon_id INT UNSIGNED NOT NULL DEFAULT 0 COMMENT ''tblhostingaddons.id; 0 = the service itself'' AFTER service_id,
       DROP KEY uniq_unfinished_service,
       ADD UNIQUE KEY uniq_unfinished_target (unfinished_service_id, addon_id)',
    'DO 0');
PREPARE jetpack_jobs_target FROM @jetpack_jobs_target;
EXECUTE jetpack_jobs_target;
DEALLOCATE PREPARE jetpack_jobs_target;

SET @jetpack_requests_target = IF(
    (SELECT COUNT(*) FROM information_schema.COLUMNS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'mod_jetpack_requests' AND COLUMN_NAME = 'addon_id') = 0,
    'ALTER TABLE mod_jetpack_requests
       ADD COLUMN addon_id INT UNSIGNED NOT NULL DEFAULT 0 COMMENT ''tblhostingaddons.id; 0 = the service itself'' AFTER service_id',
    'DO 0');
PREPARE jetpack_requests_target FROM @jetpack_requests_target;
EXECUTE jetpack_requests_target;
DEALLOCATE PREPARE jetpack_requests_target;

SET @jetpack_ledger_target = IF(
    (SELECT COUNT(*) FROM information_schema.COLUMNS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'mod_jetpack_ledger' AND COLUMN_NAME = 'addon_id') = 0,
    'ALTER TABLE mod_jetpack_ledger
       ADD COLUMN addon_id INT UNSIGNED NOT NULL DEFAULT 0 COMMENT ''tblhostingaddons.id; 0 = the service itself'' AFTER service_id,
       ADD COLUMN addon_def_id INT UNSIGNED NULL COMMENT ''tbladdons.id at the last success (addons)'' AFTER product_id,
       DROP KEY service_site,
       ADD UNIQUE KEY service_site (service_id, addon_id, site_hash)',
    'DO 0');
PREPARE jetpack_ledger_target FROM @jetpack_ledger_target;
EXECUTE jetpack_ledger_target;
DEALLOCATE PREPARE jetpack_ledger_target;
