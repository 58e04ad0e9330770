<?php

namespace JetpackTests;

use JetpackTests\Support\DatabaseTestCase;
use JetpackTests\Support\Whmcs;
use WHMCS\Module\Server\Jetpack\Messages;

/**
 * jetpack_TerminateAccount: a terminate supersedes a provision that has not reached the API,
 * waits behind one that is running, and is never lost.
 */
final class TerminateAccountTest extends DatabaseTestCase
{
    public function testTerminateWithoutAnyJobQueuesOne(): void
    {
        $service = $this->service($this->product(), null, array('status' => 'Active'));

        $this->assertSame('success', jetpack_TerminateAccount(Whmcs::params($service)));

        $jobs = $this->jobs($service);
        $this->assertCount(1, $jobs);
        $this->assertSame('terminate', $jobs[0]->action);
        $this->assertSame('queued', $jobs[0]->state);
        $this->assertSame('module', $jobs[0]->requested_by);
        $this->assertSame(Messages::TERMINATE_QUEUED, $this->details($service));
        $this->assertSame(
            array('JETPACK MODULE: Service ID: ' . $service . ' - terminate queued for jetpack-worker (job #' . $jobs[0]->id . ')'),
            $this->loggedActivity()
        );
    }

    public function testTerminateAfterAQueuedProvisionCancelsTheProvision(): void
    {
        $service = $this->service($this->product());
        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($service)));

        $this->assertSame('success', jetpack_TerminateAccount(Whmcs::params($service)));

        $jobs = $this->jobs($service);
        $this->assertCount(2, $jobs);
        list($provision, $terminate) = $jobs;
        $this->assertSame('provision', $provision->action);
        $this->assertSame('cancelled', $provision->state);
        $this->assertSame('superseded by a terminate', $provision->result);
        $this->assertNotNull($provision->finished_at);
        $this->assertNull($provision->unfinished_service_id);
        $this->assertSame('terminate', $terminate->action);
        $this->assertSame('queued', $terminate->state);
        $this->assertEquals($service, $terminate->unfinished_service_id);
        $this->assertSame(Messages::TERMINATE_QUEUED, $this->details($service));
        $this->assertSame(
            'JETPACK MODULE: Service ID: ' . $service . ' - terminate queued for jetpack-worker (job #' . $terminate->id
            . '); the provision job #' . $provision->id . ' that had not reached the partner API was cancelled',
            $this->loggedActivity()[1]
        );
    }

    public function testTerminateAlsoSupersedesAProvisionWaitingOnDns(): void
    {
        $service = $this->service($this->product());
        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($service)));
        $this->exec(
            "UPDATE mod_jetpack_jobs SET state = 'waiting_dns', waiting_since = UTC_TIMESTAMP(6) WHERE service_id = ?",
            array($service)
        );

        $this->assertSame('success', jetpack_TerminateAccount(Whmcs::params($service)));

        $jobs = $this->jobs($service);
        $this->assertSame(array('cancelled', 'queued'), array_column($jobs, 'state'));
        $this->assertSame(array('provision', 'terminate'), array_column($jobs, 'action'));
    }

    public function testTerminateWhileTheProvisionRunsBecomesItsFollowUp(): void
    {
        $service = $this->service($this->product());
        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($service)));
        $this->exec(
            "UPDATE mod_jetpack_jobs SET state = 'running', attempts = 1, lease_token = 'b:1',
                 lease_expires_at = UTC_TIMESTAMP(6) + INTERVAL 60 SECOND WHERE service_id = ?",
            array($service)
        );

        $this->assertSame('success', jetpack_TerminateAccount(Whmcs::params($service)));

        $jobs = $this->jobs($service);
        $this->assertCount(1, $jobs, 'the running provision is left to finish');
        $this->assertSame('running', $jobs[0]->state);
        $this->assertSame('b:1', $jobs[0]->lease_token);
        $this->assertSame('terminate', $jobs[0]->follow_up);
        $this->assertSame(Messages::TERMINATE_AFTER_PROVISION, $this->details($service));
        $this->assertStringContainsString('it runs after the running provision', $this->loggedActivity()[1]);
    }

    public function testModuleQueueRetryOfAFailedTerminateQueuesAFreshOne(): void
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

        $this->assertSame('success', Whmcs::retry($queueId));

        $jobs = $this->jobs($service);
        $this->assertSame(array('failed', 'queued'), array_column($jobs, 'state'));
        $this->assertSame('terminate', $jobs[1]->action);
        $this->assertEquals(0, $jobs[1]->attempts);
        $this->assertSame(Messages::TERMINATE_QUEUED, $this->details($service));
        $this->assertSame('Terminated', $this->status($service));
        $this->assertEquals(1, $this->scalar('SELECT completed FROM tblmodulequeue WHERE id = ?', array($queueId)));
    }

    public function testTerminatingTwiceKeepsOneTerminate(): void
    {
        $service = $this->service($this->product(), null, array('status' => 'Active'));

        $this->assertSame('success', jetpack_TerminateAccount(Whmcs::params($service)));
        $this->assertSame('success', jetpack_TerminateAccount(Whmcs::params($service)));

        $jobs = $this->jobs($service);
        $this->assertCount(1, $jobs);
        $this->assertSame('terminate', $jobs[0]->action);
    }

    public function testTerminateOfAProvisionedServiceQueuesAfterTheDoneJob(): void
    {
        $service = $this->service($this->product(), null, array('status' => 'Active'));
        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($service)));
        $this->exec(
            "UPDATE mod_jetpack_jobs SET state = 'done', finished_at = UTC_TIMESTAMP(6) WHERE service_id = ?",
            array($service)
        );

        $this->assertSame('success', jetpack_TerminateAccount(Whmcs::params($service)));

        $jobs = $this->jobs($service);
        $this->assertSame(array('done', 'queued'), array_column($jobs, 'state'));
        $this->assertSame('terminate', $jobs[1]->action);
    }
}
