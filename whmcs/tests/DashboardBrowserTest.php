<?php

namespace JetpackTests;

use JetpackTests\Support\DashboardSeed;
use JetpackTests\Support\DatabaseTestCase;

/**
 * The queue dashboard in a real browser: Debian's chromium (headless) loads the page from PHP's
 * built-in server (Support/dashboard_router.php: a minimal admin frame calling
 * jetpack_queue_output) on this test's database. It reads the rendered DOM for the counts, the
 * reconciler's drifts, a filter applied through the URL, and a bulk Retry (a form POSTed by the
 * browser) that changes what the page counts; the page refreshing itself, a failed row's Retry
 * clicked, a partner account held and resumed with the page's buttons, a deleted service's plan
 * kept with its Keep the plan button; it takes a screenshot
 * (docs/dashboard.png with JETPACK_UPDATE_SCREENSHOT=1).
 * scripts/test installs chromium; without it this test is skipped.
 */
final class DashboardBrowserTest extends DatabaseTestCase
{
    const TOKEN = 'browser-test-token';

    /** @var resource|null */
    private $server;

    /** @var string */
    private $base;

    /** @var string */
    private $profile;

    protected function tearDown(): void
    {
        if (is_resource($this->server)) {
            proc_terminate($this->server);
            proc_close($this->server);
        }
        if ($this->profile !== null) {
            exec('rm -rf ' . escapeshellarg($this->profile));
        }
        parent::tearDown();
    }

    private function chromium()
    {
        $path = trim((string) shell_exec('command -v chromium 2>/dev/null'));
        if ($path === '') {
            $this->markTestSkipped('chromium is not installed (scripts/test installs it)');
        }
        return $path;
    }

    private function startServer()
    {
        $sock = stream_socket_server('tcp://127.0.0.1:0');
        $port = (int) substr(strrchr(stream_socket_get_name($sock, false), ':'), 1);
        fclose($sock);
        $this->server = proc_open(
            array(PHP_BINARY, '-S', '127.0.0.1:' . $port, JETPACK_REPO_ROOT . '/whmcs/tests/Support/dashboard_router.php'),
            array(0 => array('file', '/dev/null', 'r'), 1 => array('file', '/dev/null', 'w'), 2 => array('file', '/dev/null', 'w')),
            $pipes,
            JETPACK_REPO_ROOT,
            array(
                'PATH' => (string) getenv('PATH'),
                'DATABASE_URL' => (string) getenv('DATABASE_URL'),
                'JETPACK_DASH_DB' => $this->database,
                'JETPACK_DASH_TOKEN' => self::TOKEN,
            )
        );
        $this->base = 'http://127.0.0.1:' . $port;
        $deadline = microtime(true) + 10;
        while (microtime(true) < $deadline) {
            $c = @fsockopen('127.0.0.1', $port, $errno, $errstr, 0.2);
            if ($c !== false) {
                fclose($c);
                return;
            }
            usleep(50000);
        }
        $this->fail('php -S did not start');
    }

    /**
     * @param string $path  the URL path and query
     * @param array  $extra chromium options
     *
     * @return string the DOM after load (scripts run, form submissions followed)
     */
    private function browse($path, array $extra = array(), $budgetMs = 5000)
    {
        $this->profile = $this->profile ?? sys_get_temp_dir() . '/jp-chromium-' . bin2hex(random_bytes(4));
        // `timeout`: a page that never settles fails the test instead of hanging it.
        $cmd = array_merge(array(
            'timeout', '60', $this->chromium(), '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
            '--no-first-run', '--user-data-dir=' . $this->profile, '--virtual-time-budget=' . (int) $budgetMs,
        ), count($extra) === 0 ? array('--dump-dom') : $extra, array($this->base . $path));
        $p = proc_open($cmd, array(0 => array('file', '/dev/null', 'r'), 1 => array('pipe', 'w'), 2 => array('file', '/dev/null', 'w')), $pipes);
        $dom = stream_get_contents($pipes[1]);
        fclose($pipes[1]);
        proc_close($p);
        return (string) $dom;
    }

    private function stateCount($dom, $state)
    {
        $this->assertSame(1, preg_match('/<td data-state="' . $state . '"><a [^>]*>(\d+)<\/a>/', $dom, $m), "$state in the DOM");
        return (int) $m[1];
    }

