<?php

namespace JetpackTests;

use JetpackTests\Support\DashboardSeed;
use JetpackTests\Support\DatabaseTestCase;
use WHMCS\Module\Addon\JetpackQueue\Page;
use WHMCS\Module\Addon\JetpackQueue\Queries;

/**
 * The queue page as an admin operates it (issue 21): the site in every list and on the job
 * page, Retry on a failed job's row and on its page (one request each), "Retry all" in
 * batches that fit WHMCS's request time, and Hold / Resume of a partner account (the page
 * records and removes the hold in mod_jetpack_holds and shows it; the worker decides).
 */
final class DashboardOperateTest extends DatabaseTestCase
{
    const LINK = 'addonmodules.php?module=jetpack_queue';
    const TOKEN = 'test-csrf-token';

    /** @var DashboardSeed */
    private $seed;

    /** @var int */
    private $productId;

    protected function setUp(): void
    {
        parent::setUp();
        $GLOBALS['jetpack_test_csrf'] = self::TOKEN;
        $this->seed = new DashboardSeed($this->pdo());
        $this->seed->workersTable();
        $this->productId = $this->product();
    }

    private function render(array $get = array(), array $post = array())
    {
        return Page::render(array('modulelink' => self::LINK), $get, $post, count($post) > 0 ? 'POST' : 'GET');
    }

    private function post(array $post, array $get = array())
    {
        return $this->render($get, $post + array('token' => self::TOKEN));
    }

    /** @return string the Site cell of a job's row in the jobs list */
    private function listedSite($html, $job)
    {
        $this->assertSame(1, preg_match('/<tr data-job="' . $job . '">(?:<td>.*?<\/td>){4}<td>([^<]*)<\/td>/', $html, $m), "job $job listed");
        return $m[1];
    }

    public function testTheSiteIsInEveryListAndOnTheJobPage(): void
    {
        // A standalone product: tblhosting.domain empty, the site in the Site URL field only.
        $standalone = $this->service($this->productId, $this->validValues('https://shop.example/'), array('status' => 'Active'));
        $waiting = $this->seed->job($standalone, array('state' => 'waiting_dns', 'dns_checks' => 2, 'waiting_since_ago' => 600));
        // An addon without a Site URL field of its own: its parent's domain.
        $parent = $this->service($this->productId, $this->validValues('https://parent.example/'),
            array('status' => 'Active', 'domain' => 'parent.example'));
        $addon = $this->addon($this->addonDefinition(), $parent, null, array('status' => 'Active'));
        $addonJob = $this->seed->job($parent, array('addon_id' => $addon, 'state' => 'failed', 'last_error' => 'e'));
        // A service without a value: a dash, not another row's site.
        $bare = $this->service($this->productId, array(), array('status' => 'Active'));
        $bareJob = $this->seed->job($bare, array('state' => 'done'));

        $html = $this->render();

        $this->assertSame('https://shop.example/', $this->listedSite($html, $waiting));
        $this->assertSame('parent.example', $this->listedSite($html, $addonJob));
        $this->assertSame('—', $this->listedSite($html, $bareJob));
        $this->assertStringContainsString('<th>Target</th><th>Site</th><th>Checks</th>', $html, 'the Waiting-on-DNS list');
        $this->assertSame(1, preg_match('/<table class="table" id="jq-dns">.*?<td>https:\/\/shop\.example\/<\/td><td>2<\/td>/s', $html),
            'the waiting plan\'s site, not an empty domain');
        $this->assertStringContainsString('<tr><th>Site URL</th><td>https://shop.example/</td></tr>',
            $this->render(array('job' => (string) $waiting)));
    }

    public function testRetryOnAFailedRowRecordsOneRequestForItsTarget(): void
    {
        $failedService = $this->service($this->productId);
        $failed = $this->seed->job($failedService, array('state' => 'failed', 'last_error' => 'HTTP 503'));
        $other = $this->service($this->productId);
        $this->seed->job($other, array('state' => 'failed', 'last_error' => 'HTTP 503'));
        $doneService = $this->service($this->productId);
        $done = $this->seed->job($doneService, array('state' => 'done'));

        $html = $this->render();
        $this->assertStringContainsString('<button type="submit" form="jq-retry-one" name="job" value="' . $failed . '"', $html);
        $this->assertStringNotContainsString('form="jq-retry-one" name="job" value="' . $done . '"', $html, 'only a failed row');

        $after = $this->post(array('jq_action' => 'retry_job', 'job' => (string) $failed));

        $this->assertStringContainsString('Retry requested for 1 service', $after);
        $requests = $this->requests();
        $this->assertCount(1, $requests);
        $this->assertSame(array($failedService, 0, 'retry', 'admin'), array((int) $requests[0]->service_id,
            (int) $requests[0]->addon_id, $requests[0]->action, $requests[0]->requested_by));

        $this->post(array('jq_action' => 'retry_job', 'job' => (string) $done));
        $this->assertCount(1, $this->requests(), 'a done job is not retried');
    }

