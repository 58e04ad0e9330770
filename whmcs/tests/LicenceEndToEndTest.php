<?php

namespace JetpackTests;

use JetpackTests\Support\DatabaseTestCase;
use JetpackTests\Support\LicenceSeed;
use JetpackTests\Support\Processes;
use JetpackTests\Support\Templates;
use JetpackTests\Support\Whmcs;
use WHMCS\Module\Server\Jetpack\Catalogue;
use WHMCS\Module\Server\Jetpack\Email;
use WHMCS\Module\Server\Jetpack\Messages;

/**
 * A licence product sold end to end, both languages together: WHMCS calls the module's Create
 * (Support\Whmcs), which records the request; the real `jetpack-worker run --once` issues the
 * licence at the sandbox's Licensing API; the key is then what the client area shows (with
 * the copy button and the site's licence page), what the activation email carries and what
 * the admin tab lists. Terminate revokes it.
 */
final class LicenceEndToEndTest extends DatabaseTestCase
{
    use LicenceSeed;

    /** The sandbox's default token that may neither list nor attach (LicenceToken::defaults). */
    const PLAIN_TOKEN = "sbxlic_plain_/\"\\+%#&= é€_77e0";

    /** @var Processes */
    private $processes;

    protected function setUp(): void
    {
        parent::setUp();
        $this->processes = new Processes();
        $this->processes->startSandbox();
        $migrate = $this->processes->worker($this->database, array('migrate'));
        $this->assertSame(0, $migrate['exit'], $migrate['stderr']);
    }

    protected function tearDown(): void
    {
        $this->processes->stopSandbox();
        parent::tearDown();
    }

    private function runWorker()
    {
        $run = $this->processes->worker($this->database, array('run', '--once'));
        $this->assertSame(0, $run['exit'], "jetpack-worker run --once failed:\n" . $run['stderr']);
        $this->assertStringNotContainsString('sbxlic_plain', $run['stderr'], 'the token is never printed');
        return $run;
    }

    public function testALicenceIsIssuedAndItsKeyReachesTheClientAreaTheEmailAndTheAdminTab(): void
    {
        $product = $this->licenceProduct(array('token' => self::PLAIN_TOKEN, 'slug' => 'jetpack-backup-daily'));
        $service = $this->service($product, array('Site URL' => 'https://licence-e2e.example/'));

        $this->assertSame('success', Whmcs::moduleCall('CreateAccount', $service));
        $this->assertSame('Active', $this->status($service));
        $this->assertSame(Messages::queued('provision', Catalogue::API_LICENCE), $this->details($service));

        $this->runWorker();

        $licences = $this->select('SELECT product, license_key, state FROM mod_jetpack_licences WHERE service_id = ?', array($service));
        $this->assertCount(1, $licences);
        $key = $licences[0]->license_key;
        $this->assertStringStartsWith('jetpack-backup-daily_', $key);
        $this->assertSame('issued', $licences[0]->state);
        $this->assertSame('Jetpack licence key: ' . $key, $this->details($service));
        $this->assertSame('Active', $this->status($service));
        $this->assertSame(array('done'), array_column($this->jobs($service), 'state'));
        $sandbox = $this->processes->sandboxLicences();
        $this->assertCount(1, $sandbox['licences'], 'one licence issued (and billed)');
        $this->assertSame($key, $sandbox['licences'][0]['key']);

        // The client area: the key, the copy button, the site's licence page.
        $view = jetpack_ClientArea(Whmcs::params($service));
        $html = Templates::renderFile($view['tabOverviewModuleOutputTemplate'], $view['templateVariables']);
        $page = 'https://licence-e2e.example/wp-admin/admin.php?page=jetpack#/license/activation';
        $this->assertStringContainsString('value="' . $key . '"', $html);
        $this->assertStringContainsString('id="jetpack-licence-copy"', $html);
        $this->assertStringContainsString('<a href="' . $page . '"', $html);

        // The activation email from WHMCS's cron.
        $GLOBALS['jetpack_test_localapi'] = array();
        $this->assertSame(1, Email::afterCron()['sent']);
        $vars = $GLOBALS['jetpack_test_localapi'][0]['customvars'];
        $this->assertSame($key, $vars['jetpack_licence_key']);
        $this->assertSame($page, $vars['jetpack_licence_url']);

        // The admin tab.
        $tab = jetpack_AdminServicesTabFields(Whmcs::params($service));
        $this->assertStringContainsString('jetpack-backup-daily, issued: key ' . $key . '; issued 20', $tab['Jetpack Licences']);

        // Terminate revokes it.
        $this->assertSame('success', Whmcs::moduleCall('TerminateAccount', $service));
        $this->runWorker();

        $this->assertSame('Terminated', $this->status($service));
        $this->assertSame('revoked', $this->scalar('SELECT state FROM mod_jetpack_licences WHERE service_id = ?', array($service)));
        $this->assertSame('', jetpack_ClientArea(Whmcs::params($service))['templateVariables']['jetpackLicenceKey'],
            'a revoked key is no longer offered');
        $this->assertMatchesRegularExpression('~jetpack-backup-daily, revoked: key ' . preg_quote($key, '~') . '; issued [^;]+; revoked 20~',
            jetpack_AdminServicesTabFields(Whmcs::params($service))['Jetpack Licences']);
        $this->assertCount(1, $this->processes->sandboxLicences()['licences'],
            'still one licence, never a second');
    }
}
