<?php
/**
 * What the module's WHMCS hooks do (hooks.php only registers them). Like the module functions
 * they only RECORD requests for jetpack-worker (Requests::record, one plain INSERT); which
 * request wins is the worker's decision.
 *
 * Provision on AcceptOrder, OrderPaid and InvoicePaid: each Pending service of a `jetpack`
 * product set to "Do not automatically setup" (tblproducts.autosetup = '') in that order or
 * invoice that now qualifies, by the worker's adoption rule (src/store/adoption/kind.rs, `Kind::qualifies`,
 * the reference): the order is not Fraud or Cancelled, and an event happened that the product's
 * setting "When to provision a manual-setup order" (configoption8) waits for: the order is
 * accepted (Active), or its invoice is Paid. Which setting values each event serves comes from
 * catalogue.json (Catalogue::provisionedOn; decided in the worker's src/manual_setup.rs): ''
 * (every product saved before the setting) and 'paid' take either, 'accepted' only the
 * acceptance, 'create' neither. AcceptOrder fires before WHMCS sets the order Active, so for
 * that hook the order being accepted counts as Active. The adoption scan stays the safety net
 * for whatever a hook misses.
 *
 * Provision on AddonActivation: the Pending addon it names, when its addon is a `jetpack` addon
 * without automatic activation (tbladdons.autoactivate = '': WHMCS does not call the module by
 * itself) and its order qualifies by the same rule, the addon's own setting read from
 * tblmodule_configuration (a missing row reads as ''). The request names the addon (addon_id)
 * and its parent service.
 *
 * Terminate on ServiceDelete: when the ledger holds a plan for the deleted service itself
 * (addon_id = 0), unless the product's "Keep the Jetpack plan when a service is deleted"
 * setting (configoption4) is on.
 *
 * Every lookup goes by an index: tblhosting by orderid (KEY orderid) or by id, tblinvoiceitems
 * by invoiceid (KEY invoiceid), tblorders, tblinvoices, tblproducts, tblhostingaddons and
 * tbladdons by primary key, an addon's setting by tblmodule_configuration's unique key, the requests by KEY service (service_id, id), the jobs by the
 * UNIQUE (unfinished_service_id, addon_id), the ledger by UNIQUE (service_id, addon_id,
 * site_hash). tblorders.invoiceid has no index, so an invoice
 * reaches its services through its line items (type 'Hosting', relid = tblhosting.id).
 *
 * A hook never throws into WHMCS: every \Throwable is caught and reported as a
 * `JETPACK MODULE: …` line in the activity log; checkout goes on.
 */

namespace WHMCS\Module\Server\Jetpack;

use WHMCS\Database\Capsule;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

class Hooks
{
    /** requested_by of what the hooks record (mod_jetpack_requests.requested_by is VARCHAR(16)). */
    const BY_HOOK = 'hook';

    /** The module setting (tblproducts.configoptionN) that keeps the plan of a deleted service. */
    const KEEP_ON_DELETE = 'configoption4';

    /** setting(): the product's "When to provision a manual-setup order" (tblproducts `p`). */
    const PRODUCT_SETTING = 'product';

    /** setting(): the addon's, from tblmodule_configuration (`ms`, joined by addonCandidates()). */
    const ADDON_SETTING = 'addon';

    /**
     * AcceptOrder {orderid}: the order's qualifying services and addons (the order counts as
     * Active). An addon WHMCS already activated on payment (Active, never a job) counts too: an
     * addon whose setting waits for the acceptance was left alone by AddonActivation then.
     *
     * @param array $vars the hook's parameters
     */
    public static function acceptOrder(array $vars)
    {
        $orderId = isset($vars['orderid']) ? (int) $vars['orderid'] : 0;
        self::guard('AcceptOrder', 'order ' . $orderId, function () use ($orderId) {
            self::provision('AcceptOrder', self::candidates()->where('h.orderid', $orderId), true);
            self::provisionAddons('AcceptOrder', self::accepting(
                self::activatedOrPending(self::addonCandidates(0, array('Pending', 'Active')))->where('ha.orderid', $orderId),
                self::ADDON_SETTING
            ));
        });
    }

