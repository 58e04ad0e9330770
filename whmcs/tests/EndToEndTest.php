<?php

namespace JetpackTests;

use JetpackTests\Support\DatabaseTestCase;
use JetpackTests\Support\Processes;
use JetpackTests\Support\Whmcs;
use WHMCS\Module\Server\Jetpack\Messages;

/**
 * Both languages together: WHMCS calls the module (Support\Whmcs does what WHMCS does around
 * the call), which records a request; the real `jetpack-worker run --once` applies the pending
 * requests (turning them into jobs: job ids are known only once it ran, from the request's
 * job_id), processes the jobs against the sandbox partner API, and WHMCS's tables end up as
 * the README's outcome table (How it works) says.
 */
final class EndToEndTest extends DatabaseTestCase
{
    /** @var Processes */
    private $processes;

    protected function setUp(): void
    {
        parent::setUp();
        $this->processes = new Processes();
        $this->processes->startSandbox();
    }

    protected function tearDown(): void
    {
        $this->processes->stopSandbox();
        parent::tearDown();
    }

    public function layouts(): array
    {
        return array('WHMCS 8' => array(self::WHMCS_8), 'WHMCS 7.8.3' => array(self::WHMCS_783));
    }

    /**
     * Runs `jetpack-worker run --once` and checks it worked.
     */
    private function runWorker()
    {
        $run = $this->processes->worker($this->database, array('run', '--once'));
        $this->assertSame(0, $run['exit'], "jetpack-worker run --once failed:\n" . $run['stderr']);
    }

    /**
     * Checks that the worker applied every request of the service and returns them.
     *
     * @return array the service's requests, oldest first
     */
    private function appliedRequests($service)
    {
        $requests = $this->requests($service);
        foreach ($requests as $request) {
            $this->assertNotNull($request->applied_at, 'request #' . $request->id . ' applied');
            $this->assertNotNull($request->decision, 'request #' . $request->id . ' has a decision');
        }
        return $requests;
    }

    /**
     * The activity-log rows the worker wrote for the service.
     *
     * @return array
     */
    private function workerActivity($service)
    {
        return $this->select(
            "SELECT description, user, userid FROM tblactivitylog
             WHERE description LIKE ? ORDER BY id",
            array('JETPACK MODULE: Service ID: ' . $service . ' - %')
        );
    }

    /**
     * @dataProvider layouts
     */
    public function testCreateThenTheWorkerProvisionsThenTerminateCancels(string $layout): void
    {
        $this->useLayout($layout);
        $migrate = $this->processes->worker($this->database, array('migrate'));
        $this->assertSame(0, $migrate['exit'], $migrate['stderr']);
        $service = $this->service($this->product(), $this->validValues('https://e2e-site.example/', 'admin', 'Premium'));

        // Checkout: WHMCS calls CreateAccount; 'success' makes the service Active.
        $this->assertSame('success', Whmcs::moduleCall('CreateAccount', $service));
        $this->assertSame('Active', $this->status($service));
        $this->assertSame(Messages::queued('provision'), $this->details($service));
        $this->assertCount(0, $this->jobs($service), 'the worker turns the request into a job');
        $this->assertSame(array('provision'), array_column($this->requests($service), 'action'));

        $this->runWorker();

        $link = 'https://jetpack.wordpress.com/jetpack.authorize/1/?site=e2e-site.example';
        $this->assertSame('URL to Activate Jetpack: ' . $link, $this->details($service));
        $this->assertSame('Active', $this->status($service));
        $jobs = $this->jobs($service);
        $this->assertSame(array('done'), array_column($jobs, 'state'));
        $requests = $this->appliedRequests($service);
        $this->assertEquals($jobs[0]->id, $requests[0]->job_id);
        $ledger = $this->select('SELECT site, plan, pending, job_id FROM mod_jetpack_ledger WHERE service_id = ?', array($service));
        $this->assertCount(1, $ledger);
        $this->assertSame('e2e-site.example', $ledger[0]->site);
        $this->assertSame('premium', $ledger[0]->plan);
        $this->assertEquals(0, $ledger[0]->pending);
        $this->assertEquals($jobs[0]->id, $ledger[0]->job_id);
        $this->assertStringStartsWith('premium on e2e-site.example since ', jetpack_AdminServicesTabFields(Whmcs::params($service))['Jetpack Plans']);
        $activity = $this->workerActivity($service);
        $this->assertCount(1, $activity);
        $this->assertStringStartsWith('JETPACK MODULE: Service ID: ' . $service . ' - ', $activity[0]->description);
        $this->assertSame('System', $activity[0]->user);
        $this->assertEquals(7, $activity[0]->userid);
        $calls = $this->processes->sandboxCalls();
        $this->assertSame(1, $calls['sites']['e2e-site.example']['provision'] ?? null, json_encode($calls));
        $this->assertSame(0, (int) $this->scalar('SELECT COUNT(*) FROM tblmodulequeue'));
        // What the client sees now.
        $this->assertSame($link, jetpack_ClientArea(Whmcs::params($service))['templateVariables']['jetpackActivationUrl']);

        // Cancellation: WHMCS calls TerminateAccount (and marks the service Terminated).
        $this->assertSame('success', Whmcs::moduleCall('TerminateAccount', $service));
        $this->assertSame(Messages::queued('terminate'), $this->details($service));

        $this->runWorker();

        $this->assertSame('The Jetpack plan for e2e-site.example was cancelled.', $this->details($service));
        $this->assertSame('Terminated', $this->status($service));
        $jobs = $this->jobs($service);
        $this->assertSame(array('done', 'done'), array_column($jobs, 'state'));
        $this->assertSame(array('provision', 'terminate'), array_column($jobs, 'action'));
        $requests = $this->appliedRequests($service);
        $this->assertSame(array('provision', 'terminate'), array_column($requests, 'action'));
        $this->assertEquals($jobs[1]->id, $requests[1]->job_id);
        $this->assertSame(0, (int) $this->scalar('SELECT COUNT(*) FROM mod_jetpack_ledger WHERE service_id = ?', array($service)), 'cancelled');
        $this->assertSame(1, $this->processes->sandboxCalls()['sites']['e2e-site.example']['cancel'] ?? null);
    }

