<?php

namespace JetpackTests\Support;

/**
 * Seeding for the queue dashboard's tests, benchmark and browser test: jobs, clients, the
 * workers' heartbeat table (mod_jetpack_workers is created by the worker's migration from
 * round two on; until that migration is in migrations/, this creates it, IF NOT EXISTS, with the
 * same columns), and a big queue (100,000 jobs) made with MariaDB's sequence engine.
 */
final class DashboardSeed
{
    /** @var \PDO */
    private $pdo;

    public function __construct(\PDO $pdo)
    {
        $this->pdo = $pdo;
    }

    public function exec($sql, array $bind = array())
    {
        $st = $this->pdo->prepare($sql);
        $st->execute($bind);
        return $st->rowCount();
    }

    public function workersTable()
    {
        $this->pdo->exec(
            "CREATE TABLE IF NOT EXISTS mod_jetpack_workers (
                owner         VARCHAR(191) NOT NULL,
                host          VARCHAR(255) NOT NULL DEFAULT '',
                pid           INT UNSIGNED NOT NULL DEFAULT 0,
                version       VARCHAR(64)  NOT NULL DEFAULT '',
                started_at    DATETIME(6)  NOT NULL,
                last_seen_at  DATETIME(6)  NOT NULL,
                in_flight     INT          NOT NULL DEFAULT 0,
                stopped_at    DATETIME(6)  NULL,
                last_db_error VARCHAR(500) NULL,
                PRIMARY KEY (owner),
                KEY seen (last_seen_at)
            ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci"
        );
    }

    /**
     * A heartbeat seen $ago seconds ago.
     */
    public function worker($owner, $ago = 0, $stopped = false, $inFlight = 0)
    {
        $this->workersTable();
        $this->exec(
            "REPLACE INTO mod_jetpack_workers (owner, host, pid, version, started_at, last_seen_at, in_flight, stopped_at)
             VALUES (?, 'worker-1.example', 4242, '0.9.0', UTC_TIMESTAMP(6) - INTERVAL 1 HOUR,
                     UTC_TIMESTAMP(6) - INTERVAL ? SECOND, ?, IF(?, UTC_TIMESTAMP(6), NULL))",
            array($owner, (int) $ago, (int) $inFlight, $stopped ? 1 : 0)
        );
    }

