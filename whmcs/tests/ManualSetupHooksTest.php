<?php

namespace JetpackTests;

use JetpackTests\Support\DatabaseTestCase;
use JetpackTests\Support\HookCalls;

/**
 * The product and addon setting "When to provision a manual-setup order" (configoption8) as the
 * hooks read it: '' (every product saved before the setting) and 'paid' record at payment or
 * acceptance, as before; 'accepted' only when an admin accepts the order (a paid invoice of an
 * order under fraud review records nothing); 'create' never (only Create provisions). The
 * values each order event serves come from catalogue.json (the worker's src/manual_setup.rs);
 * tests/worker/adoption_when.rs checks that the scan agrees for every value.
 */
final class ManualSetupHooksTest extends DatabaseTestCase
{
    use HookCalls;

    /**
     * A manual-setup Jetpack product with this setting.
     *
     * @param string $setting configoption8
     *
     * @return int tblproducts.id
     */
    private function productSetTo($setting)
    {
        $product = $this->product(array('autosetup' => ''));
        $this->exec('UPDATE tblproducts SET configoption8 = ? WHERE id = ?', array($setting, $product));
        return $product;
    }

    /**
     * A Jetpack addon without automatic activation with this setting (null: no row, as an
     * addon saved before the setting).
     *
     * @param string|null $setting
     *
     * @return int tbladdons.id
     */
    private function addonSetTo($setting)
    {
        return $this->addonDefinition(array('autoactivate' => '', 'settings' => array('configoption8' => $setting)));
    }

    /**
     * Each setting and order shape, and whether AcceptOrder, OrderPaid and InvoicePaid then
     * record the manual-setup service.
     */
    public function settingsAndOrders(): array
    {
        // order status, invoice status (null: none), AcceptOrder, OrderPaid, InvoicePaid
        $asBefore = array(
            'paid, not accepted yet' => array('Pending', 'Paid', true, true, true),
            'accepted earlier, unpaid' => array('Active', 'Unpaid', true, true, true),
            'accepted, free (no invoice)' => array('Active', null, true, true, false),
            'pending, unpaid' => array('Pending', 'Unpaid', true, false, false),
            'fraud, paid' => array('Fraud', 'Paid', false, false, false),
        );
        $onAcceptance = array(
            'paid, not accepted yet' => array('Pending', 'Paid', true, false, false),
            'accepted earlier, unpaid' => array('Active', 'Unpaid', true, true, true),
            'accepted, free (no invoice)' => array('Active', null, true, true, false),
            'pending, unpaid' => array('Pending', 'Unpaid', true, false, false),
            'fraud, paid' => array('Fraud', 'Paid', false, false, false),
        );
        $cases = array();
        foreach (array('' => $asBefore, 'paid' => $asBefore, 'accepted' => $onAcceptance, 'create' => null) as $setting => $table) {
            foreach ($table === null ? $asBefore : $table as $shape => $row) {
                if ($table === null) {
                    $row = array($row[0], $row[1], false, false, false);
                }
                $cases["'$setting', $shape"] = array_merge(array($setting), $row);
            }
        }
        return $cases;
    }

    /**
     * @dataProvider settingsAndOrders
     */
    public function testEachHookRecordsWhatTheSettingWaitsFor(
        $setting,
        $orderStatus,
        $invoiceStatus,
        $byAccept,
        $byOrderPaid,
        $byInvoicePaid
    ): void {
        $product = $this->productSetTo($setting);
        $expected = array('AcceptOrder' => $byAccept, 'OrderPaid' => $byOrderPaid, 'InvoicePaid' => $byInvoicePaid);
        foreach ($expected as $hook => $recorded) {
            $this->exec('DELETE FROM mod_jetpack_requests');
            list($orderId, $invoiceId) = $this->order($orderStatus, $invoiceStatus);
            $service = $this->serviceIn($orderId, $product, $invoiceId);
            $vars = array(
                'AcceptOrder' => array('orderid' => $orderId),
                'OrderPaid' => array('orderId' => $orderId, 'userId' => 7, 'invoiceId' => $invoiceId),
                'InvoicePaid' => array('invoiceid' => $invoiceId),
            );
            $this->runHook($hook, $vars[$hook]);
            $this->assertSame(
                $recorded ? array(array($service, 0, 'provision', 'hook')) : array(),
                $this->targets(),
                "$hook, setting '$setting', a $orderStatus order with invoice " . var_export($invoiceStatus, true)
            );
        }
    }

