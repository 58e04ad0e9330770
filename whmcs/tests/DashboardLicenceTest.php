<?php

namespace JetpackTests;

use JetpackTests\Support\DashboardSeed;
use JetpackTests\Support\DatabaseTestCase;
use JetpackTests\Support\LicenceSeed;
use WHMCS\Module\Addon\JetpackQueue\Page;

/**
 * The queue dashboard's Jetpack licences (issue 22): licence jobs show their product, the
 * licences in state `unknown` are listed with the same two ways out as the service's tab
 * (Record the key, Issue another licence: requests only, the key's shape checked first), and a
 * job's page shows its target's licences.
 */
final class DashboardLicenceTest extends DatabaseTestCase
{
    use LicenceSeed;

    const LINK = 'addonmodules.php?module=jetpack_queue';
    const TOKEN = 'test-csrf-token';

    /** @var DashboardSeed */
    private $seed;

    protected function setUp(): void
    {
        parent::setUp();
        $GLOBALS['jetpack_test_csrf'] = self::TOKEN;
        $this->seed = new DashboardSeed($this->pdo());
        $this->seed->workersTable();
    }

    private function render(array $get = array(), array $post = array())
    {
        return Page::render(array('modulelink' => self::LINK), $get, $post, count($post) > 0 ? 'POST' : 'GET');
    }

    private function post(array $post)
    {
        return $this->render(array(), $post + array('token' => self::TOKEN));
    }

    /** @return string the HTML of the "Licences waiting for an admin" table's row of a licence */
    private function unknownRow($html, $licence)
    {
        $this->assertSame(1, preg_match('~<tr data-licence="' . $licence . '">(.*?)</tr>~s', $html, $m), "licence $licence listed");
        return $m[1];
    }

    public function testLicenceJobsShowTheirProduct(): void
    {
        $licensed = $this->service($this->licenceProduct(array('slug' => 'jetpack-scan')), array('Site URL' => 'shop.example'));
        $planned = $this->service($this->product());
        $licenceJob = $this->seed->job($licensed, array('state' => 'done'));
        $planJob = $this->seed->job($planned, array('state' => 'done'));
        $this->licence($licensed, array('product' => 'jetpack-scan', 'license_key' => 'jetpack-scan_A', 'job_id' => $licenceJob));

        $html = $this->render();

        $this->assertSame(1, preg_match('~<tr data-job="' . $licenceJob . '">.*?</tr>~s', $html, $row));
        $this->assertStringContainsString('provision <span class="jq-licence">licence jetpack-scan</span>', $row[0]);
        $this->assertSame(1, preg_match('~<tr data-job="' . $planJob . '">.*?</tr>~s', $html, $plan));
        $this->assertStringNotContainsString('jq-licence', $plan[0]);
        $this->assertStringNotContainsString('<option value="issue_licence"', $html, 'the filter offers job actions only');
    }

    public function testUnknownLicencesAreListedWithTheirTwoWaysOut(): void
    {
        $service = $this->service($this->licenceProduct(), array('Site URL' => 'shop.example'));
        $job = $this->seed->job($service, array('state' => 'failed', 'last_error' => 'a licence … may have been issued'));
        $unknown = $this->unknownLicence($service, array('job_id' => $job, 'issue_started_at' => '2026-12-07 14:02:11'));
        $this->licence($this->service($this->licenceProduct(), array('Site URL' => 'b.example')));

        $html = $this->render();

        $row = $this->unknownRow($html, $unknown);
        $this->assertStringContainsString('jetpack-backup-daily', $row);
        $this->assertStringContainsString('2026-12-07 14:02:11 UTC', $row);
        $this->assertStringContainsString('#' . $job . '</a>', $row);
        $this->assertStringContainsString('<input type="hidden" name="jq_action" value="licence_record">', $row);
        $this->assertStringContainsString('<input type="hidden" name="service" value="' . $service . '">', $row);
        $this->assertStringContainsString('name="token" value="' . self::TOKEN . '"', $row);
        $this->assertMatchesRegularExpression('~<input type="text" name="key" required maxlength="191"~', $row);
        $this->assertStringContainsString('>Record the key</button>', $row);
        $this->assertMatchesRegularExpression('~onsubmit="return confirm\(&quot;Issue another Jetpack licence\? The Licensing API '
            . 'bills it as one more licence\.[^"]*&quot;\);"~', $row);
        $this->assertStringContainsString('<input type="hidden" name="jq_action" value="licence_reissue">', $row);
        $this->assertSame(1, preg_match_all('~<tr data-licence=~', $html), 'only the unknown licence');
    }

    public function testNoUnknownLicenceSaysSo(): void
    {
        $this->assertStringContainsString('id="jq-licences-empty"', $this->render());
        $this->exec('DROP TABLE mod_jetpack_licences');
        $this->assertStringContainsString('id="jq-licences-none"', $this->render(), 'an older worker: said, no error');
    }

    public function testRecordTheKeyRecordsALicenceRecordRequestAndShowsItWaiting(): void
    {
        $service = $this->service($this->licenceProduct(), array('Site URL' => 'shop.example'));
        $unknown = $this->unknownLicence($service);

        $html = $this->post(array('jq_action' => 'licence_record', 'service' => (string) $service, 'addon' => '0',
            'key' => ' jetpack-backup-daily_Found1 '));

        $this->assertStringContainsString('alert-success', $html);
        $requests = $this->licenceRequests($service);
        $this->assertCount(1, $requests);
        $this->assertSame('licence_record', $requests[0]->action);
        $this->assertSame('admin', $requests[0]->requested_by);
        $this->assertSame('jetpack-backup-daily_Found1', $requests[0]->detail);
        $row = $this->unknownRow($html, $unknown);
        $this->assertStringContainsString('key jetpack-backup-daily_Found1 recorded at', $row);
        $this->assertStringContainsString('waiting for jetpack-worker', $row);
        $this->assertStringNotContainsString('Record the key', $row, 'no second decision while one waits');
    }

