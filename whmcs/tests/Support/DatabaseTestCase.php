<?php

namespace JetpackTests\Support;

use Illuminate\Database\Capsule\Manager;
use PHPUnit\Framework\TestCase;

/**
 * A fresh database per test (`jp_php_<random>`, dropped afterwards) holding the real WHMCS
 * tables (tests/fixtures/whmcs-8.sql, or whmcs-7.8.3.sql after useLayout()) and the worker's
 * migrations, with WHMCS\Database\Capsule connected to it; plus seeding and reading helpers.
 */
abstract class DatabaseTestCase extends TestCase
{
    const WHMCS_8 = 'whmcs-8.sql';
    const WHMCS_783 = 'whmcs-7.8.3.sql';

    /** The four custom fields of a product made for the original module. */
    const STANDARD_FIELDS = array(
        'Site URL|Your WordPress site',
        'Local User',
        'Plan',
        'jetpack_provisioning_details|Jetpack Provisioning Details',
    );

    /** The custom fields of a Jetpack addon sold on hosting: its Site URL is the service's domain. */
    const ADDON_FIELDS = array(
        'Local User',
        'Plan',
        'jetpack_provisioning_details|Jetpack Provisioning Details',
    );

    /** @var string */
    protected $database;

    /** @var Manager */
    protected $capsule;

    protected function setUp(): void
    {
        $GLOBALS['jetpack_test_activity'] = array();
        $GLOBALS['jetpack_test_module_log'] = array();
        $this->createDatabase(self::WHMCS_8);
    }

    protected function tearDown(): void
    {
        $this->dropDatabase();
    }

    /**
     * Starts over on an empty database with the given WHMCS layout.
     *
     * @param string $layout self::WHMCS_8 or self::WHMCS_783
     */
    protected function useLayout($layout)
    {
        $this->dropDatabase();
        $this->createDatabase($layout);
    }

    private function createDatabase($layout)
    {
        $this->database = 'jp_php_' . bin2hex(random_bytes(6));
        Db::server()->exec('CREATE DATABASE `' . $this->database . '`');
        $this->capsule = new Manager();
        $this->capsule->addConnection(Db::connectionConfig($this->database));
        $this->capsule->setAsGlobal();
        $pdo = $this->pdo();
        Db::runFile($pdo, JETPACK_REPO_ROOT . '/tests/fixtures/' . $layout);
        $migrations = glob(JETPACK_REPO_ROOT . '/migrations/*.sql');
        sort($migrations, SORT_STRING);
        foreach ($migrations as $migration) {
            Db::runFile($pdo, $migration);
        }
    }

    private function dropDatabase()
    {
        if ($this->capsule !== null) {
            $this->capsule->getConnection()->disconnect();
            $this->capsule = null;
        }
        if ($this->database !== null) {
            Db::server()->exec('DROP DATABASE IF EXISTS `' . $this->database . '`');
            $this->database = null;
        }
    }

    /**
     * The test's connection (session sql_mode '', as WHMCS runs).
     *
     * @return \PDO
     */
    protected function pdo()
    {
        return $this->capsule->getConnection()->getPdo();
    }

    /**
     * @param string $sql
     * @param array  $bindings
     *
     * @return array of stdClass rows
     */
    protected function select($sql, array $bindings = array())
    {
        return $this->capsule->getConnection()->select($sql, $bindings);
    }

    /**
     * @return mixed the first column of the first row, or null
     */
    protected function scalar($sql, array $bindings = array())
    {
        $rows = $this->select($sql, $bindings);
        if (count($rows) === 0) {
            return null;
        }
        $row = (array) $rows[0];
        return reset($row);
    }

    /**
     * @return int rows affected
     */
    protected function exec($sql, array $bindings = array())
    {
        return $this->capsule->getConnection()->affectingStatement($sql, $bindings);
    }

