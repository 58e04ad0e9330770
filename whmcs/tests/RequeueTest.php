<?php

namespace JetpackTests;

use JetpackTests\Support\DatabaseTestCase;
use JetpackTests\Support\Whmcs;
use WHMCS\Module\Server\Jetpack\Messages;

/**
 * The admin button "Retry Jetpack Job" (jetpack_Requeue): the service's latest failed job
 * goes back to queued, due now, with a fresh budget (what `jetpack-worker requeue` does).
 */
final class RequeueTest extends DatabaseTestCase
{
    /**
     * A finished job row for the service.
     *
     * @return int its id
     */
    private function job($service, $action, $state)
    {
        $finished = in_array($state, array('done', 'failed', 'cancelled'), true);
        $this->exec(
            "INSERT INTO mod_jetpack_jobs (service_id, action, state, attempts, max_attempts, dns_checks,
                 run_at, lease_owner, lease_token, lease_expires_at, waiting_since, in_module_queue,
                 last_error, requested_by, created_at, updated_at, finished_at)
             VALUES (?, ?, ?, 8, 8, 3, UTC_TIMESTAMP(6) - INTERVAL 1 DAY, 'host:1:a', 'x:9', UTC_TIMESTAMP(6),
                 UTC_TIMESTAMP(6) - INTERVAL 2 DAY, 1, 'JETPACK MODULE: Service ID: 1 - could not provision the Jetpack plan: boom',
                 'module', UTC_TIMESTAMP(6) - INTERVAL 2 DAY, UTC_TIMESTAMP(6) - INTERVAL 1 DAY, "
            . ($finished ? 'UTC_TIMESTAMP(6) - INTERVAL 1 DAY' : 'NULL') . ')',
            array($service, $action, $state)
        );
        return (int) $this->pdo()->lastInsertId();
    }

    public function testAFailedJobIsQueuedAgainWithAFreshBudget(): void
    {
        $service = $this->service($this->product());
        $this->setValue($service, 'jetpack_provisioning_details', 'JETPACK MODULE: Service ID: 1 - could not provision the Jetpack plan: boom');
        $older = $this->job($service, 'provision', 'failed');
        $latest = $this->job($service, 'provision', 'failed');

        $result = Whmcs::customButton('Requeue', $service);

        $this->assertSame('success', $result);
        $jobs = $this->jobs($service);
        $this->assertSame('failed', $jobs[0]->state, 'only the latest job is requeued');
        $job = $jobs[1];
        $this->assertEquals($latest, $job->id);
        $this->assertSame('queued', $job->state);
        $this->assertEquals(0, $job->attempts);
        $this->assertEquals(0, $job->dns_checks);
        $this->assertNull($job->waiting_since);
        $this->assertNull($job->finished_at);
        $this->assertNull($job->lease_owner);
        $this->assertNull($job->lease_token);
        $this->assertNull($job->lease_expires_at);
        $this->assertGreaterThanOrEqual(0, (int) $job->due_for);
        $this->assertLessThan(60, (int) $job->due_for, 'due now');
        $this->assertEquals($service, $job->unfinished_service_id);
        $this->assertSame(Messages::PROVISION_QUEUED, $this->details($service));
        $this->assertSame(
            array('JETPACK MODULE: Service ID: ' . $service . ' - failed provision job #' . $latest
                . ' requeued for jetpack-worker with a fresh attempt budget'),
            $this->loggedActivity()
        );
        $this->assertNotEquals($older, $latest);
        // A custom button changes neither the status nor the Module Queue.
        $this->assertSame('Pending', $this->status($service));
        $this->assertSame(0, (int) $this->scalar('SELECT COUNT(*) FROM tblmodulequeue'));
    }

    public function testAFailedTerminateIsRequeuedAsATerminate(): void
    {
        $service = $this->service($this->product(), null, array('status' => 'Terminated'));
        $this->job($service, 'terminate', 'failed');

        $this->assertSame('success', Whmcs::customButton('Requeue', $service));

        $this->assertSame('queued', $this->jobs($service)[0]->state);
        $this->assertSame(Messages::TERMINATE_QUEUED, $this->details($service));
    }

    public function testNothingToRequeueWithoutAJob(): void
    {
        $service = $this->service($this->product());

        $result = Whmcs::customButton('Requeue', $service);

        $this->assertSame(
            'JETPACK MODULE: Service ID: ' . $service . ' - there is no Jetpack job to requeue; use Create (or Terminate) to queue one',
            $result
        );
        $this->assertCount(0, $this->jobs($service));
    }

    public function testOnlyAFailedLatestJobIsRequeued(): void
    {
        $service = $this->service($this->product());
        $this->job($service, 'provision', 'failed');
        $done = $this->job($service, 'provision', 'done');

        $result = Whmcs::customButton('Requeue', $service);

        $this->assertSame(
            'JETPACK MODULE: Service ID: ' . $service . ' - nothing to requeue: the latest job #' . $done . ' (provision) is done, not failed',
            $result
        );
        $this->assertSame(array('failed', 'done'), array_column($this->jobs($service), 'state'));
        $this->assertSame(array(), $this->loggedActivity());
    }

    public function testAnotherPendingJobKeepsItsPlace(): void
    {
        // An unfinished job with a lower id than the failed latest one: the UNIQUE index
        // refuses a second unfinished job.
        $service = $this->service($this->product());
        $pending = $this->job($service, 'terminate', 'queued');
        $failed = $this->job($service, 'provision', 'failed');

        $result = Whmcs::customButton('Requeue', $service);

        $this->assertSame(
            'JETPACK MODULE: Service ID: ' . $service . ' - job #' . $failed . ' (provision) was not requeued: another job for '
            . 'this service is already pending (job #' . $pending . ', terminate, queued); it runs first',
            $result
        );
        $this->assertSame(array('queued', 'failed'), array_column($this->jobs($service), 'state'));
        $this->assertSame('', $this->details($service), 'rolled back: no details written');
    }

    public function testTheOrderIsCheckedBeforeRequeueing(): void
    {
        $service = $this->service($this->product(), $this->validValues('example.com', ''));
        $this->job($service, 'provision', 'failed');

        $result = Whmcs::customButton('Requeue', $service);

        $this->assertStringContainsString('the Local User is empty', $result);
        $this->assertSame('failed', $this->jobs($service)[0]->state);
    }

    public function testMissingWorkerTablesNameTheCommand(): void
    {
        $service = $this->service($this->product());
        $this->exec('DROP TABLE mod_jetpack_jobs');

        $result = Whmcs::customButton('Requeue', $service);

        $this->assertStringStartsWith('JETPACK MODULE: Service ID: ' . $service . ' - ', $result);
        $this->assertStringContainsString('`jetpack-worker migrate`', $result);
    }
}
