<?php

namespace JetpackTests;

use JetpackTests\Support\DashboardSeed;
use JetpackTests\Support\DatabaseTestCase;
use WHMCS\Database\Capsule;
use WHMCS\Module\Addon\JetpackQueue\Html;
use WHMCS\Module\Addon\JetpackQueue\Page;
use WHMCS\Module\Addon\JetpackQueue\Queries;

/**
 * The queue dashboard (whmcs/modules/addons/jetpack_queue): what it shows, what it lets an
 * admin do (bulk Retry, recorded as requests only), and what it refuses (no CSRF token, GET).
 */
final class DashboardTest extends DatabaseTestCase
{
    const LINK = 'addonmodules.php?module=jetpack_queue';

    /** @var DashboardSeed */
    private $seed;

    /** @var int */
    private $productId;

    protected function setUp(): void
    {
        parent::setUp();
        $GLOBALS['jetpack_test_csrf'] = 'test-csrf-token';
        $this->seed = new DashboardSeed($this->pdo());
        $this->seed->workersTable();
        $this->productId = $this->product();
    }

    private function render(array $get = array(), array $post = array(), $method = 'GET')
    {
        return Page::render(array('modulelink' => self::LINK), $get, $post, $method);
    }

    /**
     * The page without its own auto-refresh script (exactly once in every page), so a test can
     * check that no other script is in it.
     */
    private function withoutOwnScript($html)
    {
        $own = Html::refreshScript(Page::REFRESH_SECONDS);
        $this->assertSame(1, substr_count($html, $own), 'the page\'s own auto-refresh script, once');
        return str_replace($own, '', $html);
    }

    /** @return int[] the job ids the list shows, in order */
    private function listed($html)
    {
        preg_match_all('/<tr data-job="(\d+)">/', $html, $m);
        return array_map('intval', $m[1]);
    }

    private function stateCount($html, $state)
    {
        $this->assertSame(1, preg_match('/<td data-state="' . $state . '"><a [^>]*>(\d+)<\/a>/', $html, $m), $state);
        return (int) $m[1];
    }

    private function snapshot()
    {
        return array(
            'jobs' => $this->select('SELECT * FROM mod_jetpack_jobs ORDER BY id'),
            'hosting' => $this->select('SELECT id, domainstatus FROM tblhosting ORDER BY id'),
            'values' => $this->select('SELECT * FROM tblcustomfieldsvalues ORDER BY id'),
            'queue' => $this->select('SELECT * FROM tblmodulequeue ORDER BY id'),
        );
    }

    public function testCountsByStateAndTheOldestDueJob(): void
    {
        $a = $this->service($this->productId);
        $b = $this->service($this->productId);
        $c = $this->service($this->productId);
        $this->seed->job($a, array('state' => 'done'));
        $this->seed->job($a, array('state' => 'failed', 'last_error' => 'x'));
        $old = $this->seed->job($b, array('state' => 'queued', 'run_in' => -600));
        $this->seed->job($c, array('state' => 'queued', 'run_in' => -30));

        $html = $this->render();

        $this->assertSame(2, $this->stateCount($html, 'queued'));
        $this->assertSame(1, $this->stateCount($html, 'done'));
        $this->assertSame(1, $this->stateCount($html, 'failed'));
        $this->assertSame(0, $this->stateCount($html, 'waiting_dns'));
        $this->assertMatchesRegularExpression('/id="jq-oldest">Oldest due job: <a [^>]*>#' . $old . '<\/a>/', $html);
    }

    public function testFiltersByStateActionProductAndDate(): void
    {
        $other = $this->product(array('name' => 'Jetpack Backup'));
        $s1 = $this->service($this->productId);
        $s2 = $this->service($this->productId);
        $s3 = $this->service($other);
        $done = $this->seed->job($s1, array('state' => 'done', 'created_ago' => 3 * 86400));
        $failed = $this->seed->job($s1, array('state' => 'failed', 'last_error' => 'boom'));
        $term = $this->seed->job($s2, array('state' => 'queued', 'action' => 'terminate'));
        $backup = $this->seed->job($s3, array('state' => 'queued'));

        $this->assertSame(array($failed), $this->listed($this->render(array('state' => 'failed'))));
        $this->assertSame(array($backup, $term), $this->listed($this->render(array('state' => 'queued'))));
        $this->assertSame(array($term), $this->listed($this->render(array('action' => 'terminate'))));
        $this->assertSame(array($backup), $this->listed($this->render(array('product' => (string) $other))));
        $this->assertSame(array($failed, $done), $this->listed($this->render(array('product' => (string) $this->productId, 'action' => 'provision'))));
        $day = (string) $this->scalar("SELECT DATE(created_at) FROM mod_jetpack_jobs WHERE id = ?", array($done));
        $this->assertSame(array($done), $this->listed($this->render(array('date' => $day))));
        $this->assertSame(array($backup, $term, $failed, $done), $this->listed($this->render(array('state' => 'bogus', 'date' => 'not-a-date'))), 'unknown values are ignored');
        $this->assertStringContainsString('<option value="' . $other . '" selected>Jetpack Backup</option>', $this->render(array('product' => (string) $other)));
    }

