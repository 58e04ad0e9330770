<?php

namespace JetpackTests;

use JetpackTests\Support\DatabaseTestCase;
use JetpackTests\Support\Whmcs;
use WHMCS\Module\Server\Jetpack\CustomFields;
use WHMCS\Module\Server\Jetpack\Messages;
use WHMCS\Module\Server\Jetpack\OrderChecks;

/**
 * Jetpack sold as a product addon (docs/addons.md): WHMCS calls the module with `addonId` =
 * tblhostingaddons.id and `serviceid` = the parent service. The addon is a target of its own:
 * its request names addon_id and the parent (tblhostingaddons.hostingid), its "queued" text goes
 * into the addon's own jetpack_provisioning_details (never the parent's, nor another addon's),
 * its module settings come from tblmodule_configuration, its Site URL defaults to the parent's
 * domain, and its messages read `JETPACK MODULE: Addon ID: A (Service ID: S) - …`.
 */
final class AddonTest extends DatabaseTestCase
{
    public function layouts(): array
    {
        return array('WHMCS 8' => array(self::WHMCS_8), 'WHMCS 7.8.3' => array(self::WHMCS_783));
    }

    /**
     * A hosting service with a domain (of a product of another module, as addons are usually
     * sold on), and a Jetpack addon on it with a valid order.
     *
     * @return array (service id, tbladdons.id, tblhostingaddons.id)
     */
    private function addonOnHosting(array $definition = array(), ?array $values = null, $domain = 'hosted.example')
    {
        $hosting = $this->product(array('name' => 'Shared Hosting', 'servertype' => 'cpanel', 'fields' => array()));
        $service = $this->service($hosting, array(), array('status' => 'Active', 'domain' => $domain));
        $definitionId = $this->addonDefinition($definition);
        return array($service, $definitionId, $this->addon($definitionId, $service, $values));
    }

    /**
     * @return string the prefix of the addon's messages
     */
    private function prefix($addon, $service)
    {
        return 'JETPACK MODULE: Addon ID: ' . $addon . ' (Service ID: ' . $service . ') - ';
    }

    // --- Create ---------------------------------------------------------------------------

    /**
     * @dataProvider layouts
     */
    public function testCreateRecordsTheAddonsRequestAndWritesOnlyItsDetails(string $layout): void
    {
        $this->useLayout($layout);
        // The parent is a Jetpack service too, with details of its own, and has a second addon.
        $product = $this->product();
        $service = $this->service($product, null, array('status' => 'Active', 'domain' => 'hosted.example'));
        $serviceDetails = $this->setValue($service, 'jetpack_provisioning_details', 'URL to Activate Jetpack: https://service.example/');
        $definition = $this->addonDefinition();
        $other = $this->addon($definition, $service);
        $otherDetails = $this->setAddonValue($other, 'jetpack_provisioning_details', 'URL to Activate Jetpack: https://other-addon.example/');
        $addon = $this->addon($definition, $service);

        $result = Whmcs::addonModuleCall('CreateAccount', $addon);

        $this->assertSame('success', $result);
        $requests = $this->requests();
        $this->assertCount(1, $requests);
        $this->assertSame($service, (int) $requests[0]->service_id, 'the parent service');
        $this->assertSame($addon, (int) $requests[0]->addon_id);
        $this->assertSame('provision', $requests[0]->action);
        $this->assertSame('module', $requests[0]->requested_by);
        $this->assertNull($requests[0]->applied_at);
        $this->assertSame(array(Messages::queued('provision')), array_values($this->addonDetailsRows($addon)));
        $this->assertSame(
            array($serviceDetails => 'URL to Activate Jetpack: https://service.example/'),
            $this->detailsRows($service),
            'the parent service\'s details are untouched'
        );
        $this->assertSame(
            array($otherDetails => 'URL to Activate Jetpack: https://other-addon.example/'),
            $this->addonDetailsRows($other),
            'the other addon\'s details are untouched'
        );
        $this->assertSame(
            array($this->prefix($addon, $service) . 'provision requested for jetpack-worker (request #' . $requests[0]->id . ')'),
            $this->loggedActivity()
        );
        $this->assertSame(7, $GLOBALS['jetpack_test_activity'][0]['userid']);
        $this->assertSame('Active', $this->addonStatus($addon), 'WHMCS sets Active on success');
        $this->assertSame('Active', $this->status($service));
        $this->assertCount(0, $this->jobs($service), 'jobs are the worker\'s');
    }

