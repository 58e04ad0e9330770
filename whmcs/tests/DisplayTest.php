<?php

namespace JetpackTests;

use JetpackTests\Support\DatabaseTestCase;
use JetpackTests\Support\Whmcs;
use WHMCS\Module\Server\Jetpack\Messages;

/**
 * What admins see on the service's tab (jetpack_AdminServicesTabFields) and what clients see
 * on the service's overview (jetpack_ClientArea + templates/clientarea.tpl).
 */
final class DisplayTest extends DatabaseTestCase
{
    public function testAdminTabWithoutAJob(): void
    {
        $service = $this->service($this->product());

        $fields = jetpack_AdminServicesTabFields(Whmcs::params($service));

        $this->assertSame(array('Jetpack Job' => 'none yet: Create queues the provisioning for jetpack-worker'), $fields);
    }

    public function testAdminTabShowsAQueuedJob(): void
    {
        $service = $this->service($this->product());
        jetpack_CreateAccount(Whmcs::params($service));
        $job = $this->jobs($service)[0];

        $fields = jetpack_AdminServicesTabFields(Whmcs::params($service));

        $this->assertSame('#' . $job->id . ' provision: queued (requested by module)', $fields['Jetpack Job']);
        $this->assertSame("0 (budget: the worker&#039;s JETPACK_MAX_ATTEMPTS)", $fields['Jetpack Attempts']);
        $this->assertSame(substr($job->run_at, 0, 19) . ' UTC (due now)', $fields['Jetpack Next Attempt']);
        $this->assertSame('—', $fields['Jetpack Last Error']);
        $this->assertArrayNotHasKey('Jetpack Result', $fields);
    }

    public function testAdminTabShowsAFailedJobWithItsErrorEscaped(): void
    {
        $service = $this->service($this->product());
        $this->exec(
            "INSERT INTO mod_jetpack_jobs (service_id, action, state, attempts, max_attempts, run_at, last_error,
                 requested_by, created_at, updated_at, finished_at)
             VALUES (?, 'provision', 'failed', 8, 8, UTC_TIMESTAMP(6), ?, 'adopt', UTC_TIMESTAMP(6),
                 UTC_TIMESTAMP(6), '2026-11-20 10:11:12.123456')",
            array($service, 'JETPACK MODULE: Service ID: 1 - could not provision the Jetpack plan: <b>bad</b> & "worse"')
        );

        $fields = jetpack_AdminServicesTabFields(Whmcs::params($service));