    public function testSearchByServiceIdClientDomainAndSiteUrl(): void
    {
        $this->seed->client(7, 'Ada', 'Lovelace', 'ada@example.org');
        $this->seed->client(8, 'Grace', 'Hopper', 'grace@example.net');
        $ada = $this->service($this->productId, $this->validValues('https://ada-blog.example/'), array('userid' => 7));
        $grace = $this->service($this->productId, $this->validValues('https://navy.example/'), array('userid' => 8));
        $this->exec("UPDATE tblhosting SET domain = 'hopper.example' WHERE id = ?", array($grace));
        $j1 = $this->seed->job($ada, array('state' => 'done'));
        $j2 = $this->seed->job($grace, array('state' => 'failed', 'last_error' => 'e'));

        $this->assertSame(array($j1), $this->listed($this->render(array('q' => (string) $ada, 'in' => 'service'))));
        $this->assertSame(array(), $this->listed($this->render(array('q' => 'abc', 'in' => 'service'))));
        $this->assertSame(array($j2), $this->listed($this->render(array('q' => '8', 'in' => 'client'))));
        $this->assertSame(array($j1), $this->listed($this->render(array('q' => 'ada@', 'in' => 'client'))));
        $this->assertSame(array($j2), $this->listed($this->render(array('q' => 'Grace', 'in' => 'client'))));
        $this->assertSame(array($j2), $this->listed($this->render(array('q' => 'hopper.ex', 'in' => 'domain'))));
        $this->assertSame(array($j1), $this->listed($this->render(array('q' => 'ada-blog', 'in' => 'site'))));
        $this->assertSame(array(), $this->listed($this->render(array('q' => '%', 'in' => 'site'))), 'LIKE wildcards are literal');
        $this->assertSame(array($j2), $this->listed($this->render(array('q' => 'navy', 'in' => 'site', 'state' => 'failed'))));
    }

    public function testKeysetPagesHaveNoGapsOrRepeatsWhileJobsChange(): void
    {
        $services = array();
        for ($i = 0; $i < 130; $i++) {
            $services[] = $this->service($this->productId, array());
        }
        $ids = array();
        foreach ($services as $i => $s) {
            $ids[] = $this->seed->job($s, array('state' => $i % 3 === 0 ? 'failed' : 'done', 'last_error' => 'e'));
        }
        $expected = array_reverse($ids);

        $capsule = Capsule::connection();
        $capsule->enableQueryLog();
        $seen = array();
        $before = null;
        $pages = 0;
        do {
            $get = $before === null ? array() : array('before' => (string) $before);
            $html = $this->render($get);
            $seen = array_merge($seen, $this->listed($html));
            $pages++;
            // Between pages: new jobs arrive (newer ids, not on later pages), jobs change state.
            $this->seed->job($this->service($this->productId, array()), array('state' => 'queued'));
            $this->exec("UPDATE mod_jetpack_jobs SET state = 'done', updated_at = UTC_TIMESTAMP(6) WHERE state = 'failed' AND id < ? LIMIT 3", array($before ?? PHP_INT_MAX));
            $before = preg_match('/id="jq-next" href="[^"]*before=(\d+)"/', $html, $m) === 1 ? (int) $m[1] : null;
        } while ($before !== null && $pages < 10);

        $this->assertSame(3, $pages);
        $this->assertSame($expected, $seen, 'every job once, newest first');
        foreach ($capsule->getQueryLog() as $q) {
            $this->assertStringNotContainsStringIgnoringCase('offset', $q['query']);
        }
        $capsule->disableQueryLog();
    }

    public function testBulkRetryOfSelectedJobsRecordsOneRetryPerFailedServiceAndNothingElse(): void
    {
        $a = $this->service($this->productId);
        $b = $this->service($this->productId);
        $c = $this->service($this->productId);
        $d = $this->service($this->productId);
        $this->seed->job($a, array('state' => 'failed', 'last_error' => 'older'));
        $a2 = $this->seed->job($a, array('state' => 'failed', 'last_error' => 'newer'));
        $b1 = $this->seed->job($b, array('state' => 'failed', 'last_error' => 'b'));
        $c1 = $this->seed->job($c, array('state' => 'done'));
        $dOld = $this->seed->job($d, array('state' => 'failed', 'last_error' => 'then done'));
        $this->seed->job($d, array('state' => 'done'));
        $before = $this->snapshot();

        $html = $this->render(array(), array(
            'token' => 'test-csrf-token', 'jq_action' => 'retry_selected',
            'jobs' => array((string) $a2, (string) $b1, (string) $c1, (string) $dOld, "1 OR 1=1"),
        ), 'POST');

        $this->assertStringContainsString('Retry requested for 2 services', $html);
        $requests = $this->requests();
        $this->assertSame(array($a, $b), array_map(function ($r) { return (int) $r->service_id; }, $requests));
        foreach ($requests as $r) {
            $this->assertSame('retry', $r->action);
            $this->assertSame('admin', $r->requested_by);
            $this->assertNull($r->applied_at);
        }
        $this->assertEquals($before, $this->snapshot(), 'the dashboard writes requests only');
    }

    public function testRetryAllFailedIncludingAServiceTerminatedMeanwhileOnlyRecordsRequests(): void
    {
        $a = $this->service($this->productId, null, array('status' => 'Active'));
        $t = $this->service($this->productId, null, array('status' => 'Active'));
        $gone = $this->service($this->productId, null, array('status' => 'Active'));
        $this->seed->job($a, array('state' => 'failed', 'last_error' => 'HTTP 503'));
        // Terminated in WHMCS after its provision failed: the request is recorded; the worker's
        // rule (a retry requeues only a failed latest job; a terminate supersedes) decides.
        $this->seed->job($t, array('state' => 'failed', 'last_error' => 'HTTP 503'));
        $this->exec("UPDATE tblhosting SET domainstatus = 'Terminated' WHERE id = ?", array($t));
        // Terminated through the worker: its latest job is the done terminate: not retried.
        $this->seed->job($gone, array('state' => 'failed', 'last_error' => 'HTTP 503'));
        $this->seed->job($gone, array('state' => 'done', 'action' => 'terminate'));
        $before = $this->snapshot();

        $html = $this->render(array(), array('token' => 'test-csrf-token', 'jq_action' => 'retry_all'), 'POST');

        $this->assertStringContainsString('Retry requested for 2 services', $html);
        $this->assertSame(array($a, $t), array_map(function ($r) { return (int) $r->service_id; }, $this->requests()));
        $this->assertSame(array('retry', 'retry'), array_column($this->requests(), 'action'));
        $this->assertEquals($before, $this->snapshot(), 'no job written, no status changed, nothing provisioned');
        $this->assertSame('Terminated', $this->status($t));
    }