    /**
     * A job row as the worker leaves it.
     *
     * @param array $o state, action, attempts, max_attempts, last_error, run_in (seconds from
     *                 now), created_ago (seconds), finished_ago (seconds, default 0 for finished
     *                 states), waiting_since_ago, requested_by, addon_id (0: the service's own)
     *
     * @return int the job's id
     */
    public function job($serviceId, array $o = array())
    {
        $o += array('state' => 'queued', 'action' => 'provision', 'attempts' => 0, 'max_attempts' => null,
            'last_error' => null, 'run_in' => 0, 'created_ago' => 0, 'finished_ago' => null,
            'waiting_since_ago' => null, 'requested_by' => 'module', 'dns_checks' => 0, 'addon_id' => 0);
        $finished = in_array($o['state'], array('done', 'failed', 'cancelled'), true);
        if ($finished && $o['finished_ago'] === null) {
            $o['finished_ago'] = 0;
        }
        $this->exec(
            'INSERT INTO mod_jetpack_jobs (service_id, addon_id, action, state, attempts, max_attempts, dns_checks, run_at,
                 waiting_since, last_error, requested_by, created_at, updated_at, finished_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6) + INTERVAL ? SECOND,
                 IF(? IS NULL, NULL, UTC_TIMESTAMP(6) - INTERVAL ? SECOND), ?, ?,
                 UTC_TIMESTAMP(6) - INTERVAL ? SECOND, UTC_TIMESTAMP(6) - INTERVAL ? SECOND,
                 IF(? IS NULL, NULL, UTC_TIMESTAMP(6) - INTERVAL ? SECOND))',
            array($serviceId, (int) $o['addon_id'], $o['action'], $o['state'], $o['attempts'], $o['max_attempts'], $o['dns_checks'],
                (int) $o['run_in'], $o['waiting_since_ago'], (int) $o['waiting_since_ago'], $o['last_error'],
                $o['requested_by'], (int) $o['created_ago'],
                $finished ? (int) $o['finished_ago'] : (int) $o['created_ago'], $o['finished_ago'], (int) $o['finished_ago'])
        );
        return (int) $this->pdo->lastInsertId();
    }

    /**
     * A client (tblclients) with the given id (the other columns take their implicit
     * defaults: the test connection runs with sql_mode '', as WHMCS does).
     */
    public function client($id, $first, $last, $email, $company = '')
    {
        $this->exec(
            "INSERT INTO tblclients (id, firstname, lastname, companyname, email, datecreated, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, CURDATE(), NOW(), NOW())",
            array($id, $first, $last, $company, $email)
        );
    }

    /**
     * A big queue: $n services of the product (tblhosting, userid cycling over 1000 clients,
     * domain site<N>.example) and one job each, mostly done, some failed, queued, waiting on
     * DNS, spread over the last 30 days; plus a Site URL value per service.
     *
     * @return array first and last tblhosting id
     */
    public function bigQueue($productId, $siteFieldId, $n = 100000)
    {
        $n = (int) $n;
        $first = (int) $this->pdo->query('SELECT COALESCE(MAX(id), 0) + 1 FROM tblhosting')->fetchColumn();
        $this->exec(
            "INSERT INTO tblhosting (id, userid, orderid, packageid, server, regdate, domain, paymentmethod,
                                     billingcycle, domainstatus)
             SELECT ? + seq - 1, 1 + seq MOD 1000, 0, ?, 0, CURDATE(), CONCAT('site', seq, '.example'),
                    'banktransfer', 'Monthly', IF(seq MOD 50 = 0, 'Pending', 'Active')
             FROM seq_1_to_$n",
            array($first, (int) $productId)
        );
        $this->exec(
            "INSERT INTO tblcustomfieldsvalues (fieldid, relid, value, created_at, updated_at)
             SELECT ?, ? + seq - 1, CONCAT('https://site', seq, '.example/'), NOW(), NOW() FROM seq_1_to_$n",
            array((int) $siteFieldId, $first)
        );
        // Job i: created (n - i) * 25 s ago (the newest now); state by i mod 100: 0-1 failed,
        // 2 queued, 3 waiting on DNS, 4 cancelled, else done.
        $this->exec(
            "INSERT INTO mod_jetpack_jobs (service_id, action, state, attempts, run_at, waiting_since, last_error,
                 requested_by, created_at, updated_at, finished_at)
             SELECT s, IF(seq MOD 37 = 0, 'terminate', 'provision'), st,
                    IF(st = 'failed', 8, 1),
                    IF(st IN ('queued', 'waiting_dns'), UTC_TIMESTAMP(6) + INTERVAL seq MOD 600 SECOND, created),
                    IF(st = 'waiting_dns', created, NULL),
                    IF(st = 'failed', CONCAT('JETPACK MODULE: Service ID: ', s, ' - the partner API answered HTTP ',
                       IF(seq MOD 3 = 0, 503, 401)), NULL),
                    'module', created, created + INTERVAL 20 SECOND,
                    IF(st IN ('done', 'failed', 'cancelled'), created + INTERVAL 20 SECOND, NULL)
             FROM (SELECT seq, ? + seq - 1 AS s,
                          UTC_TIMESTAMP(6) - INTERVAL (? - seq) * 25 SECOND AS created,
                          CASE WHEN seq MOD 100 IN (0, 1) THEN 'failed' WHEN seq MOD 100 = 2 THEN 'queued'
                               WHEN seq MOD 100 = 3 THEN 'waiting_dns' WHEN seq MOD 100 = 4 THEN 'cancelled'
                               ELSE 'done' END AS st
                   FROM seq_1_to_$n) x
             ORDER BY seq",
            array($first, $n)
        );
        $this->pdo->query('ANALYZE TABLE mod_jetpack_jobs, tblhosting, tblcustomfieldsvalues')->fetchAll();
        return array($first, $first + $n - 1);
    }
}
