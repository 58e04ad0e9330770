-- The product of each ledger row: tblhosting.packageid at the last success. A terminate of a
-- service whose tblhosting row is gone (deleted in WHMCS, see hooks.php ServiceDelete) takes
-- the partner credentials from this product. NULL for rows written before this migration.
ALTER TABLE mod_jetpack_ledger
    ADD COLUMN product_id INT UNSIGNED NULL COMMENT 'tblproducts.id at the last success' AFTER service_id;
