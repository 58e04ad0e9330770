<?php

namespace JetpackTests;

use JetpackTests\Support\DatabaseTestCase;
use JetpackTests\Support\Processes;
use JetpackTests\Support\Whmcs;
use WHMCS\Module\Server\Jetpack\Messages;
use WHMCS\Module\Server\Jetpack\Outcome;

/**
 * An admin's "Save Changes" never undoes the worker. WHMCS's admin service page shows every
 * custom field, Admin Only ones included, and posts them all back on save (Support\Whmcs
 * saveAdminServicePage: the Pre hooks, every field written as posted, then AdminServiceEdit and
 * ServiceEdit): a page loaded while the details said "queued" and saved after the worker wrote
 * the activation link must end with the link, at once. lib/Outcome.php puts it back.
 */
final class AdminSaveTest extends DatabaseTestCase
{
    /** @var Processes|null */
    private $processes;

    protected function tearDown(): void
    {
        if ($this->processes !== null) {
            $this->processes->stopSandbox();
        }
        parent::tearDown();
    }

    private function runWorker()
    {
        $run = $this->processes->worker($this->database, array('run', '--once'));
        $this->assertSame(0, $run['exit'], "jetpack-worker run --once failed:\n" . $run['stderr']);
    }

    /**
     * The whole story with the real worker: Create (the page reloads showing "queued"), the
     * worker provisions, the admin edits another field on that page and saves.
     */
    public function testSavingAPageLoadedBeforeTheWorkerFinishedKeepsTheActivationLink(): void
    {
        $this->processes = new Processes();
        $this->processes->startSandbox();
        $migrate = $this->processes->worker($this->database, array('migrate'));
        $this->assertSame(0, $migrate['exit'], $migrate['stderr']);
        $service = $this->service($this->product(), $this->validValues('https://saved.example/', 'admin', 'Premium'));
        $this->assertSame('success', Whmcs::moduleCall('CreateAccount', $service));
        $page = Whmcs::adminServicePage($service);
        $this->assertContains(Messages::queued('provision'), $page, 'the page shows "queued"');

        $this->runWorker();
        $link = 'URL to Activate Jetpack: https://jetpack.wordpress.com/jetpack.authorize/1/?site=saved.example';
        $this->assertSame($link, $this->details($service));

        $page[$this->fieldId($service, 'Local User')] = 'editor';
        Whmcs::saveAdminServicePage($service, $page);

        $this->assertSame($link, $this->details($service), 'the link survives the save');
        $this->assertSame('editor', $this->valueOf($service, 'Local User'), 'the admin\'s edit is kept');
        $this->assertCount(1, $this->detailsRows($service));
        $job = (int) $this->jobs($service)[0]->id;
        $this->assertSame(array(Outcome::line($service, 0, $job)), $this->putBackLines());
        $vars = jetpack_ClientArea(Whmcs::params($service))['templateVariables'];
        $this->assertSame('https://jetpack.wordpress.com/jetpack.authorize/1/?site=saved.example', $vars['jetpackActivationUrl']);

        // Saved again with the page as it reads now: nothing to put back.
        Whmcs::saveAdminServicePage($service, Whmcs::adminServicePage($service));
        $this->assertCount(1, $this->putBackLines());
    }

    /**
     * Any text the worker did not write last is put right: an older outcome of the same
     * service (the DNS wait before the link), a text typed in, an emptied field.
     */
    public function testAnyOtherTextASaveLeavesIsPutRightFromTheLatestJob(): void
    {
        $service = $this->service($this->product(), null, array('status' => 'Active'));
        $waiting = 'The domain example.com did not resolve when the plan was provisioned; waiting.';
        $link = 'URL to Activate Jetpack: https://jetpack.wordpress.com/x';
        $this->setValue($service, 'jetpack_provisioning_details', $waiting);
        $page = Whmcs::adminServicePage($service);
        $job = $this->workerJob($service, 0, 'provision', 'done', $link);
        $this->updateValue($service, 'jetpack_provisioning_details', $link);

        foreach (array($waiting, 'typed by hand', '') as $stale) {
            $page[$this->fieldId($service, 'jetpack_provisioning_details')] = $stale;
            Whmcs::saveAdminServicePage($service, $page);
            $this->assertSame($link, $this->details($service), var_export($stale, true));
        }
        $this->assertCount(3, $this->putBackLines());
        $this->assertSame(Outcome::line($service, 0, $job), $this->putBackLines()[0]);
    }