        $this->assertStringContainsString('provision: failed (fix the cause, then use &quot;Retry Jetpack Job&quot;', $fields['Jetpack Job']);
        $this->assertStringContainsString('(requested by adopt)', $fields['Jetpack Job']);
        $this->assertSame('8 of 8', $fields['Jetpack Attempts']);
        $this->assertSame('none (finished 2026-11-20 10:11:12 UTC)', $fields['Jetpack Next Attempt']);
        $this->assertSame(
            'JETPACK MODULE: Service ID: 1 - could not provision the Jetpack plan: &lt;b&gt;bad&lt;/b&gt; &amp; &quot;worse&quot;',
            $fields['Jetpack Last Error']
        );
    }

    public function testAdminTabShowsAPlanWaitingOnDns(): void
    {
        $service = $this->service($this->product(), null, array('status' => 'Active'));
        $this->exec(
            "INSERT INTO mod_jetpack_jobs (service_id, action, state, attempts, dns_checks, run_at, waiting_since,
                 requested_by, created_at, updated_at)
             VALUES (?, 'provision', 'waiting_dns', 1, 4, UTC_TIMESTAMP(6) + INTERVAL 7230 SECOND, UTC_TIMESTAMP(6),
                 'module', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
            array($service)
        );

        $fields = jetpack_AdminServicesTabFields(Whmcs::params($service));

        $this->assertStringContainsString('provision: waiting for the domain to resolve', $fields['Jetpack Job']);
        $this->assertStringEndsWith('; DNS re-checks: 4', $fields['Jetpack Attempts']);
        $this->assertMatchesRegularExpression('/^next DNS check \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(in 2 h 0 min\)$/', $fields['Jetpack Next Attempt']);
    }

    public function testAdminTabShowsARunningJobAndItsFollowUp(): void
    {
        $service = $this->service($this->product());
        jetpack_CreateAccount(Whmcs::params($service));
        $this->exec(
            "UPDATE mod_jetpack_jobs SET state = 'running', attempts = 1,
                 lease_expires_at = '2026-11-24 10:00:00.5', lease_token = 'b:1' WHERE service_id = ?",
            array($service)
        );
        jetpack_TerminateAccount(Whmcs::params($service));

        $fields = jetpack_AdminServicesTabFields(Whmcs::params($service));

        $this->assertStringEndsWith('provision: running (requested by module); then terminate', $fields['Jetpack Job']);
        $this->assertSame('running now (lease until 2026-11-24 10:00:00 UTC)', $fields['Jetpack Next Attempt']);
    }

    public function testAdminTabShowsTheResultOfADoneJob(): void
    {
        $service = $this->service($this->product(), null, array('status' => 'Active'));
        $this->exec(
            "INSERT INTO mod_jetpack_jobs (service_id, action, state, attempts, run_at, result, requested_by,
                 created_at, updated_at, finished_at)
             VALUES (?, 'provision', 'done', 1, UTC_TIMESTAMP(6), 'URL to Activate Jetpack: https://jetpack.example/a?b=1&c=2',
                 'module', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
            array($service)
        );

        $fields = jetpack_AdminServicesTabFields(Whmcs::params($service));

        $this->assertSame('URL to Activate Jetpack: https://jetpack.example/a?b=1&amp;c=2', $fields['Jetpack Result']);
    }

    public function testAdminTabSaysWhenTheWorkerTablesAreMissing(): void
    {
        $service = $this->service($this->product());
        $this->exec('DROP TABLE mod_jetpack_jobs');

        $fields = jetpack_AdminServicesTabFields(Whmcs::params($service));

        $this->assertStringContainsString('`jetpack-worker migrate`', $fields['Jetpack Job']);
    }

    public function clientViews(): array
    {
        $link = 'https://jetpack.wordpress.com/jetpack.authorize/1/?site=example.com';
        $waitingDns = 'The domain example.com did not resolve when provisioning was attempted, however a Jetpack plan is waiting for it.';
        return array(
            'activation link' => array('URL to Activate Jetpack: ' . $link, $link, null),
            'queued' => array(Messages::PROVISION_QUEUED, '', Messages::PROVISION_QUEUED),
            'waiting on DNS' => array($waitingDns, '', $waitingDns),
            'an error for admins' => array('JETPACK MODULE: Service ID: 1 - could not provision the Jetpack plan: x', '', Messages::CLIENT_WAITING),
            'nothing yet' => array(null, '', Messages::CLIENT_WAITING),
            'a link that is not a web address' => array('URL to Activate Jetpack: javascript:alert(1)', '', Messages::CLIENT_WAITING),
        );
    }

    /**
     * @dataProvider clientViews
     */
    public function testClientAreaShowsTheLinkOrAWaitingMessage(?string $details, string $link, ?string $message): void
    {
        $service = $this->service($this->product());
        if ($details !== null) {
            $this->setValue($service, 'jetpack_provisioning_details', $details);
        }

        $view = jetpack_ClientArea(Whmcs::params($service));

        $this->assertSame('templates/clientarea.tpl', $view['tabOverviewModuleOutputTemplate']);
        $this->assertFileExists(JETPACK_MODULE_DIR . '/' . $view['tabOverviewModuleOutputTemplate']);
        $this->assertSame($link, $view['templateVariables']['jetpackActivationUrl']);
        if ($message !== null) {
            $this->assertSame($message, $view['templateVariables']['jetpackMessage']);
        }
    }

    public function testClientAreaReadsThisServicesDetailsOnly(): void
    {
        $product = $this->product();
        $mine = $this->service($product);
        $other = $this->service($product);
        $this->setValue($other, 'jetpack_provisioning_details', 'URL to Activate Jetpack: https://other.example/');

        $view = jetpack_ClientArea(Whmcs::params($mine));

        $this->assertSame('', $view['templateVariables']['jetpackActivationUrl']);
    }

    public function testClientAreaTemplateEscapesWhatItPrints(): void
    {
        $template = file_get_contents(JETPACK_MODULE_DIR . '/templates/clientarea.tpl');

        $this->assertMatchesRegularExpression('/\{\$jetpackActivationUrl\|escape:\'html\'\}/', $template);
        $this->assertMatchesRegularExpression('/\{\$jetpackMessage\|escape:\'html\'\}/', $template);
        $this->assertDoesNotMatchRegularExpression('/\{\$jetpack\w+\}/', $template, 'no unescaped variable');
    }
}
