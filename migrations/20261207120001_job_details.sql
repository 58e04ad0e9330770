-- The text the job's last outcome wrote into its target's jetpack_provisioning_details (NULL
-- while it wrote none): the worker's latest word on the target, which the module puts back when
-- a WHMCS save (the admin service page posts every custom field back, Admin Only ones included)
-- writes a stale text over it (lib/Outcome.php, the ServiceEdit / AddonEdit hooks). Written in
-- the same fenced UPDATE as the outcome itself. Idempotent like 20261203000002_jobs_created.sql
-- (the PHP tests and `migrate` may both run it), on MariaDB and MySQL alike.
SET @jetpack_jobs_details = IF(
    (SELECT COUNT(*) FROM information_schema.COLUMNS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'mod_jetpack_jobs' AND COLUMN_NAME = 'details') = 0,
    'ALTER TABLE mod_jetpack_jobs ADD COLUMN details TEXT NULL',
    'DO 0');
PREPARE jetpack_jobs_details FROM @jetpack_jobs_details;
EXECUTE jetpack_jobs_details;
DEALLOCATE PREPARE jetpack_jobs_details;