    /**
     * OrderPaid {orderId, userId, invoiceId}: the order's qualifying services and addons, the
     * payment judged by the invoice WHMCS names (invoiceId: the invoice whose payment fired
     * the hook, which need not be tblorders.invoiceid, e.g. after the order's first invoice was
     * cancelled and another issued, or invoices were merged); tblorders.invoiceid only when
     * WHMCS passes none.
     *
     * @param array $vars the hook's parameters
     */
    public static function orderPaid(array $vars)
    {
        $orderId = isset($vars['orderId']) ? (int) $vars['orderId'] : 0;
        $invoiceId = isset($vars['invoiceId']) ? (int) $vars['invoiceId'] : 0;
        self::guard('OrderPaid', 'order ' . $orderId, function () use ($orderId, $invoiceId) {
            self::provision('OrderPaid', self::candidates($invoiceId)->where('h.orderid', $orderId), false);
            self::provisionAddons(
                'OrderPaid',
                self::paid(self::addonCandidates($invoiceId)->where('ha.orderid', $orderId), self::ADDON_SETTING)
            );
        });
    }

    /**
     * InvoicePaid {invoiceid}: the qualifying services and addons on the invoice's line items
     * (types Hosting and Addon), whatever order each belongs to.
     *
     * @param array $vars the hook's parameters
     */
    public static function invoicePaid(array $vars)
    {
        $invoiceId = isset($vars['invoiceid']) ? (int) $vars['invoiceid'] : 0;
        self::guard('InvoicePaid', 'invoice ' . $invoiceId, function () use ($invoiceId) {
            $query = self::candidates($invoiceId)
                ->join('tblinvoiceitems as ii', 'ii.relid', '=', 'h.id')
                ->where('ii.invoiceid', $invoiceId)
                ->where('ii.type', 'Hosting')
                ->distinct();
            self::provision('InvoicePaid', $query, false);
            self::provisionAddons('InvoicePaid', self::addonsOnInvoice($invoiceId));
        });
    }

    /**
     * ServiceDelete {userid, serviceid}: a terminate request when the ledger holds a plan for
     * the service. WHMCS may call the hook before or after it deletes the tblhosting row, so
     * the product (for its setting) is the service's while the row is there, else the one the
     * ledger recorded at provision time; and the worker cancels what the ledger holds with
     * that product's credentials.
     *
     * @param array $vars the hook's parameters
     */
    public static function serviceDelete(array $vars)
    {
        $serviceId = isset($vars['serviceid']) ? (int) $vars['serviceid'] : 0;
        $clientId = isset($vars['userid']) ? (int) $vars['userid'] : 0;
        self::guard('ServiceDelete', 'service ' . $serviceId, function () use ($serviceId, $clientId) {
            // No ORDER BY: sorting by id would let the optimizer walk the primary key
            // instead of the (service_id, site_hash) index.
            $held = Query::rows(Capsule::table(Requests::LEDGER)
                ->where('service_id', $serviceId)
                ->where('addon_id', 0)
                ->get(array('product_id')));
            if (count($held) === 0) {
                return;
            }
            $productId = Capsule::table('tblhosting')->where('id', $serviceId)->value('packageid');
            foreach ($held as $row) {
                if ($productId === null && $row->product_id !== null) {
                    $productId = $row->product_id;
                }
            }
            if ($productId !== null && self::keepsPlanOnDelete((int) $productId)) {
                return;
            }
            $requestId = Requests::record($serviceId, Requests::TERMINATE, self::BY_HOOK);
            Log::activity(
                ModuleError::PREFIX . 'Service ID: ' . $serviceId . ' - the service was deleted, so its '
                . 'Jetpack plan is being cancelled (terminate request #' . $requestId . ' for jetpack-worker)',
                $clientId
            );
        });
    }

