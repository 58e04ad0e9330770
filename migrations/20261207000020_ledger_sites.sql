-- Site-level safety and addon identity (issue 18): the claim of a terminate or change of plan
-- reads every other target holding a plan on the same site (by `site`, its hash), and an
-- addon's ledger rows are found by the addon whatever service it sits on now (`addon`).
-- Idempotent like the jobs' created index (the PHP tests and `migrate` may both run it), on
-- MariaDB and MySQL alike.
SET @jetpack_ledger_site = IF(
    (SELECT COUNT(*) FROM information_schema.STATISTICS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'mod_jetpack_ledger' AND INDEX_NAME = 'site') = 0,
    'ALTER TABLE mod_jetpack_ledger ADD KEY site (site_hash)',
    'DO 0');
PREPARE jetpack_ledger_site FROM @jetpack_ledger_site;
EXECUTE jetpack_ledger_site;
DEALLOCATE PREPARE jetpack_ledger_site;

SET @jetpack_ledger_addon = IF(
    (SELECT COUNT(*) FROM information_schema.STATISTICS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'mod_jetpack_ledger' AND INDEX_NAME = 'addon') = 0,
    'ALTER TABLE mod_jetpack_ledger ADD KEY addon (addon_id)',
    'DO 0');
PREPARE jetpack_ledger_addon FROM @jetpack_ledger_addon;
EXECUTE jetpack_ledger_addon;
DEALLOCATE PREPARE jetpack_ledger_addon;
