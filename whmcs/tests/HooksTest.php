<?php

namespace JetpackTests;

use JetpackTests\Support\DatabaseTestCase;
use JetpackTests\Support\HookCalls;
use WHMCS\Module\Server\Jetpack\Hooks;

/**
 * hooks.php, run the way WHMCS runs it: the callbacks registered through add_hook() are
 * called with the hook's parameters. AcceptOrder, OrderPaid and InvoicePaid record a
 * provision request (requested_by 'hook') for each Pending service of a manual-setup Jetpack
 * product that qualifies by the worker's adoption rule (src/store/adoption/kind.rs, `Kind::qualifies`);
 * AddonActivation does the same for a Pending Jetpack addon without automatic activation (the
 * request names the addon and its parent service); ServiceDelete records a terminate request
 * when the ledger holds a plan for the service itself. Nothing ever reaches
 * WHMCS as an exception, and every lookup uses an index.
 */
final class HooksTest extends DatabaseTestCase
{
    use HookCalls;

    /**
     * @return int a manual-setup ("Do not automatically setup") Jetpack product
     */
    private function manualProduct()
    {
        return $this->product(array('autosetup' => ''));
    }

    /**
     * @return array the services with a recorded request, by action: service id => action
     */
    private function recorded()
    {
        $out = array();
        foreach ($this->requests() as $request) {
            $this->assertSame('hook', $request->requested_by);
            $out[(int) $request->service_id][] = $request->action;
        }
        return $out;
    }

    // --- AcceptOrder, OrderPaid, InvoicePaid ----------------------------------------------

    /**
     * Each order shape, and whether each hook then records its manual-setup service.
     */
    public function orders(): array
    {
        // order status, invoice status (null: none), AcceptOrder, OrderPaid, InvoicePaid
        return array(
            'paid, not accepted yet' => array('Pending', 'Paid', true, true, true),
            'accepted earlier, unpaid' => array('Active', 'Unpaid', true, true, true),
            'accepted, free (no invoice)' => array('Active', null, true, true, false),
            'pending, unpaid' => array('Pending', 'Unpaid', true, false, false),
            'fraud, paid' => array('Fraud', 'Paid', false, false, false),
            'cancelled, paid' => array('Cancelled', 'Paid', false, false, false),
            'fraud, unpaid' => array('Fraud', 'Unpaid', false, false, false),
            'pending, invoice cancelled' => array('Pending', 'Cancelled', true, false, false),
        );
    }