    public function testRetryOnTheJobPageOfAFailedJob(): void
    {
        $s = $this->service($this->productId);
        $failed = $this->seed->job($s, array('state' => 'failed', 'last_error' => 'HTTP 401'));
        $t = $this->service($this->productId);
        $queued = $this->seed->job($t, array('state' => 'queued'));

        $this->assertStringContainsString('id="jq-detail-retry"', $this->render(array('job' => (string) $failed)));
        $this->assertStringNotContainsString('id="jq-detail-retry"', $this->render(array('job' => (string) $queued)));

        $html = $this->post(array('jq_action' => 'retry_job', 'job' => (string) $failed), array('job' => (string) $failed));

        $this->assertStringContainsString('Retry requested for 1 service', $html);
        $this->assertSame(array($s), array_map(function ($r) {
            return (int) $r->service_id;
        }, $this->requests()));
    }

    public function testRetryAllGoesInBatchesThePageContinuing(): void
    {
        $n = 2 * Queries::RETRY_BATCH + 7;
        $digits = '(SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
                     UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)';
        $this->exec("INSERT INTO mod_jetpack_jobs (service_id, addon_id, action, state, attempts, run_at, last_error,
                         requested_by, created_at, updated_at, finished_at)
                     SELECT 1000 + n, 0, 'provision', 'failed', 8, UTC_TIMESTAMP(6), 'HTTP 503', 'module',
                            UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6)
                     FROM (SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 1 AS n
                           FROM $digits a, $digits b, $digits c, $digits e) s
                     WHERE n <= ? ORDER BY n", array($n));

        $post = array('jq_action' => 'retry_all');
        $batches = 0;
        do {
            $html = $this->post($post);
            $batches++;
            $continues = preg_match('/<form method="post" action="[^"]*" id="jq-continue">(.*?)<\/form>/', $html, $m) === 1;
            $post = array('jq_action' => 'retry_all');
            if ($continues) {
                $this->assertStringContainsString('document.getElementById("jq-continue").submit()', $html, 'the page goes on by itself');
                preg_match_all('/name="(after_service|after_addon|done)" value="(\d+)"/', $m[1], $fields, PREG_SET_ORDER);
                foreach ($fields as $f) {
                    $post[$f[1]] = $f[2];
                }
                $this->assertCount(3, $fields);
                $this->assertSame(Queries::RETRY_BATCH * $batches, count($this->requests()), 'one batch per request');
            }
        } while ($continues && $batches < 10);

        $this->assertSame(3, $batches);
        $this->assertStringContainsString('Retry requested for ' . $n . ' in all', $html);
        $services = array_map(function ($r) {
            return (int) $r->service_id;
        }, $this->requests());
        sort($services);
        $this->assertSame(range(1001, 1000 + $n), $services, 'every failed service once');
    }

    public function testHoldAndResumeRecordAndRemoveTheHoldAndThePageShowsIt(): void
    {
        $_SESSION['adminid'] = 3;
        $this->assertStringContainsString('id="jq-holds-empty"', $this->render());

        $html = $this->post(array('jq_action' => 'hold', 'account' => ' partner-7 ', 'reason' => 'rotating <credentials>'));

        $this->assertStringContainsString('Partner account partner-7 is on hold', $html);
        $holds = $this->select('SELECT account, held_by, reason FROM mod_jetpack_holds');
        $this->assertCount(1, $holds);
        $this->assertSame(array('partner-7', 'admin:3', 'rotating <credentials>'),
            array($holds[0]->account, $holds[0]->held_by, $holds[0]->reason));
        $this->assertSame(1, preg_match('/<tr data-hold="partner-7"><td>partner-7<\/td><td>\d{4}-\d\d-\d\d [\d:]{8} UTC<\/td>'
            . '<td>admin:3<\/td><td>rotating &lt;credentials&gt;<\/td>.*?value="resume".*?Resume<\/button>/', $this->render()));

        $this->post(array('jq_action' => 'hold', 'account' => ''));
        $this->assertCount(1, $this->select('SELECT account FROM mod_jetpack_holds'), 'an empty Client ID is refused');
        $this->render(array(), array('jq_action' => 'resume', 'account' => 'partner-7'));
        $this->assertCount(1, $this->select('SELECT account FROM mod_jetpack_holds'), 'no token: refused');

        $resumed = $this->post(array('jq_action' => 'resume', 'account' => 'partner-7'));

        $this->assertStringContainsString('Partner account partner-7 resumed', $resumed);
        $this->assertCount(0, $this->select('SELECT account FROM mod_jetpack_holds'));
        $this->assertStringContainsString('id="jq-holds-empty"', $resumed);
        unset($_SESSION['adminid']);
    }

    public function testWithoutTheHoldsTableThePageAndTheButtonsSaySo(): void
    {
        $this->exec('DROP TABLE mod_jetpack_holds');

        $html = $this->post(array('jq_action' => 'hold', 'account' => 'partner-7'));

        $this->assertStringContainsString('Refused: Hold / Resume needs a newer jetpack-worker', $html);
        $this->assertStringContainsString('id="jq-holds-none"', $html);
    }

    public function testThePageRefreshesItselfWithAToggle(): void
    {
        $html = $this->render();
        $this->assertStringContainsString('<input type="checkbox" id="jq-refresh-toggle" checked> Refresh every '
            . Page::REFRESH_SECONDS . ' s', $html);
        $this->assertStringContainsString('document.visibilityState!=="visible"', $html, 'paused while the tab is hidden');
        $this->assertStringContainsString('var ms=' . (Page::REFRESH_SECONDS * 1000) . ',', $html);
        $this->assertSame(1, preg_match('/<div id="jq-live">.*<\/div><script>/s', $html), 'the live part, then the script');
    }
}
