-- The adoption scan for product addons (docs/addons.md, "Adoption of addons"): its own state,
-- beside the services' (20261202000002_adoption.sql). WHMCS tables are never altered. Only new
-- tables, each IF NOT EXISTS, so the PHP tests and `migrate` may both run it.

-- How far the scan has looked at tblhostingaddons: ids up to last_addon_id have been examined
-- once, whatever their module (tblhostingaddons has no index on addonid, so it is read by primary
-- key above this watermark). One row (id = 1).
CREATE TABLE IF NOT EXISTS mod_jetpack_adoption_addon_watermark (
    id            TINYINT UNSIGNED NOT NULL COMMENT 'always 1',
    last_addon_id INT UNSIGNED     NOT NULL DEFAULT 0 COMMENT 'highest tblhostingaddons.id examined',
    updated_at    DATETIME(6)      NOT NULL COMMENT 'UTC',
    PRIMARY KEY (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Pending addons of `jetpack` addons found by the scan and not yet qualified: re-checked by
-- primary key (addon, its catalogue row, order, invoice) until adopted, requested by someone
-- else, or no longer Pending; due like the services' candidates (at once when new, then after a
-- tenth of the time since the order, at most an hour).
CREATE TABLE IF NOT EXISTS mod_jetpack_adoption_addon_candidates (
    addon_id      INT UNSIGNED NOT NULL COMMENT 'tblhostingaddons.id',
    service_id    INT UNSIGNED NOT NULL COMMENT 'tblhostingaddons.hostingid when found',
    found_at      DATETIME(6)  NOT NULL COMMENT 'UTC: when its order was placed (when found, without one)',
    next_check_at DATETIME(6)  NOT NULL COMMENT 'UTC: re-checked from then on',
    PRIMARY KEY (addon_id),
    KEY due (next_check_at),
    KEY fresh (found_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- What the scan decided for an addon, once and for ever (never pruned): the primary key makes
-- the decision exactly-once across workers.
--   provision/adopted:   the scan recorded the provision request (request_id)
--   provision/requested: the addon qualified but already had a job or request (the
--                        AddonActivation hook, the module, an admin): it is never adopted
CREATE TABLE IF NOT EXISTS mod_jetpack_adoption_addon_marks (
    addon_id   INT UNSIGNED    NOT NULL COMMENT 'tblhostingaddons.id',
    action     VARCHAR(16)     NOT NULL COMMENT 'provision',
    service_id INT UNSIGNED    NOT NULL COMMENT 'tblhostingaddons.hostingid when marked',
    outcome    VARCHAR(16)     NOT NULL COMMENT 'adopted | requested',
    request_id BIGINT UNSIGNED NULL COMMENT 'mod_jetpack_requests.id the scan recorded',
    marked_at  DATETIME(6)     NOT NULL COMMENT 'UTC',
    PRIMARY KEY (addon_id, action)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