    /**
     * @dataProvider orders
     */
    public function testEachHookRecordsExactlyWhatTheAdoptionRuleAllows(
        $orderStatus,
        $invoiceStatus,
        $byAccept,
        $byOrderPaid,
        $byInvoicePaid
    ): void {
        $product = $this->manualProduct();
        $cases = array(
            'AcceptOrder' => $byAccept,
            'OrderPaid' => $byOrderPaid,
            'InvoicePaid' => $byInvoicePaid,
        );
        foreach ($cases as $hook => $expected) {
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
                $expected ? array($service => array('provision')) : array(),
                $this->recorded(),
                "$hook on a $orderStatus order with invoice " . var_export($invoiceStatus, true)
            );
        }
    }

    public function testTheHookLogsEachRequestItRecords(): void
    {
        list($orderId, $invoiceId) = $this->order('Pending', 'Paid');
        $service = $this->serviceIn($orderId, $this->manualProduct(), $invoiceId);

        $this->runHook('OrderPaid', array('orderId' => $orderId, 'userId' => 7, 'invoiceId' => $invoiceId));

        $request = $this->requests($service)[0];
        $this->assertSame(
            array('JETPACK MODULE: Service ID: ' . $service . ' - provision requested for jetpack-worker by the OrderPaid hook (request #' . $request->id . ')'),
            $this->loggedActivity()
        );
        $this->assertSame(7, $GLOBALS['jetpack_test_activity'][0]['userid']);
        $this->assertNull($request->applied_at);
        $this->assertCount(0, $this->jobs($service), 'the worker makes the job');
    }

    public function testOnlyPendingServicesOfManualSetupJetpackProductsInTheOrderAreRecorded(): void
    {
        $manual = $this->manualProduct();
        $automatic = $this->product(array('autosetup' => 'payment'));
        $accepting = $this->product(array('autosetup' => 'on'));
        $this->plainProduct = $this->product(array('servertype' => 'cpanel', 'autosetup' => '', 'fields' => array()));
        list($orderId, $invoiceId) = $this->order('Pending', 'Paid');
        $wanted = $this->serviceIn($orderId, $manual, $invoiceId);
        $this->serviceIn($orderId, $automatic, $invoiceId);
        $this->serviceIn($orderId, $accepting, $invoiceId);
        $this->serviceIn($orderId, $this->plainProduct, $invoiceId);
        $this->serviceIn($orderId, $manual, $invoiceId, 'Active');
        $this->serviceIn($orderId, $manual, $invoiceId, 'Cancelled');
        list($otherOrder, $otherInvoice) = $this->order('Pending', 'Paid');
        $this->serviceIn($otherOrder, $manual, $otherInvoice);

        $this->runHook('AcceptOrder', array('orderid' => $orderId));
        $this->assertSame(array($wanted => array('provision')), $this->recorded());

        $this->exec('DELETE FROM mod_jetpack_requests');
        $this->runHook('InvoicePaid', array('invoiceid' => $invoiceId));
        $this->assertSame(array($wanted => array('provision')), $this->recorded());
    }

    public function testAnInvoicePayingTwoOrdersRecordsTheServicesOfBoth(): void
    {
        $product = $this->manualProduct();
        $invoiceId = $this->invoice('Paid');
        $services = array();
        foreach (array(1, 2) as $n) {
            $this->exec(
                "INSERT INTO tblorders (ordernum, userid, date, amount, paymentmethod, invoiceid, status)
                 VALUES (FLOOR(RAND() * 1000000000), 7, NOW(), 10.00, 'banktransfer', ?, 'Pending')",
                array($invoiceId)
            );
            $services[] = $this->serviceIn((int) $this->pdo()->lastInsertId(), $product, $invoiceId);
        }
        // Line items of other types name other tables' ids: never taken for a service.
        list($unpaidOrder) = $this->order('Pending', 'Unpaid');
        $notOnInvoice = $this->serviceIn($unpaidOrder, $product);
        $this->invoiceItem($invoiceId, 'Addon', $notOnInvoice);
        $this->invoiceItem($invoiceId, 'Hosting', $services[0]); // listed twice

        $this->runHook('InvoicePaid', array('invoiceid' => $invoiceId));

        $this->assertSame(
            array($services[0] => array('provision'), $services[1] => array('provision')),
            $this->recorded()
        );
    }

    public function testTheSamePaymentSeenByTwoHooksRecordsOneRequest(): void
    {
        // WHMCS runs InvoicePaid and OrderPaid for the same payment, then an admin may accept.
        list($orderId, $invoiceId) = $this->order('Pending', 'Paid');
        $service = $this->serviceIn($orderId, $this->manualProduct(), $invoiceId);

        $this->runHook('InvoicePaid', array('invoiceid' => $invoiceId));
        $this->runHook('OrderPaid', array('orderId' => $orderId, 'userId' => 7, 'invoiceId' => $invoiceId));
        $this->runHook('AcceptOrder', array('orderid' => $orderId));

        $this->assertSame(array($service => array('provision')), $this->recorded());
        $this->assertCount(1, $this->loggedActivity());
    }

    public function testAServiceWithAnUnfinishedJobIsNotAskedAgain(): void
    {
        list($orderId, $invoiceId) = $this->order('Pending', 'Paid');
        $product = $this->manualProduct();
        $queued = $this->serviceIn($orderId, $product, $invoiceId);
        $afterFailure = $this->serviceIn($orderId, $product, $invoiceId);
        $this->exec(
            "INSERT INTO mod_jetpack_jobs (service_id, action, state, run_at, requested_by, created_at, updated_at)
             VALUES (?, 'provision', 'queued', UTC_TIMESTAMP(6), 'adopt', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6)),
                    (?, 'provision', 'failed', UTC_TIMESTAMP(6), 'adopt', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
            array($queued, $afterFailure)
        );
        // An applied request is history, not a waiting one.
        $this->request($afterFailure, 'provision', 'adopt', '2026-01-01 00:00:00', 1, 'queued');

        $this->runHook('OrderPaid', array('orderId' => $orderId, 'userId' => 7, 'invoiceId' => $invoiceId));

        $this->assertCount(0, $this->requests($queued));
        $this->assertSame(array('provision', 'provision'), array_column($this->requests($afterFailure), 'action'));
    }

    /**
     * What breaks in each hook's database work.
     */
    public function failures(): array
    {
        return array(
            'AcceptOrder' => array('AcceptOrder', 'order'),
            'OrderPaid' => array('OrderPaid', 'order'),
            'InvoicePaid' => array('InvoicePaid', 'invoice'),
            'AddonActivation' => array('AddonActivation', 'addon'),
            'ServiceDelete' => array('ServiceDelete', 'service'),
        );
    }

    /**
     * @dataProvider failures
     */
    public function testADatabaseErrorNeverReachesWhmcsAndIsLogged($hook, $about): void
    {
        $product = $this->manualProduct();
        list($orderId, $invoiceId) = $this->order('Pending', 'Paid');
        $service = $this->serviceIn($orderId, $product, $invoiceId);
        $addon = $this->addon($this->manualAddon(), $service);
        $this->insertLedger($service, $product);
        $this->exec('DROP TABLE mod_jetpack_requests');
        $ids = array('order' => $orderId, 'invoice' => $invoiceId, 'service' => $service, 'addon' => $addon);
        $vars = array(
            'AcceptOrder' => array('orderid' => $orderId),
            'OrderPaid' => array('orderId' => $orderId, 'userId' => 7, 'invoiceId' => $invoiceId),
            'InvoicePaid' => array('invoiceid' => $invoiceId),
            'AddonActivation' => array('id' => $addon, 'userid' => 7, 'serviceid' => $service, 'addonid' => 1),
            'ServiceDelete' => array('userid' => 7, 'serviceid' => $service),
        );

        $this->runHook($hook, $vars[$hook]);

        $lines = $this->loggedActivity();
        $this->assertCount(1, $lines);
        $this->assertStringStartsWith(
            'JETPACK MODULE: the ' . $hook . ' hook (' . $about . ' ' . $ids[$about] . ') could not record its request for jetpack-worker: database error: ',
            $lines[0]
        );
        $this->assertStringContainsString('mod_jetpack_requests', $lines[0]);
        $this->assertStringNotContainsString('select', strtolower($lines[0]), 'no SQL in the log');
    }

    public function testAMissingWhmcsTableIsCaughtToo(): void
    {
        // A missing table WHMCS itself owns, as on a broken install.
        $this->exec('DROP TABLE tblinvoiceitems');

        $this->runHook('InvoicePaid', array('invoiceid' => 1));

        $this->assertCount(1, $this->loggedActivity());
        $this->assertStringContainsString('tblinvoiceitems', $this->loggedActivity()[0]);
    }

    // --- AddonActivation ------------------------------------------------------------------

    /**
     * @return int a Jetpack addon without automatic activation (tbladdons.autoactivate '')
     */
    private function manualAddon(array $options = array())
    {
        return $this->addonDefinition($options + array('autoactivate' => ''));
    }

    /**
     * Each order shape, and whether AddonActivation then records the addon (the services' rule).
     */
    public function addonOrders(): array
    {
        // order status, invoice status (null: none), recorded
        return array(
            'paid, not accepted yet' => array('Pending', 'Paid', true),
            'accepted, unpaid' => array('Active', 'Unpaid', true),
            'accepted, free (no invoice)' => array('Active', null, true),
            'pending, unpaid' => array('Pending', 'Unpaid', false),
            'pending, no invoice' => array('Pending', null, false),
            'fraud, paid' => array('Fraud', 'Paid', false),
            'cancelled, paid' => array('Cancelled', 'Paid', false),
        );
    }

    /**
     * @dataProvider addonOrders
     */
    public function testAddonActivationRecordsAPaidOrAcceptedAddonOnly($orderStatus, $invoiceStatus, $recorded): void
    {
        list($orderId, $invoiceId) = $this->order($orderStatus, $invoiceStatus);
        $service = $this->serviceIn($orderId, $this->product(), $invoiceId, 'Active');
        $addon = $this->addon($this->manualAddon(), $service);

        $this->runHook('AddonActivation', $this->addonVars($addon));

        $this->assertSame(
            $recorded ? array(array($service, $addon, 'provision', 'hook')) : array(),
            $this->targets(),
            "an addon in a $orderStatus order with invoice " . var_export($invoiceStatus, true)
        );
    }

    /**
     * WHMCS fires AddonActivation after the addon became Active ("following any provisioning
     * or welcome email automation"): an Active manual Jetpack addon that never had a job is
     * recorded, whatever its order's invoice says (WHMCS activated it), unless the order is
     * Fraud or Cancelled.
     */
    public function testAddonActivationRecordsTheAddonWhmcsHasJustActivated(): void
    {
        list($orderId) = $this->order('Pending', 'Unpaid');
        $service = $this->serviceIn($orderId, $this->product(), 0, 'Active');
        $addon = $this->addon($this->manualAddon(), $service, null, array('status' => 'Active'));
        list($fraudOrder) = $this->order('Fraud', 'Paid');
        $fraudService = $this->serviceIn($fraudOrder, $this->product(), 0, 'Active');
        $fraud = $this->addon($this->manualAddon(), $fraudService, null, array('status' => 'Active'));

        $this->runHook('AddonActivation', $this->addonVars($addon));
        $this->runHook('AddonActivation', $this->addonVars($fraud));

        $this->assertSame(array(array($service, $addon, 'provision', 'hook')), $this->targets());
        $this->runHook('AddonActivation', $this->addonVars($addon));
        $this->assertCount(1, $this->targets(), 'asked once while its request waits');
    }

    /**
     * An Active manual Jetpack addon whose plan was provisioned (a done job).
     *
     * @return int tblhostingaddons.id
     */
    private function provisionedAddon($serviceId)
    {
        $addon = $this->addon($this->manualAddon(), $serviceId, null, array('status' => 'Active'));
        $this->targetJob($serviceId, $addon, 'provision', 'done');
        return $addon;
    }

    public function testAddonActivationLogsTheAddonAndItsService(): void
    {
        list($orderId, $invoiceId) = $this->order('Pending', 'Paid');
        $service = $this->serviceIn($orderId, $this->product(), $invoiceId, 'Active');
        $addon = $this->addon($this->manualAddon(), $service);

        $this->runHook('AddonActivation', $this->addonVars($addon));

        $request = $this->requests()[0];
        $this->assertNull($request->applied_at);
        $this->assertSame(
            array('JETPACK MODULE: Addon ID: ' . $addon . ' (Service ID: ' . $service . ') - provision requested for '
                . 'jetpack-worker by the AddonActivation hook (request #' . $request->id . ')'),
            $this->loggedActivity()
        );
        $this->assertSame(7, $GLOBALS['jetpack_test_activity'][0]['userid']);
        $this->assertSame('Pending', $this->addonStatus($addon), 'the worker sets the status');
        $this->assertCount(0, $this->jobs($service), 'the worker makes the job');
    }

    public function testAddonActivationLeavesAddonsWhoseActivationIsNotOursAlone(): void
    {
        list($orderId, $invoiceId) = $this->order('Pending', 'Paid');
        $service = $this->serviceIn($orderId, $this->product(), $invoiceId, 'Active');
        $cases = array(
            'activated on payment (WHMCS calls Create)' => $this->addon($this->addonDefinition(array('autoactivate' => 'payment')), $service),
            'activated on order' => $this->addon($this->addonDefinition(array('autoactivate' => 'order')), $service),
            'another module' => $this->addon($this->manualAddon(array('module' => 'cpanel')), $service),
            'no module' => $this->addon($this->manualAddon(array('module' => '')), $service),
            'Active, provisioned before' => $this->provisionedAddon($service),
            'Cancelled' => $this->addon($this->manualAddon(), $service, null, array('status' => 'Cancelled')),
            'unknown id' => 999999,
        );
        foreach ($cases as $case => $addon) {
            $vars = $addon === 999999
                ? array('id' => $addon, 'userid' => 7, 'serviceid' => $service, 'addonid' => 1)
                : $this->addonVars($addon);
            $this->runHook('AddonActivation', $vars);
            $this->assertSame(array(), $this->targets(), $case);
        }
        $this->assertSame(array(), $this->loggedActivity());
    }

    public function testAnAddonWithWorkWaitingIsNotAskedAgainAndTheServiceAndAddonDoNotBlockEachOther(): void
    {
        list($orderId, $invoiceId) = $this->order('Pending', 'Paid');
        $definition = $this->manualAddon();
        // The service's own unfinished job does not stand for its addon's, nor the reverse.
        $service = $this->serviceIn($orderId, $this->manualProduct(), $invoiceId);
        $this->targetJob($service, 0, 'provision', 'queued');
        $free = $this->addon($definition, $service);
        $queued = $this->addon($definition, $service);
        $this->targetJob($service, $queued, 'provision', 'queued');
        $asked = $this->addon($definition, $service);
        $this->request($service, 'provision', 'module');
        $this->exec('UPDATE mod_jetpack_requests SET addon_id = ? WHERE addon_id = 0', array($asked));
        $other = $this->serviceIn($orderId, $this->manualProduct(), $invoiceId);
        $otherFree = $this->addon($definition, $other);
        $this->targetJob($other, $this->addon($definition, $other), 'provision', 'running');

        foreach (array($free, $queued, $asked) as $addon) {
            $this->runHook('AddonActivation', $this->addonVars($addon));
        }
        $this->runHook('OrderPaid', array('orderId' => $orderId, 'userId' => 7, 'invoiceId' => $invoiceId));

        // The service with a queued job of its own is not asked again; the other service,
        // whose only unfinished job is its addon's, is; OrderPaid also records the order's
        // addon with nothing waiting (the others have a request or a job).
        $this->assertSame(
            array(
                array($service, $asked, 'provision', 'module'),
                array($service, $free, 'provision', 'hook'),
                array($other, 0, 'provision', 'hook'),
                array($other, $otherFree, 'provision', 'hook'),
            ),
            $this->targets()
        );
    }

    /**
     * OrderPaid {orderId, userId, invoiceId}: the payment is judged by the invoice WHMCS names,
     * not by tblorders.invoiceid (here a first invoice that was cancelled and replaced).
     */
    public function testOrderPaidJudgesThePaymentByTheInvoiceWhmcsPasses(): void
    {
        list($orderId, $firstInvoice) = $this->order('Pending', 'Cancelled');
        $paidInvoice = $this->invoice('Paid');
        $service = $this->serviceIn($orderId, $this->manualProduct(), $paidInvoice);
        $hosting = $this->serviceIn($orderId, $this->product(), 0, 'Active');
        $addon = $this->addon($this->manualAddon(), $hosting);

        $this->runHook('OrderPaid', array('orderId' => $orderId, 'userId' => 7, 'invoiceId' => $firstInvoice));
        $this->assertSame(array(), $this->targets(), 'the cancelled invoice was not paid');

        $this->runHook('OrderPaid', array('orderId' => $orderId, 'userId' => 7, 'invoiceId' => $paidInvoice));

        $this->assertSame(
            array(array($service, 0, 'provision', 'hook'), array($hosting, $addon, 'provision', 'hook')),
            $this->targets()
        );
    }

    /**
     * InvoicePaid {invoiceid} likewise judges by the invoice it names.
     */
    public function testInvoicePaidJudgesThePaymentByItsOwnInvoice(): void
    {
        list($orderId) = $this->order('Pending', 'Cancelled');
        $paidInvoice = $this->invoice('Paid');
        $service = $this->serviceIn($orderId, $this->manualProduct(), $paidInvoice);

        $this->runHook('InvoicePaid', array('invoiceid' => $paidInvoice));

        $this->assertSame(array(array($service, 0, 'provision', 'hook')), $this->targets());
    }

    public function testAServicesHookNeverRecordsItsAddons(): void
    {
        list($orderId, $invoiceId) = $this->order('Pending', 'Paid');
        $service = $this->serviceIn($orderId, $this->manualProduct(), $invoiceId);
        $this->addon($this->manualAddon(), $service);

        $this->runHook('InvoicePaid', array('invoiceid' => $invoiceId));

        $this->assertSame(array(array($service, 0, 'provision', 'hook')), $this->targets());
    }

    /**
     * A manual Jetpack addon bought in an order is recorded by the order's hooks too (WHMCS may
     * not fire AddonActivation for an addon it does not activate itself): at acceptance, at
     * payment of the order, and through an invoice's Addon line item; once, whichever hooks see
     * it; never while the order is unpaid.
     */
    public function testTheOrderHooksRecordTheOrdersManualAddons(): void
    {
        list($orderId, $invoiceId) = $this->order('Pending', 'Unpaid');
        $service = $this->serviceIn($orderId, $this->product(), 0, 'Active');
        $addon = $this->addon($this->manualAddon(), $service);
        $this->invoiceItem($invoiceId, 'Addon', $addon);

        $this->runHook('OrderPaid', array('orderId' => $orderId, 'userId' => 7, 'invoiceId' => $invoiceId));
        $this->runHook('InvoicePaid', array('invoiceid' => $invoiceId));
        $this->assertSame(array(), $this->targets(), 'unpaid, not accepted');

        $this->exec("UPDATE tblinvoices SET status = 'Paid' WHERE id = ?", array($invoiceId));
        $this->runHook('InvoicePaid', array('invoiceid' => $invoiceId));
        $this->runHook('OrderPaid', array('orderId' => $orderId, 'userId' => 7, 'invoiceId' => $invoiceId));
        $this->runHook('AcceptOrder', array('orderid' => $orderId));
        $this->runHook('AddonActivation', $this->addonVars($addon));

        $this->assertSame(array(array($service, $addon, 'provision', 'hook')), $this->targets());
        $this->assertSame(
            array('JETPACK MODULE: Addon ID: ' . $addon . ' (Service ID: ' . $service . ') - provision requested for '
                . 'jetpack-worker by the InvoicePaid hook (request #' . $this->requests()[0]->id . ')'),
            $this->loggedActivity()
        );
    }

    public function testAcceptingAnUnpaidOrderRecordsItsManualAddon(): void
    {
        list($orderId) = $this->order('Pending', 'Unpaid');
        $service = $this->serviceIn($orderId, $this->product(), 0, 'Active');
        $addon = $this->addon($this->manualAddon(), $service);
        $automatic = $this->addon($this->addonDefinition(), $service);

        $this->runHook('AcceptOrder', array('orderid' => $orderId));

        $this->assertSame(array(array($service, $addon, 'provision', 'hook')), $this->targets(), "not #$automatic");
    }

    // --- ServiceDelete --------------------------------------------------------------------

    /**
     * A ledger row as the worker writes it (product_id = the service's product).
     */
    private function insertLedger($serviceId, $productId, $site = 'https://example.com/')
    {
        $this->exec(
            'INSERT INTO mod_jetpack_ledger (service_id, product_id, site, plan, pending, since, updated_at, job_id)
             VALUES (?, ?, ?, \'jetpack_premium\', 0, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 1)',
            array($serviceId, $productId, $site)
        );
    }

    public function testDeletingAServiceWhosePlanTheLedgerHoldsRequestsItsCancellation(): void
    {
        $product = $this->product(array('autosetup' => 'order'));
        $service = $this->service($product, null, array('status' => 'Active', 'userid' => 9));
        $this->insertLedger($service, $product);
        $this->insertLedger($service, $product, 'https://moved.example/');
        $this->exec('DELETE FROM tblhosting WHERE id = ?', array($service)); // the hook runs after

        $this->runHook('ServiceDelete', array('userid' => 9, 'serviceid' => $service));

        $requests = $this->requests($service);
        $this->assertSame(array('terminate'), array_column($requests, 'action'));
        $this->assertSame('hook', $requests[0]->requested_by);
        $this->assertSame(
            array('JETPACK MODULE: Service ID: ' . $service . ' - the service was deleted, so its Jetpack plan is being cancelled (terminate request #' . $requests[0]->id . ' for jetpack-worker)'),
            $this->loggedActivity()
        );
        $this->assertSame(9, $GLOBALS['jetpack_test_activity'][0]['userid']);
    }

    public function testDeletingAServiceStillInTblhostingWorksTheSame(): void
    {
        // Whether WHMCS calls the hook before or after the DELETE is not documented.
        $product = $this->product();
        $service = $this->service($product, null, array('status' => 'Active'));
        $this->insertLedger($service, null);

        $this->runHook('ServiceDelete', array('userid' => 7, 'serviceid' => $service));

        $this->assertSame(array('terminate'), array_column($this->requests($service), 'action'));
    }

    public function testDeletingAServiceWithNothingInTheLedgerRecordsNothing(): void
    {
        $service = $this->service($this->product(), null, array('status' => 'Active'));
        $this->insertLedger($service + 1, $this->product());
        $this->exec('DELETE FROM tblhosting WHERE id = ?', array($service));

        $this->runHook('ServiceDelete', array('userid' => 7, 'serviceid' => $service));

        $this->assertSame(array(), $this->requests($service));
        $this->assertSame(array(), $this->loggedActivity());
    }

    public function testDeletingAServiceLooksAtItsOwnPlansOnlyNotItsAddons(): void
    {
        // An addon's plan is the addon's: the service's hook does not cancel it as the service's.
        $product = $this->product();
        $service = $this->service($product, null, array('status' => 'Active'));
        $addon = $this->addon($this->addonDefinition(), $service, null, array('status' => 'Active'));
        $this->exec(
            "INSERT INTO mod_jetpack_ledger (service_id, addon_id, product_id, site, plan, pending, since, updated_at, job_id)
             VALUES (?, ?, NULL, 'https://example.com/', 'jetpack-backup-daily', 0, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 1)",
            array($service, $addon)
        );

        $this->runHook('ServiceDelete', array('userid' => 7, 'serviceid' => $service));

        $this->assertSame(array(), $this->requests());
        $this->assertSame(array(), $this->loggedActivity());
    }

    public function testTheKeepSettingLeavesTheDeletedServicesPlanAlone(): void
    {
        $product = $this->product();
        $this->exec("UPDATE tblproducts SET configoption4 = 'on' WHERE id = ?", array($product));
        $gone = $this->service($product, null, array('status' => 'Active'));
        $this->insertLedger($gone, $product);
        $this->exec('DELETE FROM tblhosting WHERE id = ?', array($gone));
        $present = $this->service($product, null, array('status' => 'Active'));
        $this->insertLedger($present, $product);

        $this->runHook('ServiceDelete', array('userid' => 7, 'serviceid' => $gone));
        $this->runHook('ServiceDelete', array('userid' => 7, 'serviceid' => $present));

        $this->assertSame(array(), $this->requests());
        $this->assertSame(array(), $this->loggedActivity());
    }

    // --- Indexes --------------------------------------------------------------------------

    public function testEveryHookLookupUsesAnIndex(): void
    {
        // Enough rows that a full scan would cost more than an index (statistics refreshed).
        $manual = $this->manualProduct();
        $other = $this->product(array('autosetup' => 'payment'));
        for ($i = 0; $i < 60; $i++) {
            list($orderId, $invoiceId) = $this->order($i % 3 === 0 ? 'Active' : 'Pending', $i % 2 === 0 ? 'Paid' : 'Unpaid');
            $this->serviceIn($orderId, $i % 4 === 0 ? $other : $manual, $invoiceId);
            $active = $this->serviceIn($orderId, $manual, $invoiceId, 'Active');
            $this->insertLedger($active, $manual);
            $this->addon($i % 2 === 0 ? $this->manualAddon() : $this->addonDefinition(), $active);
        }
        $this->exec('ANALYZE TABLE tblhosting, tblorders, tblinvoices, tblinvoiceitems, tblproducts, tblhostingaddons, tbladdons, tblmodule_configuration, mod_jetpack_requests, mod_jetpack_jobs, mod_jetpack_ledger');
        $watched = array(
            'h' => 'tblhosting', 'o' => 'tblorders', 'i' => 'tblinvoices', 'ii' => 'tblinvoiceitems',
            'ha' => 'tblhostingaddons', 'a' => 'tbladdons', 'ms' => 'tblmodule_configuration',
            'mod_jetpack_ledger' => 'mod_jetpack_ledger',
        );

        $lookups = Hooks::lookups();
        $lookups['ServiceDelete'] = array(
            'SELECT product_id FROM mod_jetpack_ledger WHERE service_id = ? AND addon_id = ?',
            array(5, 0),
        );
        $lookups['ServiceDelete (service)'] = array('SELECT packageid FROM tblhosting h WHERE id = ?', array(5));
        $this->assertSame(
            array(
                'AcceptOrder', 'OrderPaid', 'InvoicePaid', 'AddonActivation', 'AcceptOrder (addons)',
                'OrderPaid (addons)', 'InvoicePaid (addons)', 'ServiceDelete', 'ServiceDelete (service)',
            ),
            array_keys($lookups)
        );
        foreach ($lookups as $hook => $lookup) {
            list($sql, $bindings) = $lookup;
            $plan = $this->select('EXPLAIN ' . $sql, $bindings);
            $this->assertNotEmpty($plan);
            foreach ($plan as $row) {
                $table = (string) $row->table;
                if (isset($watched[$table])) {
                    // ALL is a table scan, index a scan of a whole index.
                    $this->assertNotContains($row->type, array('ALL', 'index'), "$hook scans $watched[$table]:\n" . json_encode($plan, JSON_PRETTY_PRINT));
                    $this->assertNotNull($row->key, "$hook reads $watched[$table] by no index");
                }
            }
        }
    }
}