    /**
     * The services that qualify for a provision by a hook, before the hook's own condition
     * (order or invoice, with the product's setting, self::PRODUCT_SETTING): Pending, of a
     * manual-setup `jetpack` product, in an order that is
     * neither Fraud nor Cancelled, and with no provision request waiting and no unfinished job
     * (both indexed). A duplicate would be harmless anyway (the worker takes a provision asked
     * while one is queued or running as "asked again"); the check only keeps the inbox short.
     *
     * @param int $invoiceId the invoice that counts for paid() (OrderPaid's invoiceId); 0 for
     *                       the order's own (tblorders.invoiceid)
     *
     * @return \Illuminate\Database\Query\Builder
     */
    private static function candidates($invoiceId = 0)
    {
        return self::withInvoice(Capsule::table('tblhosting as h')
            ->join('tblproducts as p', 'p.id', '=', 'h.packageid')
            ->join('tblorders as o', 'o.id', '=', 'h.orderid'), $invoiceId)
            ->where('h.domainstatus', 'Pending')
            ->where('p.servertype', 'jetpack')
            ->where('p.autosetup', '')
            ->whereNotIn('o.status', array('Fraud', 'Cancelled'))
            ->whereNotExists(function ($q) {
                $q->select(Capsule::raw(1))->from(Requests::TABLE . ' as r')
                    ->whereColumn('r.service_id', 'h.id')
                    ->where('r.addon_id', 0)
                    ->where('r.action', Requests::PROVISION)
                    ->whereNull('r.applied_at');
            })
            ->whereNotExists(function ($q) {
                $q->select(Capsule::raw(1))->from(Requests::JOBS . ' as j')
                    ->whereColumn('j.unfinished_service_id', 'h.id')
                    ->where('j.addon_id', 0);
            });
    }

    /**
     * AddonActivation {id, userid, clientid, serviceid, addonid} (id = tblhostingaddons.id): a
     * provision request for that addon when it qualifies (addonCandidate()). WHMCS fires the
     * hook "when a product addon becomes active as part of invoice payment or order
     * acceptance, following any provisioning or welcome email automation"
     * (developers.whmcs.com/hooks-reference/addon/#addonactivation): the addon is Active by
     * then (older versions set the status just after the hook, so Pending still counts).
     *
     * @param array $vars the hook's parameters
     */
    public static function addonActivation(array $vars)
    {
        $addonId = isset($vars['id']) ? (int) $vars['id'] : 0;
        self::guard('AddonActivation', 'addon ' . $addonId, function () use ($addonId) {
            self::provisionAddons('AddonActivation', self::addonCandidate($addonId));
        });
    }

    /**
     * The addon, when it qualifies for a provision by the AddonActivation hook: of a `jetpack`
     * addon without automatic activation (tbladdons.autoactivate = ''), on a service that
     * exists, in an order that is neither Fraud nor Cancelled, with no provision request
     * waiting and no job of the addon ever (a plan provisioned once is not provisioned again
     * by an activation); and either Active (WHMCS activated it: its order was accepted or
     * paid, which of the two is not known) with a setting that waits for either, or in an
     * order that qualifies by the addon's setting (qualifying(), the services' rule). All by
     * primary keys, tblmodule_configuration's unique key and the jobs' KEY service
     * (service_id, id).
     *
     * @param int $addonId tblhostingaddons.id
     *
     * @return \Illuminate\Database\Query\Builder
     */
    private static function addonCandidate($addonId)
    {
        $setting = self::setting(self::ADDON_SETTING);
        $either = array_values(array_intersect(Catalogue::provisionedOn('accepted'), Catalogue::provisionedOn('paid')));
        return self::addonCandidates(0, array('Pending', 'Active'))
            ->where('ha.id', (int) $addonId)
            ->whereNotExists(function ($q) {
                $q->select(Capsule::raw(1))->from(Requests::JOBS . ' as jj')
                    ->whereColumn('jj.service_id', 'ha.hostingid')
                    ->whereColumn('jj.addon_id', 'ha.id');
            })
            ->where(function ($q) use ($setting, $either) {
                // Active: WHMCS activated it on payment or acceptance (which one is not known):
                // enough only for a setting that waits for either.
                $q->where(function ($q) use ($setting, $either) {
                    $q->where('ha.status', 'Active')->whereIn($setting, $either);
                })->orWhere(function ($q) {
                    self::qualifying($q, self::ADDON_SETTING);
                });
            });
    }