    /**
     * Jetpack sold as an addon of a hosting service: WHMCS calls the module for the addon, the
     * worker provisions the plan of the addon's module setting for the service's domain into the
     * addon's own details; then an upgrade moves the addon to the Premium addon (WHMCS carries its
     * field values over) and calls ChangePackage, and the worker moves the site up.
     */
    public function testAnAddonIsProvisionedForItsServicesDomainAndUpgradedThroughChangePackage(): void
    {
        $migrate = $this->processes->worker($this->database, array('migrate'));
        $this->assertSame(0, $migrate['exit'], $migrate['stderr']);
        $hosting = $this->service(
            $this->product(array('name' => 'WordPress Hosting', 'servertype' => 'cpanel', 'fields' => array())),
            array(),
            array('status' => 'Active', 'domain' => 'addon-e2e.example')
        );
        $fields = array('Local User', 'jetpack_provisioning_details|Jetpack Provisioning Details');
        $definition = function ($plan) use ($fields) {
            return $this->addonDefinition(array(
                'name' => 'Jetpack ' . ucfirst($plan),
                'client_id' => 'demo-client',
                'secret' => 'demo-secret',
                'settings' => array('configoption3' => $plan),
                'fields' => $fields,
            ));
        };
        $personal = $definition('personal');
        $premium = $definition('premium');
        $addon = $this->addon($personal, $hosting, array('Local User' => 'admin'));

        $this->assertSame('success', Whmcs::addonModuleCall('CreateAccount', $addon));
        $this->runWorker();

        $link = 'https://jetpack.wordpress.com/jetpack.authorize/1/?site=addon-e2e.example';
        $this->assertSame(array('URL to Activate Jetpack: ' . $link), array_values($this->addonDetailsRows($addon)));
        $this->assertSame('Active', $this->addonStatus($addon));
        $this->assertSame('personal', $this->processes->sandboxPlans()['addon-e2e.example']['slug'] ?? null);
        $this->assertSame(0, (int) $this->scalar(
            'SELECT COUNT(*) FROM mod_jetpack_jobs WHERE service_id = ? AND addon_id = 0',
            array($hosting)
        ), 'the parent service has no job of its own');

        // The upgrade order is paid: WHMCS moves the addon and its values, then ChangePackage.
        $this->exec(
            "UPDATE tblcustomfieldsvalues v JOIN tblcustomfields f ON f.id = v.fieldid
             JOIN tblcustomfields t ON t.type = 'addon' AND t.relid = ? AND t.fieldname = f.fieldname
             SET v.fieldid = t.id WHERE v.relid = ? AND f.type = 'addon'",
            array($premium, $addon)
        );
        $this->exec('UPDATE tblhostingaddons SET addonid = ? WHERE id = ?', array($premium, $addon));
        $this->assertSame('success', jetpack_ChangePackage(Whmcs::addonParams($addon)));
        $this->runWorker();

        $this->assertSame('premium', $this->processes->sandboxPlans()['addon-e2e.example']['slug'] ?? null);
        $details = array_values($this->addonDetailsRows($addon));
        $this->assertCount(1, $details);
        $this->assertStringStartsWith('The Jetpack plan for addon-e2e.example is now premium (it was personal).', $details[0]);
        $this->assertSame('premium', $this->scalar(
            'SELECT plan FROM mod_jetpack_ledger WHERE service_id = ? AND addon_id = ?',
            array($hosting, $addon)
        ));
    }