    public function testTheRequestNamesTheAddonsRealParent(): void
    {
        // WHMCS passes the parent as serviceid; the request takes tblhostingaddons.hostingid.
        list($service, , $addon) = $this->addonOnHosting();
        $params = Whmcs::addonParams($addon);
        $params['serviceid'] = $service + 100;

        $this->assertSame('success', jetpack_CreateAccount($params));

        $this->assertSame($service, (int) $this->requests()[0]->service_id);
    }

    /**
     * @dataProvider layouts
     */
    public function testTheSiteUrlIsTheParentsDomainWhenTheAddonHasNone(string $layout): void
    {
        $this->useLayout($layout);
        list($service, $definition, $addon) = $this->addonOnHosting(array(), null, 'www.hosted.example');

        $order = OrderChecks::check($service, 'provision', $addon);

        $this->assertSame('www.hosted.example', $order->siteUrl);
        $this->assertSame('admin', $order->localUser);
        $this->assertSame('jetpack-backup-daily', $order->plan);
        $this->assertSame($service, $order->serviceId);
        $this->assertSame($addon, $order->addonId);
        $this->assertSame($definition, $order->addonDefinitionId);
        $this->assertSame($addon, $order->detailsRelId);
        $this->assertSame($this->addonFieldId($addon, 'jetpack_provisioning_details'), $order->detailsFieldId);
        $this->assertSame('Jetpack Backup', $order->productName);

        // An addon Site URL field left empty reads the domain too.
        $this->addonField($definition, 'Site URL|Your WordPress site');
        $this->setAddonValue($addon, 'Site URL', '  ');
        $this->assertSame('www.hosted.example', OrderChecks::check($service, 'provision', $addon)->siteUrl);
        $this->assertSame('success', jetpack_CreateAccount(Whmcs::addonParams($addon)));
    }

    public function testTheAddonsOwnSiteUrlFieldWinsOverTheDomain(): void
    {
        $fields = array_merge(array('Site URL|Your WordPress site'), self::ADDON_FIELDS);
        list($service, , $addon) = $this->addonOnHosting(
            array('fields' => $fields),
            array('Site URL' => 'https://blog.example/wp|my blog', 'Local User' => 'editor', 'Plan' => 'Jetpack-Scan')
        );

        $order = OrderChecks::check($service, 'provision', $addon);

        $this->assertSame('https://blog.example/wp', $order->siteUrl);
        $this->assertSame('editor', $order->localUser);
        $this->assertSame('jetpack-scan', $order->plan);
    }

    public function testTheAddonsOwnSiteUrlIsCheckedLikeAServices(): void
    {
        $fields = array_merge(array('Site URL'), self::ADDON_FIELDS);
        list($service, , $addon) = $this->addonOnHosting(
            array('fields' => $fields),
            array('Site URL' => 'ftp://blog.example', 'Local User' => 'admin', 'Plan' => 'premium')
        );

        $result = jetpack_CreateAccount(Whmcs::addonParams($addon));

        $this->assertSame(
            $this->prefix($addon, $service) . "the Site URL 'ftp://blog.example' is not a web address (only http:// and "
            . "https:// are allowed); enter the WordPress site's address (like example.com) and retry",
            $result
        );
        $this->assertCount(0, $this->requests());
    }

    public function testAnAddonIsCheckedWithItsOwnModuleSettingsNotTheParentProducts(): void
    {
        // The parent is a Jetpack product with credentials; the addon's own are what count.
        $product = $this->product();
        $service = $this->service($product, null, array('status' => 'Active', 'domain' => 'hosted.example'));
        $addon = $this->addon($this->addonDefinition(array('client_id' => '')), $service);

        $result = jetpack_CreateAccount(Whmcs::addonParams($addon));

        $this->assertStringStartsWith($this->prefix($addon, $service) . 'your credentials for provisioning are not complete: '
            . "addon 'Jetpack Backup' needs", $result);
        $this->assertCount(0, $this->requests());
    }

