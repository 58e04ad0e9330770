<?php
/**
 * What an order is about, loaded as the worker loads it: a service sold as a standalone
 * Jetpack product (tblhosting, tblproducts, the product's custom fields and module settings)
 * or one Jetpack product addon on a service (tblhostingaddons, tbladdons, its module settings
 * in tblmodule_configuration, the addon's custom fields; the parent service's domain stands in
 * for a Site URL it lacks). Its settings say which API it sells through: Jetpack plans (partner
 * provisioning) or Jetpack licences (the Licensing API, configoption9..12): docs/addons.md, "Reading an order". Loading refuses a target whose
 * rows are gone or that is set to another module; its fields and settings are OrderChecks'.
 */

namespace WHMCS\Module\Server\Jetpack;

use WHMCS\Database\Capsule;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

final class Target
{
    /** tblmodule_configuration.entity_type of an addon's module settings. */
    const ADDON_ENTITY = 'addon';

    /** The module settings read (configoptionN): credentials, Plan, Default Local User. */
    const CLIENT_ID = 'configoption1';
    const CLIENT_SECRET = 'configoption2';
    const PLAN_SETTING = 'configoption3';
    const DEFAULT_USER = 'configoption6';
    /** Jetpack API: '' or 'plan' = partner provisioning, 'licence' = the Licensing API (Catalogue::apiOf). */
    const API = 'configoption9';
    /** The Licensing API token (a secret, masked like the client secret). */
    const LICENCE_TOKEN = 'configoption10';
    /** The licence product's slug, e.g. jetpack-backup-daily. */
    const LICENCE_PRODUCT = 'configoption11';
    /** Attach to the site: 'on' attaches each issued licence (allowlisted partners only). */
    const LICENCE_ATTACH = 'configoption12';

    /** Every module setting read, in this order. */
    const SETTINGS = array(
        self::CLIENT_ID, self::CLIENT_SECRET, self::PLAN_SETTING, self::DEFAULT_USER,
        self::API, self::LICENCE_TOKEN, self::LICENCE_PRODUCT, self::LICENCE_ATTACH,
    );

    /** @var int tblhosting.id: the service, or the addon's parent (tblhostingaddons.hostingid) */
    public $serviceId;

    /** @var int tblhostingaddons.id; 0 for a service */
    public $addonId = 0;

    /** @var int|null tbladdons.id for an addon, null for a service */
    public $addonDefinitionId;

    /** @var int tblhosting.userid (the WHMCS client; an addon's parent's) */
    public $clientId;

    /** @var string tblproducts.name, or tbladdons.name for an addon */
    public $name;

    /** @var array the message placeholder naming it: '{product}' or '{addon}' => quoted name */
    public $owner;

    /** @var array its custom fields (objects with id and fieldname), CustomFields::ownerFields() */
    public $fields;

    /** @var int the relid of its field values: tblhosting.id, or tblhostingaddons.id for an addon */
    public $relid;

    /** @var array its module settings: every SETTINGS name => value ('' when unset) */
    public $settings;

    /** @var string|null the parent's tblhosting.domain for an addon; null for a service (its Site URL is required) */
    public $domain;

    /**
     * The target WHMCS names: the addon when $addonId is set, else the service.
     *
     * @param int $serviceId tblhosting.id (for an addon: the parent WHMCS passed, named in
     *                       the message when the addon row is gone)
     * @param int $addonId   tblhostingaddons.id, or 0 for the service itself
     *
     * @return self
     *
     * @throws ModuleError when its rows are gone, or it uses another module
     * @throws \PDOException on a database error
     */
    public static function load($serviceId, $addonId)
    {
        return (int) $addonId > 0
            ? self::ofAddon((int) $addonId, (int) $serviceId)
            : self::ofService((int) $serviceId);
    }

    /**
     * The API its product (or addon) sells through: Catalogue::API_LICENCE when its setting
     * *Jetpack API* (configoption9) says licence, else Catalogue::API_PLAN.
     *
     * @return string
     *
     * @throws ModuleError when catalogue.json is missing or broken
     */
    public function api()
    {
        return Catalogue::apiOf($this->settings[self::API]);
    }

    /**
     * Whether *Attach to the site* (configoption12) is on: a yesno setting, 'on' when ticked
     * (read as the worker's `attaches`: trimmed, any case).
     *
     * @return bool
     */
    public function attaches()
    {
        return strcasecmp(Text::trim($this->settings[self::LICENCE_ATTACH]), 'on') === 0;
    }

