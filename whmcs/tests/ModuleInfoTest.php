<?php

namespace JetpackTests;

use PHPUnit\Framework\TestCase;
use WHMCS\Module\Server\Jetpack\Catalogue;

/**
 * What WHMCS reads before any service exists: the module's name and settings.
 */
final class ModuleInfoTest extends TestCase
{
    public function testMetaDataNamesTheModuleAndNeedsNoServer(): void
    {
        $meta = jetpack_MetaData();

        $this->assertSame('Jetpack by Automattic', $meta['DisplayName']);
        $this->assertSame('1.1', $meta['APIVersion']);
        $this->assertFalse($meta['RequiresServer']);
    }

    public function testConfigOptionsKeepTheOriginalOrderSoExistingProductsWorkUnchanged(): void
    {
        $options = jetpack_ConfigOptions();

        // The Nth entry is tblproducts.configoptionN.
        $this->assertSame(
            array(
                'Jetpack Partner Client ID',
                'Jetpack Partner Client Secret',
                'Plan',
                'Keep the Jetpack plan when a service is deleted',
                'Send the Jetpack activation email',
                'Default Local User',
                'When WHMCS suspends the service',
                'When to provision a manual-setup order',
                'Jetpack API',
                'Licensing API token',
                'Licence product',
                'Attach to the site',
            ),
            array_keys($options)
        );
        // configoption8: the choices of catalogue.json (the worker's src/manual_setup.rs), the
        // default first: 'paid', what '' (every product saved before the setting) means.
        $manual = $options['When to provision a manual-setup order'];
        $this->assertSame('dropdown', $manual['Type']);
        $this->assertSame(array('paid', 'accepted', 'create'), array_keys($manual['Options']));
        $this->assertSame('paid', $manual['Default']);
        $this->assertStringContainsString('accepts the order', $manual['Options']['accepted']);
        // configoption3: the plans of rules.json, and '' for "use the Plan custom field".
        $this->assertSame('dropdown', $options['Plan']['Type']);
        $this->assertSame(
            array('', 'free', 'personal', 'premium', 'professional', 'jetpack-backup-realtime',
                'jetpack-backup-daily', 'jetpack-scan', 'jetpack-anti-spam'),
            array_map('strval', array_keys($options['Plan']['Options']))
        );
        $this->assertSame('Use the Plan custom field', $options['Plan']['Options']['']);
        $this->assertSame('', $options['Plan']['Default']);
        // configoption6: the Default Local User.
        $this->assertSame('text', $options['Default Local User']['Type']);
        $this->assertSame('yesno', $options['Keep the Jetpack plan when a service is deleted']['Type']);
        // configoption5: the activation email (EmailTest).
        $this->assertSame('Send the Jetpack activation email', array_keys($options)[4]);
        $this->assertSame('text', $options['Jetpack Partner Client ID']['Type']);
        $this->assertSame('password', $options['Jetpack Partner Client Secret']['Type']);
    }

    public function testTheLicenceSettingsAreConfigoptionsNineToTwelve(): void
    {
        $options = jetpack_ConfigOptions();
        $keys = array_keys($options);

        // configoption9: plans stay the default of every product (saved before it: '').
        $this->assertSame('Jetpack API', $keys[8]);
        $api = $options['Jetpack API'];
        $this->assertSame('dropdown', $api['Type']);
        $this->assertSame(array('plan' => 'Jetpack plan (partner provisioning)', 'licence' => 'Jetpack licence (Licensing API)'),
            $api['Options']);
        $this->assertSame('plan', $api['Default']);
        // configoption10: a secret, shown masked like the client secret.
        $this->assertSame('Licensing API token', $keys[9]);
        $this->assertSame('password', $options['Licensing API token']['Type']);
        // configoption11: without a database (no products fetched), the catalogue's built-in list.
        $this->assertSame('Licence product', $keys[10]);
        $this->assertSame('dropdown', $options['Licence product']['Type']);
        $this->assertSame(array_keys(Catalogue::licenceProducts()), array_keys($options['Licence product']['Options']));
        $this->assertContains('jetpack-backup-daily', array_keys($options['Licence product']['Options']));
        $this->assertSame('Jetpack VaultPress Backup (daily) (jetpack-backup-daily)',
            $options['Licence product']['Options']['jetpack-backup-daily']);
        // configoption12: off unless ticked, and says who may tick it.
        $this->assertSame('Attach to the site', $keys[11]);
        $this->assertSame('yesno', $options['Attach to the site']['Type']);
        $this->assertArrayNotHasKey('Default', $options['Attach to the site']);
        $this->assertStringContainsString('allowlisted', $options['Attach to the site']['Description']);
    }

    public function testAdminButtonCallsTheRequeueFunction(): void
    {
        $buttons = jetpack_AdminCustomButtonArray();

        $this->assertSame(array('Retry Jetpack Job' => 'Requeue'), $buttons);
        $this->assertTrue(function_exists('jetpack_' . $buttons['Retry Jetpack Job']));
    }

    public function testHelperFunctionsDoNotTakeNamesWhmcsCallsModulesBy(): void
    {
        // WHMCS calls jetpack_<Function> when it exists (and jetpack_<suffix> for the admin
        // button); PHP function names ignore case.
        $entryNames = array(
            'MetaData', 'ConfigOptions', 'CreateAccount', 'SuspendAccount', 'UnsuspendAccount',
            'TerminateAccount', 'ChangePassword', 'ChangePackage', 'Renew', 'TestConnection',
            'UsageUpdate', 'AdminCustomButtonArray', 'ClientAreaCustomButtonArray',
            'AdminServicesTabFields', 'AdminServicesTabFieldsSave', 'ClientArea', 'AdminLink',
            'LoginLink', 'ServiceSingleSignOn', 'AdminSingleSignOn', 'ClientAreaAllowedFunctions',
            'ListAccounts', 'GetUserCount', 'MetricProvider', 'Requeue', // the button's suffix
        );
        $expected = array_map('strtolower', array(
            'jetpack_MetaData', 'jetpack_ConfigOptions', 'jetpack_CreateAccount',
            'jetpack_TerminateAccount', 'jetpack_ChangePackage', 'jetpack_SuspendAccount', 'jetpack_UnsuspendAccount',
            'jetpack_AdminCustomButtonArray', 'jetpack_Requeue',
            'jetpack_AdminServicesTabFields', 'jetpack_AdminServicesTabFieldsSave', 'jetpack_ClientArea',
        ));
        $defined = array_filter(get_defined_functions()['user'], function ($name) {
            return strpos($name, 'jetpack_') === 0;
        });

        foreach ($defined as $name) {
            $suffix = substr($name, strlen('jetpack_'));
            $isEntryName = in_array($suffix, array_map('strtolower', $entryNames), true);
            $this->assertSame(
                in_array($name, $expected, true),
                $isEntryName,
                "$name: only the module's entry points may use a WHMCS function name"
            );
        }
        $this->assertEmpty(array_diff($expected, $defined), 'every entry point is defined');
    }
}