    // --- Bad input ------------------------------------------------------------------------

    /**
     * Each case: how to break a valid addon order, and the message it must give.
     */
    public function brokenAddons(): array
    {
        $noField = function ($key) {
            return "addon 'Jetpack Backup' has no custom field named '$key'; add it under Products/Services → "
                . "Product Addons → 'Jetpack Backup' → Custom Fields with exactly that name (or '$key|Display Name')";
        };
        return array(
            'no tblhostingaddons row' => array(
                function (AddonTest $t, $service, $definition, $addon) {
                    $t->exec('DELETE FROM tblhostingaddons WHERE id = ?', array($addon));
                },
                'it does not exist in tblhostingaddons; nothing to do',
            ),
            'tbladdons row missing' => array(
                function (AddonTest $t, $service, $definition) {
                    $t->exec('DELETE FROM tbladdons WHERE id = ?', array($definition));
                },
                'its addon (id %definition%) no longer exists under Products/Services → Product Addons; assign the addon '
                . 'to a Jetpack addon',
            ),
            'wrong module' => array(
                function (AddonTest $t, $service, $definition) {
                    $t->exec("UPDATE tbladdons SET module = 'cpanel' WHERE id = ?", array($definition));
                },
                "addon 'Jetpack Backup' does not use the jetpack module (its module is 'cpanel'); set the addon's Module "
                . 'Settings → Module Name to &quot;Jetpack by Automattic&quot;',
            ),
            'no module' => array(
                function (AddonTest $t, $service, $definition) {
                    $t->exec("UPDATE tbladdons SET module = '' WHERE id = ?", array($definition));
                },
                "addon 'Jetpack Backup' does not use the jetpack module (its module is '')",
            ),
            'no parent service' => array(
                function (AddonTest $t, $service) {
                    $t->exec('DELETE FROM tblhosting WHERE id = ?', array($service));
                },
                'its hosting service (id %service%) does not exist in tblhosting; an addon provisions the site of the '
                . 'service it was added to',
            ),
            'parent without a domain' => array(
                function (AddonTest $t, $service) {
                    $t->exec("UPDATE tblhosting SET domain = '' WHERE id = ?", array($service));
                },
                'the addon has no Site URL and its service (id %service%) has no domain; enter the site\'s address in the '
                . 'addon\'s Site URL field or the service\'s Domain, and retry',
            ),
            'parent with a blank domain and an empty Site URL field' => array(
                function (AddonTest $t, $service, $definition, $addon) {
                    $t->exec("UPDATE tblhosting SET domain = '  ' WHERE id = ?", array($service));
                    $t->addonField($definition, 'Site URL');
                    $t->setAddonValue($addon, 'Site URL', '');
                },
                'the addon has no Site URL and its service (id %service%) has no domain',
            ),
            'parent domain not a web address' => array(
                function (AddonTest $t, $service) {
                    $t->exec("UPDATE tblhosting SET domain = 'localhost' WHERE id = ?", array($service));
                },
                "the Site URL 'localhost' is not a web address (has no domain name)",
            ),
            'module settings missing' => array(
                function (AddonTest $t, $service, $definition) {
                    $t->exec("DELETE FROM tblmodule_configuration WHERE entity_type = 'addon' AND entity_id = ?", array($definition));
                },
                "your credentials for provisioning are not complete: addon 'Jetpack Backup' needs the Jetpack Partner "
                . 'Client ID and Client Secret in its Module Settings',
            ),
            'blank client secret' => array(
                function (AddonTest $t, $service, $definition) {
                    $t->addonSetting($definition, 'configoption2', '  ');
                },
                "your credentials for provisioning are not complete: addon 'Jetpack Backup' needs",
            ),
            'settings of a product with the same id only' => array(
                function (AddonTest $t, $service, $definition) {
                    $t->exec("DELETE FROM tblmodule_configuration WHERE entity_type = 'addon' AND entity_id = ?", array($definition));
                    $t->exec(
                        "INSERT INTO tblmodule_configuration (entity_type, entity_id, setting_name, value)
                         VALUES ('product', ?, 'configoption1', 'x'), ('product', ?, 'configoption2', 'y')",
                        array($definition, $definition)
                    );
                },
                "your credentials for provisioning are not complete: addon 'Jetpack Backup' needs",
            ),
            'no details field' => array(
                function (AddonTest $t, $service, $definition) {
                    $t->exec("DELETE FROM tblcustomfields WHERE type = 'addon' AND relid = ? AND fieldname LIKE 'jetpack%'", array($definition));
                },
                $noField('jetpack_provisioning_details'),
            ),
            'two details fields' => array(
                function (AddonTest $t, $service, $definition) {
                    $t->addonField($definition, 'jetpack_provisioning_details');
                },
                "addon 'Jetpack Backup' has 2 custom fields named 'jetpack_provisioning_details'; delete all but one",
            ),
            'two Site URL fields' => array(
                function (AddonTest $t, $service, $definition) {
                    $t->addonField($definition, 'Site URL');
                    $t->addonField($definition, 'Site URL|Your site');
                },
                "addon 'Jetpack Backup' has 2 custom fields named 'Site URL'; delete all but one",
            ),
            'no Local User field, no default' => array(
                function (AddonTest $t, $service, $definition) {
                    $t->exec("DELETE FROM tblcustomfields WHERE type = 'addon' AND relid = ? AND fieldname = 'Local User'", array($definition));
                },
                $noField('Local User'),
            ),
            'empty Local User, no default' => array(
                function (AddonTest $t, $service, $definition, $addon) {
                    $t->exec('UPDATE tblcustomfieldsvalues SET value = \'\' WHERE relid = ? AND fieldid = ?', array($addon, $t->addonFieldId($addon, 'Local User')));
                },
                'the Local User is empty; enter an existing WordPress user name of the site and retry',
            ),
            'no Plan field, no setting' => array(
                function (AddonTest $t, $service, $definition) {
                    $t->exec("DELETE FROM tblcustomfields WHERE type = 'addon' AND relid = ? AND fieldname = 'Plan'", array($definition));
                },
                $noField('Plan'),
            ),
            'unknown plan' => array(
                function (AddonTest $t, $service, $definition, $addon) {
                    $t->exec('UPDATE tblcustomfieldsvalues SET value = \'Gold\' WHERE relid = ? AND fieldid = ?', array($addon, $t->addonFieldId($addon, 'Plan')));
                },
                "'Gold' is not an allowed plan; use one of: free, personal",
            ),
        );
    }

