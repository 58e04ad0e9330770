<?php

namespace JetpackTests;

use JetpackTests\Support\Db;
use JetpackTests\Support\DatabaseTestCase;
use JetpackTests\Support\Whmcs;
use WHMCS\Database\Capsule;
use WHMCS\Module\Server\Jetpack\Messages;

/**
 * jetpack_CreateAccount on a valid order: the "queued" details of THIS service only, then one
 * request row for jetpack-worker (which alone decides what becomes of it), the activity line,
 * lock conflicts tried again, and the errors for missing worker tables.
 */
final class CreateAccountTest extends DatabaseTestCase
{
    public function layouts(): array
    {
        return array('WHMCS 8' => array(self::WHMCS_8), 'WHMCS 7.8.3' => array(self::WHMCS_783));
    }

    /**
     * @dataProvider layouts
     */
    public function testCreateRecordsAProvisionRequestAndSaysSoInTheDetails(string $layout): void
    {
        $this->useLayout($layout);
        $service = $this->service($this->product());

        $result = jetpack_CreateAccount(Whmcs::params($service));

        $this->assertSame('success', $result);
        $requests = $this->requests($service);
        $this->assertCount(1, $requests);
        $request = $requests[0];
        $this->assertSame('provision', $request->action);
        $this->assertSame('module', $request->requested_by);
        $this->assertNull($request->applied_at, 'the worker applies it');
        $this->assertNull($request->job_id);
        $this->assertNull($request->decision);
        // created_at is UTC by the database clock.
        $this->assertGreaterThanOrEqual(0, (int) $request->age);
        $this->assertLessThan(60, (int) $request->age);
        $this->assertCount(0, $this->jobs($service), 'jobs are the worker\'s');

        $this->assertSame(array(Messages::queued('provision')), array_values($this->detailsRows($service)));
        $this->assertSame(
            array('JETPACK MODULE: Service ID: ' . $service . ' - provision requested for jetpack-worker (request #' . $request->id . ')'),
            $this->loggedActivity()
        );
        $this->assertSame(7, $GLOBALS['jetpack_test_activity'][0]['userid']);
        // The module leaves the status to WHMCS (which sets Active on 'success').
        $this->assertSame('Pending', $this->status($service));
    }

    public function testEachCreateIsRecordedAsItsOwnRequest(): void
    {
        // A double click, or a Module Queue Retry: the worker decides what a second ask means.
        $service = $this->service($this->product());

        $first = jetpack_CreateAccount(Whmcs::params($service));
        $second = jetpack_CreateAccount(Whmcs::params($service));

        $this->assertSame('success', $first);
        $this->assertSame('success', $second);
        $requests = $this->requests($service);
        $this->assertSame(array('provision', 'provision'), array_column($requests, 'action'));
        $this->assertGreaterThan((int) $requests[0]->id, (int) $requests[1]->id);
        $this->assertSame(array(Messages::queued('provision')), array_values($this->detailsRows($service)), 'one details row');
        $this->assertStringEndsWith('(request #' . $requests[1]->id . ')', $this->loggedActivity()[1]);
    }