    /**
     * The key of a message about this target: a service's `no_field`, an addon's
     * `addon_no_field` (the same for many_fields and no_credentials).
     *
     * @param string $key the service's key
     *
     * @return string
     */
    public function messageKey($key)
    {
        return $this->addonId > 0 ? 'addon_' . $key : $key;
    }

    /**
     * A refusal naming this target, with one of the rules' message templates.
     *
     * @param string $key  the template's key under "messages"
     * @param array  $vars '{placeholder}' => value, each already safe HTML
     *
     * @return ModuleError
     *
     * @throws ModuleError when rules.json is missing or broken
     */
    public function refusal($key, array $vars)
    {
        return Rules::refusal($this->serviceId, $this->addonId, $key, $vars);
    }

    // The service path.

    /**
     * A service's target: the service, its product (of this module), the product's custom
     * fields and module settings.
     *
     * @param int $serviceId tblhosting.id
     *
     * @return self
     *
     * @throws ModuleError when the service or its product is gone, or the product uses another module
     * @throws \PDOException on a database error
     */
    private static function ofService($serviceId)
    {
        $service = self::existingService($serviceId);
        $product = self::jetpackProduct($serviceId, (int) $service->packageid);
        $target = new self();
        $target->serviceId = $serviceId;
        $target->clientId = (int) $service->userid;
        $target->name = (string) $product->name;
        $target->owner = array('{product}' => Escape::quote($product->name));
        $target->fields = CustomFields::ownerFields('product', (int) $product->id);
        $target->relid = $serviceId;
        $target->settings = array();
        foreach (self::SETTINGS as $name) {
            $target->settings[$name] = (string) $product->$name;
        }
        return $target;
    }

    /**
     * @param int $serviceId tblhosting.id
     *
     * @return object the tblhosting row: id, userid, packageid
     *
     * @throws ModuleError service_missing
     * @throws \PDOException on a database error
     */
    private static function existingService($serviceId)
    {
        $service = Capsule::table('tblhosting')
            ->where('id', $serviceId)
            ->first(array('id', 'userid', 'packageid'));
        if ($service === null) {
            throw Rules::refusal($serviceId, 0, 'service_missing', array());
        }
        return $service;
    }

    /**
     * The service's product, when it is there and set to this module.
     *
     * @param int $serviceId tblhosting.id (named in the messages)
     * @param int $productId tblhosting.packageid
     *
     * @return object the tblproducts row: id, name, servertype and the SETTINGS
     *
     * @throws ModuleError product_missing, wrong_module
     * @throws \PDOException on a database error
     */
    private static function jetpackProduct($serviceId, $productId)
    {
        $product = Capsule::table('tblproducts')
            ->where('id', $productId)
            ->first(array_merge(array('id', 'name', 'servertype'), self::SETTINGS));
        if ($product === null) {
            throw Rules::refusal($serviceId, 0, 'product_missing', array(
                '{product_id}' => (string) $productId,
            ));
        }
        $owner = array('{product}' => Escape::quote($product->name));
        self::checkModule($serviceId, 0, 'wrong_module', $owner, $product->servertype);
        return $product;
    }

    // The addon path.

    /**
     * An addon's target: the addon, its definition (of this module), the parent service, the
     * definition's custom fields and its module settings (tblmodule_configuration).
     *
     * @param int $addonId   tblhostingaddons.id
     * @param int $serviceId the parent WHMCS passed (named while the addon row is not found)
     *
     * @return self
     *
     * @throws ModuleError when the addon, its definition or its parent is gone, or it uses another module
     * @throws \PDOException on a database error
     */
    private static function ofAddon($addonId, $serviceId)
    {
        $addon = self::existingAddon($addonId, $serviceId);
        $serviceId = (int) $addon->hostingid;
        $definition = self::jetpackAddonDefinition($serviceId, $addonId, (int) $addon->addonid);
        $parent = self::parentService($serviceId, $addonId);
        $target = new self();
        $target->serviceId = $serviceId;
        $target->addonId = $addonId;
        $target->addonDefinitionId = (int) $definition->id;
        $target->clientId = (int) $parent->userid;
        $target->name = (string) $definition->name;
        $target->owner = array('{addon}' => Escape::quote($definition->name));
        $target->fields = CustomFields::ownerFields('addon', (int) $definition->id);
        $target->relid = $addonId;
        $target->settings = self::addonSettings((int) $definition->id);
        $target->domain = (string) $parent->domain;
        return $target;
    }