    /**
     * @dataProvider brokenAddons
     */
    public function testABrokenAddonOrderIsRefusedWithWhatToFixAndRecordsNothing(\Closure $breakIt, string $expected): void
    {
        list($service, $definition, $addon) = $this->addonOnHosting();
        $params = Whmcs::addonParams($addon);
        $breakIt($this, $service, $definition, $addon);

        $result = jetpack_CreateAccount($params);

        $this->assertStringStartsWith($this->prefix($addon, $service), $result);
        $this->assertStringContainsString(
            strtr($expected, array('%service%' => (string) $service, '%definition%' => (string) $definition)),
            $result
        );
        $this->assertSame(0, (int) $this->scalar('SELECT COUNT(*) FROM mod_jetpack_requests'), 'nothing recorded');
        $this->assertSame(0, (int) $this->scalar(
            'SELECT COUNT(*) FROM tblcustomfieldsvalues WHERE value LIKE ?',
            array('%queued%')
        ), 'no details written');
        $this->assertSame(array(), $this->loggedActivity());
    }

    public function testBrokenAddonOrdersAreRefusedOnWhmcs783Too(): void
    {
        $this->useLayout(self::WHMCS_783);
        list($service, $definition, $addon) = $this->addonOnHosting();
        $this->exec("DELETE FROM tblmodule_configuration WHERE entity_id = ?", array($definition));

        $result = jetpack_CreateAccount(Whmcs::addonParams($addon));

        $this->assertStringStartsWith($this->prefix($addon, $service) . 'your credentials for provisioning are not complete', $result);
        $this->assertCount(0, $this->requests());
    }

