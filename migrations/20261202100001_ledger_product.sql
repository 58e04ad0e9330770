-- The product of each ledger row: tblhosting.packageid at the last success. A terminate of a
-- service whose tblhosting row is gone (deleted in WHMCS, see hooks.php ServiceDelete) takes
-- the partner credentials from this product. NULL for rows written before this migration.
-- Idempotent like the other migrations (the PHP tests and `migrate` may both run it), on
-- MariaDB and MySQL alike (MySQL has no ADD COLUMN IF NOT EXISTS).
SET @jetpack_ledger_product = IF(
    (SELECT COUNT(*) FROM information_schema.COLUMNS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'mod_jetpack_ledger' AND COLUMN_NAME = 'product_id') = 0,
    'ALTER TABLE mod_jetpack_ledger ADD COLUMN product_id INT UNSIGNED NULL COMMENT ''tblproducts.id at the last success'' AFTER service_id',
    'DO 0');
PREPARE jetpack_ledger_product FROM @jetpack_ledger_product;
EXECUTE jetpack_ledger_product;
DEALLOCATE PREPARE jetpack_ledger_product;

-- Rows written before this migration: the service's current product, while its tblhosting row
-- is there (read by primary key), so a later deletion can still be cancelled. (Only where
-- tblhosting exists: the worker's own tests migrate an empty database first.)
SET @jetpack_ledger_backfill = IF(
    (SELECT COUNT(*) FROM information_schema.TABLES
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'tblhosting') = 1,
    'UPDATE mod_jetpack_ledger l JOIN tblhosting h ON h.id = l.service_id SET l.product_id = h.packageid WHERE l.product_id IS NULL',
    'DO 0');
PREPARE jetpack_ledger_backfill FROM @jetpack_ledger_backfill;
EXECUTE jetpack_ledger_backfill;
DEALLOCATE PREPARE jetpack_ledger_backfill;