    public function testTheDashboardInChromium(): void
    {
        $this->chromium();
        $seed = new DashboardSeed($this->pdo());
        $seed->workersTable();
        $seed->client(7, 'Ada', 'Lovelace', 'ada@example.org');
        $product = $this->product();
        $failed = array();
        foreach (array('https://shop.example/', 'https://blog.example/<script>alert(1)</script>', 'https://news.example/') as $i => $site) {
            $s = $this->service($product, $this->validValues($site), array('status' => 'Active'));
            $this->exec('UPDATE tblhosting SET domain = ? WHERE id = ?', array(parse_url($site, PHP_URL_HOST), $s));
            $seed->job($s, array('state' => 'failed', 'attempts' => 8, 'max_attempts' => 8, 'finished_ago' => 3600 * (2 + $i),
                'last_error' => "JETPACK MODULE: Service ID: $s - the partner API answered HTTP 503 <b>Service Unavailable</b>"));
            $failed[] = $s;
        }
        // A product addon on the first of them, whose own provision failed too.
        $addon = $this->addon($this->addonDefinition(), $failed[0], null, array('status' => 'Active'));
        $seed->job($failed[0], array('state' => 'failed', 'addon_id' => $addon, 'attempts' => 8, 'max_attempts' => 8,
            'finished_ago' => 1800, 'last_error' => "JETPACK MODULE: Addon ID: $addon (Service ID: {$failed[0]}) - the partner API answered HTTP 401"));
        for ($i = 0; $i < 12; $i++) {
            $s = $this->service($product, $this->validValues('https://site' . ($i + 1) . '.example/'), array('status' => 'Active'));
            $seed->job($s, array('state' => 'done', 'attempts' => 1, 'finished_ago' => 1800 * $i, 'created_ago' => 1800 * $i + 20));
        }
        $q = $this->service($product, $this->validValues('https://new-order.example/'));
        $seed->job($q, array('state' => 'queued', 'run_in' => -400));
        $w = $this->service($product, $this->validValues('https://waiting-dns.example/'), array('status' => 'Active'));
        $seed->job($w, array('state' => 'waiting_dns', 'dns_checks' => 5, 'waiting_since_ago' => 5 * 3600, 'run_in' => 1200));
        $seed->worker('worker-1.example:4242', 300, false);
        // The reconciler found the first service's plan missing, and a plan back on the addon's site.
        $this->exec("INSERT INTO mod_jetpack_drift (service_id, addon_id, site, expected, found, done, created_at) VALUES
                     (?, 0, 'https://shop.example/', 'the premium plan', 'none', 'reported', UTC_TIMESTAMP(6) - INTERVAL 2 HOUR),
                     (?, ?, 'https://blog.example/<script>alert(2)</script>', 'no personal plan (cancelled)', 'jetpack_personal',
                      'cancel requested', UTC_TIMESTAMP(6) - INTERVAL 1 HOUR)", array($failed[0], $failed[0], $addon));
        $this->exec("INSERT INTO mod_jetpack_watch (service_id, addon_id, site, plan, expect, next_check_at, seen, updated_at) VALUES
                     (?, 0, 'https://shop.example/', 'premium', 'holds', UTC_TIMESTAMP(6), 'missing', UTC_TIMESTAMP(6)),
                     (?, 0, 'https://news.example/', 'premium', 'holds', UTC_TIMESTAMP(6), 'fine', UTC_TIMESTAMP(6))",
            array($failed[0], $failed[2]));
        $this->startServer();

        $dom = $this->browse('/addonmodules.php?module=jetpack_queue');
        $this->assertStringContainsString('Jetpack Provisioning Queue', $dom);
        $this->assertSame(4, $this->stateCount($dom, 'failed'));
        $this->assertSame(12, $this->stateCount($dom, 'done'));
        $this->assertSame(1, $this->stateCount($dom, 'queued'));
        $this->assertSame(1, $this->stateCount($dom, 'waiting_dns'));
        $this->assertStringContainsString('jobs are queued but no jetpack-worker is running', $dom);
        $this->assertStringContainsString('<svg class="jq-chart"', $dom);
        $this->assertStringNotContainsString('<script>alert', $dom, 'the hostile Site URL stays text');
        $this->assertSame(1, preg_match('/id="jq-pending">0</', $dom));
        $this->assertSame(18, preg_match_all('/<tr data-job="\d+">/', $dom));
        $this->assertStringContainsString('>Addon #' . $addon . '</a> on service <a ', $dom, 'the addon\'s job names its target');
        $this->assertSame(2, preg_match_all('/<tr data-drift="\d+">/', $dom), 'the drift section lists both drifts');
        $this->assertSame(1, preg_match('/<tr data-drift="\d+"><td><a [^>]*>Addon #' . $addon . '<\/a> on service <a [^>]*>#'
            . $failed[0] . '<\/a><\/td><td>https:\/\/blog.example\/&lt;script&gt;alert\(2\)&lt;\/script&gt;<\/td>'
            . '<td>no personal plan \(cancelled\)<\/td><td>jetpack_personal<\/td><td>cancel requested<\/td>/', $dom), 'newest first');
        $this->assertSame(1, preg_match('/id="jq-watched">2<\/span>; seen drifting now: <span id="jq-drifting">1</', $dom));
        $this->assertSame(1, preg_match('/<table class="table" id="jq-dns">.*?<td>https:\/\/waiting-dns\.example\/<\/td>/s', $dom),
            'the site of a standalone product\'s plan waiting on DNS');

        $filtered = $this->browse('/addonmodules.php?module=jetpack_queue&state=failed');
        $this->assertSame(4, preg_match_all('/<tr data-job="\d+">/', $filtered));
        $this->assertSame(4, preg_match_all('/<td class="jq-state-failed">Failed<\/td>/', $filtered));
        $this->assertStringContainsString('<option value="failed" selected="">Failed</option>', $filtered);

        // The browser POSTs "Retry all failed" with the session's token.
        $after = $this->browse('/autopost?jq_action=retry_all');
        $this->assertStringContainsString('Retry requested for 3 services and 1 addon', $after);
        $this->assertSame(1, preg_match('/id="jq-pending">4</', $after), 'the page counts the requests now waiting');
        $this->assertSame(
            array(array($failed[0], 0), array($failed[0], $addon), array($failed[1], 0), array($failed[2], 0)),
            array_map(function ($r) {
                return array((int) $r->service_id, (int) $r->addon_id);
            }, $this->requests())
        );

        // What jetpack-worker does with them (src/lifecycle.rs: a retry of a failed latest job
        // requeues it, due now, and marks the request applied): then the page counts 0 failed.
        foreach ($this->requests() as $r) {
            $job = (int) $this->scalar("SELECT MAX(id) FROM mod_jetpack_jobs WHERE service_id = ? AND addon_id = ?", array($r->service_id, $r->addon_id));
            $this->exec("UPDATE mod_jetpack_jobs SET state = 'queued', attempts = 0, max_attempts = NULL, finished_at = NULL,
                         run_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6) WHERE id = ? AND state = 'failed'", array($job));
            $this->exec("UPDATE mod_jetpack_requests SET applied_at = UTC_TIMESTAMP(6), job_id = ?, decision = 'requeued' WHERE id = ?",
                array($job, $r->id));
        }
        $requeued = $this->browse('/addonmodules.php?module=jetpack_queue');
        $this->assertSame(0, $this->stateCount($requeued, 'failed'));
        $this->assertSame(5, $this->stateCount($requeued, 'queued'));

        // It refreshes itself: over 25 s (virtual time) the live part was fetched again.
        $refreshed = $this->browse('/addonmodules.php?module=jetpack_queue', array(), 25000);
        $this->assertSame(1, preg_match('/<div id="jq-live" data-refreshes="(\d+)"/', $refreshed, $m), 'refreshed');
        $this->assertGreaterThanOrEqual(2, (int) $m[1]);
        $this->assertSame(5, $this->stateCount($refreshed, 'queued'), 'the refreshed part is the page');
        $this->assertStringContainsString('<input type="checkbox" id="jq-refresh-toggle" checked="">', $refreshed);

        // Retry one: the admin clicks the Retry of one failed row.
        $this->exec('DELETE FROM mod_jetpack_requests');
        $this->exec("UPDATE mod_jetpack_jobs SET state = 'failed', finished_at = UTC_TIMESTAMP(6) WHERE service_id = ? AND addon_id = 0",
            array($failed[1]));
        $job = (int) $this->scalar('SELECT MAX(id) FROM mod_jetpack_jobs WHERE service_id = ? AND addon_id = 0', array($failed[1]));
        $one = $this->browse('/addonmodules.php?module=jetpack_queue&click=' . rawurlencode('tr[data-job="' . $job . '"] .jq-retry-row'));
        $this->assertStringContainsString('Retry requested for 1 service;', $one);
        $this->assertSame(array(array($failed[1], 0)), array_map(function ($r) {
            return array((int) $r->service_id, (int) $r->addon_id);
        }, $this->requests()));

        // Hold, then Resume, the partner account (the product's Client ID) with the page's buttons.
        $held = $this->browse('/addonmodules.php?module=jetpack_queue&click=' . rawurlencode('#jq-hold button')
            . '&fill%5Baccount%5D=demo-client&fill%5Breason%5D=' . rawurlencode('rotating credentials'));
        $this->assertStringContainsString('Partner account demo-client is on hold', $held);
        $this->assertSame(1, preg_match('/<tr data-hold="demo-client"><td>demo-client<\/td>.*?<td>rotating credentials<\/td>/', $held));
        $this->assertSame(array('demo-client'), array_map(function ($r) {
            return $r->account;
        }, $this->select('SELECT account FROM mod_jetpack_holds')));
        $resumed = $this->browse('/addonmodules.php?module=jetpack_queue&click=' . rawurlencode('tr[data-hold="demo-client"] button'));
        $this->assertStringContainsString('Partner account demo-client resumed', $resumed);
        $this->assertStringContainsString('id="jq-holds-empty"', $resumed);
        $this->assertSame(0, (int) $this->scalar('SELECT COUNT(*) FROM mod_jetpack_holds'));

        // A service deleted for the wrong client: its plan waits out the grace period, listed
        // under Deleted services; the admin clicks Keep the plan.
        $this->exec("INSERT INTO mod_jetpack_jobs (service_id, addon_id, action, state, run_at, grace_until, requested_by,
                         created_at, updated_at)
                     VALUES (9001, 0, 'terminate', 'queued', UTC_TIMESTAMP(6) + INTERVAL 20 HOUR,
                         UTC_TIMESTAMP(6) + INTERVAL 20 HOUR, 'hook', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))");
        $grace = (int) $this->pdo()->lastInsertId();
        $this->exec("INSERT INTO mod_jetpack_requests (service_id, addon_id, action, requested_by, created_at, applied_at,
                         job_id, decision, client_id)
                     VALUES (9001, 0, 'deleted', 'hook', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), ?, 'queued terminate', 7)",
            array($grace));
        $this->exec("INSERT INTO mod_jetpack_ledger (service_id, addon_id, site, plan, pending, since, updated_at, job_id)
                     VALUES (9001, 0, 'https://wrong-client.example/', 'premium', 0, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 1)");
        $listed = $this->browse('/addonmodules.php?module=jetpack_queue');
        $this->assertSame(1, preg_match('/<tr data-deletion="' . $grace . '">.*?<td>https:\/\/wrong-client\.example\/<\/td>'
            . '<td>premium<\/td>/s', $listed), 'listed under Deleted services');
        $kept = $this->browse('/addonmodules.php?module=jetpack_queue&click='
            . rawurlencode('tr[data-deletion="' . $grace . '"] .jq-keep_plan'));
        $this->assertStringContainsString('Keep the plan requested for deleted service 9001', $kept);
        $this->assertSame(array(array(9001, 'keep_plan', 'admin', 7)), array_map(function ($r) {
            return array((int) $r->service_id, $r->action, $r->requested_by, (int) $r->client_id);
        }, $this->select("SELECT service_id, action, requested_by, client_id FROM mod_jetpack_requests WHERE action = 'keep_plan'")));

        // The screenshot for the README: the page before the retry, with a worker seen just now,
        // a partner account on hold and a deleted service's plan in its grace period.
        foreach ($failed as $i => $s) {
            $this->exec("UPDATE mod_jetpack_jobs SET state = 'failed', finished_at = UTC_TIMESTAMP(6) - INTERVAL ? HOUR WHERE service_id = ?", array(2 + $i, $s));
        }
        $this->exec("DELETE FROM mod_jetpack_requests WHERE action <> 'deleted'");
        $seed->worker('worker-1.example:4242', 2, false, 1);
        $this->exec("INSERT INTO mod_jetpack_holds (account, held_at, held_by, reason)
                     VALUES ('partner-eu-2', UTC_TIMESTAMP(6) - INTERVAL 20 MINUTE, 'admin:1', 'rotating credentials')");
        // Into a temporary file; JETPACK_UPDATE_SCREENSHOT=1 writes docs/dashboard.png (the
        // README's) instead, so a test run leaves the checkout as it was.
        $shot = getenv('JETPACK_UPDATE_SCREENSHOT') === '1'
            ? JETPACK_REPO_ROOT . '/docs/dashboard.png'
            : sys_get_temp_dir() . '/jetpack-dashboard-' . getmypid() . '.png';
        @mkdir(dirname($shot), 0755, true);
        @unlink($shot);
        $this->browse('/addonmodules.php?module=jetpack_queue', array('--screenshot=' . $shot, '--window-size=1280,1800', '--hide-scrollbars'));
        $this->assertFileExists($shot);
        $this->assertSame("\x89PNG", substr((string) file_get_contents($shot), 0, 4));
        if (getenv('JETPACK_UPDATE_SCREENSHOT') !== '1') {
            unlink($shot);
        }
    }
}
