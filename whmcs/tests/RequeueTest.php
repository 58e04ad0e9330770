<?php

namespace JetpackTests;

use JetpackTests\Support\DatabaseTestCase;
use JetpackTests\Support\Whmcs;

/**
 * The admin button "Retry Jetpack Job" (jetpack_Requeue): after checking the order it records
 * a `retry` request by `admin`. Whether there is a failed job to put back to queued with a
 * fresh budget is the worker's decision (what `jetpack-worker requeue` does); the module
 * touches neither the job nor the details.
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

    public function testTheButtonRecordsARetryRequestForTheWorker(): void
    {
        $service = $this->service($this->product());
        $failure = 'JETPACK MODULE: Service ID: 1 - could not provision the Jetpack plan: boom';
        $this->setValue($service, 'jetpack_provisioning_details', $failure);
        $this->job($service, 'provision', 'failed');
        $jobs = $this->jobs($service);

        $result = Whmcs::customButton('Requeue', $service);

        $this->assertSame('success', $result);
        $requests = $this->requests($service);
        $this->assertCount(1, $requests);
        $this->assertSame('retry', $requests[0]->action);
        $this->assertSame('admin', $requests[0]->requested_by);
        $this->assertNull($requests[0]->applied_at);
        $this->assertNull($requests[0]->job_id);
        $this->assertEquals($jobs, $this->jobs($service), 'the job is the worker\'s to requeue');
        $this->assertSame($failure, $this->details($service), 'no details write: the worker decides');
        $this->assertSame(
            array('JETPACK MODULE: Service ID: ' . $service . ' - retry requested for jetpack-worker (request #' . $requests[0]->id . ')'),
            $this->loggedActivity()
        );
        // A custom button changes neither the status nor the Module Queue.
        $this->assertSame('Pending', $this->status($service));
        $this->assertSame(0, (int) $this->scalar('SELECT COUNT(*) FROM tblmodulequeue'));
    }

    public function testTheButtonRecordsARetryEvenWithoutAFailedJob(): void
    {
        // The worker answers in the request's decision (shown on the service's tab).
        $service = $this->service($this->product());

        $this->assertSame('success', Whmcs::customButton('Requeue', $service));

        $this->assertSame(array('retry'), array_column($this->requests($service), 'action'));
        $this->assertCount(0, $this->jobs($service));
    }

    public function testTheOrderIsCheckedBeforeRequesting(): void
    {
        $service = $this->service($this->product(), $this->validValues('example.com', ''));
        $this->job($service, 'provision', 'failed');

        $result = Whmcs::customButton('Requeue', $service);

        $this->assertStringContainsString('the Local User is empty', $result);
        $this->assertCount(0, $this->requests($service));
        $this->assertSame('failed', $this->jobs($service)[0]->state);
        $this->assertSame(array(), $this->loggedActivity());
    }

    public function testMissingWorkerTablesNameTheCommand(): void
    {
        $service = $this->service($this->product());
        $this->exec('DROP TABLE mod_jetpack_requests');

        $result = Whmcs::customButton('Requeue', $service);

        $this->assertStringStartsWith('JETPACK MODULE: Service ID: ' . $service . ' - ', $result);
        $this->assertStringContainsString('(mod_jetpack_requests); run `jetpack-worker migrate`', $result);
    }
}