    public function testEachJobNamesItsTargetServiceOrAddon(): void
    {
        $this->seed->client(7, 'Ada', 'Lovelace', 'ada@example.org');
        $s = $this->service($this->productId, null, array('userid' => 7, 'status' => 'Active', 'domain' => 'hosted.example'));
        $definition = $this->addonDefinition(array('name' => 'Jetpack <b>Scan</b>'));
        $addon = $this->addon($definition, $s, null, array('status' => 'Active'));
        $own = $this->seed->job($s, array('state' => 'done'));
        $ofAddon = $this->seed->job($s, array('state' => 'done', 'addon_id' => $addon));
        $dns = $this->seed->job($s, array('state' => 'waiting_dns', 'addon_id' => $addon, 'waiting_since_ago' => 60, 'run_in' => 600));
        $t = $this->service($this->productId);
        $other = $this->addon($definition, $t);
        $queued = $this->seed->job($t, array('state' => 'queued', 'addon_id' => $other, 'run_in' => -60));

        $html = $this->render();

        $serviceCell = '<a href="clientsservices.php?userid=7&amp;id=' . $s . '">Service #' . $s . '</a>';
        $addonCell = '<a href="clientsservices.php?userid=7&amp;id=' . $s . '&amp;aid=' . $addon . '">Addon #' . $addon
            . '</a> on service <a href="clientsservices.php?userid=7&amp;id=' . $s . '">#' . $s . '</a>';
        $this->assertMatchesRegularExpression('~<tr data-job="' . $own . '"><td></td><td><a [^>]*>#' . $own . '</a></td><td>'
            . preg_quote($serviceCell, '~') . '</td>~', $html);
        $this->assertMatchesRegularExpression('~<tr data-job="' . $ofAddon . '"><td></td><td><a [^>]*>#' . $ofAddon . '</a></td><td>'
            . preg_quote($addonCell, '~') . '</td>~', $html);
        $this->assertStringContainsString('<td><a href="addonmodules.php?module=jetpack_queue&amp;job=' . $dns . '">#' . $dns . '</a></td><td>'
            . $addonCell . '</td><td>hosted.example</td>', $html, 'waiting on DNS');
        $this->assertMatchesRegularExpression('~id="jq-oldest">Oldest due job: <a [^>]*>#' . $queued . '</a> \(provision of addon '
            . $other . ' on service ' . $t . '\)~', $html);
        // A product's filter lists its services' own jobs, not their addons'.
        $this->assertSame(array($own), $this->listed($this->render(array('product' => (string) $this->productId))));
        // A search by service id finds the service's addons' jobs too.
        $this->assertSame(array($dns, $ofAddon, $own), $this->listed($this->render(array('q' => (string) $s, 'in' => 'service'))));
    }

    public function testAnAddonsJobDetailShowsTheAddonItsServiceAndItsOwnHistory(): void
    {
        $this->seed->client(7, 'Ada', 'Lovelace', 'ada@example.org');
        $s = $this->service($this->productId, null, array('userid' => 7, 'status' => 'Active', 'domain' => 'hosted.example'));
        $addon = $this->addon($this->addonDefinition(array('name' => 'Jetpack <b>Scan</b>')), $s);
        $serviceJob = $this->seed->job($s, array('state' => 'done', 'last_error' => 'the service\'s own'));
        $job = $this->seed->job($s, array('state' => 'failed', 'addon_id' => $addon, 'last_error' => 'HTTP 503'));
        $r = $this->request($s, 'retry', 'admin', '2026-11-20 10:00:00', $job, 'requeued job #' . $job);
        $this->exec('UPDATE mod_jetpack_requests SET addon_id = ? WHERE id = ?', array($addon, $r));
        $serviceRequest = $this->request($s, 'provision', 'module', '2026-11-20 09:00:00', $serviceJob, 'the service\'s decision');

        $page = $this->render(array('job' => (string) $job));
        $this->assertSame(1, preg_match('~<div class="jq-detail" id="jq-detail">.*?</div>~s', $page, $m));
        $html = $m[0];

        $this->assertStringContainsString('<tr><th>Addon</th><td><a href="clientsservices.php?userid=7&amp;id=' . $s . '&amp;aid='
            . $addon . '">Addon #' . $addon . '</a> on service <a href="clientsservices.php?userid=7&amp;id=' . $s . '">#' . $s
            . '</a> (Pending), Jetpack &lt;b&gt;Scan&lt;/b&gt;</td></tr>', $html);
        $this->assertStringContainsString('<tr><th>Service</th><td><a href="clientsservices.php?userid=7&amp;id=' . $s . '">' . $s
            . '</a> (Active)</td></tr>', $html);
        $this->assertStringContainsString('<tr><th>Site URL</th><td>hosted.example</td></tr>', $html, 'the parent\'s domain');
        $this->assertStringContainsString('The addon\'s jobs', $html);
        $this->assertStringContainsString('<tr><td>#' . $r . '</td><td>retry</td><td>admin</td>', $html);
        $this->assertStringNotContainsString('the service\'s decision', $html);
        $this->assertStringNotContainsString('<td>#' . $serviceRequest . '</td><td>provision</td>', $html);
        $this->assertStringNotContainsString('&amp;job=' . $serviceJob . '"', $html, 'the service\'s job is not in the addon\'s history');
        $this->assertStringContainsString('Ada Lovelace', $html);

        $this->assertSame(1, preg_match('~<div class="jq-detail" id="jq-detail">.*?</div>~s', $this->render(array('job' => (string) $serviceJob)), $m));
        $serviceHtml = $m[0];
        $this->assertStringContainsString('The service\'s jobs', $serviceHtml);
        $this->assertStringNotContainsString('HTTP 503', $serviceHtml, 'the addon\'s job is not in the service\'s history');
        $this->assertStringNotContainsString('<th>Addon</th>', $serviceHtml);
    }

