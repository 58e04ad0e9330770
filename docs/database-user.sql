-- The MariaDB/MySQL user jetpack-worker needs on the WHMCS database, and nothing more.
-- Replace `whmcs` with your WHMCS database name and CHANGE-ME with a strong password, then run
-- as an administrator:  mariadb < docs/database-user.sql
-- Use 'jetpack_worker'@'localhost' when the worker runs on the database host; otherwise
-- the worker host's address.

CREATE USER IF NOT EXISTS 'jetpack_worker'@'localhost' IDENTIFIED BY 'CHANGE-ME';

-- The worker's own tables: `jetpack-worker migrate` creates and updates them.
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP
    ON `whmcs`.`mod_jetpack_jobs` TO 'jetpack_worker'@'localhost';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP
    ON `whmcs`.`mod_jetpack_requests` TO 'jetpack_worker'@'localhost';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP
    ON `whmcs`.`mod_jetpack_ledger` TO 'jetpack_worker'@'localhost';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP
    ON `whmcs`.`mod_jetpack_emails` TO 'jetpack_worker'@'localhost';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP
    ON `whmcs`.`mod_jetpack_adoption_watermarks` TO 'jetpack_worker'@'localhost';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP
    ON `whmcs`.`mod_jetpack_adoption_candidates` TO 'jetpack_worker'@'localhost';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP
    ON `whmcs`.`mod_jetpack_adoption_marks` TO 'jetpack_worker'@'localhost';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP
    ON `whmcs`.`mod_jetpack_adoption_addon_watermark` TO 'jetpack_worker'@'localhost';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP
    ON `whmcs`.`mod_jetpack_adoption_addon_candidates` TO 'jetpack_worker'@'localhost';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP
    ON `whmcs`.`mod_jetpack_adoption_addon_marks` TO 'jetpack_worker'@'localhost';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP
    ON `whmcs`.`mod_jetpack_adoption_window` TO 'jetpack_worker'@'localhost';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP
    ON `whmcs`.`mod_jetpack_workers` TO 'jetpack_worker'@'localhost';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP
    ON `whmcs`.`mod_jetpack_watch` TO 'jetpack_worker'@'localhost';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP
    ON `whmcs`.`mod_jetpack_drift` TO 'jetpack_worker'@'localhost';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP
    ON `whmcs`.`mod_jetpack_holds` TO 'jetpack_worker'@'localhost';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP
    ON `whmcs`.`mod_jetpack_licences` TO 'jetpack_worker'@'localhost';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP
    ON `whmcs`.`mod_jetpack_licence_products` TO 'jetpack_worker'@'localhost';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP
    ON `whmcs`.`_sqlx_migrations` TO 'jetpack_worker'@'localhost';

-- Read the order: service, product (module settings), custom fields, order and invoice status,
-- the ModuleDebugMode and Version settings.
GRANT SELECT ON `whmcs`.`tblhosting` TO 'jetpack_worker'@'localhost';
GRANT SELECT ON `whmcs`.`tblproducts` TO 'jetpack_worker'@'localhost';
GRANT SELECT ON `whmcs`.`tblcustomfields` TO 'jetpack_worker'@'localhost';
GRANT SELECT ON `whmcs`.`tblorders` TO 'jetpack_worker'@'localhost';
GRANT SELECT ON `whmcs`.`tblinvoices` TO 'jetpack_worker'@'localhost';
GRANT SELECT ON `whmcs`.`tblconfiguration` TO 'jetpack_worker'@'localhost';
-- Product addons (docs/addons.md): the addon bought, its catalogue row and its module settings.
GRANT SELECT ON `whmcs`.`tblhostingaddons` TO 'jetpack_worker'@'localhost';
GRANT SELECT ON `whmcs`.`tbladdons` TO 'jetpack_worker'@'localhost';
GRANT SELECT ON `whmcs`.`tblmodule_configuration` TO 'jetpack_worker'@'localhost';
-- The doctor: whether the activation email template exists (the WHMCS module creates it and
-- sends the email from WHMCS's cron, as WHMCS's own database user).
GRANT SELECT ON `whmcs`.`tblemailtemplates` TO 'jetpack_worker'@'localhost';

-- Write back: the service's (addon's) status and termination date only.
GRANT UPDATE (`domainstatus`, `termination_date`) ON `whmcs`.`tblhosting` TO 'jetpack_worker'@'localhost';
GRANT UPDATE (`status`, `termination_date`) ON `whmcs`.`tblhostingaddons` TO 'jetpack_worker'@'localhost';

-- jetpack_provisioning_details: read all custom field values of a service, update the value
-- (and its timestamp), insert the row when it is missing.
GRANT SELECT, INSERT ON `whmcs`.`tblcustomfieldsvalues` TO 'jetpack_worker'@'localhost';
GRANT UPDATE (`value`, `updated_at`) ON `whmcs`.`tblcustomfieldsvalues` TO 'jetpack_worker'@'localhost';

-- Activity log and module log: insert only.
GRANT INSERT ON `whmcs`.`tblactivitylog` TO 'jetpack_worker'@'localhost';
GRANT INSERT ON `whmcs`.`tblmodulelog` TO 'jetpack_worker'@'localhost';

-- Module Queue: add failures, bump retries, resolve on success.
GRANT SELECT, INSERT ON `whmcs`.`tblmodulequeue` TO 'jetpack_worker'@'localhost';
GRANT UPDATE (`last_attempt`, `last_attempt_error`, `num_retries`, `completed`, `updated_at`)
    ON `whmcs`.`tblmodulequeue` TO 'jetpack_worker'@'localhost';
