-- The adoption scan's trailing window (issue 18, "discovery that cannot skip"). InnoDB allocates
-- an auto-increment id at INSERT time, so a service (addon) whose transaction commits after a
-- higher id was discovered lies below the watermark. Each complete pass re-reads, by the same
-- indexes, the ids above `*_trail` (the table's MAX(id) as it stood at least a window ago):
-- every id allocated within the window is above it. One row (id = 1); a new table, IF NOT EXISTS, so
-- the PHP tests and `migrate` may both run it. WHMCS tables are never altered.
CREATE TABLE IF NOT EXISTS mod_jetpack_adoption_window (
    id            TINYINT UNSIGNED NOT NULL COMMENT 'always 1',
    service_trail INT UNSIGNED     NOT NULL COMMENT 'tblhosting ids above it are re-read',
    service_mid   INT UNSIGNED     NOT NULL COMMENT 'MAX(tblhosting.id) at mid_at',
    addon_trail   INT UNSIGNED     NOT NULL COMMENT 'tblhostingaddons ids above it are re-read',
    addon_mid     INT UNSIGNED     NOT NULL COMMENT 'MAX(tblhostingaddons.id) at mid_at',
    mid_at        DATETIME(6)      NOT NULL COMMENT 'UTC: when the mids were noted; a window later they become the trails',
    PRIMARY KEY (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