    /**
     * @param int $addonId   tblhostingaddons.id
     * @param int $serviceId the parent WHMCS passed (named in the message)
     *
     * @return object the tblhostingaddons row: id, hostingid, addonid
     *
     * @throws ModuleError addon_missing
     * @throws \PDOException on a database error
     */
    private static function existingAddon($addonId, $serviceId)
    {
        $addon = Capsule::table('tblhostingaddons')
            ->where('id', $addonId)
            ->first(array('id', 'hostingid', 'addonid'));
        if ($addon === null) {
            throw Rules::refusal($serviceId, $addonId, 'addon_missing', array());
        }
        return $addon;
    }

    /**
     * The addon's definition, when it is there and set to this module.
     *
     * @param int $serviceId    the addon's parent (tblhostingaddons.hostingid)
     * @param int $addonId      tblhostingaddons.id
     * @param int $definitionId tblhostingaddons.addonid
     *
     * @return object the tbladdons row: id, name, module
     *
     * @throws ModuleError addon_definition_missing, addon_wrong_module
     * @throws \PDOException on a database error
     */
    private static function jetpackAddonDefinition($serviceId, $addonId, $definitionId)
    {
        $definition = Capsule::table('tbladdons')
            ->where('id', $definitionId)
            ->first(array('id', 'name', 'module'));
        if ($definition === null) {
            throw Rules::refusal($serviceId, $addonId, 'addon_definition_missing', array(
                '{addon_def_id}' => (string) $definitionId,
            ));
        }
        $owner = array('{addon}' => Escape::quote($definition->name));
        self::checkModule($serviceId, $addonId, 'addon_wrong_module', $owner, $definition->module);
        return $definition;
    }

    /**
     * @param int $serviceId the addon's parent (tblhostingaddons.hostingid)
     * @param int $addonId   tblhostingaddons.id
     *
     * @return object the parent's tblhosting row: id, userid, domain
     *
     * @throws ModuleError addon_no_parent
     * @throws \PDOException on a database error
     */
    private static function parentService($serviceId, $addonId)
    {
        $parent = Capsule::table('tblhosting')
            ->where('id', $serviceId)
            ->first(array('id', 'userid', 'domain'));
        if ($parent === null) {
            throw Rules::refusal($serviceId, $addonId, 'addon_no_parent', array(
                '{service_id}' => (string) $serviceId,
            ));
        }
        return $parent;
    }

    /**
     * An addon's module settings (tblmodule_configuration, entity_type 'addon'): every setting
     * the module reads, '' for a missing row. One lookup by the UNIQUE (entity_type,
     * entity_id, setting_name).
     *
     * @param int $definitionId tbladdons.id
     *
     * @return array configoptionN => value
     *
     * @throws \PDOException on a database error
     */
    public static function addonSettings($definitionId)
    {
        $settings = array_fill_keys(self::SETTINGS, '');
        $rows = Capsule::table('tblmodule_configuration')
            ->where('entity_type', self::ADDON_ENTITY)
            ->where('entity_id', (int) $definitionId)
            ->whereIn('setting_name', self::SETTINGS)
            ->get(array('setting_name', 'value'));
        foreach (Query::rows($rows) as $row) {
            $settings[(string) $row->setting_name] = (string) $row->value;
        }
        return $settings;
    }

    /**
     * The product's (servertype) or addon's (module) module, which must be this one (any case).
     *
     * @param int    $serviceId tblhosting.id (an addon's parent)
     * @param int    $addonId   tblhostingaddons.id, 0 for a service
     * @param string $key       wrong_module or addon_wrong_module
     * @param array  $owner     the placeholder naming the product or addon
     * @param string $module    the module it is set to
     *
     * @throws ModuleError when it is another module
     */
    private static function checkModule($serviceId, $addonId, $key, array $owner, $module)
    {
        $rules = Rules::get();
        if (strtolower((string) $module) !== $rules['module']) {
            throw Rules::refusal($serviceId, $addonId, $key, $owner + array(
                '{module}' => Escape::message($rules['module']),
                '{value}' => Escape::quote($module),
            ));
        }
    }
}