    /**
     * The worker's latest word is the newest job that wrote one: a later job that finished
     * without writing (a suspend that kept the plan) leaves the link as the text to keep.
     */
    public function testAJobThatWroteNothingLeavesTheEarlierTextAsTheWorkersWord(): void
    {
        $service = $this->service($this->product(), null, array('status' => 'Active'));
        $link = 'URL to Activate Jetpack: https://jetpack.wordpress.com/y';
        $this->setValue($service, 'jetpack_provisioning_details', Messages::queued('provision'));
        $page = Whmcs::adminServicePage($service);
        $this->workerJob($service, 0, 'provision', 'done', $link);
        $this->workerJob($service, 0, 'suspend', 'done', null);
        $this->updateValue($service, 'jetpack_provisioning_details', $link);

        Whmcs::saveAdminServicePage($service, $page);

        $this->assertSame($link, $this->details($service));
    }

    /**
     * While the worker has not spoken since the latest request, the module's "queued" text is
     * the right one and a save changes nothing: a request not applied yet, a new job that has
     * not run, a job with another action waiting behind it, a failure the worker could not
     * write (the database refused the outcome).
     */
    public function testNothingIsPutBackWhileTheWorkerHasNotSpokenYet(): void
    {
        $product = $this->product();
        $link = 'URL to Activate Jetpack: https://jetpack.wordpress.com/z';
        $queued = Messages::queued('terminate');
        $cases = array();
        $pending = $this->service($product, null, array('status' => 'Active'));
        $this->workerJob($pending, 0, 'provision', 'done', $link);
        $this->request($pending, 'terminate', 'module');
        $cases['a request not applied yet'] = $pending;
        $newJob = $this->service($product, null, array('status' => 'Active'));
        $this->workerJob($newJob, 0, 'provision', 'done', $link);
        $this->workerJob($newJob, 0, 'terminate', 'queued', null);
        $cases['a new job not run yet'] = $newJob;
        $behind = $this->service($product, null, array('status' => 'Active'));
        $running = $this->workerJob($behind, 0, 'provision', 'running', null);
        $this->exec("UPDATE mod_jetpack_jobs SET follow_up = 'terminate' WHERE id = ?", array($running));
        $cases['an action waiting behind the job'] = $behind;
        $unwritten = $this->service($product, null, array('status' => 'Active'));
        $this->workerJob($unwritten, 0, 'provision', 'done', $link);
        $this->workerJob($unwritten, 0, 'terminate', 'failed', null);
        $cases['a failure whose outcome could not be written'] = $unwritten;
        foreach ($cases as $case => $service) {
            $this->setValue($service, 'jetpack_provisioning_details', $queued);
            Whmcs::saveAdminServicePage($service, Whmcs::adminServicePage($service));
            $this->assertSame($queued, $this->details($service), $case);
        }
        $this->assertSame(array(), $this->putBackLines());
    }

