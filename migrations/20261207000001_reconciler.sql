-- Round three: the reconciler. The ledger says what we believe the partner holds; this table
-- says what each target (service or addon) should have at each site it ever touched, and when
-- to look at the partner's status endpoint next. A finished job writes it in its fenced finish
-- (holds: the plan should be there; absent: cancelled, it should not come back); the worker's
-- reconciler reads the due rows by `next_check_at` (cost flat in the size of the table) and
-- turns drift, once confirmed by a second look, into a request through the same lifecycle.
CREATE TABLE IF NOT EXISTS mod_jetpack_watch (
    id            BIGINT UNSIGNED   NOT NULL AUTO_INCREMENT,
    service_id    INT UNSIGNED      NOT NULL COMMENT 'tblhosting.id (an addon''s parent)',
    addon_id      INT UNSIGNED      NOT NULL DEFAULT 0 COMMENT 'tblhostingaddons.id; 0 = the service itself',
    site          TEXT              NOT NULL COMMENT 'the site as sent to the partner API',
    site_hash     BINARY(32) AS (UNHEX(SHA2(site, 256))) STORED,
    plan          VARCHAR(64)       NOT NULL COMMENT 'the plan slug provisioned (or cancelled)',
    expect        VARCHAR(8)        NOT NULL COMMENT 'holds | absent',
    product_id    INT UNSIGNED      NULL COMMENT 'tblproducts.id: the partner account to ask with',
    addon_def_id  INT UNSIGNED      NULL COMMENT 'tbladdons.id for addons',
    next_check_at DATETIME(6)       NOT NULL COMMENT 'UTC',
    quick_left    TINYINT UNSIGNED  NOT NULL DEFAULT 0 COMMENT 'quick checks still to come (after an outcome-unknown call or a cancel)',
    check_token   CHAR(32)          NULL COMMENT 'the worker checking it now',
    seen          VARCHAR(12)       NOT NULL DEFAULT 'fine' COMMENT 'fine | missing | unexpected | unmapped: what the last check found',
    seen_times    SMALLINT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'consecutive checks that found it',
    drifts        SMALLINT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'drifts acted on (bounded)',
    restore       TINYINT(1)        NOT NULL DEFAULT 0 COMMENT '1: a cancel of ours on this site since this row''s outcome (another target''s terminate): a plan missing now is ours to restore',
    checked_at    DATETIME(6)       NULL COMMENT 'UTC; last status answer',
    found         VARCHAR(255)      NULL COMMENT 'the products of ours that answer listed',
    updated_at    DATETIME(6)       NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY target_site (service_id, addon_id, site_hash),
    KEY due (next_check_at),
    KEY site (site_hash),
    KEY addon (addon_id),
    KEY checking (check_token)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Every confirmed drift: what was expected, what the partner reported, what was done.
CREATE TABLE IF NOT EXISTS mod_jetpack_drift (
    id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    service_id INT UNSIGNED    NOT NULL,
    addon_id   INT UNSIGNED    NOT NULL DEFAULT 0,
    site       TEXT            NOT NULL,
    expected   VARCHAR(255)    NOT NULL,
    found      VARCHAR(255)    NOT NULL,
    done       VARCHAR(255)    NOT NULL,
    created_at DATETIME(6)     NOT NULL COMMENT 'UTC',
    PRIMARY KEY (id),
    KEY created (created_at),
    KEY target (service_id, addon_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- What the ledger holds today is watched from now on, spread over the first day.
INSERT IGNORE INTO mod_jetpack_watch
    (service_id, addon_id, site, plan, expect, product_id, addon_def_id, next_check_at, updated_at)
SELECT service_id, addon_id, site, plan, 'holds', product_id, addon_def_id,
       UTC_TIMESTAMP(6) + INTERVAL FLOOR(RAND() * 86400) SECOND, UTC_TIMESTAMP(6)
FROM mod_jetpack_ledger;