    /**
     * Of the addons a query finds (Pending or Active), the Pending ones and those Active that
     * never had a job (a plan provisioned once is not provisioned again by an activation); by
     * the jobs' KEY service (service_id, id).
     *
     * @param \Illuminate\Database\Query\Builder $query from addonCandidates()
     *
     * @return \Illuminate\Database\Query\Builder
     */
    private static function activatedOrPending($query)
    {
        return $query->where(function ($q) {
            $q->where('ha.status', 'Pending')->orWhereNotExists(function ($q) {
                $q->select(Capsule::raw(1))->from(Requests::JOBS . ' as jj')
                    ->whereColumn('jj.service_id', 'ha.hostingid')
                    ->whereColumn('jj.addon_id', 'ha.id');
            });
        });
    }

    /**
     * The paid addons on an invoice's line items (type Addon, relid = tblhostingaddons.id) that
     * qualify as addonCandidates(), by the line items' invoiceid index.
     *
     * @param int $invoiceId tblinvoices.id
     *
     * @return \Illuminate\Database\Query\Builder
     */
    private static function addonsOnInvoice($invoiceId)
    {
        return self::paid(self::addonCandidates($invoiceId)
            ->join('tblinvoiceitems as ii', 'ii.relid', '=', 'ha.id')
            ->where('ii.invoiceid', (int) $invoiceId)
            ->where('ii.type', 'Addon')
            ->distinct(), self::ADDON_SETTING);
    }

    /**
     * Pending addons of a `jetpack` addon without automatic activation, on a service that
     * exists, in an order neither Fraud nor Cancelled, with no provision request waiting and no
     * unfinished job for the addon, with the addon's setting "When to provision a manual-setup
     * order" joined as `ms` (tblmodule_configuration by its unique key; self::ADDON_SETTING);
     * the callers add which addons (by primary key, order or invoice) and accepting() or
     * paid().
     *
     * @param int      $invoiceId the invoice that counts for paid(), 0 for the order's own
     * @param string[] $statuses  the addon statuses that may qualify
     *
     * @return \Illuminate\Database\Query\Builder
     */
    private static function addonCandidates($invoiceId = 0, array $statuses = array('Pending'))
    {
        return self::withInvoice(Capsule::table('tblhostingaddons as ha')
            ->join('tbladdons as a', 'a.id', '=', 'ha.addonid')
            ->join('tblhosting as h', 'h.id', '=', 'ha.hostingid')
            ->join('tblorders as o', 'o.id', '=', 'ha.orderid'), $invoiceId)
            ->leftJoin('tblmodule_configuration as ms', function ($join) {
                $join->on('ms.entity_id', '=', 'a.id')
                    ->where('ms.entity_type', '=', 'addon')
                    ->where('ms.setting_name', '=', Catalogue::manualSetupSetting());
            })
            ->whereIn('ha.status', $statuses)
            ->where('a.module', 'jetpack')
            ->where('a.autoactivate', '')
            ->whereNotIn('o.status', array('Fraud', 'Cancelled'))
            ->whereNotExists(function ($q) {
                $q->select(Capsule::raw(1))->from(Requests::TABLE . ' as r')
                    ->whereColumn('r.service_id', 'ha.hostingid')
                    ->whereColumn('r.addon_id', 'ha.id')
                    ->where('r.action', Requests::PROVISION)
                    ->whereNull('r.applied_at');
            })
            ->whereNotExists(function ($q) {
                $q->select(Capsule::raw(1))->from(Requests::JOBS . ' as j')
                    ->whereColumn('j.unfinished_service_id', 'ha.hostingid')
                    ->whereColumn('j.addon_id', 'ha.id');
            });
    }