    /**
     * A jetpack product with the given custom fields.
     *
     * @param array $options name, servertype, autosetup, client_id, secret, fields
     *
     * @return int tblproducts.id
     */
    protected function product(array $options = array())
    {
        $o = $options + array(
            'name' => 'Jetpack Premium',
            'servertype' => 'jetpack',
            'autosetup' => 'order',
            'client_id' => 'demo-client',
            'secret' => 'demo-secret',
            'fields' => self::STANDARD_FIELDS,
        );
        $this->exec(
            "INSERT INTO tblproducts (type, gid, name, autosetup, servertype, configoption1, configoption2)
             VALUES ('other', 1, ?, ?, ?, ?, ?)",
            array($o['name'], $o['autosetup'], $o['servertype'], $o['client_id'], $o['secret'])
        );
        $productId = (int) $this->pdo()->lastInsertId();
        foreach ($o['fields'] as $fieldName) {
            $this->field($productId, $fieldName);
        }
        return $productId;
    }

    /**
     * Adds a product custom field.
     *
     * @return int tblcustomfields.id
     */
    protected function field($productId, $fieldName)
    {
        $this->exec(
            "INSERT INTO tblcustomfields (type, relid, fieldname, fieldtype, adminonly)
             VALUES ('product', ?, ?, 'text', '')",
            array($productId, $fieldName)
        );
        return (int) $this->pdo()->lastInsertId();
    }

