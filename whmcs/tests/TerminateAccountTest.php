<?php

namespace JetpackTests;

use JetpackTests\Support\DatabaseTestCase;
use JetpackTests\Support\Whmcs;
use WHMCS\Module\Server\Jetpack\Messages;

/**
 * jetpack_TerminateAccount: the "queued" text in THIS service's details, then one terminate
 * request for jetpack-worker. What a terminate does to a provision not yet done (supersede,
 * wait for it) is the worker's rule, tested with the worker.
 */
final class TerminateAccountTest extends DatabaseTestCase
{
    public function testTerminateRecordsATerminateRequest(): void
    {
        $service = $this->service($this->product(), null, array('status' => 'Active'));

        $this->assertSame('success', jetpack_TerminateAccount(Whmcs::params($service)));

        $requests = $this->requests($service);
        $this->assertCount(1, $requests);
        $this->assertSame('terminate', $requests[0]->action);
        $this->assertSame('module', $requests[0]->requested_by);
        $this->assertNull($requests[0]->applied_at);
        $this->assertCount(0, $this->jobs($service));
        $this->assertSame(Messages::queued('terminate'), $this->details($service));
        $this->assertSame(
            array('JETPACK MODULE: Service ID: ' . $service . ' - terminate requested for jetpack-worker (request #' . $requests[0]->id . ')'),
            $this->loggedActivity()
        );
        $this->assertSame('Active', $this->status($service), 'WHMCS sets Terminated on success');
    }

    public function testCreateThenTerminateAreRecordedInTheOrderAsked(): void
    {
        // The worker applies requests in id order, latest intent winning.
        $service = $this->service($this->product());

        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($service)));
        $this->assertSame('success', jetpack_TerminateAccount(Whmcs::params($service)));

        $requests = $this->requests($service);
        $this->assertSame(array('provision', 'terminate'), array_column($requests, 'action'));
        $this->assertLessThan((int) $requests[1]->id, (int) $requests[0]->id);
        $this->assertSame(array(Messages::queued('terminate')), array_values($this->detailsRows($service)));
    }

    public function testTerminateOverwritesThisServicesActivationLinkOnly(): void
    {
        $product = $this->product();
        $other = $this->service($product, null, array('status' => 'Active'));
        $mine = $this->service($product, null, array('status' => 'Active'));
        $this->setValue($other, 'jetpack_provisioning_details', 'URL to Activate Jetpack: https://other.example/');
        $row = $this->setValue($mine, 'jetpack_provisioning_details', 'URL to Activate Jetpack: https://mine.example/');

        $this->assertSame('success', jetpack_TerminateAccount(Whmcs::params($mine)));

        $this->assertSame(array($row => Messages::queued('terminate')), $this->detailsRows($mine));
        $this->assertSame(array('URL to Activate Jetpack: https://other.example/'), array_values($this->detailsRows($other)));
    }

    public function testModuleQueueRetryOfAFailedTerminateRecordsAnotherTerminate(): void
    {
        $service = $this->service($this->product(), null, array('status' => 'Active'));
        $this->exec(
            "INSERT INTO mod_jetpack_jobs (service_id, action, state, attempts, run_at, last_error, in_module_queue,
                 requested_by, created_at, updated_at, finished_at)
             VALUES (?, 'terminate', 'failed', 8, UTC_TIMESTAMP(6), 'JETPACK MODULE: Service ID: 1 - could not cancel', 1,
                 'module', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
            array($service)
        );
        $this->exec(
            "INSERT INTO tblmodulequeue (service_type, service_id, module_name, module_action, last_attempt,
                 last_attempt_error, num_retries, completed, created_at, updated_at)
             VALUES ('service', ?, 'jetpack', 'TerminateAccount', NOW(), 'JETPACK MODULE: Service ID: 1 - could not cancel',
                 0, 0, NOW(), NOW())",
            array($service)
        );
        $queueId = (int) $this->pdo()->lastInsertId();
        $job = $this->jobs($service);

        $this->assertSame('success', Whmcs::retry($queueId));

        $this->assertEquals($job, $this->jobs($service), 'the failed job is the worker\'s to retry');
        $this->assertSame(array('terminate'), array_column($this->requests($service), 'action'));
        $this->assertSame(Messages::queued('terminate'), $this->details($service));
        $this->assertSame('Terminated', $this->status($service));
        $this->assertEquals(1, $this->scalar('SELECT completed FROM tblmodulequeue WHERE id = ?', array($queueId)));
    }
}
