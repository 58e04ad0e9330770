<?php

namespace JetpackTests;

use JetpackTests\Support\DatabaseTestCase;
use JetpackTests\Support\LicenceSeed;
use JetpackTests\Support\Whmcs;
use WHMCS\Module\Server\Jetpack\LicenceView;

/**
 * What admins see of a licence on the service's (or addon's) tab: its key, product, issue and
 * revoke times; for an `unknown` licence what happened and the two ways out, **Record the key**
 * and **Issue another licence** (submit buttons of WHMCS's service form: WHMCS saves the page
 * and calls jetpack_AdminServicesTabFieldsSave with the form in $_POST), each recording a
 * request for jetpack-worker, a bad key refused without recording anything.
 */
final class LicenceAdminTest extends DatabaseTestCase
{
    use LicenceSeed;

    protected function setUp(): void
    {
        parent::setUp();
        $_SESSION = array();
        $_POST = array();
    }

    protected function tearDown(): void
    {
        $_SESSION = array();
        $_POST = array();
        parent::tearDown();
    }

    /**
     * WHMCS's Save Changes on the service's page with the tab's inputs as posted.
     *
     * @return string what the module answered
     */
    private function save(array $params, array $post)
    {
        $_POST = $post + array('customfield' => array(), 'domain' => 'example.com');
        return jetpack_AdminServicesTabFieldsSave($params);
    }

    public function testTheTabShowsEachLicenceWithItsKeyProductAndTimes(): void
    {
        $service = $this->service($this->licenceProduct(), array('Site URL' => 'shop.example'));
        $this->licence($service, array('state' => 'revoked', 'license_key' => 'jetpack-backup-daily_OLD',
            'issued_at' => '2026-11-01 09:00:00', 'revoked_at' => '2026-12-01 10:30:00'));
        $this->licence($service, array('state' => 'attached', 'license_key' => 'jetpack-backup-daily_<b>NEW</b>',
            'issued_at' => '2026-12-01 10:29:00', 'attached_site' => 'https://shop.example/', 'attached_at' => '2026-12-01 10:29:05'));

        $fields = jetpack_AdminServicesTabFields(Whmcs::params($service));

        $this->assertArrayHasKey('Jetpack Licences', $fields);
        $lines = explode('<br />', $fields['Jetpack Licences']);
        $this->assertStringContainsString('jetpack-backup-daily, attached: key jetpack-backup-daily_&lt;b&gt;NEW&lt;/b&gt;; '
            . 'issued 2026-12-01 10:29:00 UTC; attached to https://shop.example/ at 2026-12-01 10:29:05 UTC; revoked —', $lines[0]);
        $this->assertStringContainsString('jetpack-backup-daily, revoked: key jetpack-backup-daily_OLD; issued 2026-11-01 09:00:00 UTC; '
            . 'revoked 2026-12-01 10:30:00 UTC', $lines[1]);
        $this->assertStringNotContainsString('<button', $fields['Jetpack Licences'], 'nothing waits for a decision');
    }

    public function testAPlanServiceHasNoLicenceField(): void
    {
        $service = $this->service($this->product());

        $this->assertArrayNotHasKey('Jetpack Licences', jetpack_AdminServicesTabFields(Whmcs::params($service)));
    }

    public function testALicenceRevokedOutsideWhmcsSaysSo(): void
    {
        $service = $this->service($this->licenceProduct(), array('Site URL' => 'shop.example'));
        $this->licence($service, array('state' => 'revoked', 'revoked_at' => '2026-12-02 08:00:00', 'revoked_outside' => 1));

        $field = jetpack_AdminServicesTabFields(Whmcs::params($service))['Jetpack Licences'];

        $this->assertStringContainsString('revoked 2026-12-02 08:00:00 UTC (outside WHMCS: the reconciler found it revoked)', $field);
    }

    public function testAnUnknownLicenceOffersRecordTheKeyAndIssueAnotherLicence(): void
    {
        $service = $this->service($this->licenceProduct(), array('Site URL' => 'shop.example'));
        $this->unknownLicence($service, array('issue_started_at' => '2026-12-07 14:02:11.123456'));

        $field = jetpack_AdminServicesTabFields(Whmcs::params($service))['Jetpack Licences'];

        $this->assertStringContainsString('A licence for jetpack-backup-daily may have been issued at 2026-12-07 14:02:11 UTC '
            . 'and its answer was lost.', $field);
        $this->assertStringContainsString('<input type="text" name="jetpack_licence_key" maxlength="191"', $field);
        $this->assertMatchesRegularExpression('~<button type="submit" name="jetpack_licence_action" value="record"[^>]*>Record the key</button>~', $field);
        $this->assertMatchesRegularExpression('~<button type="submit" name="jetpack_licence_action" value="reissue"[^>]*'
            . 'onclick="return confirm\(&quot;Issue another Jetpack licence\? The Licensing API bills it as one more licence\.[^"]*&quot;\);"'
            . '>Issue another licence</button>~', $field);
    }