    /**
     * Records a provision request for each addon the query finds, and logs it.
     *
     * @param string                              $hook
     * @param \Illuminate\Database\Query\Builder $query from addonCandidates()
     */
    private static function provisionAddons($hook, $query)
    {
        $addons = Query::rows($query->orderBy('ha.id')->get(array('ha.id', 'ha.hostingid', 'h.userid')));
        foreach ($addons as $addon) {
            $requestId = Requests::record((int) $addon->hostingid, Requests::PROVISION, self::BY_HOOK, (int) $addon->id);
            Log::activity(
                ModuleError::PREFIX . ModuleError::target((int) $addon->hostingid, (int) $addon->id)
                . ' - provision requested for jetpack-worker by the ' . $hook . ' hook (request #'
                . $requestId . ')',
                (int) $addon->userid
            );
        }
    }

    /**
     * The SQL of each hook's lookup, for the tests' EXPLAIN.
     *
     * @return array hook name => array(sql, bindings)
     */
    public static function lookups()
    {
        $queries = array(
            'AcceptOrder' => self::accepting(self::candidates()->where('h.orderid', 1), self::PRODUCT_SETTING),
            'OrderPaid' => self::paid(self::candidates(1)->where('h.orderid', 1), self::PRODUCT_SETTING),
            'InvoicePaid' => self::paid(self::candidates(1)
                ->join('tblinvoiceitems as ii', 'ii.relid', '=', 'h.id')
                ->where('ii.invoiceid', 1)
                ->where('ii.type', 'Hosting')
                ->distinct(), self::PRODUCT_SETTING),
            'AddonActivation' => self::addonCandidate(1),
            'AcceptOrder (addons)' => self::accepting(
                self::activatedOrPending(self::addonCandidates(0, array('Pending', 'Active')))->where('ha.orderid', 1),
                self::ADDON_SETTING
            ),
            'OrderPaid (addons)' => self::paid(self::addonCandidates(1)->where('ha.orderid', 1), self::ADDON_SETTING),
            'InvoicePaid (addons)' => self::addonsOnInvoice(1),
        );
        $out = array();
        foreach ($queries as $hook => $query) {
            $query->select(array('h.id', 'h.userid'));
            $out[$hook] = array($query->toSql(), $query->getBindings());
        }
        return $out;
    }

    /**
     * Records a provision request for each service the query finds.
     *
     * @param string                              $hook
     * @param \Illuminate\Database\Query\Builder $query    from candidates()
     * @param bool                                $accepted the order is being accepted (counts as Active)
     */
    private static function provision($hook, $query, $accepted)
    {
        $query = $accepted ? self::accepting($query, self::PRODUCT_SETTING) : self::paid($query, self::PRODUCT_SETTING);
        $services = Query::rows($query->orderBy('h.id')->get(array('h.id', 'h.userid')));
        foreach ($services as $service) {
            $requestId = Requests::record((int) $service->id, Requests::PROVISION, self::BY_HOOK);
            Log::activity(
                ModuleError::PREFIX . 'Service ID: ' . (int) $service->id . ' - provision requested for '
                . 'jetpack-worker by the ' . $hook . ' hook (request #' . $requestId . ')',
                (int) $service->userid
            );
        }
    }

    /**
     * Joins the invoice paid() looks at, as `i` (by primary key): the one given, else the
     * order's own (tblorders.invoiceid, none when 0).
     *
     * @param \Illuminate\Database\Query\Builder $query     joining tblorders as o
     * @param int                                $invoiceId tblinvoices.id, or 0
     *
     * @return \Illuminate\Database\Query\Builder
     */
    private static function withInvoice($query, $invoiceId)
    {
        return $query->leftJoin('tblinvoices as i', function ($join) use ($invoiceId) {
            if ((int) $invoiceId > 0) {
                $join->where('i.id', '=', (int) $invoiceId);
            } else {
                $join->on('i.id', '=', 'o.invoiceid')->where('o.invoiceid', '<>', 0);
            }
        });
    }

