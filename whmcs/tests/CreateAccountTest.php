<?php

namespace JetpackTests;

use JetpackTests\Support\Db;
use JetpackTests\Support\DatabaseTestCase;
use JetpackTests\Support\Whmcs;
use WHMCS\Database\Capsule;
use WHMCS\Module\Server\Jetpack\Messages;

/**
 * jetpack_CreateAccount on a valid order: the job row (the worker's enqueue rules), the
 * "queued" details of THIS service only, the activity line, and calling it twice.
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
    public function testCreateQueuesAProvisionDueNowAndSaysSoInTheDetails(string $layout): void
    {
        $this->useLayout($layout);
        $service = $this->service($this->product());

        $result = jetpack_CreateAccount(Whmcs::params($service));

        $this->assertSame('success', $result);
        $jobs = $this->jobs($service);
        $this->assertCount(1, $jobs);
        $job = $jobs[0];
        $this->assertSame('provision', $job->action);
        $this->assertSame('queued', $job->state);
        $this->assertSame('module', $job->requested_by);
        $this->assertEquals(0, $job->attempts);
        $this->assertEquals($service, $job->unfinished_service_id);
        $this->assertNull($job->lease_token);
        $this->assertNull($job->finished_at);
        $this->assertNull($job->follow_up);
        // Due now, and the times are UTC by the database clock.
        $this->assertGreaterThanOrEqual(0, (int) $job->due_for);
        $this->assertLessThan(60, (int) $job->due_for);
        $this->assertGreaterThanOrEqual(0, (int) $job->age);
        $this->assertLessThan(60, (int) $job->age);

        $this->assertSame(array(Messages::PROVISION_QUEUED), array_values($this->detailsRows($service)));
        $this->assertSame(
            array('JETPACK MODULE: Service ID: ' . $service . ' - provision queued for jetpack-worker (job #' . $job->id . ')'),
            $this->loggedActivity()
        );
        $this->assertSame(7, $GLOBALS['jetpack_test_activity'][0]['userid']);
        // The module leaves the status to WHMCS (which sets Active on 'success').
        $this->assertSame('Pending', $this->status($service));
    }

    public function testCreatingTwiceKeepsOneJob(): void
    {
        $service = $this->service($this->product());

        $first = jetpack_CreateAccount(Whmcs::params($service));
        $second = jetpack_CreateAccount(Whmcs::params($service));

        $this->assertSame('success', $first);
        $this->assertSame('success', $second);
        $jobs = $this->jobs($service);
        $this->assertCount(1, $jobs);
        $this->assertSame('queued', $jobs[0]->state);
        $this->assertSame(array(Messages::PROVISION_QUEUED), array_values($this->detailsRows($service)));
        $this->assertStringContainsString('provision is already pending', $this->loggedActivity()[1]);
    }

    public function testAskingAgainMakesAJobWaitingOutARetryDelayDueNow(): void
    {
        // A Module Queue Retry or a second click while the worker backs off a transient error.
        $service = $this->service($this->product());
        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($service)));
        $this->exec(
            "UPDATE mod_jetpack_jobs SET run_at = UTC_TIMESTAMP(6) + INTERVAL 1 HOUR, attempts = 2,
                 last_error = 'HTTP 503' WHERE service_id = ?",
            array($service)
        );

        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($service)));

        $jobs = $this->jobs($service);
        $this->assertCount(1, $jobs);
        $this->assertGreaterThanOrEqual(0, (int) $jobs[0]->due_for);
        $this->assertLessThan(60, (int) $jobs[0]->due_for, 'due now');
        $this->assertEquals(2, $jobs[0]->attempts, 'the attempt budget is not reset');
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
            array($myFirstRow => Messages::PROVISION_QUEUED, $mySecondRow => 'old two'),
            $this->detailsRows($mine)
        );
        $this->assertSame(
            array('URL to Activate Jetpack: https://other.example/x'),
            array_values($this->detailsRows($other))
        );
        $this->assertCount(0, $this->jobs($other));
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
        $this->assertSame(Messages::PROVISION_QUEUED, $rows[0]->value);
        $this->assertNotSame('0000-00-00 00:00:00', $rows[0]->created);
        $this->assertNotSame('0000-00-00 00:00:00', $rows[0]->updated);
    }

    public function testCreateAfterAFailedJobQueuesAFreshOne(): void
    {
        // What WHMCS's Module Queue "Retry" does after the worker failed the provision.
        $service = $this->service($this->product());
        $this->exec(
            "INSERT INTO mod_jetpack_jobs (service_id, action, state, attempts, max_attempts, run_at,
                 last_error, requested_by, created_at, updated_at, finished_at)
             VALUES (?, 'provision', 'failed', 8, 8, UTC_TIMESTAMP(6), 'JETPACK MODULE: Service ID: 1 - boom',
                 'module', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
            array($service)
        );

        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($service)));

        $jobs = $this->jobs($service);
        $this->assertCount(2, $jobs);
        $this->assertSame('failed', $jobs[0]->state);
        $this->assertSame('queued', $jobs[1]->state);
        $this->assertEquals(0, $jobs[1]->attempts);
        $this->assertNull($jobs[1]->last_error);
    }

    public function testCreateWhileATerminateIsPendingRunsAfterIt(): void
    {
        $service = $this->service($this->product());
        $this->assertSame('success', jetpack_TerminateAccount(Whmcs::params($service)));

        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($service)));

        $jobs = $this->jobs($service);
        $this->assertCount(1, $jobs);
        $this->assertSame('terminate', $jobs[0]->action);
        $this->assertSame('queued', $jobs[0]->state);
        $this->assertSame('provision', $jobs[0]->follow_up);
        $this->assertSame(Messages::PROVISION_AFTER_TERMINATE, $this->details($service));
    }

    public function testCreateLeavesThePlanWaitingOnDnsAndItsMessageAlone(): void
    {
        $service = $this->service($this->product());
        $waiting = 'The domain example.com did not resolve when provisioning was attempted, however a Jetpack plan is waiting for it.';
        $this->setValue($service, 'jetpack_provisioning_details', $waiting);
        $this->exec(
            "INSERT INTO mod_jetpack_jobs (service_id, action, state, attempts, dns_checks, run_at,
                 waiting_since, requested_by, created_at, updated_at)
             VALUES (?, 'provision', 'waiting_dns', 1, 2, UTC_TIMESTAMP(6) + INTERVAL 1 HOUR,
                 UTC_TIMESTAMP(6), 'module', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
            array($service)
        );

        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($service)));

        $jobs = $this->jobs($service);
        $this->assertCount(1, $jobs);
        $this->assertSame('waiting_dns', $jobs[0]->state);
        $this->assertEquals(2, $jobs[0]->dns_checks);
        $this->assertLessThan(-3000, (int) $jobs[0]->due_for, 'its DNS schedule is kept');
        $this->assertSame($waiting, $this->details($service));
    }

    public function testCreateWhileTheProvisionRunsSaysItIsInProgress(): void
    {
        $service = $this->service($this->product());
        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($service)));
        $this->exec("UPDATE mod_jetpack_jobs SET state = 'running', lease_token = 'x:1' WHERE service_id = ?", array($service));

        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($service)));

        $this->assertCount(1, $this->jobs($service));
        $this->assertSame(Messages::PROVISION_RUNNING, $this->details($service));
    }

    public function brokenWorkerTables(): array
    {
        return array(
            'table missing' => array('DROP TABLE mod_jetpack_jobs'),
            'table out of date' => array('ALTER TABLE mod_jetpack_jobs DROP COLUMN requested_by'),
        );
    }

    /**
     * @dataProvider brokenWorkerTables
     */
    public function testMissingWorkerTablesNameTheCommandThatCreatesThem(string $breakIt): void
    {
        $service = $this->service($this->product());
        $this->exec($breakIt);

        $result = jetpack_CreateAccount(Whmcs::params($service));

        $this->assertStringStartsWith('JETPACK MODULE: Service ID: ' . $service . ' - ', $result);
        $this->assertStringContainsString('mod_jetpack_jobs', $result);
        $this->assertStringContainsString('`jetpack-worker migrate`', $result);
        $this->assertSame(array(), $this->detailsRows($service), 'nothing written when nothing was queued');
    }

    public function testARaceOnTheUniqueIndexIsRetriedOnce(): void
    {
        // Another writer (the worker's adoption, `jetpack-worker enqueue`) inserts the service's
        // unfinished job between the module's SELECT … FOR UPDATE and its INSERT. Under READ
        // COMMITTED the SELECT takes no gap lock, so the INSERT hits the UNIQUE index.
        $service = $this->service($this->product());
        $this->exec('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
        $other = Db::server();
        $other->exec('SET SESSION innodb_lock_wait_timeout = 5');
        $database = $this->database;
        $raced = 0;
        Capsule::connection()->beforeExecuting(function ($query) use ($other, $database, $service, &$raced) {
            if ($raced === 0 && stripos($query, 'insert into `mod_jetpack_jobs`') === 0) {
                $raced++;
                $other->prepare(
                    "INSERT INTO `$database`.mod_jetpack_jobs (service_id, action, state, run_at, requested_by, created_at, updated_at)
                     VALUES (?, 'provision', 'queued', UTC_TIMESTAMP(6), 'cli', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))"
                )->execute(array($service));
            }
        });

        $result = jetpack_CreateAccount(Whmcs::params($service));

        $this->assertSame(1, $raced);
        $this->assertSame('success', $result);
        $jobs = $this->jobs($service);
        $this->assertCount(1, $jobs);
        $this->assertSame('cli', $jobs[0]->requested_by, 'the job the other writer queued is the one');
        $this->assertSame(Messages::PROVISION_QUEUED, $this->details($service));
        $this->assertStringContainsString('already pending', $this->loggedActivity()[0]);
    }

    public function testOtherDatabaseErrorsAreReportedWithoutTheQuery(): void
    {
        $service = $this->service($this->product());
        // A WHMCS table the module writes, made unwritable: the error is the driver's message.
        $this->exec('ALTER TABLE tblcustomfieldsvalues DROP COLUMN updated_at');

        $result = jetpack_CreateAccount(Whmcs::params($service));

        $this->assertStringStartsWith('JETPACK MODULE: Service ID: ' . $service . ' - database error: ', $result);
        $this->assertStringContainsString('updated_at', $result);
        $this->assertStringNotContainsString('`fieldid`', $result, 'no SQL');
        $this->assertStringNotContainsString(Messages::PROVISION_QUEUED, $result, 'no bindings');
        $this->assertCount(0, $this->jobs($service), 'the job insert was rolled back with the details write');
    }
}
