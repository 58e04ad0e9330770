<?php

namespace JetpackTests;

use JetpackTests\Support\DashboardSeed;
use JetpackTests\Support\DatabaseTestCase;
use WHMCS\Module\Addon\JetpackQueue\Page;

/**
 * The queue page's "Deleted services" (issue 21, point 3): the plans of deleted services and
 * addons waiting out the deletion grace period, with their client, site, plan and cancel time,
 * and Cancel now / Keep the plan, each recorded as one request (with the client) for the worker
 * to decide, only while the terminate is still in its grace period.
 */
final class DashboardDeletionsTest extends DatabaseTestCase
{
    const LINK = 'addonmodules.php?module=jetpack_queue';
    const TOKEN = 'test-csrf-token';

    protected function setUp(): void
    {
        parent::setUp();
        $GLOBALS['jetpack_test_csrf'] = self::TOKEN;
        (new DashboardSeed($this->pdo()))->workersTable();
    }

    private function render(array $post = array())
    {
        return Page::render(array('modulelink' => self::LINK), array(), $post, count($post) > 0 ? 'POST' : 'GET');
    }

    private function post(array $post)
    {
        return $this->render($post + array('token' => self::TOKEN));
    }

    /**
     * A deleted target's terminate as the worker queues it: due (and in its grace period)
     * $graceIn seconds from now, with the hook's applied `deleted` request naming the client
     * and the ledger row the worker keeps until the cancel.
     *
     * @return int the job's id
     */
    private function deletion($serviceId, $addonId, $graceIn, $client = 9, $site = 'https://wrong-client.example/')
    {
        $this->exec(
            "INSERT INTO mod_jetpack_jobs (service_id, addon_id, action, state, run_at, grace_until, requested_by,
                 created_at, updated_at)
             VALUES (?, ?, 'terminate', 'queued', UTC_TIMESTAMP(6) + INTERVAL ? SECOND,
                 UTC_TIMESTAMP(6) + INTERVAL ? SECOND, 'hook', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
            array($serviceId, $addonId, $graceIn, $graceIn)
        );
        $job = (int) $this->pdo()->lastInsertId();
        $this->exec(
            "INSERT INTO mod_jetpack_requests (service_id, addon_id, action, requested_by, created_at, applied_at, job_id,
                 decision, client_id)
             VALUES (?, ?, 'deleted', 'hook', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), ?, 'queued terminate', ?)",
            array($serviceId, $addonId, $job, $client)
        );
        $this->exec(
            "INSERT INTO mod_jetpack_ledger (service_id, addon_id, site, plan, pending, since, updated_at, job_id)
             VALUES (?, ?, ?, 'premium', 0, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 1)",
            array($serviceId, $addonId, $site)
        );
        return $job;
    }

    /** @return string the row of a listed deletion */
    private function row($html, $job)
    {
        $this->assertSame(1, preg_match('/<tr data-deletion="' . $job . '">(.*?)<\/tr>/s', $html, $m), "job $job listed");
        return $m[1];
    }

    public function testThePlansInTheirGracePeriodAreListedWithClientSitePlanAndTime(): void
    {
        $service = $this->deletion(4001, 0, 6 * 3600);
        $addon = $this->deletion(4002, 77, 3600, 12, 'addon.example');
        // Not listed: a grace period over (it is due, the worker runs it), an ordinary queued terminate.
        $this->deletion(4003, 0, -10);
        $this->exec("INSERT INTO mod_jetpack_jobs (service_id, addon_id, action, state, run_at, requested_by, created_at, updated_at)
                     VALUES (4004, 0, 'terminate', 'queued', UTC_TIMESTAMP(6) + INTERVAL 1 HOUR, 'module', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))");

        $html = $this->render();

        $this->assertStringContainsString('<h2 id="jq-deletions-title">Deleted services</h2>', $html);
        $this->assertSame(2, substr_count($html, '<tr data-deletion='), 'the two in their grace period');
        $this->assertLessThan(strpos($html, 'data-deletion="' . $service . '"'), strpos($html, 'data-deletion="' . $addon . '"'),
            'the soonest cancel first');
        $row = $this->row($html, $service);
        $this->assertStringContainsString('<td>Service #4001 (deleted)</td>', $row);
        $this->assertStringContainsString('<a href="clientssummary.php?userid=9">#9</a>', $row);
        $this->assertStringContainsString('<td>https://wrong-client.example/</td><td>premium</td>', $row);
        $this->assertMatchesRegularExpression('/<td>\d{4}-\d\d-\d\d [\d:]{8} UTC \(in 5 h 59 min\)<\/td>/', $row);
        $this->assertStringContainsString('name="jq_action" value="cancel_now"', $row);
        $this->assertStringContainsString('name="jq_action" value="keep_plan"', $row);
        $this->assertStringContainsString('<input type="hidden" name="job" value="' . $service . '">', $row);
        $this->assertStringContainsString('<td>Addon #77 on service #4002 (deleted)</td>', $this->row($html, $addon));
    }

    public function testKeepThePlanRecordsOneRequestWithTheClient(): void
    {
        $job = $this->deletion(4001, 0, 3600);

        $html = $this->post(array('jq_action' => 'keep_plan', 'job' => (string) $job));

        $this->assertStringContainsString('Keep the plan requested for deleted service 4001', $html);
        $mine = $this->select("SELECT service_id, addon_id, action, requested_by, client_id, applied_at
                               FROM mod_jetpack_requests WHERE action = 'keep_plan'");
        $this->assertCount(1, $mine);
        $this->assertSame(array(4001, 0, 'admin', 9, null), array((int) $mine[0]->service_id, (int) $mine[0]->addon_id,
            $mine[0]->requested_by, (int) $mine[0]->client_id, $mine[0]->applied_at));
        $this->assertSame('queued', $this->jobs(4001)[0]->state, 'the worker decides, the page only records');
        $this->assertSame(
            array('Jetpack Provisioning Queue: Keep the plan requested for deleted service 4001 (request #' . $this->scalar(
                "SELECT id FROM mod_jetpack_requests WHERE action = 'keep_plan'") . ')'),
            array_column($GLOBALS['jetpack_test_activity'], 'description')
        );
    }

    public function testCancelNowRecordsOneRequestForTheAddon(): void
    {
        $job = $this->deletion(4002, 77, 3600, 12);

        $html = $this->post(array('jq_action' => 'cancel_now', 'job' => (string) $job));

        $this->assertStringContainsString('Cancel now requested for deleted addon 77 on service 4002', $html);
        $mine = $this->select("SELECT service_id, addon_id, requested_by, client_id FROM mod_jetpack_requests WHERE action = 'cancel_now'");
        $this->assertSame(array(array(4002, 77, 'admin', 12)), array_map(function ($r) {
            return array((int) $r->service_id, (int) $r->addon_id, $r->requested_by, (int) $r->client_id);
        }, $mine));
    }

    public function testAnAddonDeletedOnItsOwnNamesItsParentsClient(): void
    {
        // The sweep found it (no hook, so no client on its request); its service is still there.
        $parent = $this->service($this->product(), null, array('status' => 'Active', 'userid' => 31));
        $job = $this->deletion($parent, 88, 3600, null);
        $this->exec("UPDATE mod_jetpack_requests SET client_id = NULL, requested_by = 'adopt'");

        $html = $this->render();
        $this->assertStringContainsString('<a href="clientssummary.php?userid=31">#31</a>', $this->row($html, $job));
        $this->post(array('jq_action' => 'keep_plan', 'job' => (string) $job));
        $this->assertSame(31, (int) $this->scalar("SELECT client_id FROM mod_jetpack_requests WHERE action = 'keep_plan'"));
    }

    public function testNothingIsRecordedOnceTheGracePeriodIsOverOrWithoutTheToken(): void
    {
        $over = $this->deletion(4003, 0, -10);
        $job = $this->deletion(4001, 0, 3600);

        $html = $this->post(array('jq_action' => 'keep_plan', 'job' => (string) $over));
        $this->assertStringContainsString('Nothing to do: job #' . $over . ' no longer waits for its grace period', $html);
        $this->render(array('jq_action' => 'cancel_now', 'job' => (string) $job));
        $this->render(array('jq_action' => 'cancel_now', 'job' => (string) $job, 'token' => 'forged'));
        $this->post(array('jq_action' => 'cancel_now', 'job' => 'x'));

        $this->assertSame(0, (int) $this->scalar("SELECT COUNT(*) FROM mod_jetpack_requests WHERE action IN ('cancel_now', 'keep_plan')"));
    }

    public function testWithoutDeletionsOrWithAnOlderWorkerTheSectionSaysSo(): void
    {
        $this->assertStringContainsString('id="jq-deletions-empty"', $this->render());
        $this->exec('ALTER TABLE mod_jetpack_jobs DROP COLUMN grace_until');
        $html = $this->render();
        $this->assertStringContainsString('id="jq-deletions-none"', $html);
        $this->assertStringContainsString('id="jq-jobs"', $html, 'the rest of the page still shows');
    }

    public function testTheListIsReadByIndexes(): void
    {
        for ($i = 0; $i < 200; $i++) {
            $this->exec("INSERT INTO mod_jetpack_jobs (service_id, addon_id, action, state, run_at, requested_by, created_at,
                             updated_at, finished_at)
                         VALUES (?, 0, 'provision', 'done', UTC_TIMESTAMP(6), 'module', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6),
                             UTC_TIMESTAMP(6))", array(5000 + $i));
        }
        $this->deletion(4001, 0, 3600);
        $this->exec('ANALYZE TABLE mod_jetpack_jobs, mod_jetpack_requests, mod_jetpack_ledger');
        $plan = $this->select("EXPLAIN SELECT id, service_id, addon_id, grace_until FROM mod_jetpack_jobs
                               WHERE grace_until > UTC_TIMESTAMP(6) AND state = 'queued' ORDER BY grace_until, id LIMIT 100");
        $this->assertNotContains($plan[0]->type, array('ALL', 'index'), json_encode($plan));
        $this->assertStringContainsString('grace', (string) $plan[0]->key, json_encode($plan));
    }
}