    public function testBulkRetryRecordsTheRetryOfEachFailedTargetWithItsAddon(): void
    {
        $s = $this->service($this->productId, null, array('status' => 'Active', 'domain' => 'hosted.example'));
        $definition = $this->addonDefinition();
        $failing = $this->addon($definition, $s);
        $recovered = $this->addon($definition, $s);
        // The service's latest job is done; its addon's failed: only the addon is retried.
        $this->seed->job($s, array('state' => 'failed', 'last_error' => 'old'));
        $addonFailed = $this->seed->job($s, array('state' => 'failed', 'addon_id' => $failing, 'last_error' => 'HTTP 503'));
        $serviceDone = $this->seed->job($s, array('state' => 'done'));
        $recoveredFailed = $this->seed->job($s, array('state' => 'failed', 'addon_id' => $recovered, 'last_error' => 'x'));
        $this->seed->job($s, array('state' => 'done', 'addon_id' => $recovered));
        $t = $this->service($this->productId);
        $serviceFailed = $this->seed->job($t, array('state' => 'failed', 'last_error' => 'boom'));
        $before = $this->snapshot();

        $html = $this->render(array(), array(
            'token' => 'test-csrf-token', 'jq_action' => 'retry_selected',
            'jobs' => array((string) $addonFailed, (string) $serviceDone, (string) $recoveredFailed, (string) $serviceFailed),
        ), 'POST');

        $this->assertStringContainsString('Retry requested for 1 service and 1 addon;', $html);
        $this->assertSame(
            array(array($s, $failing, 'retry', 'admin'), array($t, 0, 'retry', 'admin')),
            array_map(function ($r) {
                return array((int) $r->service_id, (int) $r->addon_id, $r->action, $r->requested_by);
            }, $this->requests())
        );
        $this->assertEquals($before, $this->snapshot(), 'the dashboard writes requests only');
        $this->assertStringContainsString('addon ' . $failing . ' on service ' . $s, implode("\n", $this->loggedActivity()));

        $this->exec('DELETE FROM mod_jetpack_requests');
        $all = $this->render(array(), array('token' => 'test-csrf-token', 'jq_action' => 'retry_all'), 'POST');
        $this->assertStringContainsString('Retry requested for 1 service and 1 addon;', $all);
        $this->assertCount(2, $this->requests());
    }

    public function testActionsWithoutTheCsrfTokenOrWithoutPostAreRefused(): void
    {
        $a = $this->service($this->productId);
        $job = $this->seed->job($a, array('state' => 'failed', 'last_error' => 'e'));

        foreach (array(
            array(array('jq_action' => 'retry_all'), 'POST'),
            array(array('jq_action' => 'retry_all', 'token' => ''), 'POST'),
            array(array('jq_action' => 'retry_all', 'token' => 'forged'), 'POST'),
            array(array('jq_action' => 'retry_selected', 'token' => array('x'), 'jobs' => array((string) $job)), 'POST'),
            array(array('jq_action' => 'retry_all', 'token' => 'test-csrf-token'), 'GET'),
        ) as $i => $case) {
            $html = $this->render(array(), $case[0], $case[1]);
            $this->assertStringContainsString('id="jq-flash">Refused', $html, "case $i");
        }
        $GLOBALS['jetpack_test_csrf'] = 'rotated';
        $this->assertStringContainsString('Refused', $this->render(array(), array('jq_action' => 'retry_all', 'token' => 'test-csrf-token'), 'POST'));
        $this->assertSame(array(), $this->requests());
        $this->assertStringContainsString('<input type="hidden" name="token" value="rotated">', $this->render());
    }