    /**
     * A product addon (tbladdons) of the jetpack module, its module settings
     * (tblmodule_configuration, entity_type 'addon') and its custom fields (type 'addon').
     *
     * @param array $options name, module, autoactivate, client_id, secret, settings (more
     *                       configoptionN => value; null leaves a setting's row out), fields
     *
     * @return int tbladdons.id
     */
    protected function addonDefinition(array $options = array())
    {
        $o = $options + array(
            'name' => 'Jetpack Backup',
            'module' => 'jetpack',
            'autoactivate' => 'on',
            'client_id' => 'addon-client',
            'secret' => 'addon-secret',
            'settings' => array(),
            'fields' => self::ADDON_FIELDS,
        );
        $this->exec(
            "INSERT INTO tbladdons (packages, name, description, billingcycle, tax, showorder, downloads,
                                    autoactivate, suspendproduct, welcomeemail, type, module, autolinkby)
             VALUES ('', ?, '', 'Monthly', 0, 1, '', ?, 0, 0, '', ?, '')",
            array($o['name'], $o['autoactivate'], $o['module'])
        );
        $definitionId = (int) $this->pdo()->lastInsertId();
        $settings = $o['settings'] + array('configoption1' => $o['client_id'], 'configoption2' => $o['secret']);
        foreach ($settings as $name => $value) {
            if ($value !== null) {
                $this->addonSetting($definitionId, $name, $value);
            }
        }
        foreach ($o['fields'] as $fieldName) {
            $this->addonField($definitionId, $fieldName);
        }
        return $definitionId;
    }

    /**
     * Sets one of an addon's module settings (as saving the addon's Module Settings does).
     */
    protected function addonSetting($definitionId, $name, $value)
    {
        $this->exec(
            "INSERT INTO tblmodule_configuration (entity_type, entity_id, setting_name, friendly_name, value, created_at, updated_at)
             VALUES ('addon', ?, ?, '', ?, NOW(), NOW())
             ON DUPLICATE KEY UPDATE value = VALUES(value)",
            array($definitionId, $name, $value)
        );
    }

    /**
     * Adds an addon custom field.
     *
     * @return int tblcustomfields.id
     */
    protected function addonField($definitionId, $fieldName)
    {
        $this->exec(
            "INSERT INTO tblcustomfields (type, relid, fieldname, fieldtype, adminonly)
             VALUES ('addon', ?, ?, 'text', '')",
            array($definitionId, $fieldName)
        );
        return (int) $this->pdo()->lastInsertId();
    }

    /**
     * An addon bought for a service (tblhostingaddons, in the service's order unless one is
     * given), and its custom field values.
     *
     * @param int        $definitionId tbladdons.id
     * @param int        $serviceId    tblhosting.id (the parent)
     * @param array|null $values       field key => value (default: a valid addon order)
     * @param array      $options      status, orderid
     *
     * @return int tblhostingaddons.id
     */
    protected function addon($definitionId, $serviceId, ?array $values = null, array $options = array())
    {
        $values = $values === null ? array('Local User' => 'admin', 'Plan' => 'jetpack-backup-daily') : $values;
        $service = $this->select('SELECT userid, orderid FROM tblhosting WHERE id = ?', array($serviceId));
        $userId = count($service) > 0 ? (int) $service[0]->userid : 7;
        $o = $options + array('status' => 'Pending', 'orderid' => count($service) > 0 ? (int) $service[0]->orderid : 0);
        $this->exec(
            "INSERT INTO tblhostingaddons (orderid, hostingid, addonid, userid, name, billingcycle, tax, status,
                                           regdate, nextinvoicedate, paymentmethod, notes)
             VALUES (?, ?, ?, ?, '', 'Monthly', '', ?, CURDATE(), CURDATE(), 'banktransfer', '')",
            array($o['orderid'], $serviceId, $definitionId, $userId, $o['status'])
        );
        $addonId = (int) $this->pdo()->lastInsertId();
        foreach ($values as $key => $value) {
            $this->setAddonValue($addonId, $key, $value);
        }
        return $addonId;
    }

    /**
     * Adds a value row for the addon's field with this key.
     *
     * @return int tblcustomfieldsvalues.id
     */
    protected function setAddonValue($addonId, $key, $value)
    {
        $this->exec(
            "INSERT INTO tblcustomfieldsvalues (fieldid, relid, value, created_at, updated_at)
             VALUES (?, ?, ?, NOW(), NOW())",
            array($this->addonFieldId($addonId, $key), $addonId, $value)
        );
        return (int) $this->pdo()->lastInsertId();
    }

    /**
     * The id of the addon's field whose key is $key (lowest id).
     */
    protected function addonFieldId($addonId, $key)
    {
        foreach ($this->select(
            "SELECT f.id, f.fieldname FROM tblcustomfields f JOIN tblhostingaddons ha ON ha.addonid = f.relid
             WHERE ha.id = ? AND f.type = 'addon' ORDER BY f.id",
            array($addonId)
        ) as $field) {
            if (trim(explode('|', $field->fieldname, 2)[0]) === $key) {
                return (int) $field->id;
            }
        }
        throw new \LogicException("addon $addonId has no field $key");
    }

    /**
     * @return array the addon's jetpack_provisioning_details value rows (id => value)
     */
    protected function addonDetailsRows($addonId)
    {
        $rows = array();
        foreach ($this->select(
            'SELECT id, value FROM tblcustomfieldsvalues WHERE fieldid = ? AND relid = ? ORDER BY id',
            array($this->addonFieldId($addonId, 'jetpack_provisioning_details'), $addonId)
        ) as $row) {
            $rows[(int) $row->id] = $row->value;
        }
        return $rows;
    }

    /**
     * @return string tblhostingaddons.status
     */
    protected function addonStatus($addonId)
    {
        return (string) $this->scalar('SELECT status FROM tblhostingaddons WHERE id = ?', array($addonId));
    }

    /**
     * A service of the product (with an order), and its custom field values.
     *
     * @param int   $productId
     * @param array $values    field key => value (default: a valid order)
     * @param array $options   status, userid, domain (tblhosting.domain, default '')
     *
     * @return int tblhosting.id
     */
    protected function service($productId, ?array $values = null, array $options = array())
    {
        $values = $values === null ? $this->validValues() : $values;
        $o = $options + array('status' => 'Pending', 'userid' => 7, 'domain' => '');
        $this->exec(
            "INSERT INTO tblorders (ordernum, userid, date, amount, paymentmethod, status)
             VALUES (FLOOR(RAND() * 1000000000), ?, NOW(), 10.00, 'banktransfer', 'Active')",
            array($o['userid'])
        );
        $orderId = (int) $this->pdo()->lastInsertId();
        $this->exec(
            "INSERT INTO tblhosting (userid, orderid, packageid, server, regdate, domain, paymentmethod,
                                     billingcycle, domainstatus)
             VALUES (?, ?, ?, 0, CURDATE(), ?, 'banktransfer', 'Monthly', ?)",
            array($o['userid'], $orderId, $productId, $o['domain'], $o['status'])
        );
        $serviceId = (int) $this->pdo()->lastInsertId();
        foreach ($values as $key => $value) {
            $this->setValue($serviceId, $key, $value);
        }
        return $serviceId;
    }

    /**
     * @return array a valid order's values
     */
    protected function validValues($site = 'https://example.com/', $user = 'admin', $plan = 'Premium')
    {
        return array('Site URL' => $site, 'Local User' => $user, 'Plan' => $plan);
    }

    /**
     * Adds a value row for the service's field with this key (as WHMCS does at checkout).
     *
     * @return int tblcustomfieldsvalues.id
     */
    protected function setValue($serviceId, $key, $value)
    {
        $this->exec(
            "INSERT INTO tblcustomfieldsvalues (fieldid, relid, value, created_at, updated_at)
             VALUES (?, ?, ?, NOW(), NOW())",
            array($this->fieldId($serviceId, $key), $serviceId, $value)
        );
        return (int) $this->pdo()->lastInsertId();
    }

    /**
     * Changes the service's value of a field, as an admin editing the service does.
     */
    protected function updateValue($serviceId, $key, $value)
    {
        $this->exec(
            'UPDATE tblcustomfieldsvalues SET value = ?, updated_at = NOW() WHERE fieldid = ? AND relid = ?',
            array($value, $this->fieldId($serviceId, $key), $serviceId)
        );
    }

    /**
     * The id of the service's product field whose key is $key (lowest id).
     */
    protected function fieldId($serviceId, $key)
    {
        foreach ($this->select(
            "SELECT f.id, f.fieldname FROM tblcustomfields f JOIN tblhosting h ON h.packageid = f.relid
             WHERE h.id = ? AND f.type = 'product' ORDER BY f.id",
            array($serviceId)
        ) as $field) {
            if (trim(explode('|', $field->fieldname, 2)[0]) === $key) {
                return (int) $field->id;
            }
        }
        throw new \LogicException("service $serviceId has no field $key");
    }

    /**
     * @return array the service's jetpack_provisioning_details value rows (id => value)
     */
    protected function detailsRows($serviceId)
    {
        $rows = array();
        foreach ($this->select(
            'SELECT id, value FROM tblcustomfieldsvalues WHERE fieldid = ? AND relid = ? ORDER BY id',
            array($this->fieldId($serviceId, 'jetpack_provisioning_details'), $serviceId)
        ) as $row) {
            $rows[(int) $row->id] = $row->value;
        }
        return $rows;
    }

    /**
     * @return string the service's details (lowest row), '' when none
     */
    protected function details($serviceId)
    {
        $rows = $this->detailsRows($serviceId);
        return count($rows) === 0 ? '' : reset($rows);
    }

    /**
     * @return array the service's jobs, oldest first
     */
    protected function jobs($serviceId)
    {
        return $this->select(
            'SELECT id, service_id, addon_id, action, state, attempts, max_attempts, dns_checks, run_at,
                    lease_owner, lease_token, lease_expires_at, waiting_since, follow_up,
                    last_error, result, requested_by, created_at, updated_at, finished_at,
                    unfinished_service_id,
                    TIMESTAMPDIFF(SECOND, run_at, UTC_TIMESTAMP(6)) AS due_for,
                    TIMESTAMPDIFF(SECOND, created_at, UTC_TIMESTAMP(6)) AS age
             FROM mod_jetpack_jobs WHERE service_id = ? ORDER BY id',
            array($serviceId)
        );
    }

    /**
     * @param int|null $serviceId one service's requests, or null for all of them
     *
     * @return array the recorded requests (mod_jetpack_requests), oldest first, with `age` =
     *               seconds since created_at by the database clock
     */
    protected function requests($serviceId = null)
    {
        $sql = 'SELECT id, service_id, addon_id, action, requested_by, created_at, applied_at, job_id, decision,
                       TIMESTAMPDIFF(SECOND, created_at, UTC_TIMESTAMP(6)) AS age
                FROM mod_jetpack_requests';
        if ($serviceId === null) {
            return $this->select($sql . ' ORDER BY id');
        }
        return $this->select($sql . ' WHERE service_id = ? ORDER BY id', array($serviceId));
    }

    /**
     * A job row for a target as the worker leaves it (for the display and requeue tests).
     *
     * @param int    $serviceId  tblhosting.id (an addon's parent)
     * @param int    $addonId    tblhostingaddons.id, 0 for the service itself
     * @param string $action     provision | terminate | change
     * @param string $state      queued | running | waiting_dns | done | failed | cancelled
     * @param string $lastError
     *
     * @return int mod_jetpack_jobs.id
     */
    protected function targetJob($serviceId, $addonId, $action, $state, $lastError = null)
    {
        $this->exec(
            "INSERT INTO mod_jetpack_jobs (service_id, addon_id, action, state, attempts, run_at, last_error,
                 requested_by, created_at, updated_at, finished_at)
             VALUES (?, ?, ?, ?, 1, UTC_TIMESTAMP(6), ?, 'module', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6),
                 IF(? IN ('done', 'failed', 'cancelled'), UTC_TIMESTAMP(6), NULL))",
            array($serviceId, $addonId, $action, $state, $lastError, $state)
        );
        return (int) $this->pdo()->lastInsertId();
    }

    /**
     * A request as the worker leaves it once applied (for the admin tab's tests).
     *
     * @param int         $serviceId
     * @param string      $action      provision | terminate | retry
     * @param string      $requestedBy module | admin | cli | adopt | hook
     * @param string|null $appliedAt   UTC DATETIME, or null for a request not applied yet
     * @param int|null    $jobId
     * @param string|null $decision
     *
     * @return int mod_jetpack_requests.id
     */
    protected function request($serviceId, $action, $requestedBy, $appliedAt = null, $jobId = null, $decision = null)
    {
        $this->exec(
            'INSERT INTO mod_jetpack_requests (service_id, action, requested_by, created_at, applied_at, job_id, decision)
             VALUES (?, ?, ?, UTC_TIMESTAMP(6), ?, ?, ?)',
            array($serviceId, $action, $requestedBy, $appliedAt, $jobId, $decision)
        );
        return (int) $this->pdo()->lastInsertId();
    }

    /**
     * A ledger row (what the worker records after a success at the partner).
     *
     * @return int mod_jetpack_ledger.id
     */
    protected function ledgerRow($serviceId, $site, $plan, $pending = 0, $jobId = 1)
    {
        $this->exec(
            'INSERT INTO mod_jetpack_ledger (service_id, site, plan, pending, since, updated_at, job_id)
             VALUES (?, ?, ?, ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), ?)',
            array($serviceId, $site, $plan, $pending, $jobId)
        );
        return (int) $this->pdo()->lastInsertId();
    }

    /**
     * @return string tblhosting.domainstatus
     */
    protected function status($serviceId)
    {
        return (string) $this->scalar('SELECT domainstatus FROM tblhosting WHERE id = ?', array($serviceId));
    }

    /**
     * @return array the activity lines the module logged through logActivity()
     */
    protected function loggedActivity()
    {
        return array_column($GLOBALS['jetpack_test_activity'], 'description');
    }

    /**
     * @return array the module's logModuleCall() calls (module, action, request, response,
     *               processed, replaceVars), as it made them (unmasked)
     */
    protected function loggedModuleCalls()
    {
        return $GLOBALS['jetpack_test_module_log'];
    }
}
