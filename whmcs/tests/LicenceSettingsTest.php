<?php

namespace JetpackTests;

use JetpackTests\Support\DatabaseTestCase;
use JetpackTests\Support\LicenceSeed;
use JetpackTests\Support\Whmcs;
use WHMCS\Module\Server\Jetpack\Catalogue;
use WHMCS\Module\Server\Jetpack\Messages;
use WHMCS\Module\Server\Jetpack\OrderChecks;

/**
 * A product (or addon) that sells Jetpack licences (Module Settings → Jetpack API = licence,
 * configoption9..12): Create records the same request as for a plan, with the licence's
 * "queued" text, after the catalogue's licence checks (the token and the product; the Site URL
 * only when Attach to the site is on; nothing of the partner's plan, user or credentials); the
 * dropdown of licence products; the token masked like the client secret.
 */
final class LicenceSettingsTest extends DatabaseTestCase
{
    use LicenceSeed;

    public function testCreateOfALicenceProductRecordsTheRequestWithTheLicencesQueuedText(): void
    {
        $service = $this->service($this->licenceProduct(), array('Site URL' => 'https://shop.example/'));

        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($service)));

        $requests = $this->requests($service);
        $this->assertCount(1, $requests);
        $this->assertSame('provision', $requests[0]->action, 'the worker picks the licence row by the product');
        $this->assertSame(Messages::queued('provision', Catalogue::API_LICENCE), $this->details($service));
        $this->assertStringContainsString('licence key will appear here', $this->details($service));
    }

    public function testALicenceProductNeedsNoLocalUserPlanSiteOrPartnerCredentials(): void
    {
        $service = $this->service($this->licenceProduct(array('fields' => array('jetpack_provisioning_details'))), array());

        $order = OrderChecks::check($service, 'provision');

        $this->assertSame(Catalogue::API_LICENCE, $order->api);
        $this->assertSame('jetpack-backup-daily', $order->licenceProduct);
        $this->assertNull($order->plan);
        $this->assertNull($order->localUser);
        $this->assertSame('success', jetpack_TerminateAccount(Whmcs::params($service)));
        $this->assertSame(Messages::queued('terminate', Catalogue::API_LICENCE), $this->details($service));
    }

    public function licenceSettingsMissing(): array
    {
        $product = "product 'Jetpack Backup licence' sells Jetpack licences but ";
        return array(
            'no token' => array(array('token' => '  '), $product . 'has no Licensing API token; enter the token '
                . 'Automattic gave you in Module Settings → Licensing API token'),
            'no product' => array(array('slug' => ''), $product . "its licence product '' is not one; choose one in "
                . 'Module Settings → Licence product'),
            'not a product slug' => array(array('slug' => 'Jetpack <Scan>'), $product . "its licence product "
                . "'Jetpack &lt;Scan&gt;' is not one; choose one in Module Settings → Licence product"),
            'the token first' => array(array('token' => '', 'slug' => ''), $product . 'has no Licensing API token; enter the token '
                . 'Automattic gave you in Module Settings → Licensing API token'),
        );
    }

    /**
     * @dataProvider licenceSettingsMissing
     */
    public function testALicenceProductWithoutItsTokenOrProductIsRefused(array $settings, string $said): void
    {
        $service = $this->service($this->licenceProduct($settings + array('attach' => 'on')), array('Site URL' => ''));

        $result = jetpack_CreateAccount(Whmcs::params($service));

        $this->assertSame('JETPACK MODULE: Service ID: ' . $service . ' - ' . $said, $result, 'the settings before the site');
        $this->assertCount(0, $this->requests($service), 'nothing recorded');
        $this->assertSame('', $this->details($service));
    }

    public function testWithAttachOnTheSiteUrlIsChecked(): void
    {
        $product = $this->licenceProduct(array('attach' => 'on'));
        $noSite = $this->service($product, array('Site URL' => ''));
        $site = $this->service($product, array('Site URL' => 'shop.example'));
        $offProduct = $this->licenceProduct();
        $offNoSite = $this->service($offProduct, array('Site URL' => ''));

        $this->assertStringContainsString("the Site URL '' is empty", jetpack_CreateAccount(Whmcs::params($noSite)));
        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($site)));
        $this->assertSame('shop.example', OrderChecks::check($site, 'provision')->siteUrl);
        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($offNoSite)), 'attach off: no site is read');
    }

    public function testAnEmptySiteUrlOfALicenceThatAttachesTakesTheSiteItWasLastAttachedTo(): void
    {
        $service = $this->service($this->licenceProduct(array('attach' => 'On ')), array('Site URL' => ' '));
        $this->licence($service, array('state' => 'revoked', 'attached_site' => 'https://old.example/', 'revoked_at' => '2026-12-01 00:00:00',
            'license_key' => 'jetpack-backup-daily_OLD'));
        $this->licence($service, array('state' => 'issued', 'attached_site' => 'https://last.example/'));
        $this->licence($service, array('state' => 'failed', 'license_key' => null));

        $order = OrderChecks::check($service, 'change');

        $this->assertSame('https://last.example/', $order->siteUrl);
        $this->assertTrue($order->siteFromLedger);
    }

    public function testAPlanProductIsCheckedAsBeforeWhateverItsLicenceSettingsSay(): void
    {
        $product = $this->product();
        $this->exec("UPDATE tblproducts SET configoption9 = 'plan', configoption11 = 'jetpack-scan' WHERE id = ?", array($product));
        $noUser = $this->service($product, array('Site URL' => 'example.com', 'Plan' => 'premium'));

        $this->assertStringContainsString("the Local User is empty", jetpack_CreateAccount(Whmcs::params($noUser)));
        $this->assertSame(Catalogue::API_PLAN, OrderChecks::check($this->service($product))->api);
    }

    public function testAnAddonSellingLicencesReadsItsOwnModuleSettings(): void
    {
        $hosting = $this->product(array('name' => 'Hosting', 'servertype' => 'cpanel', 'fields' => array()));
        $service = $this->service($hosting, array(), array('status' => 'Active', 'domain' => 'hosted.example'));
        $definition = $this->addonDefinition(array(
            'client_id' => '', 'secret' => '', 'fields' => array('jetpack_provisioning_details'),
            'settings' => array('configoption9' => 'licence', 'configoption10' => 'addon-token', 'configoption11' => 'jetpack-scan'),
        ));
        $addon = $this->addon($definition, $service, array());
        $broken = $this->addon($this->addonDefinition(array(
            'client_id' => '', 'secret' => '', 'fields' => array('jetpack_provisioning_details'),
            'settings' => array('configoption9' => 'licence', 'configoption11' => 'jetpack-scan'),
        )), $service, array());

        $this->assertSame('success', jetpack_CreateAccount(Whmcs::addonParams($addon)));
        $this->assertSame('jetpack-scan', OrderChecks::check($service, 'provision', $addon)->licenceProduct);
        $this->assertStringContainsString("addon 'Jetpack Backup' sells Jetpack licences but has no Licensing API token; "
            . "enter the token Automattic gave you in the addon's Module Settings → Licensing API token",
            jetpack_CreateAccount(Whmcs::addonParams($broken)));
        $this->assertSame(array(Messages::queued('provision', Catalogue::API_LICENCE)), array_values($this->addonDetailsRows($addon)));
    }

    public function testTheLicenceProductDropdownListsTheProductsTheWorkerFetched(): void
    {
        $builtIn = jetpack_ConfigOptions()['Licence product']['Options'];
        $this->exec(
            "INSERT INTO mod_jetpack_licence_products (slug, name, family, fetched_at) VALUES
             ('jetpack-boost', 'Jetpack Boost', 'Performance', UTC_TIMESTAMP(6)),
             ('jetpack-anti-spam', 'Akismet <b>Anti-spam</b>', 'Security', UTC_TIMESTAMP(6))"
        );

        $fetched = jetpack_ConfigOptions()['Licence product']['Options'];

        $this->assertSame(array_keys(Catalogue::licenceProducts()), array_keys($builtIn), 'empty table: the built-in list');
        $this->assertSame(array('jetpack-anti-spam' => 'Akismet <b>Anti-spam</b> (jetpack-anti-spam)',
            'jetpack-boost' => 'Jetpack Boost (jetpack-boost)'), $fetched, 'by name; WHMCS escapes option labels');
    }

    public function testTheLicenceProductDropdownKeepsTheBuiltInListWithoutTheWorkersTable(): void
    {
        $this->exec('DROP TABLE mod_jetpack_licence_products');

        $this->assertSame(array_keys(Catalogue::licenceProducts()), array_keys(jetpack_ConfigOptions()['Licence product']['Options']));
    }

    /**
     * The token is a secret like the client secret: a database error's module-log entry gives
     * it to WHMCS to mask and never carries it itself; the message never names it.
     */
    public function testTheTokenIsMaskedInTheModuleLogLikeTheClientSecret(): void
    {
        $token = 'licence-token-9c1d77';
        $service = $this->service($this->licenceProduct(array('token' => $token)), array('Site URL' => 'shop.example'));
        $this->exec('DROP TABLE mod_jetpack_requests');

        $result = jetpack_CreateAccount(Whmcs::params($service));

        $this->assertStringStartsWith('JETPACK MODULE: Service ID: ' . $service . ' - ', $result);
        $calls = $this->loggedModuleCalls();
        $this->assertCount(1, $calls);
        $this->assertContains($token, $calls[0]['replaceVars'], 'WHMCS masks the token');
        $logged = print_r(array($calls[0]['request'], $calls[0]['response'], $calls[0]['processed']), true);
        $this->assertStringNotContainsString($token, $logged);
        $this->assertStringNotContainsString($token, $result);
    }

    public function testTheTokenStaysAPasswordFieldWhileFilesAreMissing(): void
    {
        $options = jetpack_OptionsAsStored(jetpack_ConfigOptions());

        $this->assertSame('password', $options['Licensing API token']['Type']);
        $this->assertSame('password', $options['Jetpack Partner Client Secret']['Type']);
        $this->assertSame('text', $options['Licence product']['Type'], 'shown as stored');
    }
}
