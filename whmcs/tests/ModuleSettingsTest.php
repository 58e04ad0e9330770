<?php

namespace JetpackTests;

use JetpackTests\Support\DatabaseTestCase;
use JetpackTests\Support\Whmcs;
use WHMCS\Module\Server\Jetpack\OrderChecks;

/**
 * The module settings Plan (configoption3) and Default Local User (configoption6), read the same
 * way for standalone products (tblproducts.configoptionN) and for addons
 * (tblmodule_configuration): the Plan setting wins when it names a plan (an upgrade changes the
 * product and its setting; WHMCS carries field values over unchanged), the Plan field names the
 * plan when the setting is empty; the Local User field wins, the default stands in
 * when it is missing or empty (docs/addons.md, "Reading an order").
 */
final class ModuleSettingsTest extends DatabaseTestCase
{
    const PRODUCT_WITHOUT_PLAN = array(
        'Site URL|Your WordPress site',
        'Local User',
        'jetpack_provisioning_details|Jetpack Provisioning Details',
    );

    public function layouts(): array
    {
        return array('WHMCS 8' => array(self::WHMCS_8), 'WHMCS 7.8.3' => array(self::WHMCS_783));
    }

    /**
     * @return int a product with the given fields and module settings configoption3/6
     */
    private function productWith(array $fields, $plan, $defaultUser = '')
    {
        $product = $this->product(array('fields' => $fields));
        $this->exec(
            'UPDATE tblproducts SET configoption3 = ?, configoption6 = ? WHERE id = ?',
            array($plan, $defaultUser, $product)
        );
        return $product;
    }

    /**
     * @return array (service id, tblhostingaddons.id) of an addon with these fields and settings
     */
    private function addonWith(array $fields, array $settings, ?array $values)
    {
        $hosting = $this->product(array('name' => 'Hosting', 'servertype' => 'cpanel', 'fields' => array()));
        $service = $this->service($hosting, array(), array('status' => 'Active', 'domain' => 'hosted.example'));
        $definition = $this->addonDefinition(array('fields' => $fields, 'settings' => $settings));
        return array($service, $this->addon($definition, $service, $values));
    }

    // --- Plan ------------------------------------------------------------------------------