    public function testDetailsAreWrittenToThisServiceOnlyAndToItsLowestRow(): void
    {
        $product = $this->product();
        $mine = $this->service($product);
        $other = $this->service($product);
        // The other service's row comes first: a lookup by field alone would find it.
        $this->setValue($other, 'jetpack_provisioning_details', 'URL to Activate Jetpack: https://other.example/x');
        $myFirstRow = $this->setValue($mine, 'jetpack_provisioning_details', 'old one');
        $mySecondRow = $this->setValue($mine, 'jetpack_provisioning_details', 'old two');

        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($mine)));

        $this->assertSame(
            array($myFirstRow => Messages::queued('provision'), $mySecondRow => 'old two'),
            $this->detailsRows($mine)
        );
        $this->assertSame(
            array('URL to Activate Jetpack: https://other.example/x'),
            array_values($this->detailsRows($other))
        );
        $this->assertCount(0, $this->requests($other));
    }

    public function testMissingDetailsRowIsInsertedWithTimestamps(): void
    {
        $service = $this->service($this->product());
        $this->assertSame(array(), $this->detailsRows($service));

        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($service)));

        $rows = $this->select(
            "SELECT relid, value, CAST(created_at AS CHAR) AS created, CAST(updated_at AS CHAR) AS updated
             FROM tblcustomfieldsvalues WHERE fieldid = ?",
            array($this->fieldId($service, 'jetpack_provisioning_details'))
        );
        $this->assertCount(1, $rows);
        $this->assertEquals($service, $rows[0]->relid);
        $this->assertSame(Messages::queued('provision'), $rows[0]->value);
        $this->assertNotSame('0000-00-00 00:00:00', $rows[0]->created);
        $this->assertNotSame('0000-00-00 00:00:00', $rows[0]->updated);
    }

    public function testARacingDetailsInsertIsTakenBackSoTheServiceKeepsOneRow(): void
    {
        // Another call for the same service inserts its details row between this call's SELECT
        // (no row yet) and its INSERT: both insert; the higher row is deleted by its writer.
        $service = $this->service($this->product());
        $fieldId = $this->fieldId($service, 'jetpack_provisioning_details');
        $other = Db::server();
        $database = $this->database;
        $raced = 0;
        Capsule::connection()->beforeExecuting(function ($query) use ($other, $database, $service, $fieldId, &$raced) {
            if ($raced === 0 && stripos($query, 'insert into `tblcustomfieldsvalues`') === 0) {
                $raced++;
                $other->prepare(
                    "INSERT INTO `$database`.tblcustomfieldsvalues (fieldid, relid, value, created_at, updated_at)
                     VALUES (?, ?, ?, NOW(), NOW())"
                )->execute(array($fieldId, $service, Messages::queued('terminate')));
            }
        });

        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($service)));

        $this->assertSame(1, $raced);
        $this->assertSame(array(Messages::queued('terminate')), array_values($this->detailsRows($service)), 'the first row stays');
        $this->assertCount(1, $this->requests($service));
    }

    public function testDetailsThatAlreadySayQueuedAreKept(): void
    {
        // PDO counts changed rows only: an UPDATE that changes nothing must not add a row.
        $service = $this->service($this->product());
        $row = $this->setValue($service, 'jetpack_provisioning_details', Messages::queued('provision'));
        $this->exec('UPDATE tblcustomfieldsvalues SET updated_at = NOW() WHERE id = ?', array($row));

        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($service)));
        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($service)));

        $this->assertSame(array($row => Messages::queued('provision')), $this->detailsRows($service));
    }

    public function testTheModuleLeavesJobsAlone(): void
    {
        // A failed job, then WHMCS's Module Queue "Retry": the request goes to the worker, which
        // decides; the module writes no job row.
        $service = $this->service($this->product());
        $this->exec(
            "INSERT INTO mod_jetpack_jobs (service_id, action, state, attempts, max_attempts, run_at,
                 last_error, requested_by, created_at, updated_at, finished_at)
             VALUES (?, 'provision', 'failed', 8, 8, UTC_TIMESTAMP(6), 'JETPACK MODULE: Service ID: 1 - boom',
                 'module', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
            array($service)
        );
        $before = $this->jobs($service);

        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($service)));

        $this->assertEquals($before, $this->jobs($service));
        $this->assertSame(array('provision'), array_column($this->requests($service), 'action'));
        $this->assertSame(Messages::queued('provision'), $this->details($service));
    }

    public function brokenWorkerTables(): array
    {
        $cases = array();
        foreach (array('CreateAccount', 'TerminateAccount') as $function) {
            $cases["$function: table missing"] = array($function, 'DROP TABLE mod_jetpack_requests');
            $cases["$function: table out of date"] = array($function, 'ALTER TABLE mod_jetpack_requests DROP COLUMN requested_by');
        }
        return $cases;
    }

    /**
     * @dataProvider brokenWorkerTables
     */
    public function testMissingWorkerTablesNameTheCommandThatCreatesThem(string $function, string $breakIt): void
    {
        $service = $this->service($this->product());
        $this->exec($breakIt);

        $result = call_user_func('jetpack_' . $function, Whmcs::params($service));

        $this->assertSame(
            'JETPACK MODULE: Service ID: ' . $service . ' - the jetpack-worker tables are missing or out of date in the '
            . 'WHMCS database (mod_jetpack_requests); run `jetpack-worker migrate` with the WHMCS database\'s '
            . 'DATABASE_URL, then retry',
            $result
        );
        $this->assertSame(array(), $this->detailsRows($service), 'the inserted details row was taken back');
        $this->assertSame(array(), $this->loggedActivity());
    }

    public function testDetailsAreRestoredWhenTheRequestCannotBeRecorded(): void
    {
        $service = $this->service($this->product());
        $row = $this->setValue($service, 'jetpack_provisioning_details', 'URL to Activate Jetpack: https://example.com/a');
        $this->exec('DROP TABLE mod_jetpack_requests');

        $result = jetpack_TerminateAccount(Whmcs::params($service));

        $this->assertStringContainsString('`jetpack-worker migrate`', $result);
        $this->assertSame(array($row => 'URL to Activate Jetpack: https://example.com/a'), $this->detailsRows($service));
    }

    public function testALockWaitTimeoutIsTriedAgain(): void
    {
        // Another transaction (at REPEATABLE READ) holds a gap lock that blocks the request
        // INSERT until it commits; it commits once the first try has timed out.
        $service = $this->service($this->product());
        $this->exec('SET SESSION innodb_lock_wait_timeout = 1');
        $other = new \PDO(
            'mysql:host=' . Db::url()['host'] . ';port=' . Db::url()['port'] . ';dbname=' . $this->database,
            Db::url()['user'],
            Db::url()['pass'],
            array(\PDO::ATTR_ERRMODE => \PDO::ERRMODE_EXCEPTION)
        );
        $other->exec('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
        $other->beginTransaction();
        $other->query('SELECT id FROM mod_jetpack_requests FOR UPDATE')->fetchAll();
        $tries = 0;
        Capsule::connection()->beforeExecuting(function ($query) use ($other, &$tries) {
            if (stripos($query, 'insert into `mod_jetpack_requests`') === 0 && ++$tries === 2) {
                $other->commit();
            }
        });

        $result = jetpack_CreateAccount(Whmcs::params($service));

        $this->assertSame('success', $result);
        $this->assertSame(2, $tries, 'the first INSERT timed out, the second went in');
        $this->assertCount(1, $this->requests($service));
        $this->assertSame(Messages::queued('provision'), $this->details($service));
    }

    public function testADeadlockIsTriedAgain(): void
    {
        // What a deadlock (or a Galera certification conflict) looks like to the module: error
        // 1213 on the statement, which InnoDB has rolled back.
        $service = $this->service($this->product());
        $tries = $this->failStatements('insert into `mod_jetpack_requests`', 2, 1213);

        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($service)));

        $this->assertSame(3, $tries->count);
        $this->assertCount(1, $this->requests($service));
    }

    public function testTheDetailsWriteIsTriedAgainToo(): void
    {
        $service = $this->service($this->product());
        $tries = $this->failStatements('insert into `tblcustomfieldsvalues`', 1, 1213);

        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($service)));

        $this->assertSame(2, $tries->count);
        $this->assertSame(array(Messages::queued('provision')), array_values($this->detailsRows($service)));
    }

    public function testAConflictThatDoesNotGoAwayIsReportedAfterSixTries(): void
    {
        $service = $this->service($this->product());
        $tries = $this->failStatements('insert into `mod_jetpack_requests`', 100, 1205);

        $result = jetpack_CreateAccount(Whmcs::params($service));

        $this->assertSame(6, $tries->count, 'the first try and five more');
        $this->assertSame(
            'JETPACK MODULE: Service ID: ' . $service . ' - database error: Lock wait timeout exceeded; try restarting transaction',
            $result
        );
        $this->assertCount(0, $this->requests($service));
        $this->assertSame(array(), $this->detailsRows($service), 'taken back');
    }

    public function testOtherDatabaseErrorsAreReportedWithoutTheQueryAndNotTriedAgain(): void
    {
        $service = $this->service($this->product());
        // A WHMCS table the module writes, made unwritable: the error is the driver's message.
        $this->exec('ALTER TABLE tblcustomfieldsvalues DROP COLUMN updated_at');
        $tries = $this->failStatements('insert into `tblcustomfieldsvalues`', 0, 0);

        $result = jetpack_CreateAccount(Whmcs::params($service));

        $this->assertStringStartsWith('JETPACK MODULE: Service ID: ' . $service . ' - database error: ', $result);
        $this->assertStringContainsString('updated_at', $result);
        $this->assertStringNotContainsString('`fieldid`', $result, 'no SQL');
        $this->assertStringNotContainsString(Messages::queued('provision'), $result, 'no bindings');
        $this->assertSame(1, $tries->count);
        $this->assertCount(0, $this->requests($service), 'no request without its details');
    }

    public function databaseErrors(): array
    {
        return array(
            'a worker table missing' => array('DROP TABLE mod_jetpack_requests', 'mod_jetpack_requests'),
            'a WHMCS column missing' => array('ALTER TABLE tblcustomfieldsvalues DROP COLUMN updated_at', 'updated_at'),
        );
    }

    /**
     * @dataProvider databaseErrors
     */
    public function testADatabaseErrorGoesToTheModuleLogWithoutTheSecret(string $breakIt, string $named): void
    {
        $clientId = 'partner-id-4f1c9e';
        $secret = 'partner-secret-8d2b7a';
        $service = $this->service($this->product(array('client_id' => $clientId, 'secret' => $secret)));
        $this->exec($breakIt);

        $result = jetpack_CreateAccount(Whmcs::params($service));

        $this->assertStringStartsWith('JETPACK MODULE: Service ID: ' . $service . ' - ', $result);
        $this->assertStringContainsString($named, $result);
        $calls = $this->loggedModuleCalls();
        $this->assertCount(1, $calls, 'one module-log entry (WHMCS keeps it in Module Debug Mode)');
        $call = $calls[0];
        $this->assertSame('jetpack', $call['module']);
        $this->assertSame('CreateAccount', $call['action']);
        $this->assertSame(array('service_id' => $service, 'addon_id' => 0, 'action' => 'provision'), $call['request']);
        $this->assertStringContainsString($named, $call['response']['message'], 'what the database said');
        $this->assertSame($result, $call['processed'], 'and the message WHMCS shows');
        $this->assertSame(array($clientId, $secret), $call['replaceVars'], 'WHMCS masks the credentials');
        $logged = print_r(array($call['request'], $call['response'], $call['processed']), true);
        foreach (array($clientId, $secret) as $credential) {
            $this->assertStringNotContainsString($credential, $logged);
            $this->assertStringNotContainsString($credential, $result);
        }
        $this->assertStringNotContainsString(Messages::queued('provision'), $logged, 'no bindings');
        $this->assertSame(array(), $this->loggedActivity(), 'nothing was recorded');
    }

    /**
     * Makes the first $times statements starting with $prefix fail with driver error $number
     * (as PDO reports it: SQLSTATE 40001 for 1213, HY000 for 1205), and counts every try.
     *
     * @param string $prefix lower-case start of the SQL, as the query builder writes it
     * @param int    $times
     * @param int    $number 1213 or 1205 (0: count only)
     *
     * @return \stdClass count = statements with that prefix tried so far
     */
    private function failStatements($prefix, $times, $number)
    {
        $messages = array(
            1213 => array('40001', 'Deadlock found when trying to get lock; try restarting transaction'),
            1205 => array('HY000', 'Lock wait timeout exceeded; try restarting transaction'),
        );
        $tries = new \stdClass();
        $tries->count = 0;
        Capsule::connection()->beforeExecuting(function ($query) use ($prefix, $times, $number, $messages, $tries) {
            if (stripos($query, $prefix) !== 0) {
                return;
            }
            $tries->count++;
            if ($number !== 0 && $tries->count <= $times) {
                list($state, $text) = $messages[$number];
                $e = new \PDOException('SQLSTATE[' . $state . ']: ' . $text, 0);
                $e->errorInfo = array($state, $number, $text);
                throw $e;
            }
        });
        return $tries;
    }
}