    /**
     * Fraud review: the invoice of an order of an 'accepted' product is paid (both paying
     * hooks fire), nothing is recorded; the admin accepts it, one request is.
     */
    public function testAPaidOrderUnderReviewIsRecordedWhenAccepted(): void
    {
        list($orderId, $invoiceId) = $this->order('Pending', 'Paid');
        $service = $this->serviceIn($orderId, $this->productSetTo('accepted'), $invoiceId);
        $addon = $this->addon($this->addonSetTo('accepted'), $service);
        $this->invoiceItem($invoiceId, 'Addon', $addon);

        $this->runHook('InvoicePaid', array('invoiceid' => $invoiceId));
        $this->runHook('OrderPaid', array('orderId' => $orderId, 'userId' => 7, 'invoiceId' => $invoiceId));
        $this->runHook('AddonActivation', $this->addonVars($addon));
        $this->assertSame(array(), $this->targets(), 'paid, not accepted');

        $this->runHook('AcceptOrder', array('orderid' => $orderId));
        $this->exec("UPDATE tblorders SET status = 'Active' WHERE id = ?", array($orderId));
        $this->runHook('AddonActivation', $this->addonVars($addon));

        $this->assertSame(
            array(array($service, 0, 'provision', 'hook'), array($service, $addon, 'provision', 'hook')),
            $this->targets()
        );
    }

    /**
     * An addon: its own setting in tblmodule_configuration (a missing row is ''), for the
     * addon WHMCS activated (Active, never a job) and for a Pending one.
     */
    public function addonCases(): array
    {
        // setting (null: no row), addon status, order status, invoice status, AddonActivation records
        return array(
            'no row, activated on payment' => array(null, 'Active', 'Pending', 'Paid', true),
            'paid, activated on payment' => array('paid', 'Active', 'Pending', 'Paid', true),
            'paid, Pending, paid' => array('paid', 'Pending', 'Pending', 'Paid', true),
            'accepted, activated on payment' => array('accepted', 'Active', 'Pending', 'Paid', false),
            'accepted, Pending, paid' => array('accepted', 'Pending', 'Pending', 'Paid', false),
            'accepted, activated on acceptance' => array('accepted', 'Active', 'Active', 'Unpaid', true),
            'accepted, Pending, accepted' => array('accepted', 'Pending', 'Active', 'Paid', true),
            'create, activated' => array('create', 'Active', 'Active', 'Paid', false),
            'create, Pending, accepted and paid' => array('create', 'Pending', 'Active', 'Paid', false),
        );
    }

    /**
     * @dataProvider addonCases
     */
    public function testAddonActivationFollowsTheAddonsSetting($setting, $status, $orderStatus, $invoiceStatus, $recorded): void
    {
        list($orderId, $invoiceId) = $this->order($orderStatus, $invoiceStatus);
        $service = $this->serviceIn($orderId, $this->product(), $invoiceId, 'Active');
        $addon = $this->addon($this->addonSetTo($setting), $service, null, array('status' => $status));

        $this->runHook('AddonActivation', $this->addonVars($addon));

        $this->assertSame(
            $recorded ? array(array($service, $addon, 'provision', 'hook')) : array(),
            $this->targets()
        );
    }

    /**
     * WHMCS activated an 'accepted' addon when its invoice was paid (AddonActivation recorded
     * nothing then): accepting its order records it. One whose plan was provisioned before (a
     * job) is not recorded again, nor a 'create' one.
     */
    public function testAcceptingAnOrderRecordsTheAddonWhmcsActivatedOnPayment(): void
    {
        list($orderId) = $this->order('Pending', 'Paid');
        $service = $this->serviceIn($orderId, $this->product(), 0, 'Active');
        $activated = $this->addon($this->addonSetTo('accepted'), $service, null, array('status' => 'Active'));
        $provisioned = $this->addon($this->addonSetTo('accepted'), $service, null, array('status' => 'Active'));
        $this->targetJob($service, $provisioned, 'provision', 'done');
        $never = $this->addon($this->addonSetTo('create'), $service);

        $this->runHook('AddonActivation', $this->addonVars($activated));
        $this->assertSame(array(), $this->targets(), 'paid, not accepted');
        $this->runHook('AcceptOrder', array('orderid' => $orderId));

        $this->assertSame(
            array(array($service, $activated, 'provision', 'hook')),
            $this->targets(),
            "not #$provisioned (provisioned before) nor #$never (Create only)"
        );
    }
}