    public function testRecordTheKeyRecordsALicenceRecordRequestWithTheKey(): void
    {
        $service = $this->service($this->licenceProduct(), array('Site URL' => 'shop.example'));
        $this->unknownLicence($service);

        $result = $this->save(Whmcs::params($service), array(
            'jetpack_licence_action' => 'record', 'jetpack_licence_key' => "  jetpack-backup-daily_Zx81Qw\n",
        ));

        $this->assertSame('success', $result);
        $requests = $this->licenceRequests($service);
        $this->assertCount(1, $requests);
        $this->assertSame('licence_record', $requests[0]->action);
        $this->assertSame('admin', $requests[0]->requested_by);
        $this->assertSame('jetpack-backup-daily_Zx81Qw', $requests[0]->detail, 'trimmed');
        $this->assertSame(0, (int) $requests[0]->addon_id);
        $this->assertSame(array('JETPACK MODULE: Service ID: ' . $service . ' - licence_record requested for jetpack-worker (request #'
            . $requests[0]->id . ')'), $this->loggedActivity());
    }

    public function testIssueAnotherLicenceRecordsALicenceReissueRequest(): void
    {
        $service = $this->service($this->licenceProduct(), array('Site URL' => 'shop.example'));
        $this->unknownLicence($service);

        $result = $this->save(Whmcs::params($service), array('jetpack_licence_action' => 'reissue', 'jetpack_licence_key' => 'ignored'));

        $this->assertSame('success', $result);
        $requests = $this->licenceRequests($service);
        $this->assertCount(1, $requests);
        $this->assertSame('licence_reissue', $requests[0]->action);
        $this->assertSame('admin', $requests[0]->requested_by);
        $this->assertNull($requests[0]->detail);
    }

    public function badKeys(): array
    {
        $long = 'jetpack-backup-daily_' . str_repeat('x', 171);
        return array(
            'empty' => array('   ', 'enter the licence key you found in the partner portal'),
            'another product' => array('jetpack-scan_Ab12', "the licence key 'jetpack-scan_Ab12' does not start with jetpack-backup-daily"),
            'the slug alone' => array('jetpack-backup-daily', 'does not start with jetpack-backup-daily'),
            'a space inside' => array('jetpack-backup-daily_Ab 12', 'contains spaces, line breaks or control characters'),
            'a line break inside' => array("jetpack-backup-daily_Ab\n12", 'contains spaces, line breaks or control characters'),
            'a tab inside' => array("jetpack-backup-daily_Ab\t12", 'contains spaces, line breaks or control characters'),
            'too long' => array($long, 'the licence key is longer than 191 characters'),
            'not UTF-8' => array("jetpack-backup-daily_\xff", 'not valid UTF-8'),
            'markup' => array('<b>jetpack-backup-daily_x</b>', "the licence key '&lt;b&gt;jetpack-backup-daily_x&lt;/b&gt;' does not start"),
        );
    }

    /**
     * @dataProvider badKeys
     */
    public function testABadKeyIsRefusedWithWhatToFixAndNothingIsRecorded(string $key, string $said): void
    {
        $service = $this->service($this->licenceProduct(), array('Site URL' => 'shop.example'));
        $this->unknownLicence($service);

        $result = $this->save(Whmcs::params($service), array('jetpack_licence_action' => 'record', 'jetpack_licence_key' => $key));

        $this->assertStringStartsWith('JETPACK MODULE: Service ID: ' . $service . ' - ', $result);
        $this->assertStringContainsString($said, $result);
        $this->assertCount(0, $this->licenceRequests($service), 'nothing recorded');
        $this->assertSame(array(), $this->loggedActivity());
        $field = jetpack_AdminServicesTabFields(Whmcs::params($service))['Jetpack Licences'];
        $this->assertStringContainsString('<strong>' . $result . '</strong>', $field, 'the next tab says why');
        $this->assertStringNotContainsString('<strong>', jetpack_AdminServicesTabFields(Whmcs::params($service))['Jetpack Licences'],
            'once');
    }

