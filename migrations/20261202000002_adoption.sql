-- The adoption scan's own state (issue 11). WHMCS tables are never altered.

-- How far the scan has looked at each Jetpack product's services: tblhosting ids up to
-- last_service_id have been examined once (through tblhosting's packageid index).
CREATE TABLE IF NOT EXISTS mod_jetpack_adoption_watermarks (
    product_id      INT UNSIGNED NOT NULL COMMENT 'tblproducts.id',
    last_service_id INT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'highest tblhosting.id examined',
    updated_at      DATETIME(6)  NOT NULL COMMENT 'UTC',
    PRIMARY KEY (product_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Pending Jetpack services found by the scan and not yet qualified: re-checked by primary key
-- (service, order, invoice) until adopted, requested by someone else, or no longer Pending.
-- A candidate is re-checked when due: at once when new, then less often the longer it has
-- waited since its order (a tenth of that, at most an hour), so abandoned unpaid orders cost next to
-- nothing and a fresh order is seen within an interval.
CREATE TABLE IF NOT EXISTS mod_jetpack_adoption_candidates (
    service_id    INT UNSIGNED NOT NULL COMMENT 'tblhosting.id',
    found_at      DATETIME(6)  NOT NULL COMMENT 'UTC: when its order was placed (when found, without one)',
    next_check_at DATETIME(6)  NOT NULL COMMENT 'UTC: re-checked from then on',
    PRIMARY KEY (service_id),
    KEY due (next_check_at),
    KEY fresh (found_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- What the scan decided for a service, once and for ever (never pruned, unlike jobs and
-- requests): the primary key makes the decision exactly-once across workers.
--   provision/adopted:   the scan recorded the provision request (request_id);
--   provision/requested: the service qualified but already had a job or request (a hook, the
--                        module, an admin): it is never adopted, even after those are pruned;
--   terminate/adopted:   the service's tblhosting row is gone while the ledger holds a plan:
--                        the scan recorded the terminate request (request_id).
CREATE TABLE IF NOT EXISTS mod_jetpack_adoption_marks (
    service_id INT UNSIGNED    NOT NULL COMMENT 'tblhosting.id',
    action     VARCHAR(16)     NOT NULL COMMENT 'provision | terminate',
    outcome    VARCHAR(16)     NOT NULL COMMENT 'adopted | requested',
    request_id BIGINT UNSIGNED NULL COMMENT 'mod_jetpack_requests.id the scan recorded',
    marked_at  DATETIME(6)     NOT NULL COMMENT 'UTC',
    PRIMARY KEY (service_id, action)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