    public function testAPermanentFailureGoesToTheModuleQueueAndRetryProvisions(): void
    {
        $migrate = $this->processes->worker($this->database, array('migrate'));
        $this->assertSame(0, $migrate['exit'], $migrate['stderr']);
        // The sandbox refuses the Local User `nobody` with HTTP 400 invalid_local_user.
        $service = $this->service($this->product(), $this->validValues('fail-site.example', 'nobody', 'personal'));

        $this->assertSame('success', Whmcs::moduleCall('CreateAccount', $service));
        $this->runWorker();

        $failure = 'JETPACK MODULE: Service ID: ' . $service . ' - could not provision the Jetpack plan: ';
        $this->assertStringStartsWith($failure, $this->details($service));
        $this->assertSame('Pending', $this->status($service), 'as WHMCS leaves a failed Create');
        $jobs = $this->jobs($service);
        $this->assertSame(array('failed'), array_column($jobs, 'state'));
        $this->assertStringStartsWith($failure, $jobs[0]->last_error);
        $activity = $this->workerActivity($service);
        $this->assertCount(1, $activity);
        $this->assertStringStartsWith($failure, $activity[0]->description);
        $this->assertSame('System', $activity[0]->user);
        $queue = $this->select('SELECT * FROM tblmodulequeue');
        $this->assertCount(1, $queue);
        $this->assertSame('service', $queue[0]->service_type);
        $this->assertEquals($service, $queue[0]->service_id);
        $this->assertSame('jetpack', $queue[0]->module_name);
        $this->assertSame('CreateAccount', $queue[0]->module_action);
        $this->assertEquals(0, $queue[0]->completed);
        $this->assertStringStartsWith($failure, $queue[0]->last_attempt_error);
        // The admin tab shows the failure.
        $tab = jetpack_AdminServicesTabFields(Whmcs::params($service));
        $this->assertStringContainsString('provision: failed', $tab['Jetpack Job']);
        $this->assertStringContainsString('could not provision the Jetpack plan', $tab['Jetpack Last Error']);

        // The admin fixes the order, then Utilities → Module Queue → Retry.
        $this->updateValue($service, 'Local User', 'admin');
        $this->assertSame('success', Whmcs::retry((int) $queue[0]->id));
        $this->assertSame('Active', $this->status($service));
        $this->assertEquals(1, $this->scalar('SELECT completed FROM tblmodulequeue WHERE id = ?', array($queue[0]->id)));
        $this->assertSame(Messages::queued('provision'), $this->details($service));
        $this->assertSame(array('failed'), array_column($this->jobs($service), 'state'), 'until the worker applies the request');
        $this->assertNull($this->requests($service)[1]->applied_at);

        $this->runWorker();

        $this->assertSame(
            'URL to Activate Jetpack: https://jetpack.wordpress.com/jetpack.authorize/1/?site=fail-site.example',
            $this->details($service)
        );
        $this->assertSame('Active', $this->status($service));
        // The retry's request names the job that provisioned (a fresh one, or the failed one
        // requeued: the worker's choice); nothing is left unfinished.
        $retried = $this->appliedRequests($service)[1];
        $this->assertSame('done', $this->scalar('SELECT state FROM mod_jetpack_jobs WHERE id = ?', array($retried->job_id)));
        $jobs = $this->jobs($service);
        $this->assertSame('done', end($jobs)->state);
        $this->assertSame(0, (int) $this->scalar(
            "SELECT COUNT(*) FROM mod_jetpack_jobs WHERE service_id = ? AND state NOT IN ('done', 'failed', 'cancelled')",
            array($service)
        ));
        $this->assertSame(0, (int) $this->scalar('SELECT COUNT(*) FROM tblmodulequeue WHERE completed = 0'));
        $this->assertStringStartsWith(
            'JETPACK MODULE: Service ID: ' . $service . ' - ',
            $this->workerActivity($service)[1]->description
        );
        $calls = $this->processes->sandboxCalls()['sites']['fail-site.example'];
        $this->assertSame(2, $calls['provision'], json_encode($calls));
    }

    public function testTheAdminButtonRequeuesAFailedJobForTheWorker(): void
    {
        $migrate = $this->processes->worker($this->database, array('migrate'));
        $this->assertSame(0, $migrate['exit'], $migrate['stderr']);
        $service = $this->service($this->product(), $this->validValues('button-site.example', 'nobody', 'premium'));
        $this->assertSame('success', Whmcs::moduleCall('CreateAccount', $service));
        $this->runWorker();
        $this->assertSame(array('failed'), array_column($this->jobs($service), 'state'));

        $this->updateValue($service, 'Local User', 'admin');
        $this->assertSame('success', Whmcs::customButton('Requeue', $service));
        $this->assertSame(array('provision', 'retry'), array_column($this->requests($service), 'action'));
        $this->runWorker();

        $jobs = $this->jobs($service);
        $this->assertSame(array('done'), array_column($jobs, 'state'), 'the same job, requeued');
        $retry = $this->appliedRequests($service)[1];
        $this->assertEquals($jobs[0]->id, $retry->job_id);
        $this->assertStringContainsString(
            '#' . $retry->id . ' retry requested by admin',
            jetpack_AdminServicesTabFields(Whmcs::params($service))['Jetpack Last Request']
        );
        $this->assertStringStartsWith('URL to Activate Jetpack: ', $this->details($service));
        $this->assertSame('Active', $this->status($service));
        $this->assertSame(0, (int) $this->scalar('SELECT COUNT(*) FROM tblmodulequeue WHERE completed = 0'), 'resolved by the worker');
    }
}