    public function testAKeyAnotherLicenceHoldsIsRefused(): void
    {
        $product = $this->licenceProduct();
        $other = $this->service($product, array('Site URL' => 'other.example'));
        $this->licence($other, array('license_key' => 'jetpack-backup-daily_TAKEN'));
        $service = $this->service($product, array('Site URL' => 'shop.example'));
        $this->unknownLicence($service);

        $result = $this->save(Whmcs::params($service), array('jetpack_licence_action' => 'record', 'jetpack_licence_key' => 'jetpack-backup-daily_TAKEN'));

        $this->assertSame('JETPACK MODULE: Service ID: ' . $service . " - the licence key 'jetpack-backup-daily_TAKEN' is already "
            . 'recorded for Service ID: ' . $other . "; find the key of this service's licence in the partner portal", $result);
        $this->assertCount(0, $this->licenceRequests($service));
    }

    public function testWithoutAnUnknownLicenceNeitherButtonRecordsAnything(): void
    {
        $service = $this->service($this->licenceProduct(), array('Site URL' => 'shop.example'));
        $this->licence($service);

        $record = $this->save(Whmcs::params($service), array('jetpack_licence_action' => 'record', 'jetpack_licence_key' => 'jetpack-backup-daily_X'));
        $reissue = $this->save(Whmcs::params($service), array('jetpack_licence_action' => 'reissue'));

        $expected = 'JETPACK MODULE: Service ID: ' . $service . " - no licence of this service is waiting for an admin's decision; nothing was recorded";
        $this->assertSame($expected, $record);
        $this->assertSame($expected, $reissue);
        $this->assertCount(0, $this->licenceRequests($service));
    }

    public function testAPlainSaveRecordsNothing(): void
    {
        $service = $this->service($this->licenceProduct(), array('Site URL' => 'shop.example'));
        $this->unknownLicence($service);

        $this->assertSame('success', $this->save(Whmcs::params($service), array('jetpack_licence_key' => 'jetpack-backup-daily_X')));
        $this->assertSame('success', $this->save(Whmcs::params($service), array('jetpack_licence_action' => 'revoke')));

        $this->assertCount(0, $this->licenceRequests($service));
    }

    public function testAnAddonsButtonsRecordForTheAddon(): void
    {
        $hosting = $this->product(array('name' => 'Hosting', 'servertype' => 'cpanel', 'fields' => array()));
        $service = $this->service($hosting, array(), array('status' => 'Active', 'domain' => 'hosted.example'));
        $definition = $this->addonDefinition(array('client_id' => '', 'secret' => '', 'fields' => array('jetpack_provisioning_details'),
            'settings' => array('configoption9' => 'licence', 'configoption10' => 't', 'configoption11' => 'jetpack-scan')));
        $addon = $this->addon($definition, $service, array());
        $this->unknownLicence($service, array('addon_id' => $addon, 'product' => 'jetpack-scan'));

        $this->assertStringContainsString('Record the key', jetpack_AdminServicesTabFields(Whmcs::addonParams($addon))['Jetpack Licences']);
        $this->assertArrayNotHasKey('Jetpack Licences', jetpack_AdminServicesTabFields(Whmcs::params($service)));
        $result = $this->save(Whmcs::addonParams($addon), array('jetpack_licence_action' => 'record', 'jetpack_licence_key' => 'jetpack-scan_K9'));

        $this->assertSame('success', $result);
        $requests = $this->licenceRequests($service);
        $this->assertCount(1, $requests);
        $this->assertSame($addon, (int) $requests[0]->addon_id);
        $this->assertSame('jetpack-scan_K9', $requests[0]->detail);
    }

    public function testTheTabQueriesOfLicencesUseTheTargetIndex(): void
    {
        $service = $this->service($this->licenceProduct(), array('Site URL' => 'shop.example'));
        $this->unknownLicence($service);
        $this->capsule->getConnection()->enableQueryLog();

        jetpack_AdminServicesTabFields(Whmcs::params($service));
        $this->save(Whmcs::params($service), array('jetpack_licence_action' => 'record', 'jetpack_licence_key' => 'jetpack-backup-daily_Q'));

        $queries = array_filter($this->capsule->getConnection()->getQueryLog(), function ($q) {
            return strpos($q['query'], 'mod_jetpack_licences') !== false;
        });
        $this->capsule->getConnection()->disableQueryLog();
        $this->assertGreaterThanOrEqual(3, count($queries));
        foreach ($queries as $q) {
            $plan = $this->select('EXPLAIN ' . $q['query'], $q['bindings']);
            // A key no row holds: the UNIQUE license_key lookup finds nothing before any read.
            $unique = strpos((string) $plan[0]->Extra, 'Impossible WHERE noticed after reading const tables') !== false;
            $this->assertTrue($unique || in_array($plan[0]->key, array('target', 'license_key'), true), $q['query']);
        }
        $this->assertSame(LicenceView::FIELD, 'Jetpack Licences');
    }
}