    public function testAddonValuesAreHtmlEscapedInErrors(): void
    {
        list($service, , $addon) = $this->addonOnHosting(
            array('name' => 'Jetpack <b>&</b> "Co"', 'client_id' => ''),
            null,
            'hosted.example'
        );

        $result = jetpack_CreateAccount(Whmcs::addonParams($addon));

        $this->assertStringContainsString("addon 'Jetpack &lt;b&gt;&amp;&lt;/b&gt; &quot;Co&quot;' needs", $result);
        $this->assertStringNotContainsString('<', $result);
    }

    public function testAMissingWorkerTableNamesTheAddon(): void
    {
        list($service, , $addon) = $this->addonOnHosting();
        $this->exec('DROP TABLE mod_jetpack_requests');

        $result = jetpack_CreateAccount(Whmcs::addonParams($addon));

        $this->assertStringStartsWith($this->prefix($addon, $service) . 'the jetpack-worker tables are missing', $result);
        $this->assertSame(array(), $this->addonDetailsRows($addon), 'the queued text is taken back');
    }

    public function testTheContractScriptLoadsAnAddonToo(): void
    {
        // whmcs/tests/Support/load_orders.php, which the worker's contract test runs.
        list($service, , $addon) = $this->addonOnHosting();
        $broken = $this->addon($this->addonDefinition(array('secret' => '')), $service);
        $script = JETPACK_REPO_ROOT . '/whmcs/tests/Support/load_orders.php';
        $command = escapeshellarg(PHP_BINARY) . ' ' . escapeshellarg($script) . ' ' . escapeshellarg($this->database)
            . ' ' . escapeshellarg($service . ':' . $addon) . ' ' . escapeshellarg($service . ':' . $broken);

        exec($command . ' 2>&1', $output, $exit);

        $this->assertSame(0, $exit, implode("\n", $output));
        $verdicts = json_decode(implode("\n", $output), true);
        $this->assertSame(
            array('accepted' => true, 'site' => 'hosted.example', 'user' => 'admin', 'plan' => 'jetpack-backup-daily'),
            $verdicts[$service . ':' . $addon]
        );
        $this->assertFalse($verdicts[$service . ':' . $broken]['accepted']);
        $this->assertStringStartsWith($this->prefix($broken, $service) . 'your credentials', $verdicts[$service . ':' . $broken]['text']);
    }

    // --- Terminate, Module Queue Retry, Requeue -------------------------------------------

    public function testTerminateRecordsTheAddonsTerminateAndWritesItsDetails(): void
    {
        list($service, , $addon) = $this->addonOnHosting();
        $row = $this->setAddonValue($addon, 'jetpack_provisioning_details', 'URL to Activate Jetpack: https://addon.example/');
        $this->exec("UPDATE tblhostingaddons SET status = 'Active' WHERE id = ?", array($addon));

        $this->assertSame('success', Whmcs::addonModuleCall('TerminateAccount', $addon));

        $requests = $this->requests();
        $this->assertCount(1, $requests);
        $this->assertSame(array($service, $addon, 'terminate'), array(
            (int) $requests[0]->service_id, (int) $requests[0]->addon_id, $requests[0]->action,
        ));
        $this->assertSame(array($row => Messages::queued('terminate')), $this->addonDetailsRows($addon));
        $this->assertSame(
            array($this->prefix($addon, $service) . 'terminate requested for jetpack-worker (request #' . $requests[0]->id . ')'),
            $this->loggedActivity()
        );
        $this->assertSame('Terminated', $this->addonStatus($addon));
        $this->assertSame('Active', $this->status($service), 'the parent service is not terminated');
    }

