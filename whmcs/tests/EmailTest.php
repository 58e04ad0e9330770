<?php

namespace JetpackTests;

use JetpackTests\Support\DatabaseTestCase;
use JetpackTests\Support\Whmcs;
use WHMCS\Database\Capsule;
use WHMCS\Module\Server\Jetpack\Email;

/**
 * The client's "Jetpack Activation" email (lib/Email.php, the AfterCronJob hook in hooks.php):
 * sent once per job through localAPI('SendEmail') after the worker provisioned the plan (a
 * created and an adopted service) or left it waiting on DNS; never for failed jobs,
 * terminates or old history; never twice (two cron runs, two WHMCS servers at once); off by
 * the product setting; a failed send recorded, logged and tried again a bounded number of
 * times; the template created when missing, once; the hook's queries indexed. Job rows are
 * inserted as the worker leaves them.
 */
final class EmailTest extends DatabaseTestCase
{
    const LINK = 'https://wordpress.com/jetpack/connect?plan=premium&site=example.com';

    /** Seconds between the last process being ready and the cron runs. */
    const LEAD = 0.3;

    protected function setUp(): void
    {
        parent::setUp();
        $GLOBALS['jetpack_test_localapi'] = array();
        unset($GLOBALS['jetpack_test_localapi_reply']);
        require_once JETPACK_MODULE_DIR . '/hooks.php';
    }

    protected function tearDown(): void
    {
        unset($GLOBALS['jetpack_test_localapi_reply']);
        parent::tearDown();
    }

    public function testCreatedServiceGetsTheLinkOnceAfterProvisioning(): void
    {
        $service = $this->service($this->product());
        $this->assertSame('success', Whmcs::moduleCall('CreateAccount', $service));
        $this->cron();
        $this->assertCount(0, $this->sends(), 'nothing is sent while the job is only requested');

        $job = $this->doneJob($service);
        $this->ledgerRow($service, 'https://example.com/', 'jetpack_premium', 0, $job);
        $this->cron();
        $this->cron();

        $sends = $this->sends();
        $this->assertCount(1, $sends, 'one email, not one per cron run');
        $this->assertSame('SendEmail', $sends[0]['command']);
        $this->assertSame(Email::TEMPLATE, $sends[0]['values']['messagename']);
        $this->assertSame($service, $sends[0]['values']['id']);
        $this->assertIsString($sends[0]['values']['customvars'], 'base64 of a serialized array, as documented');
        $vars = $sends[0]['customvars'];
        $this->assertSame(htmlspecialchars(self::LINK), $vars['jetpack_activation_url']);
        $this->assertSame('https://example.com/', $vars['jetpack_site']);
        $this->assertSame(0, $vars['jetpack_waiting_dns']);
        $this->assertSame(1, (int) $this->scalar('SELECT COUNT(*) FROM tblemails WHERE userid = 7'));
        $row = $this->emailRow($job, Email::KIND_ACTIVATED);
        $this->assertSame('sent', $row->status);
        $this->assertNotNull($row->sent_at);
        $this->assertNull($row->error);
    }

    /**
     * A Jetpack addon's provision gets the email too: the product template sent for its parent
     * service (the only id SendEmail takes for a product email), with the addon's own link and
     * site; once; not for an addon Terminated meanwhile, nor when its addon's setting is off.
     */
    public function testAnAddonsJobSendsItsOwnEmailForItsParentService(): void
    {
        $service = $this->service($this->product(), null, array('status' => 'Active', 'domain' => 'example.com'));
        $definition = $this->addonDefinition();
        $addon = $this->addon($definition, $service, null, array('status' => 'Active'));
        $addonJob = $this->addonDoneJob($service, $addon, 'https://addon-site.example/');
        $this->cron();
        $this->cron();

        $sends = $this->sends();
        $this->assertCount(1, $sends, 'one email for the addon\'s job');
        $this->assertSame($service, $sends[0]['values']['id'], 'sent for the parent service');
        $this->assertSame('https://addon-site.example/', $sends[0]['customvars']['jetpack_site']);
        $this->assertSame(htmlspecialchars(self::LINK), $sends[0]['customvars']['jetpack_activation_url']);
        $this->assertSame('sent', $this->emailRow($addonJob, Email::KIND_ACTIVATED)->status);

        $terminated = $this->addon($definition, $service, null, array('status' => 'Terminated'));
        $this->addonDoneJob($service, $terminated, 'https://gone.example/');
        $off = $this->addonDefinition(array('settings' => array('configoption5' => 'off')));
        $quiet = $this->addon($off, $service, null, array('status' => 'Active'));
        $this->addonDoneJob($service, $quiet, 'https://quiet.example/');
        $this->cron();

        $this->assertCount(1, $this->sends());
        $reasons = array_column($this->select("SELECT error FROM mod_jetpack_emails WHERE status = 'skipped' ORDER BY job_id"), 'error');
        $this->assertSame(
            array('the addon is Terminated', "the addon's setting \"Send the Jetpack activation email\" is off"),
            $reasons
        );
    }