    public function testHostileSiteUrlDomainAndErrorAreEscapedEverywhere(): void
    {
        $hostile = '"><script>alert(1)</script><img src=x onerror=alert(2)>';
        $s = $this->service($this->productId, $this->validValues('https://x.example/' . $hostile), array('status' => 'Active'));
        $this->exec('UPDATE tblhosting SET domain = ? WHERE id = ?', array('d' . $hostile, $s));
        $job = $this->seed->job($s, array('state' => 'failed', 'last_error' => 'partner said <script>alert(3)</script> ' . $hostile));
        $w = $this->service($this->productId, array(), array('status' => 'Active'));
        $this->exec('UPDATE tblhosting SET domain = ? WHERE id = ?', array('<script>alert(4)</script>', $w));
        $this->seed->job($w, array('state' => 'waiting_dns', 'waiting_since_ago' => 60, 'run_in' => 600));
        $this->seed->worker('<script>alert(5)</script>', 0);
        $this->request($s, 'retry', 'admin', '2026-11-20 10:00:00', $job, '<script>alert(6)</script>');

        foreach (array(
            $this->render(array('job' => (string) $job)),
            $this->render(array('q' => '<script>', 'in' => 'site', 'date' => $hostile)),
            $this->render(array('q' => $hostile, 'in' => 'domain')),
        ) as $html) {
            $html = $this->withoutOwnScript($html);
            $this->assertStringNotContainsString('<script', $html);
            $this->assertStringNotContainsString('<img', $html);
            $this->assertStringNotContainsString('" onerror', $html);
        }
        $detail = $this->render(array('job' => (string) $job));
        $this->assertStringContainsString('https://x.example/&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;', $detail);
        $this->assertStringContainsString('partner said &lt;script&gt;alert(3)&lt;/script&gt;', $detail);
        $this->assertStringContainsString('&lt;script&gt;alert(6)&lt;/script&gt;', $detail);
        $this->assertStringContainsString('&lt;script&gt;alert(4)&lt;/script&gt;', $detail, 'DNS waits list');
        $this->assertStringContainsString('&lt;script&gt;alert(5)&lt;/script&gt;', $detail, 'workers list');
    }

    public function testNoSecretIsShown(): void
    {
        $s = $this->service($this->productId);
        $job = $this->seed->job($s, array('state' => 'failed', 'last_error' => 'e'));
        $capsule = Capsule::connection();
        $capsule->enableQueryLog();

        $html = $this->render(array('job' => (string) $job)) . $this->render(array('q' => 'example', 'in' => 'site'));

        $this->assertStringNotContainsString('demo-secret', $html);
        $this->assertStringNotContainsString('demo-client', $html);
        foreach ($capsule->getQueryLog() as $q) {
            $this->assertStringNotContainsString('configoption', $q['query']);
            $this->assertStringNotContainsString('*', str_replace('COUNT(*)', '', $q['query']), $q['query']);
        }
        $capsule->disableQueryLog();
    }

    public function testJobDetailShowsHistoryAndLinks(): void
    {
        $this->seed->client(7, 'Ada', 'Lovelace', 'ada@example.org', 'Analytical Ltd');
        $s = $this->service($this->productId, null, array('userid' => 7));
        $first = $this->seed->job($s, array('state' => 'failed', 'attempts' => 8, 'max_attempts' => 8, 'last_error' => 'HTTP 401 at attempt 8'));
        $r = $this->request($s, 'retry', 'admin', '2026-11-20 10:00:00', $first, 'requeued job #' . $first);
        $this->exec("UPDATE mod_jetpack_jobs SET state = 'queued', finished_at = NULL, run_at = UTC_TIMESTAMP(6) + INTERVAL 60 SECOND WHERE id = ?", array($first));

        $html = $this->render(array('job' => (string) $first));

        $this->assertStringContainsString('Job #' . $first . ': provision, Queued', $html);
        $this->assertStringContainsString('href="clientsservices.php?userid=7&amp;id=' . $s . '"', $html);
        $this->assertStringContainsString('href="clientssummary.php?userid=7"', $html);
        $this->assertStringContainsString('Ada Lovelace (Analytical Ltd)', $html);
        $this->assertStringContainsString('https://example.com/', $html);
        $this->assertStringContainsString('HTTP 401 at attempt 8</span> (at ', $html);
        $this->assertStringContainsString('<tr><td>#' . $r . '</td><td>retry</td><td>admin</td>', $html);
        $this->assertStringContainsString('requeued job #' . $first, $html);
        $this->assertMatchesRegularExpression('/<th>Next attempt<\/th><td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC<\/td>/', $html);
        $this->assertStringContainsString('No such job.', $this->render(array('job' => '999999')));
    }

    public function testFailuresGroupedByReasonAndPlansWaitingOnDns(): void
    {
        for ($i = 1; $i <= 5; $i++) {
            $s = $this->service($this->productId, array());
            $this->seed->job($s, array('state' => 'failed', 'last_error' => "JETPACK MODULE: Service ID: $s - HTTP 503"));
        }
        $s = $this->service($this->productId, array());
        $this->seed->job($s, array('state' => 'failed', 'last_error' => 'site unreachable'));
        $w = $this->service($this->productId, array());
        $wait = $this->seed->job($w, array('state' => 'waiting_dns', 'waiting_since_ago' => 86400, 'run_in' => 3600, 'dns_checks' => 3));

        $html = $this->render();

        $this->assertStringContainsString('<tr><td>5</td><td class="jq-error">JETPACK MODULE: Service ID: N - HTTP N</td>', $html);
        $this->assertStringContainsString('<tr><td>1</td><td class="jq-error">site unreachable</td>', $html);
        $row = $this->select(
            'SELECT run_at, waiting_since + INTERVAL 14 DAY AS ends FROM mod_jetpack_jobs WHERE id = ?', array($wait)
        )[0];
        $this->assertMatchesRegularExpression(
            '/<td>3<\/td><td>' . preg_quote(substr($row->run_at, 0, 19)) . ' UTC<\/td><td>[^<]+<\/td><td>'
            . preg_quote(substr($row->ends, 0, 19)) . ' UTC<\/td>/',
            $html
        );
    }