    public function testATerminateOfAnAddonNeedsOnlyTheSiteAndTheCredentials(): void
    {
        list($service, $definition, $addon) = $this->addonOnHosting(array(), array());
        $this->exec("DELETE FROM tblcustomfields WHERE type = 'addon' AND relid = ? AND fieldname IN ('Local User', 'Plan')", array($definition));

        $this->assertSame('success', jetpack_TerminateAccount(Whmcs::addonParams($addon)));
        $this->assertStringContainsString('Local User', jetpack_CreateAccount(Whmcs::addonParams($addon)));

        $order = OrderChecks::check($service, 'terminate', $addon);
        $this->assertSame('hosted.example', $order->siteUrl);
        $this->assertNull($order->plan);
        $this->assertNull($order->localUser);
    }

    public function testModuleQueueRetryOfAnAddonsFailedCreateRecordsAnotherProvision(): void
    {
        list($service, , $addon) = $this->addonOnHosting();
        $this->exec("DELETE FROM tblmodule_configuration WHERE setting_name = 'configoption1'");
        $this->assertStringContainsString('credentials', Whmcs::addonModuleCall('CreateAccount', $addon));
        $queue = $this->select("SELECT id, service_type, service_id FROM tblmodulequeue");
        $this->assertCount(1, $queue);
        $this->assertSame(array('addon', $addon), array($queue[0]->service_type, (int) $queue[0]->service_id));
        $this->assertSame('Pending', $this->addonStatus($addon), 'left Pending on a failed create');
        $this->exec("INSERT INTO tblmodule_configuration (entity_type, entity_id, setting_name, value)
                     SELECT 'addon', addonid, 'configoption1', 'addon-client' FROM tblhostingaddons WHERE id = ?", array($addon));

        $this->assertSame('success', Whmcs::retry((int) $queue[0]->id));

        $this->assertSame(array('provision'), array_column($this->requests(), 'action'));
        $this->assertSame($addon, (int) $this->requests()[0]->addon_id);
        $this->assertSame('Active', $this->addonStatus($addon));
        $this->assertEquals(1, $this->scalar('SELECT completed FROM tblmodulequeue WHERE id = ?', array($queue[0]->id)));
    }

    public function testTheRetryButtonOnAnAddonRecordsARetryOfTheAddon(): void
    {
        list($service, , $addon) = $this->addonOnHosting();
        $failure = $this->prefix($addon, $service) . 'could not provision the Jetpack plan: boom';
        $this->setAddonValue($addon, 'jetpack_provisioning_details', $failure);
        $this->targetJob($service, $addon, 'provision', 'failed', $failure);
        // The service's own job is not the addon's.
        $this->targetJob($service, 0, 'terminate', 'done');
        $jobs = $this->jobs($service);

        $this->assertSame('success', Whmcs::addonCustomButton('Requeue', $addon));

        $requests = $this->requests();
        $this->assertCount(1, $requests);
        $this->assertSame(array($service, $addon, 'retry', 'admin'), array(
            (int) $requests[0]->service_id, (int) $requests[0]->addon_id, $requests[0]->action, $requests[0]->requested_by,
        ));
        $this->assertEquals($jobs, $this->jobs($service), 'the job is the worker\'s to requeue');
        $this->assertSame($failure, array_values($this->addonDetailsRows($addon))[0]);
        $this->assertSame(
            array($this->prefix($addon, $service) . 'retry requested for jetpack-worker (request #' . $requests[0]->id . ')'),
            $this->loggedActivity()
        );
    }

    public function testTheRetryButtonChecksTheAddonsOrderForItsLatestJob(): void
    {
        list($service, , $addon) = $this->addonOnHosting(array(), array('Local User' => '', 'Plan' => 'premium'));
        $this->targetJob($service, $addon, 'provision', 'failed');

        $this->assertStringContainsString('the Local User is empty', Whmcs::addonCustomButton('Requeue', $addon));

        // A failed terminate is retried without the Local User.
        $this->targetJob($service, $addon, 'terminate', 'failed');
        $this->assertSame('success', Whmcs::addonCustomButton('Requeue', $addon));
        $this->assertSame(array('retry'), array_column($this->requests(), 'action'));
    }

    // --- What admins and clients see ------------------------------------------------------

    public function testTheAddonsTabShowsTheAddonsJobAndTheServicesTabListsItsAddons(): void
    {
        $product = $this->product();
        $service = $this->service($product, null, array('status' => 'Active', 'domain' => 'hosted.example'));
        $definition = $this->addonDefinition();
        $addon = $this->addon($definition, $service);
        $second = $this->addon($definition, $service);
        $serviceJob = $this->targetJob($service, 0, 'provision', 'done');
        $this->targetJob($service, $addon, 'provision', 'failed', 'older');
        $addonJob = $this->targetJob($service, $addon, 'provision', 'failed', 'HTTP 503 <b>down</b>');
        $secondJob = $this->targetJob($service, $second, 'terminate', 'queued');
        jetpack_CreateAccount(Whmcs::addonParams($addon));
        $request = (int) $this->requests()[0]->id;

        $addonFields = jetpack_AdminServicesTabFields(Whmcs::addonParams($addon));
        $serviceFields = jetpack_AdminServicesTabFields(Whmcs::params($service));

        $this->assertStringStartsWith('#' . $addonJob . ' provision: failed', $addonFields['Jetpack Job']);
        $this->assertSame('HTTP 503 &lt;b&gt;down&lt;/b&gt;', $addonFields['Jetpack Last Error']);
        $this->assertStringStartsWith('#' . $request . ' provision requested by module', $addonFields['Jetpack Requests']);
        $this->assertArrayNotHasKey('Jetpack Addons', $addonFields);

        $this->assertStringStartsWith('#' . $serviceJob . ' provision: done', $serviceFields['Jetpack Job']);
        $this->assertArrayNotHasKey('Jetpack Requests', $serviceFields, 'the addon\'s request is not the service\'s');
        $this->assertSame(
            'Addon #' . $second . ': job #' . $secondJob . ' terminate, queued; last error: —<br />'
            . 'Addon #' . $addon . ': job #' . $addonJob . ' provision, failed (fix the cause, then use '
            . '&quot;Retry Jetpack Job&quot; or Module Queue → Retry); last error: HTTP 503 &lt;b&gt;down&lt;/b&gt;',
            $serviceFields['Jetpack Addons']
        );
    }

    public function testAServiceWhoseOnlyJobIsItsAddonsShowsNoJobOfItsOwn(): void
    {
        list($service, , $addon) = $this->addonOnHosting();
        $this->targetJob($service, $addon, 'provision', 'queued');
        $this->exec(
            "INSERT INTO mod_jetpack_ledger (service_id, addon_id, site, plan, pending, since, updated_at, job_id)
             VALUES (?, ?, 'hosted.example', 'jetpack-backup-daily', 0, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 1)",
            array($service, $addon)
        );

        $serviceFields = jetpack_AdminServicesTabFields(Whmcs::params($service));
        $addonFields = jetpack_AdminServicesTabFields(Whmcs::addonParams($addon));

        $this->assertSame('none yet: Create queues the provisioning for jetpack-worker', $serviceFields['Jetpack Job']);
        $this->assertArrayHasKey('Jetpack Addons', $serviceFields);
        $this->assertArrayNotHasKey('Jetpack Plans', $serviceFields);
        $this->assertStringStartsWith('jetpack-backup-daily on hosted.example since ', $addonFields['Jetpack Plans']);
        $this->assertStringNotContainsString('Site URL now', $addonFields['Jetpack Plans'], 'the domain is the addon\'s site');
    }

    public function testTheNoWorkerWarningCountsTheAddonsWaitingWork(): void
    {
        list($service, , $addon) = $this->addonOnHosting();
        $this->exec(
            "CREATE TABLE IF NOT EXISTS mod_jetpack_workers (owner VARCHAR(191) NOT NULL PRIMARY KEY,
                 last_seen_at DATETIME(6) NOT NULL, stopped_at DATETIME(6) NULL, KEY seen (last_seen_at))"
        );
        $this->targetJob($service, $addon, 'provision', 'queued');

        $serviceFields = jetpack_AdminServicesTabFields(Whmcs::params($service));
        $addonFields = jetpack_AdminServicesTabFields(Whmcs::addonParams($addon));

        $this->assertSame('Jetpack Worker', array_keys($serviceFields)[0], 'the addon\'s job waits');
        $this->assertSame('Jetpack Worker', array_keys($addonFields)[0]);

        $this->exec("UPDATE mod_jetpack_jobs SET state = 'done', finished_at = UTC_TIMESTAMP(6)");
        $this->assertArrayNotHasKey('Jetpack Worker', jetpack_AdminServicesTabFields(Whmcs::params($service)));
    }