    /**
     * The adoption rule's event condition, for the hooks that see a payment: an event happened
     * that the setting waits for (qualifying()).
     *
     * @param \Illuminate\Database\Query\Builder $query   from candidates() or addonCandidates()
     * @param string                              $setting self::PRODUCT_SETTING or self::ADDON_SETTING
     *
     * @return \Illuminate\Database\Query\Builder
     */
    private static function paid($query, $setting)
    {
        return $query->where(function ($q) use ($setting) {
            self::qualifying($q, $setting);
        });
    }

    /**
     * Adds the adoption rule's event condition to a (nested) where: the order (`o`) is Active
     * and the setting waits for an acceptance, or its invoice (`i`) is Paid and the setting
     * waits for a payment (Catalogue::provisionedOn).
     *
     * @param \Illuminate\Database\Query\Builder $q
     * @param string                              $setting self::PRODUCT_SETTING or self::ADDON_SETTING
     */
    private static function qualifying($q, $setting)
    {
        $column = self::setting($setting);
        $q->where(function ($q) use ($column) {
            $q->where('o.status', 'Active')->whereIn($column, Catalogue::provisionedOn('accepted'));
        })->orWhere(function ($q) use ($column) {
            $q->where('i.status', 'Paid')->whereIn($column, Catalogue::provisionedOn('paid'));
        });
    }

    /**
     * The AcceptOrder hook's event condition: the order being accepted, for a setting that waits
     * for an acceptance.
     *
     * @param \Illuminate\Database\Query\Builder $query   from candidates() or addonCandidates()
     * @param string                              $setting self::PRODUCT_SETTING or self::ADDON_SETTING
     *
     * @return \Illuminate\Database\Query\Builder
     */
    private static function accepting($query, $setting)
    {
        return $query->whereIn(self::setting($setting), Catalogue::provisionedOn('accepted'));
    }

    /**
     * The setting "When to provision a manual-setup order" as a column: the product's
     * (tblproducts `p`) or the addon's (its tblmodule_configuration row `ms`, '' when missing).
     *
     * @param string $setting self::PRODUCT_SETTING or self::ADDON_SETTING
     *
     * @return \Illuminate\Database\Query\Expression
     */
    private static function setting($setting)
    {
        $column = $setting === self::ADDON_SETTING ? 'ms.value' : 'p.' . Catalogue::manualSetupSetting();
        return Capsule::raw('COALESCE(' . $column . ", '')");
    }

    /**
     * Whether the product keeps the plan of a deleted service (a yesno setting: 'on' keeps;
     * '' — also what every product saved before the setting existed holds — cancels).
     *
     * @param int $productId tblproducts.id
     *
     * @return bool
     */
    private static function keepsPlanOnDelete($productId)
    {
        $value = Capsule::table('tblproducts')->where('id', $productId)->value(self::KEEP_ON_DELETE);
        return $value !== null && $value !== '' && $value !== '0';
    }

    /**
     * Runs a hook's work; any \Throwable becomes an activity-log line instead of reaching WHMCS.
     * (Outcome's hooks run through it too.)
     *
     * @param string   $hook   the hook's name
     * @param string   $what   what it was about, e.g. "order 12"
     * @param callable $work
     * @param string   $failed what the line says went wrong
     */
    public static function guard(
        $hook,
        $what,
        callable $work,
        $failed = 'could not record its request for jetpack-worker'
    ) {
        try {
            $work();
        } catch (\Throwable $e) {
            try {
                // The driver's text only, never the SQL and its bindings (a QueryException's
                // message carries both).
                $detail = $e instanceof \PDOException && is_array($e->errorInfo) && isset($e->errorInfo[2])
                    ? 'database error: ' . (string) $e->errorInfo[2]
                    : get_class($e) . ': ' . $e->getMessage();
                Log::activity(
                    ModuleError::PREFIX . 'the ' . $hook . ' hook (' . $what . ') ' . $failed . ': ' . $detail,
                    0
                );
            } catch (\Throwable $ignored) {
                // Nothing may reach WHMCS, not even a failing activity log.
            }
        }
    }
}
