-- Jetpack licences (issue 22): products that sell licences through the Licensing API instead of
-- plans through partner provisioning (the product's configoption9 says which). WHMCS tables are
-- never altered. All times UTC (UTC_TIMESTAMP(6)). Idempotent like the other migrations (the
-- PHP tests and `migrate` may both run it), on MariaDB and MySQL alike.

-- The licence products on sale (`GET /product-families`), fetched by the worker at start and
-- hourly: the module's product drop-down reads them (a built-in list while this is empty).
CREATE TABLE IF NOT EXISTS mod_jetpack_licence_products (
    slug       VARCHAR(64)  NOT NULL COMMENT 'what POST /license takes, e.g. jetpack-backup-daily',
    name       VARCHAR(191) NOT NULL DEFAULT '',
    family     VARCHAR(191) NOT NULL DEFAULT '',
    fetched_at DATETIME(6)  NOT NULL COMMENT 'UTC; the fetch that last listed it',
    PRIMARY KEY (slug)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- One row per licence the worker issued or tried to issue, per target (a service, or an addon).
-- The issue is not idempotent (every POST /license bills a licence), so the intent is committed
-- first (`issuing`) and an answer that was lost is looked up, never repeated blindly: `unknown`
-- waits for an admin (licence_record with the key, or licence_reissue). docs/licences.md.
CREATE TABLE IF NOT EXISTS mod_jetpack_licences (
    id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    service_id       INT UNSIGNED    NOT NULL COMMENT 'tblhosting.id (an addon''s service)',
    addon_id         INT UNSIGNED    NOT NULL DEFAULT 0 COMMENT 'tblhostingaddons.id; 0 = the service itself',
    product          VARCHAR(64)     NOT NULL COMMENT 'the licence product slug',
    product_id       INT UNSIGNED    NULL COMMENT 'tblproducts.id (tbladdons.id for an addon) whose token issued it',
    license_key      VARCHAR(191)    NULL,
    state            VARCHAR(16)     NOT NULL COMMENT 'issuing | unknown | issued | attached | revoked | failed | abandoned',
    issue_started_at DATETIME(6)     NULL COMMENT 'UTC; the intent, committed before POST /license',
    issued_at        DATETIME(6)     NULL COMMENT 'UTC; as the API said (or when we learnt the key)',
    attached_site    VARCHAR(255)    NULL COMMENT 'the site it is (or, detached, was last) attached to',
    attached_at      DATETIME(6)     NULL,
    revoked_at       DATETIME(6)     NULL,
    revoked_outside  TINYINT(1)      NOT NULL DEFAULT 0 COMMENT '1: the reconciler found it revoked behind our back',
    job_id           BIGINT UNSIGNED NULL COMMENT 'the job that last changed it',
    checked_at       DATETIME(6)     NULL COMMENT 'UTC; the reconciler''s last GET /license',
    note             VARCHAR(255)    NULL COMMENT 'the last thing that happened to it, in words',
    updated_at       DATETIME(6)     NOT NULL,
    PRIMARY KEY (id),
    KEY target (service_id, addon_id, id),
    UNIQUE KEY license_key (license_key),
    KEY live (state, checked_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- The licence key an admin recorded (licence_record), on the request that carries it.
SET @jetpack_requests_detail = IF(
    (SELECT COUNT(*) FROM information_schema.COLUMNS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'mod_jetpack_requests' AND COLUMN_NAME = 'detail') = 0,
    'ALTER TABLE mod_jetpack_requests ADD COLUMN detail VARCHAR(191) NULL',
    'DO 0');
PREPARE jetpack_requests_detail FROM @jetpack_requests_detail;
EXECUTE jetpack_requests_detail;
DEALLOCATE PREPARE jetpack_requests_detail;