    /**
     * @dataProvider layouts
     */
    public function testAProductWithoutAPlanFieldTakesThePlanSetting(string $layout): void
    {
        $this->useLayout($layout);
        $service = $this->service(
            $this->productWith(self::PRODUCT_WITHOUT_PLAN, 'Jetpack-Scan'),
            array('Site URL' => 'example.com', 'Local User' => 'admin')
        );

        $this->assertSame('jetpack-scan', OrderChecks::check($service)->plan);
        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($service)));
        $this->assertCount(1, $this->requests($service));
    }

    public function testAnEmptyPlanValueTakesThePlanSetting(): void
    {
        // As after an upgrade to another product: its Plan field has no value for the service.
        $service = $this->service($this->productWith(self::STANDARD_FIELDS, 'professional'), $this->validValues('example.com', 'admin', ' '));
        $noRow = $this->service($this->productWith(self::STANDARD_FIELDS, 'professional'), array('Site URL' => 'example.com', 'Local User' => 'admin'));

        $this->assertSame('professional', OrderChecks::check($service)->plan);
        $this->assertSame('professional', OrderChecks::check($noRow)->plan);
    }

    public function testThePlanSettingWinsOverThePlanField(): void
    {
        $service = $this->service($this->productWith(self::STANDARD_FIELDS, 'free'), $this->validValues('example.com', 'admin', 'Personal|a comment'));
        $stale = $this->service($this->productWith(self::STANDARD_FIELDS, 'premium'), $this->validValues('example.com', 'admin', 'Gold'));
        $fieldOnly = $this->service($this->productWith(self::STANDARD_FIELDS, ''), $this->validValues('example.com', 'admin', 'Personal|a comment'));

        $this->assertSame('free', OrderChecks::check($service)->plan);
        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($stale)),
            'a stale field value is not read while the setting names the plan');
        $this->assertSame('personal', OrderChecks::check($fieldOnly)->plan);
    }

    public function testWithoutPlanFieldOrSettingTheMessagesStayAsTheyWere(): void
    {
        $noField = $this->service($this->productWith(self::PRODUCT_WITHOUT_PLAN, ''), array('Site URL' => 'example.com', 'Local User' => 'admin'));
        $empty = $this->service($this->productWith(self::STANDARD_FIELDS, '  '), $this->validValues('example.com', 'admin', ''));

        $this->assertStringContainsString("has no custom field named 'Plan'", jetpack_CreateAccount(Whmcs::params($noField)));
        $this->assertStringContainsString("'' is not an allowed plan", jetpack_CreateAccount(Whmcs::params($empty)));
        $this->assertCount(0, $this->requests());
    }

    public function testAPlanSettingThatIsNoPlanIsRefused(): void
    {
        $service = $this->service($this->productWith(self::PRODUCT_WITHOUT_PLAN, 'gold'), array('Site URL' => 'example.com', 'Local User' => 'admin'));

        $result = jetpack_CreateAccount(Whmcs::params($service));

        $this->assertStringStartsWith('JETPACK MODULE: Service ID: ' . $service . " - 'gold' is not an allowed plan; use one of: free", $result);
    }

    public function testATerminateNamesThePlanSettingsPlan(): void
    {
        $service = $this->service($this->productWith(self::PRODUCT_WITHOUT_PLAN, 'premium'), array('Site URL' => 'example.com'));

        $order = OrderChecks::check($service, 'terminate');

        $this->assertSame('premium', $order->plan);
        $this->assertNull($order->localUser);
    }

    /**
     * @dataProvider layouts
     */
    public function testAnAddonWithoutAPlanFieldTakesItsPlanSetting(string $layout): void
    {
        $this->useLayout($layout);
        list($service, $addon) = $this->addonWith(
            array('Local User', 'jetpack_provisioning_details'),
            array('configoption3' => 'jetpack-backup-realtime'),
            array('Local User' => 'admin')
        );

        $this->assertSame('jetpack-backup-realtime', OrderChecks::check($service, 'provision', $addon)->plan);
        $this->assertSame('success', jetpack_CreateAccount(Whmcs::addonParams($addon)));
    }

    public function testAnAddonsPlanSettingWinsOverItsPlanField(): void
    {
        list($service, $addon) = $this->addonWith(
            self::ADDON_FIELDS,
            array('configoption3' => 'jetpack-backup-realtime'),
            array('Local User' => 'admin', 'Plan' => 'jetpack-anti-spam')
        );
        list($otherService, $empty) = $this->addonWith(
            self::ADDON_FIELDS,
            array('configoption3' => 'jetpack-backup-realtime'),
            array('Local User' => 'admin', 'Plan' => '')
        );

        $this->assertSame('jetpack-backup-realtime', OrderChecks::check($service, 'provision', $addon)->plan);
        $this->assertSame('jetpack-backup-realtime', OrderChecks::check($otherService, 'provision', $empty)->plan);
    }

    public function testAnAddonWithoutPlanFieldOrSettingIsRefused(): void
    {
        list($service, $addon) = $this->addonWith(array('Local User', 'jetpack_provisioning_details'), array(), array('Local User' => 'admin'));

        $result = jetpack_CreateAccount(Whmcs::addonParams($addon));

        $this->assertSame(
            'JETPACK MODULE: Addon ID: ' . $addon . ' (Service ID: ' . $service . ") - addon 'Jetpack Backup' has no custom "
            . "field named 'Plan'; add it under Products/Services → Product Addons → 'Jetpack Backup' → Custom Fields with "
            . "exactly that name (or 'Plan|Display Name')",
            $result
        );
        $this->assertCount(0, $this->requests());
    }

    public function testTheSettingsOfOtherAddonsAndProductsAreNotRead(): void
    {
        // The same id in tblproducts and another entity type: only entity_type 'addon' counts.
        list($service, $addon) = $this->addonWith(array('Local User', 'jetpack_provisioning_details'), array(), array('Local User' => 'admin'));
        $definition = (int) $this->scalar('SELECT addonid FROM tblhostingaddons WHERE id = ?', array($addon));
        $this->exec(
            "INSERT INTO tblmodule_configuration (entity_type, entity_id, setting_name, value)
             VALUES ('product', ?, 'configoption3', 'premium'), ('addon', ?, 'configoption3', 'premium')",
            array($definition, $definition + 1)
        );

        $this->assertStringContainsString("has no custom field named 'Plan'", jetpack_CreateAccount(Whmcs::addonParams($addon)));
    }

    // --- Default Local User ---------------------------------------------------------------

    /**
     * @dataProvider layouts
     */
    public function testAProductWithoutALocalUserFieldTakesTheDefault(string $layout): void
    {
        $this->useLayout($layout);
        $fields = array('Site URL', 'Plan', 'jetpack_provisioning_details');
        $withDefault = $this->service($this->productWith($fields, '', ' wpadmin '), array('Site URL' => 'example.com', 'Plan' => 'premium'));
        $without = $this->service($this->productWith($fields, ''), array('Site URL' => 'example.com', 'Plan' => 'premium'));

        $this->assertSame('wpadmin', OrderChecks::check($withDefault)->localUser);
        $this->assertSame('success', jetpack_CreateAccount(Whmcs::params($withDefault)));
        $this->assertStringContainsString(
            "product 'Jetpack Premium' has no custom field named 'Local User'",
            jetpack_CreateAccount(Whmcs::params($without))
        );
        $this->assertCount(1, $this->requests());
    }

    public function testAnEmptyLocalUserTakesTheDefaultAndAValueWins(): void
    {
        $product = $this->productWith(self::STANDARD_FIELDS, '', 'wpadmin');
        $empty = $this->service($product, $this->validValues('example.com', '  '));
        $noRow = $this->service($product, array('Site URL' => 'example.com', 'Plan' => 'premium'));
        $given = $this->service($product, $this->validValues('example.com', 'editor|the editor'));
        $plain = $this->service($this->productWith(self::STANDARD_FIELDS, ''), $this->validValues('example.com', ''));

        $this->assertSame('wpadmin', OrderChecks::check($empty)->localUser);
        $this->assertSame('wpadmin', OrderChecks::check($noRow)->localUser);
        $this->assertSame('editor', OrderChecks::check($given)->localUser);
        $this->assertStringContainsString('the Local User is empty', jetpack_CreateAccount(Whmcs::params($plain)));
    }

    public function testTheDefaultLocalUserIsCheckedLikeAValue(): void
    {
        $fields = array('Site URL', 'Plan', 'jetpack_provisioning_details');
        $markup = $this->service($this->productWith($fields, '', '<b>admin</b>'), array('Site URL' => 'example.com', 'Plan' => 'premium'));
        $long = $this->service($this->productWith($fields, '', str_repeat('u', 201)), array('Site URL' => 'example.com', 'Plan' => 'premium'));

        $this->assertStringContainsString('the Local User contains angle brackets', jetpack_CreateAccount(Whmcs::params($markup)));
        $this->assertStringContainsString('the Local User is longer than 200 characters', jetpack_CreateAccount(Whmcs::params($long)));
    }

    /**
     * @dataProvider layouts
     */
    public function testAnAddonTakesItsDefaultLocalUser(string $layout): void
    {
        $this->useLayout($layout);
        list($service, $addon) = $this->addonWith(
            array('Plan', 'jetpack_provisioning_details'),
            array('configoption6' => 'siteowner'),
            array('Plan' => 'jetpack-scan')
        );
        list($emptyService, $empty) = $this->addonWith(
            self::ADDON_FIELDS,
            array('configoption6' => 'siteowner'),
            array('Local User' => '', 'Plan' => 'jetpack-scan')
        );
        list($noneService, $none) = $this->addonWith(array('Plan', 'jetpack_provisioning_details'), array(), array('Plan' => 'jetpack-scan'));

        $this->assertSame('siteowner', OrderChecks::check($service, 'provision', $addon)->localUser);
        $this->assertSame('siteowner', OrderChecks::check($emptyService, 'provision', $empty)->localUser);
        $this->assertSame('success', jetpack_CreateAccount(Whmcs::addonParams($addon)));
        $this->assertStringContainsString(
            "addon 'Jetpack Backup' has no custom field named 'Local User'",
            jetpack_CreateAccount(Whmcs::addonParams($none))
        );
    }

    public function testAProductsDefaultLocalUserDoesNotServeItsAddons(): void
    {
        $product = $this->productWith(self::STANDARD_FIELDS, 'premium', 'wpadmin');
        $service = $this->service($product, null, array('status' => 'Active', 'domain' => 'hosted.example'));
        $addon = $this->addon($this->addonDefinition(array('fields' => array('Plan', 'jetpack_provisioning_details'))), $service, array('Plan' => 'premium'));

        $this->assertStringContainsString(
            "addon 'Jetpack Backup' has no custom field named 'Local User'",
            jetpack_CreateAccount(Whmcs::addonParams($addon))
        );
    }
}
