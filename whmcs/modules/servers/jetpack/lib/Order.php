<?php
/**
 * A checked order: what OrderChecks::check() read from a target that passed the checks, and
 * what Create, Terminate, ChangePackage and Retry record with it. Values only; how they are
 * read and checked is OrderChecks' (docs/addons.md, "Reading an order").
 */

namespace WHMCS\Module\Server\Jetpack;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

final class Order
{
    /** @var int tblhosting.id: the service, or the addon's parent (tblhostingaddons.hostingid) */
    public $serviceId;

    /** @var int tblhostingaddons.id; 0 for a service */
    public $addonId = 0;

    /** @var int|null tbladdons.id for an addon, null for a service */
    public $addonDefinitionId;

    /** @var int tblhosting.userid (the WHMCS client) */
    public $clientId;

    /** @var string tblproducts.name, or tbladdons.name for an addon */
    public $productName;

    /** @var int tblcustomfields.id of the product's (or addon's) jetpack_provisioning_details field */
    public $detailsFieldId;

    /** @var int the relid of the details value: tblhosting.id, or tblhostingaddons.id for an addon */
    public $detailsRelId;

    /** @var string the Site URL as entered (trimmed), or the parent service's domain for an addon without one */
    public $siteUrl;

    /**
     * @var bool the Site URL field was empty (after a move to a product whose fields are named
     *           differently) and $siteUrl is the site jetpack-worker's ledger holds for the target
     */
    public $siteFromLedger = false;

    /** @var string|null the Local User (trimmed); null when checked for a terminate */
    public $localUser;

    /** @var string|null the plan slug, lower case; null for a terminate without an allowed plan, and for a licence */
    public $plan;

    /** @var string the API its product (addon) sells through: Catalogue::API_PLAN or API_LICENCE */
    public $api = Catalogue::API_PLAN;

    /** @var string|null a licence product's licence product slug (configoption11), trimmed */
    public $licenceProduct;

    /**
     * An order naming the target (its ids, client and name); OrderChecks fills in the rest.
     *
     * @param Target $target
     *
     * @return self
     */
    public static function of(Target $target)
    {
        $order = new self();
        $order->serviceId = $target->serviceId;
        $order->addonId = $target->addonId;
        $order->addonDefinitionId = $target->addonDefinitionId;
        $order->clientId = $target->clientId;
        $order->productName = $target->name;
        $order->detailsRelId = $target->relid;
        $order->api = $target->api();
        return $order;
    }
}
