<?php

namespace JetpackTests\Support;

/**
 * For tests of the module's hooks on a DatabaseTestCase: calling hooks.php's callbacks as
 * WHMCS's run_hook does, and seeding orders, invoices, services in them and addons' hook
 * parameters; reading the requests the hooks recorded.
 */
trait HookCalls
{
    /**
     * Calls every callback hooks.php registered for $hook, as WHMCS's run_hook does.
     *
     * @param string $hook
     * @param array  $vars
     */
    protected function runHook($hook, array $vars)
    {
        $this->assertArrayHasKey($hook, $GLOBALS['jetpack_test_hooks'], "hooks.php registers $hook");
        foreach ($GLOBALS['jetpack_test_hooks'][$hook] as $registered) {
            $result = call_user_func($registered['callback'], $vars);
            $this->assertNull($result, 'a hook returns nothing');
        }
    }

    /**
     * An order, with an invoice when $invoiceStatus is given.
     *
     * @param string      $status        tblorders.status
     * @param string|null $invoiceStatus tblinvoices.status, or null for an order without invoice
     *
     * @return array (order id, invoice id or 0)
     */
    protected function order($status, $invoiceStatus = null)
    {
        $invoiceId = $invoiceStatus === null ? 0 : $this->invoice($invoiceStatus);
        $this->exec(
            "INSERT INTO tblorders (ordernum, userid, date, amount, paymentmethod, invoiceid, status)
             VALUES (FLOOR(RAND() * 1000000000), 7, NOW(), 10.00, 'banktransfer', ?, ?)",
            array($invoiceId, $status)
        );
        return array((int) $this->pdo()->lastInsertId(), $invoiceId);
    }

    /**
     * @return int tblinvoices.id
     */
    protected function invoice($status)
    {
        $this->exec(
            "INSERT INTO tblinvoices (userid, invoicenum, date, duedate, status, paymentmethod, notes)
             VALUES (7, '', CURDATE(), CURDATE(), ?, 'banktransfer', '')",
            array($status)
        );
        return (int) $this->pdo()->lastInsertId();
    }

    /**
     * A service of the product in the order, with a valid order's field values, and its
     * invoice line when $invoiceId is given.
     *
     * @return int tblhosting.id
     */
    protected function serviceIn($orderId, $productId, $invoiceId = 0, $status = 'Pending')
    {
        $this->exec(
            "INSERT INTO tblhosting (userid, orderid, packageid, server, regdate, domain, paymentmethod,
                                     billingcycle, domainstatus)
             VALUES (7, ?, ?, 0, CURDATE(), '', 'banktransfer', 'Monthly', ?)",
            array($orderId, $productId, $status)
        );
        $serviceId = (int) $this->pdo()->lastInsertId();
        if ($productId !== $this->plainProduct) {
            foreach ($this->validValues() as $key => $value) {
                $this->setValue($serviceId, $key, $value);
            }
        }
        if ($invoiceId !== 0) {
            $this->invoiceItem($invoiceId, 'Hosting', $serviceId);
        }
        return $serviceId;
    }

    protected function invoiceItem($invoiceId, $type, $relid)
    {
        $this->exec(
            "INSERT INTO tblinvoiceitems (invoiceid, userid, type, relid, description, amount, taxed, paymentmethod, notes)
             VALUES (?, 7, ?, ?, 'Jetpack', 10.00, 0, 'banktransfer', '')",
            array($invoiceId, $type, $relid)
        );
    }

    /** @var int|null a product of another module */
    protected $plainProduct;

    /**
     * The AddonActivation parameters for an addon (id = tblhostingaddons.id).
     */
    protected function addonVars($addonId)
    {
        $row = $this->select('SELECT hostingid, addonid, userid FROM tblhostingaddons WHERE id = ?', array($addonId))[0];
        return array('id' => $addonId, 'userid' => (int) $row->userid, 'serviceid' => (int) $row->hostingid,
            'addonid' => (int) $row->addonid);
    }

    /**
     * @return array the recorded requests as (service id, addon id, action, requested_by)
     */
    protected function targets()
    {
        $out = array();
        foreach ($this->requests() as $request) {
            $out[] = array((int) $request->service_id, (int) $request->addon_id, $request->action, $request->requested_by);
        }
        return $out;
    }
}
