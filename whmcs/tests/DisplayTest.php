<?php

namespace JetpackTests;

use JetpackTests\Support\DatabaseTestCase;
use JetpackTests\Support\Whmcs;
use WHMCS\Module\Server\Jetpack\Display;
use WHMCS\Module\Server\Jetpack\Messages;

/**
 * What admins see on the service's tab (jetpack_AdminServicesTabFields: the latest job, the
 * requests jetpack-worker has not applied yet, its decision on the last one, the ledger's plans)
 * and what clients see on the service's overview (jetpack_ClientArea +
 * templates/clientarea.tpl).
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
        $this->exec(
            "INSERT INTO mod_jetpack_jobs (service_id, action, state, run_at, requested_by, created_at, updated_at)
             VALUES (?, 'provision', 'queued', UTC_TIMESTAMP(6), 'module', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
            array($service)
        );
        $job = $this->jobs($service)[0];

        $fields = jetpack_AdminServicesTabFields(Whmcs::params($service));

        $this->assertSame('#' . $job->id . ' provision: queued (requested by module)', $fields['Jetpack Job']);
        $this->assertSame("0 (budget: the worker&#039;s JETPACK_MAX_ATTEMPTS)", $fields['Jetpack Attempts']);
        $this->assertSame(substr($job->run_at, 0, 19) . ' UTC (due now)', $fields['Jetpack Next Attempt']);
        $this->assertSame('—', $fields['Jetpack Last Error']);
        $this->assertArrayNotHasKey('Jetpack Result', $fields);
        $this->assertArrayNotHasKey('Jetpack Requests', $fields, 'none waiting');
        $this->assertArrayNotHasKey('Jetpack Last Request', $fields);
        $this->assertSame('none recorded by jetpack-worker', $fields['Jetpack Plans']);
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
        $this->exec(
            "INSERT INTO mod_jetpack_jobs (service_id, action, state, attempts, run_at, lease_token, lease_expires_at,
                 follow_up, requested_by, created_at, updated_at)
             VALUES (?, 'provision', 'running', 1, UTC_TIMESTAMP(6), 'b:1', '2026-11-24 10:00:00.5', 'terminate',
                 'module', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
            array($service)
        );

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

    public function testAdminTabListsTheRequestsNotYetAppliedOldestFirst(): void
    {
        $product = $this->product();
        $service = $this->service($product);
        $other = $this->service($product);
        $applied = $this->request($service, 'provision', 'module', '2026-12-01 09:00:00', null, 'superseded');
        jetpack_CreateAccount(Whmcs::params($service));
        jetpack_TerminateAccount(Whmcs::params($service));
        jetpack_CreateAccount(Whmcs::params($other));
        $requests = $this->requests($service);

        $fields = jetpack_AdminServicesTabFields(Whmcs::params($service));

        $this->assertSame('none yet: jetpack-worker has not applied the requests below yet', $fields['Jetpack Job']);
        $this->assertSame(
            '#' . $requests[1]->id . ' provision requested by module at ' . substr($requests[1]->created_at, 0, 19)
            . ' UTC, waiting for jetpack-worker<br />'
            . '#' . $requests[2]->id . ' terminate requested by module at ' . substr($requests[2]->created_at, 0, 19)
            . ' UTC, waiting for jetpack-worker',
            $fields['Jetpack Requests']
        );
        $this->assertStringStartsWith('#' . $applied . ' provision', $fields['Jetpack Last Request']);
    }

    public function testAdminTabShowsTenWaitingRequestsAndSaysThereAreMore(): void
    {
        $service = $this->service($this->product());
        for ($i = 0; $i < 12; $i++) {
            $this->request($service, 'provision', 'hook');
        }

        $lines = explode('<br />', jetpack_AdminServicesTabFields(Whmcs::params($service))['Jetpack Requests']);

        $this->assertCount(11, $lines);
        $this->assertSame('and more, waiting for jetpack-worker', $lines[10]);
    }

    public function testAdminTabShowsTheLastAppliedRequestAndTheWorkersDecisionEscaped(): void
    {
        $service = $this->service($this->product());
        $this->request($service, 'provision', 'module', '2026-12-01 09:00:00.25', 3, 'first');
        $latest = $this->request($service, 'retry', 'admin', '2026-12-01 10:11:12.5', 4, 'job #4 requeued <b>now</b> & "fresh"');
        $this->request($service, 'terminate', 'module');
        $created = $this->scalar('SELECT created_at FROM mod_jetpack_requests WHERE id = ?', array($latest));

        $fields = jetpack_AdminServicesTabFields(Whmcs::params($service));

        $this->assertSame(
            '#' . $latest . ' retry requested by admin at ' . substr($created, 0, 19) . ' UTC, applied at '
            . '2026-12-01 10:11:12 UTC (job #4): job #4 requeued &lt;b&gt;now&lt;/b&gt; &amp; &quot;fresh&quot;',
            $fields['Jetpack Last Request']
        );
        $this->assertStringContainsString(' terminate requested by module ', $fields['Jetpack Requests']);
    }

    public function testAdminTabShowsWhatTheLedgerHolds(): void
    {
        $service = $this->service($this->product(), $this->validValues('HTTPS://Example.com/'));
        $this->ledgerRow($service, 'example.com', 'premium', 0, 5);
        $this->ledgerRow($service, 'waiting.example', 'jetpack-backup-daily', 1, 6);
        $this->ledgerRow($this->service($this->product()), 'someone-else.example', 'free');

        $fields = jetpack_AdminServicesTabFields(Whmcs::params($service));

        $this->assertSame('none', $fields['Jetpack Job'], 'its jobs were pruned');
        $plans = $fields['Jetpack Plans'];
        $lines = explode('<br />', $plans);
        $this->assertCount(3, $lines, $plans);
        $this->assertMatchesRegularExpression('/^premium on example\.com since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(job #5\)$/', $lines[0]);
        $this->assertStringStartsWith('jetpack-backup-daily on waiting.example since ', $lines[1]);
        $this->assertStringEndsWith(' (job #6), waiting on DNS', $lines[1]);
        // The Site URL reads https://example.com/ in other letters: the same site, no warning.
        $this->assertSame(
            'the Site URL now reads HTTPS://Example.com/; a terminate cancels the plan on waiting.example, where it was provisioned',
            $lines[2]
        );
    }

    public function testAdminTabWarnsWhenTheSiteUrlNoLongerNamesTheProvisionedSiteEscaped(): void
    {
        $service = $this->service($this->product(), $this->validValues('https://new.example/<b>'));
        $this->ledgerRow($service, 'old.example/"blog"', 'premium');

        $plans = jetpack_AdminServicesTabFields(Whmcs::params($service))['Jetpack Plans'];

        $this->assertStringEndsWith(
            '<br />the Site URL now reads https://new.example/&lt;b&gt;; a terminate cancels the plan on '
            . 'old.example/&quot;blog&quot;, where it was provisioned',
            $plans
        );
    }

    public function testAdminTabWarnsWhenTheSiteUrlIsEmptyNow(): void
    {
        $service = $this->service($this->product());
        $this->updateValue($service, 'Site URL', '');
        $this->ledgerRow($service, 'example.com', 'premium');

        $plans = jetpack_AdminServicesTabFields(Whmcs::params($service))['Jetpack Plans'];

        $this->assertStringEndsWith(
            '<br />the Site URL is now empty; a terminate cancels the plan on example.com, where it was provisioned',
            $plans
        );
    }

    public function testAdminTabQueriesUseTheServiceIndexes(): void
    {
        // Enough rows of other services that a scan would show in EXPLAIN.
        $service = $this->service($this->product(), null, array('status' => 'Active'));
        $requests = array();
        $ledger = array();
        for ($i = 1; $i <= 600; $i++) {
            $requests[] = '(' . ($i % 60 + 1000) . ", 'provision', 'module', UTC_TIMESTAMP(6), "
                . ($i % 3 === 0 ? 'NULL' : 'UTC_TIMESTAMP(6)') . ')';
            $ledger[] = '(' . ($i + 1000) . ", CONCAT('site-', $i, '.example'), 'premium', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 1)";
        }
        $this->exec('INSERT INTO mod_jetpack_requests (service_id, action, requested_by, created_at, applied_at) VALUES '
            . implode(', ', $requests));
        $this->exec('INSERT INTO mod_jetpack_ledger (service_id, site, plan, since, updated_at, job_id) VALUES '
            . implode(', ', $ledger));
        $this->request($service, 'provision', 'module', '2026-12-01 10:00:00', 1, 'queued job #1');
        $this->request($service, 'terminate', 'module');
        $this->ledgerRow($service, 'example.com', 'premium');
        for ($i = 1; $i <= 600; $i++) {
            $this->drift($i % 60 + 1000, $i % 3, 'site-' . $i . '.example');
        }
        $this->drift($service, 0, 'example.com');
        for ($i = 1; $i <= 200; $i++) {
            $this->worker('host-' . $i . ':' . $i . ':ab', 86400 + $i, $i % 2 === 0);
        }
        $this->exec("INSERT INTO mod_jetpack_holds (account, held_at, held_by) VALUES
                     ('demo-client', UTC_TIMESTAMP(6), 'admin'), ('other-a', UTC_TIMESTAMP(6), 'admin'), ('other-b', UTC_TIMESTAMP(6), 'admin')");
        $this->exec('ANALYZE TABLE mod_jetpack_requests, mod_jetpack_ledger, mod_jetpack_jobs, mod_jetpack_workers, mod_jetpack_drift');
        $queries = array();
        $this->capsule->getConnection()->beforeExecuting(function ($sql, $bindings) use (&$queries) {
            if (strpos($sql, 'mod_jetpack_') !== false) {
                $queries[] = array($sql, $bindings);
            }
        });

        jetpack_AdminServicesTabFields(Whmcs::params($service));

        $this->assertCount(9, $queries, 'latest job, waiting requests, last applied request, ledger, latest drift, '
            . 'licences, the partner account\'s hold, addons\' jobs, live worker');
        foreach ($queries as $query) {
            foreach ($this->select('EXPLAIN ' . $query[0], $query[1]) as $plan) {
                $this->assertNotNull($plan->key, $query[0]);
                $this->assertNotContains($plan->type, array('ALL', 'index'), $query[0] . ': ' . json_encode($plan));
            }
        }
    }

    /**
     * A mod_jetpack_drift row as jetpack-worker's reconciler writes it, $ago seconds ago.
     */
    private function drift(int $serviceId, int $addonId, string $site, string $found = 'none', string $done = 'reported', int $ago = 0): void
    {
        $this->exec(
            "INSERT INTO mod_jetpack_drift (service_id, addon_id, site, expected, found, done, created_at)
             VALUES (?, ?, ?, 'the premium plan', ?, ?, UTC_TIMESTAMP(6) - INTERVAL ? SECOND)",
            array($serviceId, $addonId, $site, $found, $done, $ago)
        );
    }

    public function testAdminTabShowsTheTargetsLatestDriftEscaped(): void
    {
        $service = $this->serviceWithJob('done');
        $this->drift($service, 0, 'https://old.example/', 'none', 'reported', 7200);
        $this->drift($service, 0, 'https://a.example/<script>alert(1)</script>', 'jetpack_personal', 'provision requested', 60);
        $this->drift($service, 5, 'https://addon.example/', 'none', 'reported');
        $this->drift($service + 1000, 0, 'https://other.example/', 'none', 'reported');
        $at = substr((string) $this->scalar('SELECT MAX(created_at) FROM mod_jetpack_drift WHERE service_id = ? AND addon_id = 0 AND found <> ?', array($service, 'none')), 0, 19);

        $fields = jetpack_AdminServicesTabFields(Whmcs::params($service));

        $this->assertSame(
            'The reconciler found jetpack_personal on https://a.example/&lt;script&gt;alert(1)&lt;/script&gt; where WHMCS expects '
            . 'the premium plan, at ' . $at . ' UTC, and provision requested',
            $fields['Jetpack Drift']
        );
        $clean = $this->service($this->product());
        $this->assertArrayNotHasKey('Jetpack Drift', jetpack_AdminServicesTabFields(Whmcs::params($clean)), 'no drift, no field');
    }

    public function testAdminTabSaysWhenThePartnerAccountIsOnHold(): void
    {
        $service = $this->serviceWithJob('queued');
        $this->assertArrayNotHasKey('Jetpack Partner Account', jetpack_AdminServicesTabFields(Whmcs::params($service)));
        // Recorded by the queue dashboard's Hold: the product's Client ID (demo-client).
        $this->exec("INSERT INTO mod_jetpack_holds (account, held_at, held_by, reason)
                     VALUES ('demo-client', '2026-12-07 10:00:00', 'admin:3', 'rotating <b>keys</b>'),
                            ('someone-else', '2026-12-07 09:00:00', 'admin:1', '')");

        $fields = jetpack_AdminServicesTabFields(Whmcs::params($service));

        $this->assertSame('On hold since 2026-12-07 10:00:00 UTC by admin:3 (rotating &lt;b&gt;keys&lt;/b&gt;): jetpack-worker '
            . 'leaves this account&#039;s jobs queued, with no partner call, until it is resumed on Addons → Jetpack Provisioning Queue.',
            $fields['Jetpack Partner Account']);
        $this->exec('DROP TABLE mod_jetpack_holds');
        $this->assertArrayNotHasKey('Jetpack Partner Account', jetpack_AdminServicesTabFields(Whmcs::params($service)),
            'an older worker without the table: nothing extra');
    }

    public function testAdminTabShowsNoDriftWithoutTheReconcilersTable(): void
    {
        $service = $this->serviceWithJob('done');
        $this->exec('DROP TABLE mod_jetpack_drift');

        $fields = jetpack_AdminServicesTabFields(Whmcs::params($service));

        $this->assertArrayNotHasKey('Jetpack Drift', $fields);
        $this->assertStringContainsString('provision: done', $fields['Jetpack Job']);
    }

    public function testARequestOfTheReconcilerIsShownWithAWord(): void
    {
        $service = $this->service($this->product());
        $this->exec(
            "INSERT INTO mod_jetpack_jobs (service_id, action, state, run_at, requested_by, created_at, updated_at)
             VALUES (?, 'terminate', 'queued', UTC_TIMESTAMP(6), 'reconcile', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
            array($service)
        );
        $this->request($service, 'terminate', 'reconcile');

        $fields = jetpack_AdminServicesTabFields(Whmcs::params($service));

        $this->assertStringEndsWith('terminate: queued (requested by the reconciler)', $fields['Jetpack Job']);
        $this->assertStringContainsString(' terminate requested by the reconciler at ', $fields['Jetpack Requests']);
    }

    public function testTheRequesterWordsNameEveryRequesterOfTheWorker(): void
    {
        // jetpack-worker's RequestedBy (src/domain.rs): each variant's stored value.
        $domain = (string) file_get_contents(JETPACK_REPO_ROOT . '/src/domain.rs');
        $this->assertSame(1, preg_match('/pub fn as_str\(self\) -> &\'static str \{\s*match self \{(.*?)\}\s*\}/s',
            substr($domain, (int) strpos($domain, 'impl RequestedBy')), $m));
        preg_match_all('/RequestedBy::\w+ => "([a-z_]+)"/', $m[1], $values);
        $this->assertContains('reconcile', $values[1]);
        $this->assertGreaterThanOrEqual(6, count($values[1]));

        $this->assertSame($values[1], array_keys(Display::REQUESTERS), 'the same requesters, in the same order');
        $this->assertSame('the reconciler', Display::requester('reconcile'));
        $this->assertSame('someone-new', Display::requester('someone-new'), 'an unknown value is shown as stored');
    }

    /**
     * A mod_jetpack_workers row as jetpack-worker writes it, last seen $secondsAgo ago.
     */
    private function worker(string $owner, int $secondsAgo, bool $stopped = false): void
    {
        $this->exec(
            "INSERT INTO mod_jetpack_workers (owner, host, pid, version, started_at, last_seen_at, in_flight, stopped_at)
             VALUES (?, 'host', 42, '0.1.0', UTC_TIMESTAMP(6) - INTERVAL 1 DAY,
                 UTC_TIMESTAMP(6) - INTERVAL ? SECOND, 0, IF(?, UTC_TIMESTAMP(6) - INTERVAL ? SECOND, NULL))",
            array($owner, $secondsAgo, $stopped ? 1 : 0, $secondsAgo)
        );
    }

    /**
     * A service whose latest job is in $state.
     */
    private function serviceWithJob(string $state): int
    {
        $service = $this->service($this->product(), null, array('status' => 'Active'));
        $this->exec(
            "INSERT INTO mod_jetpack_jobs (service_id, action, state, run_at, requested_by, created_at, updated_at, finished_at)
             VALUES (?, 'provision', ?, UTC_TIMESTAMP(6), 'module', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6),
                 IF(? IN ('done', 'failed', 'cancelled'), UTC_TIMESTAMP(6), NULL))",
            array($service, $state, $state)
        );
        return $service;
    }

    public function workerRows(): array
    {
        return array(
            'no worker row' => array(array(), true),
            'a worker seen 5 s ago' => array(array(array(5, false)), false),
            'a worker seen 119 s ago' => array(array(array(119, false)), false),
            'a worker seen 3 min ago' => array(array(array(180, false)), true),
            'a worker stopped 5 s ago' => array(array(array(5, true)), true),
            'one stopped, one old, one fresh' => array(array(array(5, true), array(600, false), array(2, false)), false),
        );
    }

    /**
     * @dataProvider workerRows
     */
    public function testAdminTabWarnsWhenAQueuedJobHasNoWorkerSeenForTwoMinutes(array $workers, bool $warned): void
    {
        $service = $this->serviceWithJob('queued');
        foreach ($workers as $i => $worker) {
            $this->worker('host:' . $i . ':ab', $worker[0], $worker[1]);
        }

        $fields = jetpack_AdminServicesTabFields(Whmcs::params($service));

        if ($warned) {
            $this->assertSame('Jetpack Worker', array_keys($fields)[0], 'the warning comes first');
            $this->assertSame(
                '<strong>jobs are queued but no jetpack-worker is running: start it with `systemctl start jetpack-worker`</strong>',
                $fields['Jetpack Worker']
            );
        } else {
            $this->assertArrayNotHasKey('Jetpack Worker', $fields);
        }
        $this->assertStringContainsString('provision: queued', $fields['Jetpack Job']);
    }

    public function jobStates(): array
    {
        return array(
            'queued' => array('queued', true),
            'running' => array('running', true),
            'waiting on DNS' => array('waiting_dns', true),
            'done' => array('done', false),
            'failed' => array('failed', false),
            'cancelled' => array('cancelled', false),
        );
    }

    /**
     * @dataProvider jobStates
     */
    public function testAdminTabWarnsOnlyWhileTheServicesWorkWaits(string $state, bool $warned): void
    {
        $service = $this->serviceWithJob($state);

        $fields = jetpack_AdminServicesTabFields(Whmcs::params($service));

        $this->assertSame($warned, array_key_exists('Jetpack Worker', $fields), json_encode($fields));
    }

    public function testAdminTabWarnsWhenOnlyARequestWaits(): void
    {
        $service = $this->service($this->product());
        $this->request($service, 'provision', 'module');

        $fields = jetpack_AdminServicesTabFields(Whmcs::params($service));

        $this->assertArrayHasKey('Jetpack Worker', $fields);
        $this->assertArrayHasKey('Jetpack Requests', $fields);
    }

    public function testAdminTabShowsNothingExtraWithoutTheWorkersTable(): void
    {
        $service = $this->serviceWithJob('queued');
        $this->exec('DROP TABLE mod_jetpack_workers');

        $fields = jetpack_AdminServicesTabFields(Whmcs::params($service));

        $this->assertArrayNotHasKey('Jetpack Worker', $fields);
        $this->assertStringContainsString('provision: queued', $fields['Jetpack Job']);
        $this->assertStringNotContainsString('mod_jetpack_workers', json_encode($fields));
    }

    public function workerTables(): array
    {
        return array(
            'jobs' => array('mod_jetpack_jobs'),
            'requests' => array('mod_jetpack_requests'),
            'ledger' => array('mod_jetpack_ledger'),
        );
    }

    /**
     * @dataProvider workerTables
     */
    public function testAdminTabSaysWhenTheWorkerTablesAreMissing(string $table): void
    {
        $service = $this->service($this->product());
        $this->exec('DROP TABLE ' . $table);

        $fields = jetpack_AdminServicesTabFields(Whmcs::params($service));

        $this->assertSame(array('Jetpack Job'), array_keys($fields));
        $this->assertStringContainsString('(' . $table . '); run `jetpack-worker migrate`', $fields['Jetpack Job']);
    }

    public function clientViews(): array
    {
        $link = 'https://jetpack.wordpress.com/jetpack.authorize/1/?site=example.com';
        $waitingDns = 'The domain example.com did not resolve when provisioning was attempted, however a Jetpack plan is waiting for it.';
        return array(
            'activation link' => array('URL to Activate Jetpack: ' . $link, $link, null),
            'queued' => array(Messages::queued('provision'), '', Messages::queued('provision')),
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