    public function testOutcomesPerHourChart(): void
    {
        $s = $this->service($this->productId, array());
        $this->seed->job($s, array('state' => 'done', 'finished_ago' => 0));
        $this->seed->job($s, array('state' => 'done', 'finished_ago' => 2 * 86400));
        $this->seed->job($this->service($this->productId, array()), array('state' => 'failed', 'finished_ago' => 0, 'last_error' => 'e'));
        $this->request($s, 'retry', 'admin');

        $buckets = Queries::outcomesPerHour();
        $this->assertCount(24, $buckets);
        $last = end($buckets);
        $this->assertSame(array(1, 1, 1), array($last['done'], $last['failed'], $last['retried']));
        $this->assertSame(1, array_sum(array_column($buckets, 'done')), 'two days ago is outside the chart');
        $html = $this->render();
        $this->assertStringContainsString('<svg class="jq-chart"', $html);
        $this->assertStringNotContainsString('http://', preg_replace('#xmlns="http://www.w3.org/2000/svg"#', '', $html), 'no external assets');
    }

    public function testNoWorkerWarningOnAndOff(): void
    {
        $warning = 'jobs are queued but no jetpack-worker is running: start it with `systemctl start jetpack-worker`';
        $s = $this->service($this->productId);

        $this->assertStringNotContainsString($warning, $this->render(), 'no jobs queued');
        $this->seed->job($s, array('state' => 'queued'));
        $this->assertStringContainsString($warning, $this->render(), 'queued, no worker row');
        $this->seed->worker('w1', 180);
        $this->assertStringContainsString($warning, $this->render(), 'seen 3 minutes ago');
        $this->seed->worker('w2', 5, true);
        $this->assertStringContainsString($warning, $this->render(), 'cleanly stopped');
        $this->seed->worker('w3', 5, false, 2);
        $html = $this->render();
        $this->assertStringNotContainsString($warning, $html, 'one seen 5 s ago');
        $this->assertStringContainsString('<tr class="jq-alive"><td>w3</td><td>worker-1.example</td><td>4242</td><td>0.9.0</td>', $html);
        $this->assertStringContainsString('not seen for 3 min', $html);

        $this->exec('DROP TABLE mod_jetpack_workers');
        $html = $this->render();
        $this->assertStringContainsString('No worker information yet', $html);
        $this->assertStringNotContainsString($warning, $html);
    }

    public function testActivateChecksTheWorkerTables(): void
    {
        $this->assertSame('success', jetpack_queue_activate()['status']);
        $this->assertSame('Jetpack Provisioning Queue', jetpack_queue_config()['name']);
        $this->assertSame('success', jetpack_queue_deactivate()['status']);

        $this->exec('DROP TABLE mod_jetpack_requests');
        $this->exec('DROP TABLE mod_jetpack_jobs');
        $tables = $this->scalar("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()");
        $result = jetpack_queue_activate();

        $this->assertSame('error', $result['status']);
        $this->assertStringContainsString('mod_jetpack_jobs, mod_jetpack_requests', $result['description']);
        $this->assertStringContainsString('jetpack-worker migrate', $result['description']);
        $this->assertSame($tables, $this->scalar("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"), 'creates nothing');
        $this->assertStringContainsString('run <code>jetpack-worker migrate</code>', $this->render());
    }