    public function testTheAddonsTabQueriesUseIndexes(): void
    {
        list($service, , $addon) = $this->addonOnHosting();
        $rows = array();
        for ($i = 1; $i <= 400; $i++) {
            $rows[] = '(' . ($i % 40 + 1000) . ', ' . ($i % 3) . ", 'provision', 'module', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))";
        }
        $this->exec('INSERT INTO mod_jetpack_requests (service_id, addon_id, action, requested_by, created_at, applied_at) VALUES '
            . implode(', ', $rows));
        $ledger = array();
        for ($i = 1; $i <= 400; $i++) {
            $ledger[] = '(' . ($i + 1000) . ', ' . ($i % 3) . ", CONCAT('site-', $i, '.example'), 'premium', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 1)";
        }
        $this->exec('INSERT INTO mod_jetpack_ledger (service_id, addon_id, site, plan, since, updated_at, job_id) VALUES '
            . implode(', ', $ledger));
        $this->targetJob($service, $addon, 'provision', 'queued');
        // Both partner accounts held (an empty table's EXPLAIN names no key).
        $this->exec("INSERT INTO mod_jetpack_holds (account, held_at, held_by) VALUES
                     ('demo-client', UTC_TIMESTAMP(6), 'admin'), ('addon-client', UTC_TIMESTAMP(6), 'admin'),
                     ('other', UTC_TIMESTAMP(6), 'admin')");
        $this->exec('ANALYZE TABLE mod_jetpack_requests, mod_jetpack_jobs, mod_jetpack_ledger');
        $queries = array();
        $this->capsule->getConnection()->beforeExecuting(function ($sql, $bindings) use (&$queries) {
            if (strpos($sql, 'mod_jetpack_') !== false) {
                $queries[] = array($sql, $bindings);
            }
        });

        jetpack_AdminServicesTabFields(Whmcs::addonParams($addon));
        jetpack_AdminServicesTabFields(Whmcs::params($service));

        $this->assertGreaterThanOrEqual(9, count($queries));
        foreach ($queries as $query) {
            foreach ($this->select('EXPLAIN ' . $query[0], $query[1]) as $plan) {
                $this->assertNotNull($plan->key, $query[0]);
                $this->assertNotContains($plan->type, array('ALL', 'index'), $query[0] . ': ' . json_encode($plan));
            }
        }
    }

    public function testTheClientAreaOfAnAddonShowsTheAddonsDetails(): void
    {
        $product = $this->product();
        $service = $this->service($product, null, array('status' => 'Active', 'domain' => 'hosted.example'));
        $this->setValue($service, 'jetpack_provisioning_details', 'URL to Activate Jetpack: https://service.example/activate');
        $addon = $this->addon($this->addonDefinition(), $service);
        $this->setAddonValue($addon, 'jetpack_provisioning_details', 'URL to Activate Jetpack: https://addon.example/activate');

        $addonVars = jetpack_ClientArea(Whmcs::addonParams($addon))['templateVariables'];
        $serviceVars = jetpack_ClientArea(Whmcs::params($service))['templateVariables'];

        $this->assertSame('https://addon.example/activate', $addonVars['jetpackActivationUrl']);
        $this->assertSame('https://service.example/activate', $serviceVars['jetpackActivationUrl']);
        $this->assertSame('', CustomFields::currentDetails($service, $addon + 1), 'a gone addon has none');
    }
}