    public function testIssueAnotherLicenceRecordsALicenceReissueRequestForTheAddon(): void
    {
        $hosting = $this->product(array('name' => 'Hosting', 'servertype' => 'cpanel', 'fields' => array()));
        $service = $this->service($hosting, array(), array('status' => 'Active', 'domain' => 'hosted.example'));
        $addon = $this->addon($this->addonDefinition(array('fields' => array('jetpack_provisioning_details'))), $service, array());
        $this->unknownLicence($service, array('addon_id' => $addon, 'product' => 'jetpack-scan'));

        $html = $this->post(array('jq_action' => 'licence_reissue', 'service' => (string) $service, 'addon' => (string) $addon));

        $this->assertStringContainsString('Another licence was requested for addon ' . $addon . ' on service ' . $service, $html);
        $requests = $this->licenceRequests($service);
        $this->assertCount(1, $requests);
        $this->assertSame('licence_reissue', $requests[0]->action);
        $this->assertSame($addon, (int) $requests[0]->addon_id);
        $this->assertNull($requests[0]->detail);
    }

    public function testABadKeyIsRefusedWithWhatToFixAndNothingIsRecorded(): void
    {
        $service = $this->service($this->licenceProduct(), array('Site URL' => 'shop.example'));
        $this->unknownLicence($service);

        $html = $this->post(array('jq_action' => 'licence_record', 'service' => (string) $service, 'addon' => '0',
            'key' => "jetpack-scan_<b>x</b>"));

        $this->assertStringContainsString('alert-danger', $html);
        $this->assertStringContainsString('JETPACK MODULE: Service ID: ' . $service . ' - the licence key &apos;jetpack-scan_&lt;b&gt;x&lt;/b&gt;&apos; '
            . 'does not start with jetpack-backup-daily', $html, 'escaped once');
        $this->assertCount(0, $this->licenceRequests($service));
    }

    public function testWithoutTheTokenOrForATargetWithoutAnUnknownLicenceNothingIsRecorded(): void
    {
        $service = $this->service($this->licenceProduct(), array('Site URL' => 'shop.example'));
        $this->licence($service);

        $noToken = $this->render(array(), array('jq_action' => 'licence_reissue', 'service' => (string) $service, 'addon' => '0'));
        $nothingWaits = $this->post(array('jq_action' => 'licence_reissue', 'service' => (string) $service, 'addon' => '0'));

        $this->assertStringContainsString('security token is missing or invalid', $noToken);
        $this->assertStringContainsString('no licence of this service is waiting for an admin&apos;s decision', $nothingWaits);
        $this->assertCount(0, $this->licenceRequests($service));
    }

    public function testTheJobPageShowsTheTargetsLicences(): void
    {
        $service = $this->service($this->licenceProduct(), array('Site URL' => 'shop.example'));
        $job = $this->seed->job($service, array('state' => 'done'));
        $this->licence($service, array('state' => 'revoked', 'license_key' => 'jetpack-backup-daily_OLD', 'revoked_at' => '2026-12-01 10:30:00'));
        $this->licence($service, array('license_key' => 'jetpack-backup-daily_<i>NEW</i>', 'job_id' => $job));

        $html = $this->render(array('job' => (string) $job));

        $this->assertSame(1, preg_match('~<ul id="jq-detail-licences">(.*?)</ul>~s', $html, $m));
        $this->assertStringContainsString('jetpack-backup-daily, issued: key jetpack-backup-daily_&lt;i&gt;NEW&lt;/i&gt;; issued 2026-12-07 14:02:12 UTC', $m[1]);
        $this->assertStringContainsString('key jetpack-backup-daily_OLD; issued 2026-12-07 14:02:12 UTC; revoked 2026-12-01 10:30:00 UTC', $m[1]);
        $this->assertLessThan(strpos($m[1], '_OLD'), strpos($m[1], 'NEW'), 'newest first');
    }

    public function testTheLicenceReadsUseIndexes(): void
    {
        $service = $this->service($this->licenceProduct(), array('Site URL' => 'shop.example'));
        $job = $this->seed->job($service, array('state' => 'failed', 'last_error' => 'x'));
        $this->unknownLicence($service, array('job_id' => $job));
        $connection = $this->capsule->getConnection();
        $connection->enableQueryLog();

        $this->render();
        $this->render(array('job' => (string) $job));

        $queries = array_filter($connection->getQueryLog(), function ($q) {
            return strpos($q['query'], 'mod_jetpack_licences') !== false
                || (strpos($q['query'], 'mod_jetpack_requests') !== false && strpos($q['query'], 'licence_') === false
                    && in_array('licence_record', $q['bindings'], true));
        });
        $connection->disableQueryLog();
        $this->assertGreaterThanOrEqual(3, count($queries));
        foreach ($queries as $q) {
            $plan = $this->select('EXPLAIN ' . $q['query'], $q['bindings']);
            $this->assertContains($plan[0]->key, array('target', 'live', 'unapplied'), $q['query']);
        }
    }
}