    /**
     * A mod_jetpack_drift row as the reconciler writes it, $ago seconds ago.
     *
     * @return int its id
     */
    private function drift($serviceId, $addonId, $site, array $o = array())
    {
        $o += array('expected' => 'the premium plan', 'found' => 'none', 'done' => 'reported', 'ago' => 0);
        $this->exec(
            'INSERT INTO mod_jetpack_drift (service_id, addon_id, site, expected, found, done, created_at)
             VALUES (?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6) - INTERVAL ? SECOND)',
            array($serviceId, $addonId, $site, $o['expected'], $o['found'], $o['done'], $o['ago'])
        );
        return (int) $this->pdo()->lastInsertId();
    }

    /**
     * A mod_jetpack_watch row: $serviceId's expectation at $site, and what the last look saw.
     */
    private function watch($serviceId, $addonId, $site, $seen = 'fine', $dueIn = 3600)
    {
        $this->exec(
            "INSERT INTO mod_jetpack_watch (service_id, addon_id, site, plan, expect, next_check_at, seen, updated_at)
             VALUES (?, ?, ?, 'premium', 'holds', UTC_TIMESTAMP(6) + INTERVAL ? SECOND, ?, UTC_TIMESTAMP(6))",
            array($serviceId, $addonId, $site, $dueIn, $seen)
        );
    }

    /** @return int[] the drift ids the drift list shows, in order */
    private function driftsListed($html)
    {
        preg_match_all('/<tr data-drift="(\d+)">/', $html, $m);
        return array_map('intval', $m[1]);
    }

    public function testTheDriftSectionSaysWhenTheReconcilerFoundNothing(): void
    {
        $html = $this->render();

        $this->assertStringContainsString('<h2 id="jq-drift-title">Drift</h2>', $html);
        $this->assertStringContainsString('The reconciler has found no drift', $html);
        $this->assertStringNotContainsString('id="jq-drift"', $html);
        $this->assertStringContainsString('<span id="jq-watched">0</span>; seen drifting now: <span id="jq-drifting">0</span>.', $html);
    }

    public function testTheDriftSectionListsTheLatestDriftsWithTheirTargetsNewestFirst(): void
    {
        $this->seed->client(7, 'Ada', 'Lovelace', 'ada@example.org');
        $s = $this->service($this->productId, null, array('userid' => 7));
        $old = $this->drift($s, 0, 'https://old.example/', array('ago' => 7200));
        $addon = $this->drift($s, 9, 'https://shop.example/', array('expected' => 'no premium plan (cancelled)',
            'found' => 'jetpack_premium', 'done' => 'cancel requested', 'ago' => 60));
        $gone = $this->drift(424242, 0, 'https://gone.example/', array('done' => 'left for an admin: it drifted again after 3 remedies'));

        $html = $this->render();

        $this->assertSame(array($gone, $addon, $old), $this->driftsListed($html));
        $this->assertStringNotContainsString('The reconciler has found no drift', $html);
        $at = substr((string) $this->scalar('SELECT created_at FROM mod_jetpack_drift WHERE id = ?', array($addon)), 0, 19);
        $this->assertStringContainsString(
            '<tr data-drift="' . $addon . '"><td><a href="clientsservices.php?userid=7&amp;id=' . $s . '&amp;aid=9">Addon #9</a> on service '
            . '<a href="clientsservices.php?userid=7&amp;id=' . $s . '">#' . $s . '</a></td><td>https://shop.example/</td>'
            . '<td>no premium plan (cancelled)</td><td>jetpack_premium</td><td>cancel requested</td><td>' . $at . ' UTC</td></tr>',
            $html
        );
        $this->assertStringContainsString('<tr data-drift="' . $old . '"><td><a href="clientsservices.php?userid=7&amp;id=' . $s
            . '">Service #' . $s . '</a></td><td>https://old.example/</td><td>the premium plan</td><td>none</td><td>reported</td>', $html);
        $this->assertStringContainsString('<tr data-drift="' . $gone . '"><td>Service #424242</td>', $html, 'a gone service: no link');
        $this->assertStringNotContainsString('id="jq-drift-next"', $html, 'one page');
    }

    public function testTheDriftListPagesByKeysetWithoutGapsOrRepeats(): void
    {
        $s = $this->service($this->productId);
        $ids = array();
        // Two drifts share each second, so the keyset must break ties by id.
        for ($i = 0; $i < Queries::DRIFT_PAGE * 2 + 5; $i++) {
            $ids[] = $this->drift($s, 0, 'https://s' . $i . '.example/', array('ago' => 1000 - intdiv($i, 2)));
        }
        $this->exec('UPDATE mod_jetpack_drift SET created_at = DATE_FORMAT(created_at, \'%Y-%m-%d %H:%i:%s\')');
        $expected = array_reverse($ids);

        $seen = array();
        $get = array();
        for ($page = 0; $page < 5; $page++) {
            $html = $this->render($get);
            $this->assertSame($page > 0, strpos($html, '#jq-drift-title">latest drifts</a>') !== false, "back link on page $page");
            $seen = array_merge($seen, $this->driftsListed($html));
            if (preg_match('/id="jq-drift-next" href="[^"]*drift_before=(\d+)#jq-drift-title"/', $html, $m) !== 1) {
                break;
            }
            $get = array('drift_before' => $m[1]);
        }

        $this->assertSame(2, $page, 'three pages');
        $this->assertSame($expected, $seen);
    }

    public function testTheWatchCountsSitesAndThoseSeenDrifting(): void
    {
        $s = $this->service($this->productId);
        $this->watch($s, 0, 'https://a.example/');
        $this->watch($s, 3, 'https://a.example/', 'missing', 60);
        $this->watch($s + 1, 0, 'https://b.example/', 'unexpected');
        $this->watch($s + 2, 0, 'https://c.example/', 'unmapped');
        $this->watch($s + 3, 0, 'https://d.example/');

        $html = $this->render();

        $this->assertStringContainsString('<span id="jq-watched">4</span>; seen drifting now: <span id="jq-drifting">3</span>.', $html);
        $this->assertSame(array('sites' => 4, 'drifting' => 3, 'sampled' => 5, 'complete' => true), Queries::watchCounts());
    }

    public function testADriftWithHostileTextIsEscaped(): void
    {
        $hostile = '"><script>alert(1)</script><img src=x onerror=alert(2)>';
        $s = $this->service($this->productId);
        $this->drift($s, 0, 'https://x.example/' . $hostile, array('expected' => 'the <script>alert(3)</script> plan',
            'found' => '<script>alert(4)</script>', 'done' => '<b>reported</b>'));
        $this->watch($s, 0, 'https://x.example/' . $hostile, 'missing');

        $html = $this->withoutOwnScript($this->render());

        $this->assertStringNotContainsString('<script', $html);
        $this->assertStringNotContainsString('<img', $html);
        $this->assertStringNotContainsString('<b>reported', $html);
        $this->assertStringContainsString('<td>https://x.example/&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;</td>', $html);
        $this->assertStringContainsString('<td>the &lt;script&gt;alert(3)&lt;/script&gt; plan</td><td>&lt;script&gt;alert(4)&lt;/script&gt;</td><td>&lt;b&gt;reported&lt;/b&gt;</td>', $html);
    }

    public function testWithoutTheReconcilersTablesTheDriftSectionSaysSo(): void
    {
        $this->exec('DROP TABLE mod_jetpack_drift');
        $this->assertStringContainsString('id="jq-drift-none">No drift information', $this->render());
        $this->assertNull(Queries::drifts());
        $this->assertNotNull(Queries::watchCounts());
        $this->exec('DROP TABLE mod_jetpack_watch');
        $this->assertNull(Queries::watchCounts());
    }

    public function testARequestOfTheReconcilerIsShownWithAWord(): void
    {
        $s = $this->service($this->productId);
        $job = $this->seed->job($s, array('state' => 'queued', 'action' => 'terminate', 'requested_by' => 'reconcile'));
        $r = $this->request($s, 'terminate', 'reconcile', '2026-11-20 10:00:00', $job, 'queued job #' . $job);

        $html = $this->render(array('job' => (string) $job));

        $this->assertStringContainsString('<tr><th>Requested by</th><td>the reconciler</td></tr>', $html);
        $this->assertStringContainsString('<tr><td>#' . $r . '</td><td>terminate</td><td>the reconciler</td>', $html);
    }

    public function testEveryQueryIsIndexedAtOneHundredThousandJobs(): void
    {
        $siteField = $this->fieldId($this->service($this->productId, null), 'Site URL');
        $this->seed->client(7, 'Ada', 'Lovelace', 'ada@example.org');
        $this->seed->bigQueue($this->productId, $siteField, 100000);
        $this->seed->worker('w1', 1);
        $this->assertSame(100000, (int) $this->scalar('SELECT COUNT(*) FROM mod_jetpack_jobs'));
        // One job in a thousand is a product addon's (addon_id = its id: one addon per job).
        $this->exec('UPDATE mod_jetpack_jobs SET addon_id = id WHERE id MOD 1000 = 0');
        $this->exec('ANALYZE TABLE mod_jetpack_jobs');
        $failed = (int) $this->scalar("SELECT id FROM mod_jetpack_jobs WHERE state = 'failed' AND addon_id = 0 ORDER BY id DESC LIMIT 1");
        $failedAddon = (int) $this->scalar("SELECT id FROM mod_jetpack_jobs WHERE state = 'failed' AND addon_id > 0 ORDER BY id DESC LIMIT 1");
        $this->assertGreaterThan(0, $failedAddon);
        $day = (string) $this->scalar('SELECT DATE(MAX(created_at)) FROM mod_jetpack_jobs');
        // The reconciler's tables, past the sample of sites seen drifting: a watch row per job's
        // service (one in 50 seen missing), and a drift for one service in four.
        $this->exec("INSERT INTO mod_jetpack_watch (service_id, addon_id, site, plan, expect, next_check_at, seen, updated_at)
                     SELECT service_id, addon_id, CONCAT('https://site', id, '.example/'), 'premium', 'holds',
                            UTC_TIMESTAMP(6) + INTERVAL id SECOND, IF(id MOD 50 = 0, 'missing', 'fine'), UTC_TIMESTAMP(6)
                     FROM mod_jetpack_jobs");
        $this->exec("INSERT INTO mod_jetpack_drift (service_id, addon_id, site, expected, found, done, created_at)
                     SELECT service_id, addon_id, CONCAT('https://site', id, '.example/'), 'the premium plan', 'none',
                            'reported', created_at FROM mod_jetpack_jobs WHERE id MOD 4 = 0");
        $this->exec('ANALYZE TABLE mod_jetpack_watch, mod_jetpack_drift');
        $drift = (int) $this->scalar('SELECT id FROM mod_jetpack_drift ORDER BY id LIMIT 1 OFFSET 12345');

        $capsule = Capsule::connection();
        $capsule->enableQueryLog();
        foreach (array(
            array(),
            array('before' => '50000'),
            array('state' => 'failed'),
            array('state' => 'queued', 'before' => '90000'),
            array('action' => 'terminate'),
            array('product' => (string) $this->productId),
            array('date' => $day),
            array('q' => '12345', 'in' => 'service'),
            array('q' => '7', 'in' => 'client'),
            array('q' => 'ada@', 'in' => 'client'),
            array('q' => 'Ada', 'in' => 'client'),
            array('q' => 'site777.', 'in' => 'domain'),
            array('q' => 'site4242.example', 'in' => 'site'),
            array('job' => (string) $failed),
            array('job' => (string) $failedAddon),
            array('drift_before' => (string) $drift),
        ) as $get) {
            $this->render($get);
        }
        $this->render(array(), array('token' => 'test-csrf-token', 'jq_action' => 'retry_selected',
            'jobs' => array((string) $failed, (string) $failedAddon)), 'POST');
        $log = $capsule->getQueryLog();
        $capsule->disableQueryLog();

        $explained = 0;
        foreach ($log as $q) {
            if (stripos(ltrim($q['query']), 'select') !== 0 || stripos($q['query'], 'information_schema') !== false
                || stripos($q['query'], 'UTC_TIMESTAMP(), ') !== false) {
                continue;
            }
            $this->assertStringNotContainsStringIgnoringCase(' offset ', $q['query']);
            foreach ($this->select('EXPLAIN ' . $q['query'], $q['bindings']) as $row) {
                $explained++;
                $table = (string) $row->table;
                if (in_array($table, array('tblproducts', 'p', 'tblcustomfields', 'f', 'mod_jetpack_holds'), true) || $row->type === null) {
                    continue; // the product catalogue and its fields, the accounts on hold: a handful of rows
                }
                if (strpos($table, '<derived') === 0) {
                    continue; // a subquery's result, bounded by its LIMIT (its own row is checked here too)
                }
                $this->assertNotSame('ALL', $row->type, "full scan of $table in: {$q['query']}");
                if (in_array($table, array('mod_jetpack_jobs', 'j', 'k', 'mod_jetpack_drift', 'd', 'mod_jetpack_watch'), true)) {
                    $this->assertNotNull($row->key, "no index on $table in: {$q['query']}");
                }
            }
        }
        $this->assertGreaterThan(30, $explained);
        $counts = Queries::watchCounts();
        $this->assertSame(array(100000, 20000, false), array($counts['sites'], $counts['sampled'], $counts['complete']));
        $this->assertSame(400, $counts['drifting'], 'one in 50 of the 20,000 due next');
    }
}
