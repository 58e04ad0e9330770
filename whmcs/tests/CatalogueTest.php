<?php

namespace JetpackTests;

use PHPUnit\Framework\TestCase;
use WHMCS\Module\Addon\JetpackQueue\Page;
use WHMCS\Module\Server\Jetpack\Catalogue;
use WHMCS\Module\Server\Jetpack\Hooks;
use WHMCS\Module\Server\Jetpack\Messages;
use WHMCS\Module\Server\Jetpack\ModuleError;
use WHMCS\Module\Server\Jetpack\Requests;

/**
 * The lists the PHP side shares with the worker come from catalogue.json (generated from the
 * worker's src/catalogue.rs; the worker's test catalogue_json fails when the file is stale):
 * every action has its WHMCS entry point, every name the module records is one the worker
 * knows, the manual-setup setting's choices and rule are the worker's, and no PHP file keeps a
 * list of its own.
 */
final class CatalogueTest extends TestCase
{
    public function testEveryActionHasTheWhmcsFunctionThatRecordsIt(): void
    {
        $names = Catalogue::actionNames();
        $this->assertSame(array('provision', 'terminate', 'change', 'suspend', 'unsuspend', 'issue_licence',
            'revoke_licence', 'change_licence', 'detach_licence', 'attach_licence'), $names);
        $this->assertSame(array('provision', 'terminate', 'change', 'suspend', 'unsuspend'), Catalogue::jobActions(),
            'a licence row runs for a job action of its own name\'s plan row');
        foreach ($names as $name) {
            $function = 'jetpack_' . Catalogue::whmcsFunction($name);
            $this->assertTrue(function_exists($function), "$function records $name");
        }
    }

    public function testWhatTheModuleRecordsIsWhatTheWorkerKnows(): void
    {
        $kinds = Catalogue::lists('request_kinds');
        $recorded = array(Requests::PROVISION, Requests::TERMINATE, Requests::RETRY, Requests::CHANGE,
            Requests::SUSPEND, Requests::UNSUSPEND, Requests::DELETED, Requests::CANCEL_NOW, Requests::KEEP_PLAN,
            Requests::LICENCE_RECORD, Requests::LICENCE_REISSUE);
        sort($kinds);
        sort($recorded);
        $this->assertSame($kinds, $recorded, 'one Requests constant per request kind');
        foreach (array(Requests::BY_MODULE, Requests::BY_ADMIN, Hooks::BY_HOOK) as $by) {
            $this->assertContains($by, Catalogue::lists('requesters'));
        }
    }

    public function testTheDashboardLabelsEveryStateAndFiltersEveryAction(): void
    {
        $this->assertSame(Catalogue::lists('job_states'), array_keys(Page::STATE_LABELS));
        $this->assertSame(array('queued', 'running', 'waiting_dns'), Catalogue::lists('unfinished_states'));
        $this->assertContains('Jetpack provisioning is queued. The activation link will appear here once the plan is provisioned.',
            Catalogue::queuedTexts());
        // Suspend and unsuspend leave the activation link in the details field.
        $this->assertNull(Catalogue::queuedText('suspend'));
        $this->assertNull(Catalogue::queuedText('unsuspend'));
        $this->assertSame(Catalogue::CHECKS_TARGET, Catalogue::checks('suspend'));
        $this->assertSame(Catalogue::CHECKS_CANCEL, Catalogue::checks('terminate'));
    }

    public function testALicenceProductsJobActionsRunTheLicenceRows(): void
    {
        $this->assertSame('issue_licence', Catalogue::actionFor('provision', Catalogue::API_LICENCE)['name']);
        $this->assertSame('provision', Catalogue::actionFor('provision', Catalogue::API_PLAN)['name']);
        $this->assertSame(Catalogue::CHECKS_LICENCE, Catalogue::actionFor('terminate', Catalogue::API_LICENCE)['checks']);
        $this->assertSame(Catalogue::CHECKS_TARGET, Catalogue::actionFor('suspend', Catalogue::API_LICENCE)['checks']);
        $this->assertSame('Issuing the Jetpack licence is queued. The licence key will appear here once it is issued.',
            Messages::queued('provision', Catalogue::API_LICENCE));
        $this->assertContains(Messages::queued('provision', Catalogue::API_LICENCE), Catalogue::queuedTexts(),
            'the "queued" text of a licence row is one the module writes');
        // The setting is read as the worker's Api::parse reads it.
        $this->assertSame(Catalogue::API_LICENCE, Catalogue::apiOf(' Licence '));
        foreach (array('', 'plan', 'license', null) as $setting) {
            $this->assertSame(Catalogue::API_PLAN, Catalogue::apiOf($setting), var_export($setting, true));
        }
        $this->assertSame('/wp-admin/admin.php?page=jetpack#/license/activation', Catalogue::licenceActivationPath());
    }

    /**
     * No PHP file of the module or the dashboard spells a list of actions or states itself
     * (the dashboard's filter once listed only provision and terminate, dropping change).
     */
    public function testNoPhpFileKeepsItsOwnListOfActionsStatesOrSettingValues(): void
    {
        $root = dirname(__DIR__) . '/modules';
        $files = array_merge(
            glob($root . '/servers/jetpack/*.php'),
            glob($root . '/servers/jetpack/lib/*.php'),
            glob($root . '/addons/jetpack_queue/*.php'),
            glob($root . '/addons/jetpack_queue/lib/*.php')
        );
        $names = array_merge(
            Catalogue::actionNames(),
            Catalogue::lists('job_states'),
            array_keys(Catalogue::manualSetupChoices())
        );
        $quoted = '\'(?:' . implode('|', array_map('preg_quote', $names)) . ')\'';
        // Two quoted names in a row: a list (maps of labels keyed by state are checked above).
        $list = '/' . $quoted . '\s*,\s*' . $quoted . '/';
        $this->assertGreaterThan(10, count($files));
        foreach ($files as $file) {
            $this->assertSame(0, preg_match($list, file_get_contents($file), $m), basename($file) . ' lists '
                . (isset($m[0]) ? $m[0] : '') . ' itself; read it from Catalogue');
        }
    }

    /**
     * The setting "When to provision a manual-setup order": its module setting and which
     * stored values each order event serves, as the worker decides (src/manual_setup.rs): ''
     * keeps the rule products had before the setting (either event).
     */
    public function testTheManualSetupSettingIsTheWorkers(): void
    {
        $this->assertSame('configoption8', Catalogue::manualSetupSetting());
        $this->assertSame(array('paid', 'accepted', 'create'), array_keys(Catalogue::manualSetupChoices()));
        $this->assertSame(array('', 'paid', 'accepted'), Catalogue::provisionedOn('accepted'));
        $this->assertSame(array('', 'paid'), Catalogue::provisionedOn('paid'));
        $this->assertSame(array(), Catalogue::provisionedOn('refunded'));
    }

    public function testABrokenCatalogueIsAClearModuleError(): void
    {
        $path = tempnam(sys_get_temp_dir(), 'catalogue');
        file_put_contents($path, '{"actions": []}');
        try {
            Catalogue::load($path);
            $this->fail('a catalogue without its lists loaded');
        } catch (ModuleError $e) {
            $this->assertStringStartsWith('JETPACK MODULE: ', $e->getMessage());
            $this->assertStringContainsString('reinstall', $e->getMessage());
        } finally {
            unlink($path);
        }
    }
}
