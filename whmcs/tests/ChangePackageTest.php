<?php

namespace JetpackTests;

use JetpackTests\Support\DatabaseTestCase;
use JetpackTests\Support\Whmcs;
use WHMCS\Module\Server\Jetpack\Messages;
use WHMCS\Module\Server\Jetpack\OrderChecks;

/**
 * jetpack_ChangePackage, which WHMCS calls once an upgrade or downgrade order is paid, with the
 * new product (or addon) already stored: the order is checked as for a provision, the target's
 * details say a change of plan is queued, and a `change` request is recorded. What the change
 * does (the same or a higher plan provisioned, a lower one refused with what to do) is the
 * worker's (src/lifecycle.rs).
 */
final class ChangePackageTest extends DatabaseTestCase
{
    public function layouts(): array
    {
        return array('WHMCS 8' => array(self::WHMCS_8), 'WHMCS 7.8.3' => array(self::WHMCS_783));
    }

    /**
     * An upgrade as WHMCS leaves it before calling ChangePackage: tblupgrades records it (paid,
     * completed) and the service has the new product.
     */
    private function upgrade($serviceId, $fromProduct, $toProduct)
    {
        $this->exec(
            "INSERT INTO tblupgrades (userid, orderid, type, date, relid, originalvalue, newvalue, new_cycle, amount,
                 credit_amount, days_remaining, total_days_in_cycle, new_recurring_amount, recurringchange, status, paid)
             VALUES (7, 0, 'package', CURDATE(), ?, ?, ?, 'monthly', 5, 0, 10, 30, 20, 10, 'Completed', 'Y')",
            array($serviceId, (string) $fromProduct, $toProduct . ',monthly')
        );
        $this->exec('UPDATE tblhosting SET packageid = ? WHERE id = ?', array($toProduct, $serviceId));
    }

    /**
     * @dataProvider layouts
     */
    public function testAnUpgradeOfAServiceRecordsAChangeOfPlan(string $layout): void
    {
        $this->useLayout($layout);
        $personal = $this->product(array('name' => 'Jetpack Personal'));
        $service = $this->service($personal, $this->validValues('example.com', 'admin', 'personal'), array('status' => 'Active'));
        $this->setValue($service, 'jetpack_provisioning_details', 'URL to Activate Jetpack: https://jetpack.example/old');
        // The new product names its plan in its Module Settings; its Plan field has no value
        // for this service (the values belong to the old product's fields).
        $premium = $this->product(array('name' => 'Jetpack Professional'));
        $this->exec("UPDATE tblproducts SET configoption3 = 'professional' WHERE id = ?", array($premium));
        $this->upgrade($service, $personal, $premium);
        $this->exec(
            "INSERT INTO tblcustomfieldsvalues (fieldid, relid, value, created_at, updated_at)
             SELECT f.id, ?, ?, NOW(), NOW() FROM tblcustomfields f
             WHERE f.type = 'product' AND f.relid = ? AND f.fieldname IN ('Site URL|Your WordPress site', 'Local User')
             ORDER BY f.id",
            array($service, 'example.com', $premium)
        );
        $this->exec(
            "UPDATE tblcustomfieldsvalues v JOIN tblcustomfields f ON f.id = v.fieldid
             SET v.value = 'admin' WHERE v.relid = ? AND f.relid = ? AND f.fieldname = 'Local User'",
            array($service, $premium)
        );
        $this->assertSame('professional', OrderChecks::check($service, 'change')->plan);

        $result = jetpack_ChangePackage(Whmcs::params($service));

        $this->assertSame('success', $result);
        $requests = $this->requests($service);
        $this->assertCount(1, $requests);
        $this->assertSame(array('change', 'module', 0), array($requests[0]->action, $requests[0]->requested_by, (int) $requests[0]->addon_id));
        $this->assertNull($requests[0]->applied_at);
        $this->assertSame(Messages::queued('change'), $this->details($service));
        $this->assertSame(
            array('JETPACK MODULE: Service ID: ' . $service . ' - change requested for jetpack-worker (request #' . $requests[0]->id . ')'),
            $this->loggedActivity()
        );
        $this->assertCount(0, $this->jobs($service), 'the worker makes the job');
        $this->assertSame('Active', $this->status($service));
    }

    public function testAChangeOfPlanChecksTheOrderAsAProvisionDoes(): void
    {
        $service = $this->service($this->product(), $this->validValues('example.com', ''), array('status' => 'Active'));
        $unknown = $this->service($this->product(), $this->validValues('example.com', 'admin', 'Gold'), array('status' => 'Active'));

        $this->assertStringStartsWith(
            'JETPACK MODULE: Service ID: ' . $service . ' - the Local User is empty',
            jetpack_ChangePackage(Whmcs::params($service))
        );
        $this->assertStringContainsString("'Gold' is not an allowed plan", jetpack_ChangePackage(Whmcs::params($unknown)));
        $this->assertCount(0, $this->requests());
        $this->assertSame('', $this->details($service));
        $this->assertSame(array(), $this->loggedActivity());
    }

    public function testADowngradeIsRecordedLikeAnyChangeTheWorkerDecides(): void
    {
        // The module does not know the current plan's rank: the worker refuses a lower plan.
        $service = $this->service($this->product(), $this->validValues('example.com', 'admin', 'free'), array('status' => 'Active'));

        $this->assertSame('success', jetpack_ChangePackage(Whmcs::params($service)));
        $this->assertSame(array('change'), array_column($this->requests($service), 'action'));
    }

    /**
     * @dataProvider layouts
     */
    public function testAnUpgradeOfAnAddonRecordsAChangeForTheAddon(string $layout): void
    {
        $this->useLayout($layout);
        $hosting = $this->product(array('name' => 'Hosting', 'servertype' => 'cpanel', 'fields' => array()));
        $service = $this->service($hosting, array(), array('status' => 'Active', 'domain' => 'hosted.example'));
        $daily = $this->addonDefinition(array('name' => 'Jetpack Backup Daily', 'fields' => array('Local User', 'jetpack_provisioning_details'),
            'settings' => array('configoption3' => 'jetpack-backup-daily')));
        $realtime = $this->addonDefinition(array('name' => 'Jetpack Backup Realtime', 'fields' => array('jetpack_provisioning_details'),
            'settings' => array('configoption3' => 'jetpack-backup-realtime', 'configoption6' => 'admin')));
        $addon = $this->addon($daily, $service, array('Local User' => 'admin'), array('status' => 'Active'));
        $oldDetails = $this->setAddonValue($addon, 'jetpack_provisioning_details', 'URL to Activate Jetpack: https://jetpack.example/daily');
        // WHMCS stores the new addon before it calls the module.
        $this->exec('UPDATE tblhostingaddons SET addonid = ? WHERE id = ?', array($realtime, $addon));
        $this->assertSame('jetpack-backup-realtime', OrderChecks::check($service, 'change', $addon)->plan);

        $result = jetpack_ChangePackage(Whmcs::addonParams($addon));

        $this->assertSame('success', $result);
        $requests = $this->requests();
        $this->assertCount(1, $requests);
        $this->assertSame(array($service, $addon, 'change'), array(
            (int) $requests[0]->service_id, (int) $requests[0]->addon_id, $requests[0]->action,
        ));
        $this->assertSame(array(Messages::queued('change')), array_values($this->addonDetailsRows($addon)), 'the new addon\'s details field');
        $this->assertSame(
            'URL to Activate Jetpack: https://jetpack.example/daily',
            $this->scalar('SELECT value FROM tblcustomfieldsvalues WHERE id = ?', array($oldDetails)),
            'the old addon\'s field keeps its value'
        );
        $this->assertSame(
            array('JETPACK MODULE: Addon ID: ' . $addon . ' (Service ID: ' . $service . ') - change requested for jetpack-worker (request #' . $requests[0]->id . ')'),
            $this->loggedActivity()
        );
    }

    public function testAChangeOfABrokenAddonIsRefused(): void
    {
        $hosting = $this->product(array('name' => 'Hosting', 'servertype' => 'cpanel', 'fields' => array()));
        $service = $this->service($hosting, array(), array('status' => 'Active'));
        $addon = $this->addon($this->addonDefinition(), $service);

        $result = jetpack_ChangePackage(Whmcs::addonParams($addon));

        $this->assertStringStartsWith('JETPACK MODULE: Addon ID: ' . $addon . ' (Service ID: ' . $service . ') - the addon has no Site URL', $result);
        $this->assertCount(0, $this->requests());
    }

    public function testTheChangeTextIsOneOfTheQueuedTextsARacingWriterCleansUp(): void
    {
        $this->assertSame(Messages::queued('change'), Messages::queued('change'));
        $this->assertContains(Messages::queued('change'), \WHMCS\Module\Server\Jetpack\Catalogue::queuedTexts());
        $this->assertSame(Messages::queued('provision'), Messages::queued('provision'));
        $this->assertSame(Messages::queued('terminate'), Messages::queued('terminate'));
    }
}
