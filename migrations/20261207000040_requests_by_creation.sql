-- "Latest" is the request made last, not the highest id: on a multi-primary Galera cluster each
-- node hands out ids by its own auto_increment_offset, so a request made later on one node can
-- have a lower id than an earlier one made on another. The worker applies pending requests by
-- created_at (set from the database's clock, UTC_TIMESTAMP(6), by every writer), then id, and
-- the admin views list a target's requests the same way; these indexes keep both reads indexed.
-- Idempotent like 20261204000001_targets.sql (the PHP tests and `migrate` may both run it), on
-- MariaDB and MySQL alike.
SET @jetpack_requests_unapplied_created = IF(
    (SELECT COUNT(*) FROM information_schema.STATISTICS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'mod_jetpack_requests'
       AND INDEX_NAME = 'unapplied_created') = 0,
    'ALTER TABLE mod_jetpack_requests ADD KEY unapplied_created (applied_at, created_at, id)',
    'DO 0');
PREPARE jetpack_requests_unapplied_created FROM @jetpack_requests_unapplied_created;
EXECUTE jetpack_requests_unapplied_created;
DEALLOCATE PREPARE jetpack_requests_unapplied_created;

SET @jetpack_requests_target_created = IF(
    (SELECT COUNT(*) FROM information_schema.STATISTICS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'mod_jetpack_requests'
       AND INDEX_NAME = 'target_created') = 0,
    'ALTER TABLE mod_jetpack_requests ADD KEY target_created (service_id, addon_id, created_at, id)',
    'DO 0');
PREPARE jetpack_requests_target_created FROM @jetpack_requests_target_created;
EXECUTE jetpack_requests_target_created;
DEALLOCATE PREPARE jetpack_requests_target_created;