    /**
     * A done provision of an addon, with the ledger row the worker writes for it.
     *
     * @return int mod_jetpack_jobs.id
     */
    private function addonDoneJob($serviceId, $addonId, $site)
    {
        $job = $this->doneJob($serviceId);
        $this->exec('UPDATE mod_jetpack_jobs SET addon_id = ? WHERE id = ?', array($addonId, $job));
        $this->exec(
            "INSERT INTO mod_jetpack_ledger (service_id, addon_id, site, plan, pending, since, updated_at, job_id)
             VALUES (?, ?, ?, 'jetpack-backup-daily', 0, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), ?)",
            array($serviceId, $addonId, $site, $job)
        );
        return $job;
    }

    public function testAdoptedServiceGetsTheEmail(): void
    {
        // Adopted: no Create ever ran, so WHMCS sent no welcome email at all.
        $service = $this->service($this->product(), null, array('status' => 'Active'));
        $job = $this->doneJob($service, array('requested_by' => 'adopt'));
        $this->cron();
        $sends = $this->sends();
        $this->assertCount(1, $sends);
        $this->assertSame($service, $sends[0]['values']['id']);
        $this->assertSame(htmlspecialchars(self::LINK), $sends[0]['customvars']['jetpack_activation_url']);
        // No ledger row for the job: the site comes from the Site URL field.
        $this->assertSame('https://example.com/', $sends[0]['customvars']['jetpack_site']);
        $this->assertSame('sent', $this->emailRow($job, Email::KIND_ACTIVATED)->status);
    }

    public function testSentOnWhmcs783Too(): void
    {
        $this->useLayout(self::WHMCS_783);
        $service = $this->service($this->product(), null, array('status' => 'Active'));
        $job = $this->doneJob($service);
        $this->cron();
        $this->cron();
        $this->assertCount(1, $this->sends());
        $this->assertSame('sent', $this->emailRow($job, Email::KIND_ACTIVATED)->status);
        $this->assertSame(1, $this->templateCount());
    }

    public function testNoEmailForFailuresTerminatesCancelledUnfinishedOrOldJobs(): void
    {
        $product = $this->product();
        $failed = $this->service($product);
        $this->job($failed, array('state' => 'failed', 'finished' => true,
            'last_error' => 'JETPACK MODULE: Service ID: 1 - could not provision: refused'));
        $terminated = $this->service($product, null, array('status' => 'Terminated'));
        $this->job($terminated, array('action' => 'terminate', 'state' => 'done', 'finished' => true,
            'result' => 'The Jetpack plan for https://example.com/ was cancelled.'));
        $cancelled = $this->service($product);
        $this->job($cancelled, array('state' => 'cancelled', 'finished' => true,
            'result' => 'superseded: a terminate was requested while it ran'));
        $queued = $this->service($product);
        $this->job($queued, array('state' => 'queued'));
        $running = $this->service($product);
        $this->job($running, array('state' => 'running'));
        $old = $this->service($product, null, array('status' => 'Active'));
        $this->doneJob($old, array('finished_days_ago' => 8));
        // Provisioned, then terminated since: the plan is gone, so no activation email.
        $gone = $this->service($product, null, array('status' => 'Terminated'));
        $goneJob = $this->doneJob($gone);

        $this->cron();
        $this->assertCount(0, $this->sends());
        $this->assertSame('skipped', $this->emailRow($goneJob, Email::KIND_ACTIVATED)->status);
        $this->assertSame(1, (int) $this->scalar('SELECT COUNT(*) FROM mod_jetpack_emails'));
    }

    public function testWaitingOnDnsThenActivatedSendsEachEmailOnce(): void
    {
        $service = $this->service($this->product(), null, array('status' => 'Active'));
        $waitingText = 'The domain https://example.com/ did not resolve when provisioning was attempted, however a '
            . 'Jetpack plan is waiting for it.';
        $this->setValue($service, 'jetpack_provisioning_details', $waitingText);
        $job = $this->job($service, array('state' => 'waiting_dns', 'waiting' => true));
        $this->cron();
        $this->cron();
        $sends = $this->sends();
        $this->assertCount(1, $sends);
        $vars = $sends[0]['customvars'];
        $this->assertSame(1, $vars['jetpack_waiting_dns']);
        $this->assertSame('', $vars['jetpack_activation_url']);
        $this->assertSame($waitingText, $vars['jetpack_details']);
        $this->assertSame('sent', $this->emailRow($job, Email::KIND_WAITING)->status);

        // DNS resolved and the worker provisioned: the same job ends done with its link, and
        // the client now gets the link (a different email, also once).
        $this->exec(
            "UPDATE mod_jetpack_jobs SET state = 'done', result = ?, finished_at = UTC_TIMESTAMP(6) WHERE id = ?",
            array('URL to Activate Jetpack: ' . self::LINK, $job)
        );
        $this->cron();
        $this->cron();
        $sends = $this->sends();
        $this->assertCount(2, $sends);
        $this->assertSame(0, $sends[1]['customvars']['jetpack_waiting_dns']);
        $this->assertSame(htmlspecialchars(self::LINK), $sends[1]['customvars']['jetpack_activation_url']);
    }

    public function testSwitchedOffByTheProductSetting(): void
    {
        $off = $this->product(array('name' => 'Quiet'));
        $this->exec('UPDATE tblproducts SET configoption5 = ? WHERE id = ?', array(Email::SETTING_OFF, $off));
        $unset = $this->product(array('name' => 'Saved before the setting'));
        $send = $this->product(array('name' => 'Saved with it'));
        $this->exec("UPDATE tblproducts SET configoption5 = 'send' WHERE id = ?", array($send));
        $quiet = $this->service($off, null, array('status' => 'Active'));
        $quietJob = $this->doneJob($quiet);
        $a = $this->service($unset, null, array('status' => 'Active'));
        $this->doneJob($a);
        $b = $this->service($send, null, array('status' => 'Active'));
        $this->doneJob($b);

        $this->cron();
        $ids = array_map(function ($s) {
            return $s['values']['id'];
        }, $this->sends());
        sort($ids);
        $this->assertSame(array($a, $b), $ids);
        $row = $this->emailRow($quietJob, Email::KIND_ACTIVATED);
        $this->assertSame('skipped', $row->status);
        $this->assertStringContainsString('off', $row->error);

        // Turning it on later does not mail the jobs that ended while it was off.
        $this->exec("UPDATE tblproducts SET configoption5 = 'send' WHERE id = ?", array($off));
        $this->cron();
        $this->assertCount(2, $this->sends());
        $options = jetpack_ConfigOptions();
        $labels = array_keys($options);
        $this->assertSame('Send the Jetpack activation email', $labels[4], 'the fifth setting is configoption5');
        $this->assertSame('send', $options[$labels[4]]['Default']);
    }

    public function testAFailedSendIsRecordedLoggedAndTriedAtMostThreeTimes(): void
    {
        $service = $this->service($this->product(), null, array('status' => 'Active'));
        $job = $this->doneJob($service);
        $GLOBALS['jetpack_test_localapi_reply'] = array('result' => 'error', 'message' => 'Sending Failed');

        $this->cron();
        $this->assertCount(1, $this->sends());
        $row = $this->emailRow($job, Email::KIND_ACTIVATED);
        $this->assertSame('failed', $row->status);
        $this->assertSame('Sending Failed', $row->error);
        $this->assertNull($row->sent_at);
        $lines = $this->emailLines();
        $this->assertCount(1, $lines);
        $this->assertStringStartsWith('JETPACK MODULE: Service ID: ' . $service . ' - ', $lines[0]);
        $this->assertStringContainsString('Sending Failed', $lines[0]);
        $this->assertStringContainsString('try 1 of 3', $lines[0]);

        $this->cron();
        $this->assertCount(1, $this->sends(), 'not again before the retry delay');
        for ($try = 2; $try <= Email::MAX_TRIES; $try++) {
            $this->ageClaim($job);
            $this->cron();
            $this->assertCount($try, $this->sends());
        }
        $this->assertSame('gave_up', $this->emailRow($job, Email::KIND_ACTIVATED)->status);
        $this->assertStringContainsString('not tried again', end($GLOBALS['jetpack_test_activity'])['description']);
        $this->ageClaim($job);
        $this->cron();
        $this->cron();
        $this->assertCount(Email::MAX_TRIES, $this->sends(), 'never more than MAX_TRIES calls');
        $this->assertSame(0, (int) $this->scalar('SELECT COUNT(*) FROM tblemails'));
    }

    /**
     * SendEmail answering "Email Template is disabled" means not sent, disabled: recorded once,
     * one activity line, never tried again (not three tries with three lines).
     */
    public function testATemplateWhmcsAnswersIsDisabledIsRecordedOnceAndNotRetried(): void
    {
        $service = $this->service($this->product(), null, array('status' => 'Active'));
        $job = $this->doneJob($service);
        $GLOBALS['jetpack_test_localapi_reply'] = array('result' => 'error', 'message' => 'Email Template is disabled');

        $this->cron();
        for ($run = 0; $run < Email::MAX_TRIES; $run++) {
            $this->ageClaim($job);
            $this->cron();
        }

        $this->assertCount(1, $this->sends(), 'asked once');
        $row = $this->emailRow($job, Email::KIND_ACTIVATED);
        $this->assertSame(Email::DISABLED, $row->status);
        $this->assertSame('Email Template is disabled', $row->error);
        $this->assertSame(array(Email::disabledLine($service)), $this->emailLines());
    }

    /**
     * A template an admin disabled in Setup → Email Templates is not even asked for: each job's
     * email is recorded disabled, with one line.
     */
    public function testATemplateDisabledInWhmcsIsNotSentAndRecordedOnce(): void
    {
        Email::ensureTemplate();
        $this->exec("UPDATE tblemailtemplates SET disabled = 1 WHERE name = 'Jetpack Activation'");
        $service = $this->service($this->product(), null, array('status' => 'Active'));
        $job = $this->doneJob($service);

        $this->cron();
        $this->ageClaim($job);
        $this->cron();

        $this->assertCount(0, $this->sends());
        $this->assertSame(Email::DISABLED, $this->emailRow($job, Email::KIND_ACTIVATED)->status);
        $this->assertSame(array(Email::disabledLine($service)), $this->emailLines());
    }

    /**
     * A site's percent-encoded line break never reaches the subject (or the body) decoded: it
     * would start a new mail header. Other escapes read as typed.
     */
    public function testAPercentEncodedLineBreakNeverReachesTheSubjectDecoded(): void
    {
        $service = $this->service($this->product(), null, array('status' => 'Active'));
        $job = $this->doneJob($service);
        $this->ledgerRow($service, 'https://example.com/caf%C3%A9%0D%0ABcc:%20victim@evil.example', 'jetpack_premium', 0, $job);

        $this->cron();

        $vars = $this->sends()[0]['customvars'];
        $this->assertSame('https://example.com/café%0D%0ABcc: victim@evil.example', $vars['jetpack_site_text']);
        foreach (array('jetpack_site_text', 'jetpack_site') as $field) {
            $this->assertDoesNotMatchRegularExpression('/[\r\n]/', $vars[$field], $field);
        }
        $this->assertSame('https://example.com/%ff%0A', Email::siteText('https://example.com/%ff%0A'), 'not UTF-8: as stored');
        $this->assertSame("a%E2%80%A8b", Email::siteText('a%E2%80%A8b'), 'the Unicode line separator too');
    }

    public function testAFailedSendIsNotRetriedForAServiceTerminatedMeanwhile(): void
    {
        $service = $this->service($this->product(), null, array('status' => 'Active'));
        $job = $this->doneJob($service);
        $GLOBALS['jetpack_test_localapi_reply'] = array('result' => 'error', 'message' => 'Sending Failed');
        $this->cron();
        $this->assertCount(1, $this->sends());
        unset($GLOBALS['jetpack_test_localapi_reply']);
        $this->exec("UPDATE tblhosting SET domainstatus = 'Terminated' WHERE id = ?", array($service));
        $this->ageClaim($job);
        $this->cron();
        $this->assertCount(1, $this->sends(), 'the retry does not mail a terminated service');
        $row = $this->emailRow($job, Email::KIND_ACTIVATED);
        $this->assertSame('skipped', $row->status);
        $this->assertStringContainsString('Terminated', (string) $row->error);
    }

    public function testAFailedSendThatWorksOnRetryIsSentOnce(): void
    {
        $service = $this->service($this->product(), null, array('status' => 'Active'));
        $job = $this->doneJob($service);
        $GLOBALS['jetpack_test_localapi_reply'] = array('result' => 'error', 'message' => 'SMTP Error: Could not connect');
        $this->cron();
        unset($GLOBALS['jetpack_test_localapi_reply']);
        $this->ageClaim($job);
        $this->cron();
        $this->ageClaim($job);
        $this->cron();
        $this->assertCount(2, $this->sends());
        $this->assertSame('sent', $this->emailRow($job, Email::KIND_ACTIVATED)->status);
        $this->assertSame(2, (int) $this->emailRow($job, Email::KIND_ACTIVATED)->attempts);
        $this->assertSame(1, (int) $this->scalar('SELECT COUNT(*) FROM tblemails'));
    }

    public function testTemplateCreatedWhenMissingOnceAndAnAdminEditIsKept(): void
    {
        $this->assertSame(0, $this->templateCount());
        $this->cron();
        $this->cron();
        $this->assertSame(1, $this->templateCount());
        $t = $this->select("SELECT * FROM tblemailtemplates WHERE name = 'Jetpack Activation'")[0];
        $this->assertSame('product', $t->type);
        $this->assertSame('', $t->language);
        $this->assertSame(1, (int) $t->custom);
        $this->assertSame(0, (int) $t->disabled);
        foreach (array('{$jetpack_activation_url}', '{$jetpack_site}', '$jetpack_waiting_dns', '{$jetpack_details}') as $field) {
            $this->assertStringContainsString($field, $t->message . $t->subject);
        }

        $this->exec("UPDATE tblemailtemplates SET message = 'Our own words {\$jetpack_activation_url}' WHERE id = ?", array($t->id));
        // A translation of it is another row (language set): not the master, not touched.
        $this->exec(
            "INSERT INTO tblemailtemplates (type, name, subject, message, attachments, fromname, fromemail, disabled,
                                            custom, language, copyto, blind_copy_to, plaintext)
             VALUES ('product', 'Jetpack Activation', 'Ihr Jetpack', 'Hallo', '', '', '', 0, 1, 'german', '', '', 0)"
        );
        $this->cron();
        $this->assertSame(2, $this->templateCount());
        $this->assertSame(
            'Our own words {$jetpack_activation_url}',
            $this->scalar('SELECT message FROM tblemailtemplates WHERE id = ?', array($t->id))
        );
    }

    public function testTheClaimIsWonByExactlyOneCaller(): void
    {
        $service = $this->service($this->product());
        $job = $this->doneJob($service);
        // Two connections, as two WHMCS servers: the same INSERT IGNORE from both.
        $other = new \Illuminate\Database\Capsule\Manager();
        $other->addConnection(\JetpackTests\Support\Db::connectionConfig($this->database));
        $first = Email::claim($job, Email::KIND_ACTIVATED, $service, 'run-a');
        $second = $other->getConnection()->affectingStatement(
            "INSERT IGNORE INTO mod_jetpack_emails (job_id, kind, service_id, status, attempts, claim_token, claimed_at)
             VALUES (?, 'activated', ?, 'sending', 1, 'run-b', UTC_TIMESTAMP(6))",
            array($job, $service)
        );
        $this->assertTrue($first);
        $this->assertSame(0, $second);
        $this->assertFalse(Email::claim($job, Email::KIND_ACTIVATED, $service, 'run-c'));
        $this->assertSame('run-a', $this->emailRow($job, Email::KIND_ACTIVATED)->claim_token);

        // A retry's claim is a compare-and-set on the attempt count: of two, one wins.
        $this->exec("UPDATE mod_jetpack_emails SET status = 'failed' WHERE job_id = ?", array($job));
        $seen = (object) array('job_id' => $job, 'kind' => Email::KIND_ACTIVATED, 'attempts' => 1);
        $this->assertTrue(Email::reclaim($seen, 'run-d'));
        $this->assertFalse(Email::reclaim($seen, 'run-e'));
        $other->getConnection()->disconnect();

        // A run that claimed and then died leaves `sending`: never sent by a later run.
        $this->ageClaim($job);
        $this->cron();
        $this->assertCount(0, $this->sends());
    }

    public function testCronRunsOnTwoServersAtOnceSendEachEmailOnce(): void
    {
        $product = $this->product();
        $jobs = array();
        for ($i = 0; $i < 6; $i++) {
            $service = $this->service($product, null, array('status' => 'Active', 'userid' => 10 + $i));
            $jobs[$service] = $this->doneJob($service);
        }
        $waiting = $this->service($product, null, array('status' => 'Active', 'userid' => 20));
        $jobs[$waiting] = $this->job($waiting, array('state' => 'waiting_dns', 'waiting' => true));
        // No template yet: the runs also race to create it.
        $this->assertSame(0, $this->templateCount());

        $outputs = $this->cronAtOnce(4);

        $sent = array();
        foreach ($outputs as $out) {
            foreach ($out['sends'] as $send) {
                $sent[] = $send['id'];
            }
        }
        sort($sent);
        $expected = array_keys($jobs);
        sort($expected);
        $this->assertSame($expected, $sent, 'every email sent, and exactly once, across all runs');
        $this->assertSame(count($jobs), (int) $this->scalar('SELECT COUNT(*) FROM tblemails'));
        $this->assertSame(1, $this->templateCount(), 'the template created once');
        $late = array_filter($outputs, function ($o) {
            return $o['late'];
        });
        $this->assertCount(0, $late, 'the runs started at the same instant');
    }

    public function testTheHookNeverThrowsIntoWhmcs(): void
    {
        $service = $this->service($this->product(), null, array('status' => 'Active'));
        $this->doneJob($service);
        // The worker's table not migrated yet: nothing sent, and no line every five minutes.
        $this->exec('DROP TABLE mod_jetpack_emails');
        $this->cron();
        $this->assertCount(0, $this->sends());
        $this->assertCount(0, $this->emailLines());

        // A database error: one line with the driver's words, never the statement.
        $this->useLayout(self::WHMCS_8);
        $this->exec('DROP TABLE tblemailtemplates');
        $service = $this->service($this->product(), null, array('status' => 'Active'));
        $this->doneJob($service);
        $this->cron();
        $this->assertCount(0, $this->sends());
        $lines = $this->emailLines();
        $this->assertCount(1, $lines);
        $this->assertStringStartsWith('JETPACK MODULE: activation emails: ', $lines[0]);
        $this->assertStringNotContainsStringIgnoringCase('select', $lines[0], 'no SQL in the log');

        // A localAPI that throws is a failed send, recorded, not an exception.
        $this->useLayout(self::WHMCS_8);
        $service = $this->service($this->product(), null, array('status' => 'Active'));
        $job = $this->doneJob($service);
        $GLOBALS['jetpack_test_localapi_reply'] = 'not an array';
        $this->cron();
        $this->assertSame('failed', $this->emailRow($job, Email::KIND_ACTIVATED)->status);
    }

    public function testTheHookQueriesUseIndexes(): void
    {
        $product = $this->product();
        // History the searches must not read: many finished jobs of other kinds and ages.
        $history = $this->service($product, null, array('status' => 'Active'));
        $values = array();
        for ($i = 0; $i < 3000; $i++) {
            $state = array('done', 'failed', 'cancelled')[$i % 3];
            $action = $i % 2 === 0 ? 'provision' : 'terminate';
            $values[] = "($history, '$action', '$state', UTC_TIMESTAMP(6), 'module', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6),
                          UTC_TIMESTAMP(6) - INTERVAL " . (10 + $i) . ' DAY)';
        }
        $this->exec(
            'INSERT INTO mod_jetpack_jobs (service_id, action, state, run_at, requested_by, created_at, updated_at, finished_at)
             VALUES ' . implode(',', $values)
        );
        // Other templates, other services' ledger rows, other products' fields, so that the
        // optimizer's choice is the one a real install gets.
        $templates = array();
        for ($i = 0; $i < 300; $i++) {
            $templates[] = "('product', 'Other template $i', 's', 'm', '', '', '', 0, 0, '', '', '', 0)";
        }
        $this->exec(
            'INSERT INTO tblemailtemplates (type, name, subject, message, attachments, fromname, fromemail, disabled,
                                            custom, language, copyto, blind_copy_to, plaintext)
             VALUES ' . implode(',', $templates)
        );
        for ($i = 0; $i < 300; $i++) {
            $this->ledgerRow(100000 + $i, 'https://site' . $i . '.example/', 'jetpack_premium', 0, 100000 + $i);
        }
        for ($i = 0; $i < 40; $i++) {
            $this->product(array('name' => 'Other ' . $i));
        }
        foreach (array('mod_jetpack_jobs', 'tblemailtemplates', 'mod_jetpack_ledger', 'tblcustomfields', 'tblproducts') as $table) {
            $this->exec('ANALYZE TABLE ' . $table);
        }
        $service = $this->service($product, null, array('status' => 'Active'));
        $job = $this->doneJob($service);
        $this->ledgerRow($service, 'https://example.com/', 'jetpack_premium', 0, $job);
        $failing = $this->service($product, null, array('status' => 'Active'));
        $failingJob = $this->doneJob($failing);
        $GLOBALS['jetpack_test_localapi_reply'] = array('result' => 'error', 'message' => 'Sending Failed');
        Email::claim($failingJob, Email::KIND_ACTIVATED, $failing, 'x');
        $this->exec("UPDATE mod_jetpack_emails SET status = 'failed' WHERE job_id = ?", array($failingJob));
        $this->ageClaim($failingJob);

        $connection = Capsule::connection();
        $connection->enableQueryLog();
        Email::afterCron();
        $connection->disableQueryLog();
        $selects = array_filter($connection->getQueryLog(), function ($q) {
            return stripos(ltrim($q['query']), 'select') === 0;
        });
        $this->assertGreaterThanOrEqual(6, count($selects));
        $searched = array();
        foreach ($selects as $q) {
            foreach ($this->select('EXPLAIN ' . $q['query'], $q['bindings']) as $plan) {
                $plan = (array) $plan;
                $searched[$plan['table']] = true;
                // ALL is a full table scan, index a full index scan.
                $this->assertNotContains($plan['type'], array('ALL', 'index'), 'full scan of ' . $plan['table']
                    . ' in ' . $q['query'] . ': ' . json_encode($plan));
                // The 3000 jobs of the history are outside the window: not read.
                $this->assertLessThan(100, (int) $plan['rows'], json_encode($plan) . ' in ' . $q['query']);
            }
        }
        foreach (array('j', 'e', 'tblemailtemplates', 'tblhosting', 'tblproducts') as $table) {
            $this->assertArrayHasKey($table, $searched);
        }
        $this->assertCount(2, $this->sends());
    }

    /**
     * One WHMCS cron run: the AfterCronJob hooks hooks.php registered.
     */
    private function cron()
    {
        run_test_hooks('AfterCronJob');
    }

    /**
     * @return array the SendEmail calls made through localAPI()
     */
    private function sends()
    {
        return array_values(array_filter($GLOBALS['jetpack_test_localapi'], function ($c) {
            return $c['command'] === 'SendEmail';
        }));
    }

    /**
     * A job row as the worker leaves it.
     *
     * @param int   $serviceId
     * @param array $o action, state, result, last_error, requested_by, finished (bool),
     *                 finished_days_ago, waiting (bool: waiting_since now)
     *
     * @return int mod_jetpack_jobs.id
     */
    private function job($serviceId, array $o)
    {
        $o += array('action' => 'provision', 'result' => null, 'last_error' => null, 'requested_by' => 'module',
            'finished' => false, 'finished_days_ago' => 0, 'waiting' => false);
        $this->exec(
            'INSERT INTO mod_jetpack_jobs (service_id, action, state, attempts, run_at, result, last_error, requested_by,
                                           created_at, updated_at, finished_at, waiting_since)
             VALUES (?, ?, ?, 1, UTC_TIMESTAMP(6), ?, ?, ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6),
                     IF(?, UTC_TIMESTAMP(6) - INTERVAL ? DAY, NULL), IF(?, UTC_TIMESTAMP(6), NULL))',
            array($serviceId, $o['action'], $o['state'], $o['result'], $o['last_error'], $o['requested_by'],
                $o['finished'] ? 1 : 0, $o['finished_days_ago'], $o['waiting'] ? 1 : 0)
        );
        return (int) $this->pdo()->lastInsertId();
    }

    /**
     * A provision job that ended done with the activation link.
     *
     * @return int mod_jetpack_jobs.id
     */
    private function doneJob($serviceId, array $o = array())
    {
        return $this->job($serviceId, $o + array('state' => 'done', 'finished' => true,
            'result' => 'URL to Activate Jetpack: ' . self::LINK));
    }

    private function emailRow($jobId, $kind)
    {
        $rows = $this->select('SELECT * FROM mod_jetpack_emails WHERE job_id = ? AND kind = ?', array($jobId, $kind));
        $this->assertCount(1, $rows, "one email row for job $jobId ($kind)");
        return $rows[0];
    }

    /**
     * Moves a job's email claim back past the retry delay.
     */
    private function ageClaim($jobId)
    {
        $this->exec(
            'UPDATE mod_jetpack_emails SET claimed_at = claimed_at - INTERVAL ? MINUTE WHERE job_id = ?',
            array(Email::RETRY_AFTER_MINUTES + 1, $jobId)
        );
    }

    private function templateCount()
    {
        return (int) $this->scalar("SELECT COUNT(*) FROM tblemailtemplates WHERE name = 'Jetpack Activation'");
    }

    /**
     * @return array the activity lines about emails
     */
    private function emailLines()
    {
        return array_values(array_filter($this->loggedActivity(), function ($line) {
            return stripos($line, 'email') !== false;
        }));
    }

    /**
     * Runs $count cron runs in processes of their own (Support/concurrent_cron.php), released
     * at the same instant.
     *
     * @return array each process's decoded JSON line
     */
    private function cronAtOnce($count)
    {
        $processes = array();
        try {
            for ($i = 0; $i < $count; $i++) {
                $stderr = fopen('php://temp', 'w+');
                $process = proc_open(
                    array(PHP_BINARY, __DIR__ . '/Support/concurrent_cron.php', $this->database),
                    array(0 => array('pipe', 'r'), 1 => array('pipe', 'w'), 2 => $stderr),
                    $pipes
                );
                $this->assertIsResource($process);
                stream_set_blocking($pipes[1], false);
                $processes[] = array('process' => $process, 'pipes' => $pipes, 'stderr' => $stderr, 'out' => '');
            }
            $this->readUntil($processes, 1, 60);
            $startAt = sprintf('%.6F', microtime(true) + self::LEAD);
            foreach ($processes as $p) {
                fwrite($p['pipes'][0], $startAt . "\n");
                fflush($p['pipes'][0]);
            }
            $this->readUntil($processes, 2, 120);
        } finally {
            foreach ($processes as $p) {
                foreach ($p['pipes'] as $pipe) {
                    if (is_resource($pipe)) {
                        fclose($pipe);
                    }
                }
                proc_close($p['process']);
            }
        }
        $outputs = array();
        foreach ($processes as $i => $p) {
            $lines = explode("\n", trim($p['out']));
            $decoded = json_decode((string) end($lines), true);
            if (!is_array($decoded)) {
                rewind($p['stderr']);
                $this->fail("process $i printed " . var_export($p['out'], true) . ', stderr: ' . stream_get_contents($p['stderr']));
            }
            $outputs[] = $decoded;
        }
        return $outputs;
    }

    /**
     * Reads every process's stdout until each has printed $lines lines.
     */
    private function readUntil(array &$processes, $lines, $timeout)
    {
        $deadline = microtime(true) + $timeout;
        while (true) {
            $waiting = 0;
            foreach ($processes as $i => $p) {
                if (substr_count($p['out'], "\n") >= $lines) {
                    continue;
                }
                $waiting++;
                $chunk = fread($p['pipes'][1], 65536);
                if ($chunk !== false && $chunk !== '') {
                    $processes[$i]['out'] .= $chunk;
                } elseif (feof($p['pipes'][1])) {
                    rewind($p['stderr']);
                    $this->fail("process $i exited early: " . var_export($p['out'], true) . ' ' . stream_get_contents($p['stderr']));
                }
            }
            if ($waiting === 0) {
                return;
            }
            if (microtime(true) > $deadline) {
                $this->fail("$waiting processes did not print $lines lines in {$timeout}s");
            }
            usleep(10000);
        }
    }
}
