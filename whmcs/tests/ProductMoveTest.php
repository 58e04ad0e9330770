<?php

namespace JetpackTests;

use JetpackTests\Support\DatabaseTestCase;
use JetpackTests\Support\Whmcs;
use WHMCS\Module\Server\Jetpack\Messages;

/**
 * ChangePackage and Terminate after a move to a product whose custom fields are named
 * differently: WHMCS carries a value over only between fields of the same name, so the new
 * product's Site URL field is there but empty. The module's checks (OrderChecks) then take the
 * site jetpack-worker's ledger holds for the service, as the worker does (`read_order_held`,
 * `read_cancel_held`): the one site for a change (the plan is the one the order names), any for
 * a terminate; the activity line says so. A Create never falls back.
 */
final class ProductMoveTest extends DatabaseTestCase
{
    /**
     * A provisioned service (the ledger holds its site) moved to a product per plan whose
     * fields are named differently, with an empty Site URL value.
     *
     * @return int tblhosting.id
     */
    private function movedService(array $heldSites = array('moved.example'))
    {
        $service = $this->service($this->product(), $this->validValues('https://moved.example/', 'admin', 'Personal'),
            array('status' => 'Active'));
        foreach ($heldSites as $site) {
            $this->ledgerRow($service, $site, 'personal');
        }
        $new = $this->product(array('name' => 'Jetpack Premium (new)', 'fields' => array(
            'Site URL|Website address',
            'Local User|WordPress user name',
            'jetpack_provisioning_details|Jetpack Provisioning Details',
        )));
        $this->exec("UPDATE tblproducts SET configoption3 = 'premium', configoption6 = 'admin' WHERE id = ?", array($new));
        $this->exec('UPDATE tblhosting SET packageid = ? WHERE id = ?', array($new, $service));
        $this->setValue($service, 'Site URL', '');
        return $service;
    }

    public function testChangePackageAfterTheMoveIsRecordedForTheSiteTheLedgerHolds(): void
    {
        $service = $this->movedService();

        $this->assertSame('success', jetpack_ChangePackage(Whmcs::params($service)));

        $this->assertSame(array('change'), array_column($this->requests($service), 'action'));
        $this->assertSame(Messages::queued('change'), $this->details($service));
        $lines = $this->loggedActivity();
        $this->assertCount(1, $lines);
        $this->assertStringContainsString('change requested for jetpack-worker', $lines[0]);
        $this->assertStringContainsString(Messages::siteFromLedger('moved.example'), $lines[0]);
    }

    public function testTerminateAfterTheMoveIsRecordedWhateverTheLedgerHolds(): void
    {
        $service = $this->movedService(array('moved.example', 'older.example'));

        $this->assertSame('success', Whmcs::moduleCall('TerminateAccount', $service));

        $this->assertSame(array('terminate'), array_column($this->requests($service), 'action'));
        $this->assertStringContainsString('the Site URL field is empty', $this->loggedActivity()[0]);
    }

    /**
     * A change with two sites in the ledger cannot tell which: refused as before; a Create
     * never falls back; a service whose field names a site reads its field.
     */
    public function testNoGuessing(): void
    {
        $two = $this->movedService(array('moved.example', 'older.example'));
        $this->assertStringContainsString('is empty', jetpack_ChangePackage(Whmcs::params($two)));

        $one = $this->movedService();
        $this->assertStringContainsString('is empty', jetpack_CreateAccount(Whmcs::params($one)));

        $named = $this->movedService();
        $this->updateValue($named, 'Site URL', 'https://named.example/');
        $this->assertSame('success', jetpack_ChangePackage(Whmcs::params($named)));
        $this->assertStringNotContainsString('Site URL field is empty', end($GLOBALS['jetpack_test_activity'])['description']);
        $this->assertSame(array('change'), array_column($this->requests($named), 'action'));
        $this->assertCount(0, $this->requests($two));
        $this->assertCount(0, $this->requests($one));
    }
}