    /**
     * An addon's page posts the addon's own fields back; AddonEdit (or the status hook the save
     * fires instead) puts the addon's link back, and never touches the parent's details.
     */
    public function testAnAddonsSaveKeepsTheAddonsLink(): void
    {
        $service = $this->service($this->product(), null, array('status' => 'Active'));
        $this->setValue($service, 'jetpack_provisioning_details', 'the service\'s own text');
        $addon = $this->addon($this->addonDefinition(), $service, null, array('status' => 'Active'));
        $link = 'URL to Activate Jetpack: https://jetpack.wordpress.com/addon';
        $this->setAddonValue($addon, 'jetpack_provisioning_details', Messages::queued('provision'));
        $page = Whmcs::adminAddonPage($addon);
        $this->workerJob($service, $addon, 'provision', 'done', $link);
        $this->exec('UPDATE tblcustomfieldsvalues SET value = ? WHERE fieldid = ? AND relid = ?', array(
            $link, $this->addonFieldId($addon, 'jetpack_provisioning_details'), $addon,
        ));

        foreach (array('AddonEdit', 'AddonSuspended') as $hook) {
            Whmcs::saveAdminAddonPage($addon, $page, $hook);
            $this->assertSame(array($link), array_values($this->addonDetailsRows($addon)), $hook);
        }
        $this->assertSame('the service\'s own text', $this->details($service));
        $this->assertCount(2, $this->putBackLines());
        $this->assertStringStartsWith('JETPACK MODULE: Addon ID: ' . $addon . ' (Service ID: ' . $service . ') - ', $this->putBackLines()[0]);
    }

    /**
     * A save of another module's service costs a read and does nothing; a module uploaded
     * before `jetpack-worker migrate` added the column has nothing to put back; a database error
     * in the hook never reaches WHMCS (it becomes an activity line).
     */
    public function testOtherServicesAreLeftAloneAndErrorsNeverReachWhmcs(): void
    {
        $other = $this->service($this->product(array('servertype' => 'cpanel')), null, array('status' => 'Active'));
        $this->setValue($other, 'jetpack_provisioning_details', 'theirs');
        Whmcs::saveAdminServicePage($other, Whmcs::adminServicePage($other));
        $this->assertSame('theirs', $this->details($other));
        $this->assertSame(array(), $this->loggedActivity());

        $service = $this->service($this->product(), null, array('status' => 'Active'));
        $this->workerJob($service, 0, 'provision', 'done', 'URL to Activate Jetpack: https://jetpack.wordpress.com/e');
        $this->setValue($service, 'jetpack_provisioning_details', 'stale');
        $page = Whmcs::adminServicePage($service);
        $this->exec('ALTER TABLE mod_jetpack_jobs DROP COLUMN details');
        Whmcs::saveAdminServicePage($service, $page);
        $this->assertSame('stale', $this->details($service));
        $this->assertSame(array(), $this->loggedActivity(), 'not migrated yet: nothing to say');

        $this->exec('ALTER TABLE mod_jetpack_jobs ADD COLUMN details TEXT NULL');
        $this->exec("UPDATE mod_jetpack_jobs SET details = 'x' WHERE service_id = ?", array($service));
        $this->exec('DROP TABLE tblcustomfields');
        Whmcs::saveAdminServicePage($service, array());
        $lines = $this->loggedActivity();
        $this->assertCount(2, $lines, 'one line per hook');
        $this->assertStringStartsWith('JETPACK MODULE: the AdminServiceEdit hook (service ' . $service . ') could not check jetpack_provisioning_details', $lines[0]);
    }

    /**
     * A job as the worker leaves it, with the text its outcome wrote into the details field.
     *
     * @return int mod_jetpack_jobs.id
     */
    private function workerJob($serviceId, $addonId, $action, $state, $details)
    {
        $job = $this->targetJob($serviceId, $addonId, $action, $state);
        $this->exec('UPDATE mod_jetpack_jobs SET details = ? WHERE id = ?', array($details, $job));
        return $job;
    }

    /**
     * @return string the service's value of the field with this key
     */
    private function valueOf($serviceId, $key)
    {
        return (string) $this->scalar(
            'SELECT value FROM tblcustomfieldsvalues WHERE fieldid = ? AND relid = ? ORDER BY id LIMIT 1',
            array($this->fieldId($serviceId, $key), $serviceId)
        );
    }

    /**
     * @return string[] the activity lines saying a text was put back
     */
    private function putBackLines()
    {
        return array_values(array_filter($this->loggedActivity(), function ($line) {
            return strpos($line, 'latest outcome') !== false;
        }));
    }
}
