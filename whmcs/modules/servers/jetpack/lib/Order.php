<?php
/**
 * Reads the order of a target the way the worker does and checks everything the worker will
 * need, so Create, Terminate and ChangePackage can refuse at once with a message saying what to
 * fix. A target is a service sold as a standalone Jetpack product (tblhosting, tblproducts, the
 * product's custom fields and this service's values) or one Jetpack product addon on a service
 * (tblhostingaddons, tbladdons, its module settings in tblmodule_configuration, the addon's
 * custom fields and this addon's values; the Site URL defaults to the parent service's domain):
 * docs/addons.md, "Reading an order". The field names, plans, limits and message texts come
 * from `../rules.json`, the file the worker embeds (its `src/rules.rs`), and the checks follow
 * the worker's `src/order.rs`:
 *
 * - a custom field is found by its key: the part of `fieldname` before the first `|`, trimmed
 *   (`Site URL|Your WordPress site` is the `Site URL` field); at most one field per key;
 * - a value is this target's lowest `tblcustomfieldsvalues` row, cut at the first `|`;
 * - Site URL is a web address, Local User is not empty (else the module setting Default Local
 *   User, configoption6), has no angle brackets and is not too long, Plan is an allowed plan (any
 *   case; the module setting Plan, configoption3, wins over the Plan field when it names one),
 *   and the module settings hold the partner client id and secret (configoption1 and 2);
 * - checks run in the contract's order, the first problem wins: the target exists, its module,
 *   the details field, Site URL, Local User, Plan, credentials;
 * - a terminate needs only what the cancel sends: the Site URL and the credentials (the
 *   worker's `read_cancel`); a change of plan (ChangePackage) needs what a provision needs.
 *
 * tests/worker/bad_input.rs runs the worker's bad-input corpus through this class too and
 * checks that both refuse with the same message (or both accept, or the case is one only the
 * worker can decide).
 */

namespace WHMCS\Module\Server\Jetpack;

use WHMCS\Database\Capsule;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

class Order
{
    /** tblmodule_configuration.entity_type of an addon's module settings. */
    const ADDON_ENTITY = 'addon';

    /** The module settings read (configoptionN): credentials, Plan, Default Local User. */
    const CLIENT_ID = 'configoption1';
    const CLIENT_SECRET = 'configoption2';
    const PLAN_SETTING = 'configoption3';
    const DEFAULT_USER = 'configoption6';

    /** Every module setting read, in this order. */
    const SETTINGS = array(self::CLIENT_ID, self::CLIENT_SECRET, self::PLAN_SETTING, self::DEFAULT_USER);

    /** @var array|null rules.json, once read (once per request) */
    private static $rules;

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

    /** @var string|null the Local User (trimmed); null when loaded for a terminate */
    public $localUser;

    /** @var string|null the plan slug, lower case; null for a terminate without an allowed plan */
    public $plan;

    /**
     * Loads and checks the order of a target for an action. A provision (or a change of plan)
     * needs everything; a terminate only what the cancel call sends (as the worker's
     * `read_cancel`): the Site URL and the credentials. Its Local User is not read, and a plan
     * that is missing, doubled, empty or not an allowed plan (a legacy order) leaves $plan null:
     * the cancel then names no plan.
     *
     * Three parts, in this order: the rules (a broken rules.json is reported before any query),
     * the target (serviceTarget() or addonTarget(): the rows that must exist, and its module),
     * then check() (its fields and settings).
     *
     * @param int    $serviceId tblhosting.id (for an addon: the parent WHMCS passed, named in
     *                          the message when the addon row is gone)
     * @param string $action    an action of the catalogue (Catalogue::checks() says what is checked)
     * @param int    $addonId   tblhostingaddons.id, or 0 for the service itself
     *
     * @return self
     *
     * @throws ModuleError when something must be fixed first
     * @throws \PDOException on a database error
     */
    public static function load($serviceId, $action = 'provision', $addonId = 0)
    {
        $addonId = (int) $addonId;
        self::rules();
        $target = $addonId > 0
            ? self::addonTarget($addonId, (int) $serviceId)
            : self::serviceTarget((int) $serviceId);
        return self::check($target, $action);
    }

    // The service path.

    /**
     * A service's target: the service, its product (of this module), the product's custom
     * fields and module settings.
     *
     * @param int $serviceId tblhosting.id
     *
     * @return array what check() reads (see addonTarget())
     *
     * @throws ModuleError when the service or its product is gone, or the product uses another module
     * @throws \PDOException on a database error
     */
    private static function serviceTarget($serviceId)
    {
        $service = self::existingService($serviceId);
        $product = self::jetpackProduct($serviceId, (int) $service->packageid);
        $settings = array();
        foreach (self::SETTINGS as $name) {
            $settings[$name] = (string) $product->$name;
        }
        return array(
            'service_id' => $serviceId,
            'addon_id' => 0,
            'addon_definition_id' => null,
            'client_id' => (int) $service->userid,
            'name' => (string) $product->name,
            'owner' => array('{product}' => Escape::quote($product->name)),
            'keys' => array('no_field' => 'no_field', 'many_fields' => 'many_fields', 'no_credentials' => 'no_credentials'),
            'fields' => self::ownerFields('product', (int) $product->id),
            'relid' => $serviceId,
            'settings' => $settings,
            'domain' => null,
        );
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
            throw self::refuse($serviceId, 0, 'service_missing', array());
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
            throw self::refuse($serviceId, 0, 'product_missing', array(
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
     * @return array service_id (the parent), addon_id, addon_definition_id, client_id, name,
     *               owner (the message placeholder naming the product or addon), keys (the
     *               message keys for fields and credentials), fields (the custom fields), relid
     *               (of the values), settings (configoptionN => value), domain (the parent's
     *               tblhosting.domain for an addon, null for a service: its Site URL is required)
     *
     * @throws ModuleError when the addon, its definition or its parent is gone, or it uses another module
     * @throws \PDOException on a database error
     */
    private static function addonTarget($addonId, $serviceId)
    {
        $addon = self::existingAddon($addonId, $serviceId);
        $serviceId = (int) $addon->hostingid;
        $definition = self::jetpackAddonDefinition($serviceId, $addonId, (int) $addon->addonid);
        $parent = self::parentService($serviceId, $addonId);
        return array(
            'service_id' => $serviceId,
            'addon_id' => $addonId,
            'addon_definition_id' => (int) $definition->id,
            'client_id' => (int) $parent->userid,
            'name' => (string) $definition->name,
            'owner' => array('{addon}' => Escape::quote($definition->name)),
            'keys' => array(
                'no_field' => 'addon_no_field',
                'many_fields' => 'addon_many_fields',
                'no_credentials' => 'addon_no_credentials',
            ),
            'fields' => self::ownerFields('addon', (int) $definition->id),
            'relid' => $addonId,
            'settings' => self::addonSettings((int) $definition->id),
            'domain' => (string) $parent->domain,
        );
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
            throw self::refuse($serviceId, $addonId, 'addon_missing', array());
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
            throw self::refuse($serviceId, $addonId, 'addon_definition_missing', array(
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
            throw self::refuse($serviceId, $addonId, 'addon_no_parent', array(
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
        foreach (self::rows($rows) as $row) {
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
        $rules = self::rules();
        if (strtolower((string) $module) !== $rules['module']) {
            throw self::refuse($serviceId, $addonId, $key, $owner + array(
                '{module}' => Escape::message($rules['module']),
                '{value}' => Escape::quote($module),
            ));
        }
    }

    // The checks, once the target is found.

    /**
     * The checks of the target's fields and settings, in the contract's order: the details
     * field, the Site URL, then the Local User and the Plan (for a terminate, only a Plan that
     * is usable), then the credentials.
     *
     * @param array  $target what serviceTarget() or addonTarget() returned
     * @param string $action an action of the catalogue (Catalogue::checks() says what is checked)
     *
     * @return self
     *
     * @throws ModuleError when something must be fixed first
     * @throws \PDOException on a database error
     */
    private static function check(array $target, $action)
    {
        $names = self::rules()['fields'];
        $fields = self::fieldsByKey($target['fields']);
        $values = self::targetValues($target['relid'], $fields);

        $order = self::identify($target);
        $checks = Catalogue::checks($action);
        if ($checks === Catalogue::CHECKS_TARGET) {
            return $order;
        }
        $order->detailsFieldId = self::findField($target, $fields['details'], $names['details'], true);
        $order->siteUrl = self::readSite($target, $fields['site_url'], $values);
        if ($checks === Catalogue::CHECKS_CANCEL) {
            $order->localUser = null;
            $order->plan = self::usablePlan($target, $fields['plan'], $values);
        } else {
            $order->localUser = self::readLocalUser($target, $fields['local_user'], $values);
            $order->plan = self::readPlan($target, $fields['plan'], $values);
        }
        self::checkCredentials($target);
        return $order;
    }

    /**
     * The ids of the target's fields with each of the four keys (the rules' field names).
     *
     * @param array $fields what ownerFields() returned
     *
     * @return array 'details', 'site_url', 'local_user', 'plan' => tblcustomfields.id[]
     */
    private static function fieldsByKey(array $fields)
    {
        $names = self::rules()['fields'];
        $matches = array();
        foreach (array('details', 'site_url', 'local_user', 'plan') as $which) {
            $matches[$which] = array();
            foreach ($fields as $field) {
                if (self::fieldKey($field->fieldname) === $names[$which]) {
                    $matches[$which][] = (int) $field->id;
                }
            }
        }
        return $matches;
    }

    /**
     * An order naming the target (its ids, client and name); the fields are checked next.
     *
     * @param array $target what serviceTarget() or addonTarget() returned
     *
     * @return self
     */
    private static function identify(array $target)
    {
        $order = new self();
        $order->serviceId = $target['service_id'];
        $order->addonId = $target['addon_id'];
        $order->addonDefinitionId = $target['addon_definition_id'];
        $order->clientId = $target['client_id'];
        $order->productName = $target['name'];
        $order->detailsRelId = $target['relid'];
        return $order;
    }

    /**
     * A terminate's plan: the plan when it is usable, else null (the cancel then names none).
     *
     * @param array $target
     * @param int[] $ids    the fields with the Plan key
     * @param array $values field id => value
     *
     * @return string|null the slug, lower case
     */
    private static function usablePlan(array $target, array $ids, array $values)
    {
        try {
            return self::readPlan($target, $ids, $values);
        } catch (ModuleError $e) {
            return null;
        }
    }

    /**
     * The Site URL: the field's value (a service's field is required); for an addon whose
     * field is missing or empty, the parent service's domain; checked as a web address.
     *
     * @param array $target
     * @param int[] $ids    the fields with the Site URL key
     * @param array $values field id => value
     *
     * @return string trimmed
     *
     * @throws ModuleError
     */
    private static function readSite(array $target, array $ids, array $values)
    {
        $key = self::fieldName('site_url');
        $isAddon = $target['addon_id'] > 0;
        $fieldId = self::findField($target, $ids, $key, !$isAddon);
        $site = $fieldId === null ? '' : self::cut(self::valueOf($values, $fieldId));
        if ($isAddon && self::trim($site) === '') {
            $site = self::trim((string) $target['domain']);
            if ($site === '') {
                throw self::refuse($target['service_id'], $target['addon_id'], 'addon_no_site', array(
                    '{field}' => Escape::message($key),
                    '{service_id}' => (string) $target['service_id'],
                ));
            }
        }
        $problem = self::siteUrlProblem($site);
        if ($problem !== null) {
            throw self::refuse($target['service_id'], $target['addon_id'], 'bad_site_url', array(
                '{field}' => Escape::message($key),
                '{value}' => Escape::quote($site),
                '{problem}' => Escape::message($problem),
            ));
        }
        return self::trim($site);
    }

    /**
     * The Local User: the field's value; when the field is missing or its value empty, the
     * module setting Default Local User (configoption6); neither: the field's usual message.
     *
     * @param array $target
     * @param int[] $ids    the fields with the Local User key
     * @param array $values field id => value
     *
     * @return string trimmed
     *
     * @throws ModuleError
     */
    private static function readLocalUser(array $target, array $ids, array $values)
    {
        $rules = self::rules();
        $key = self::fieldName('local_user');
        $fieldId = self::findField($target, $ids, $key, false);
        $user = $fieldId === null ? '' : self::trim(self::cut(self::valueOf($values, $fieldId)));
        if ($user === '') {
            $user = self::trim($target['settings'][self::DEFAULT_USER]);
        }
        $userField = array('{field}' => Escape::message($key));
        if ($user === '') {
            if ($fieldId === null) {
                throw self::missingField($target, $key);
            }
            throw self::refuse($target['service_id'], $target['addon_id'], 'local_user_empty', $userField);
        }
        if (strpbrk($user, '<>') !== false) {
            throw self::refuse($target['service_id'], $target['addon_id'], 'local_user_markup', $userField);
        }
        $maxUser = (int) $rules['limits']['local_user_max_chars'];
        if (preg_match_all('/./su', $user) > $maxUser) {
            throw self::refuse(
                $target['service_id'],
                $target['addon_id'],
                'local_user_too_long',
                $userField + array('{max}' => (string) $maxUser)
            );
        }
        return $user;
    }

    /**
     * The plan: the module setting Plan (configoption3) wins when it names one (an upgrade
     * changes the product, and with it the setting, while WHMCS carries custom field values
     * over unchanged: docs/addons.md, "Which plan"); else the Plan field; neither: no_field
     * (no field) or bad_plan (an empty value). The name found must be an allowed plan (any
     * case).
     *
     * @param array $target
     * @param int[] $ids    the fields with the Plan key
     * @param array $values field id => value
     *
     * @return string the slug, lower case
     *
     * @throws ModuleError
     */
    private static function readPlan(array $target, array $ids, array $values)
    {
        $key = self::fieldName('plan');
        $fieldId = self::findField($target, $ids, $key, false);
        $plan = self::trim($target['settings'][self::PLAN_SETTING]);
        if ($plan === '') {
            if ($fieldId === null) {
                throw self::missingField($target, $key);
            }
            $plan = self::trim(self::cut(self::valueOf($values, $fieldId)));
        }
        $slug = strtolower($plan);
        $slugs = self::planSlugs();
        if (!in_array($slug, $slugs, true)) {
            throw self::refuse($target['service_id'], $target['addon_id'], 'bad_plan', array(
                '{value}' => Escape::quote($plan),
                '{plans}' => Escape::message(implode(', ', $slugs)),
            ));
        }
        return $slug;
    }

    /**
     * @param array $target the settings: configoption1 (client id), configoption2 (secret)
     *
     * @throws ModuleError when the partner client id or secret is missing
     */
    private static function checkCredentials(array $target)
    {
        if (self::trim($target['settings'][self::CLIENT_ID]) === ''
            || self::trim($target['settings'][self::CLIENT_SECRET]) === ''
        ) {
            throw self::refuse(
                $target['service_id'],
                $target['addon_id'],
                $target['keys']['no_credentials'],
                $target['owner']
            );
        }
    }

    /**
     * The rules (rules.json beside lib/), read once per request.
     *
     * @return array
     *
     * @throws ModuleError when the file is missing or broken
     */
    public static function rules()
    {
        if (self::$rules === null) {
            self::$rules = self::loadRules(dirname(__DIR__) . '/rules.json');
        }
        return self::$rules;
    }

    /**
     * Reads and checks a rules file.
     *
     * @param string $path
     *
     * @return array
     *
     * @throws ModuleError when the file is missing, not JSON, or lacks a rule the module uses
     */
    public static function loadRules($path)
    {
        $text = is_readable($path) ? file_get_contents($path) : false;
        if ($text === false) {
            throw new ModuleError(
                ModuleError::PREFIX . 'the module\'s rules file ' . Escape::html($path)
                . ' is missing or unreadable; reinstall the Jetpack module\'s files'
            );
        }
        $rules = json_decode($text, true);
        $broken = $rules === null ? json_last_error_msg() : self::missingRule($rules);
        if ($broken !== null) {
            throw new ModuleError(
                ModuleError::PREFIX . 'the module\'s rules file ' . Escape::html($path)
                . ' is broken (' . Escape::html($broken) . '); reinstall the Jetpack module\'s files'
            );
        }
        return $rules;
    }

    /**
     * The first rule the module uses that $rules lacks, or null when it has them all.
     *
     * @param mixed $rules the decoded file
     *
     * @return string|null e.g. "messages.bad_plan"
     */
    private static function missingRule($rules)
    {
        $needed = array(
            'module' => null,
            'fields' => array('site_url', 'local_user', 'plan', 'details'),
            'limits' => array('site_url_max_len', 'local_user_max_chars'),
            'messages' => array(
                'service_missing', 'product_missing', 'wrong_module', 'no_field', 'many_fields',
                'bad_site_url', 'local_user_empty', 'local_user_markup', 'local_user_too_long',
                'bad_plan', 'no_credentials', 'addon_missing', 'addon_definition_missing',
                'addon_wrong_module', 'addon_no_field', 'addon_many_fields', 'addon_no_credentials',
                'addon_no_parent', 'addon_no_site',
            ),
            'site_url_problems' => array('empty', 'invalid'),
        );
        if (!is_array($rules)) {
            return 'not a JSON object';
        }
        foreach ($needed as $key => $inner) {
            if (!isset($rules[$key]) || ($inner === null ? !is_string($rules[$key]) : !is_array($rules[$key]))) {
                return $key;
            }
            foreach ((array) $inner as $name) {
                if (!isset($rules[$key][$name]) || is_array($rules[$key][$name])) {
                    return $key . '.' . $name;
                }
            }
        }
        $reasons = array(
            'too_long', 'spaces', 'not_utf8', 'scheme', 'empty_host', 'bad_host', 'bad_port',
            'user_name', 'query', 'no_domain', 'bad_label', 'port_zero',
        );
        foreach ($reasons as $name) {
            if (!isset($rules['site_url_problems']['reasons'][$name])
                || !is_string($rules['site_url_problems']['reasons'][$name])
            ) {
                return 'site_url_problems.reasons.' . $name;
            }
        }
        if (!isset($rules['plans']) || !is_array($rules['plans']) || count($rules['plans']) === 0) {
            return 'plans';
        }
        foreach ($rules['plans'] as $plan) {
            if (!is_array($plan) || !isset($plan['slug']) || !is_string($plan['slug'])) {
                return 'plans.slug';
            }
        }
        return null;
    }

    /**
     * The allowed plan slugs, in the rules' order.
     *
     * @return string[]
     */
    public static function planSlugs()
    {
        $slugs = array();
        foreach (self::rules()['plans'] as $plan) {
            $slugs[] = (string) $plan['slug'];
        }
        return $slugs;
    }

    /**
     * The custom field key the rules name ('site_url', 'local_user', 'plan' or 'details').
     *
     * @param string $which
     *
     * @return string e.g. 'Site URL'
     */
    public static function fieldName($which)
    {
        $rules = self::rules();
        return (string) $rules['fields'][$which];
    }

    /**
     * A refusal with one of the rules' message templates, naming the target.
     *
     * @param int    $serviceId tblhosting.id (an addon's parent)
     * @param int    $addonId   tblhostingaddons.id, 0 for a service
     * @param string $key       the template's key under "messages"
     * @param array  $vars      '{placeholder}' => value, each already safe HTML
     *
     * @return ModuleError
     */
    private static function refuse($serviceId, $addonId, $key, array $vars)
    {
        $rules = self::rules();
        return ModuleError::forTarget($serviceId, $addonId, self::render($rules['messages'][$key], $vars));
    }

    /**
     * The refusal for a field the product (or addon) lacks: no_field or addon_no_field.
     *
     * @param array  $target
     * @param string $key    the field key
     *
     * @return ModuleError
     */
    private static function missingField(array $target, $key)
    {
        return self::refuse(
            $target['service_id'],
            $target['addon_id'],
            $target['keys']['no_field'],
            $target['owner'] + array('{field}' => Escape::message($key))
        );
    }

    /**
     * Fills a template in one pass: the template is HTML-escaped (quotes other than `'`),
     * the values are put in as they are.
     *
     * @param string $template
     * @param array  $vars     '{placeholder}' => safe HTML
     *
     * @return string
     */
    private static function render($template, array $vars)
    {
        $html = Escape::message($template);
        return count($vars) === 0 ? $html : strtr($html, $vars);
    }

    /**
     * The target's jetpack_provisioning_details text ('' when there is none), without checking
     * the rest of the order: for display ('' too when rules.json is unusable: Create and
     * Terminate report that). A service's is its product's field with relid = tblhosting.id; an
     * addon's is the addon's field with relid = tblhostingaddons.id (never the parent's).
     *
     * @param int $serviceId tblhosting.id
     * @param int $addonId   tblhostingaddons.id, 0 for the service itself
     *
     * @return string
     *
     * @throws \PDOException on a database error
     */
    public static function currentDetails($serviceId, $addonId = 0)
    {
        try {
            $detailsKey = self::fieldName('details');
        } catch (ModuleError $e) {
            return '';
        }
        $owner = self::fieldOwner($serviceId, $addonId);
        if ($owner === null) {
            return '';
        }
        foreach (self::ownerFields($owner[0], $owner[1]) as $field) {
            if (self::fieldKey($field->fieldname) === $detailsKey) {
                $value = Capsule::table('tblcustomfieldsvalues')
                    ->where('fieldid', (int) $field->id)
                    ->where('relid', $owner[2])
                    ->orderBy('id')
                    ->value('value');
                return $value === null ? '' : (string) $value;
            }
        }
        return '';
    }

    /**
     * Whose custom fields a target's values are: the service's product, or the addon's
     * definition (by primary keys).
     *
     * @param int $serviceId tblhosting.id
     * @param int $addonId   tblhostingaddons.id, 0 for the service itself
     *
     * @return array|null array(tblcustomfields.type, its relid, the values' relid); null when
     *                    the service or addon is gone
     *
     * @throws \PDOException on a database error
     */
    public static function fieldOwner($serviceId, $addonId = 0)
    {
        if ((int) $addonId > 0) {
            $definitionId = Capsule::table('tblhostingaddons')->where('id', (int) $addonId)->value('addonid');
            return $definitionId === null ? null : array('addon', (int) $definitionId, (int) $addonId);
        }
        $productId = Capsule::table('tblhosting')->where('id', (int) $serviceId)->value('packageid');
        return $productId === null ? null : array('product', (int) $productId, (int) $serviceId);
    }

    /**
     * WHMCS's key for a custom field name: the part before the first `|`, trimmed.
     *
     * @param string $fieldName tblcustomfields.fieldname
     *
     * @return string
     */
    public static function fieldKey($fieldName)
    {
        $parts = explode('|', (string) $fieldName, 2);
        return self::trim($parts[0]);
    }

    /**
     * The id of the product's (or addon's) one field with this key.
     *
     * @param array  $target   what serviceTarget() or addonTarget() returned
     * @param int[]  $ids      the fields with this key
     * @param string $key      the field key
     * @param bool   $required whether a missing field is a refusal (else null)
     *
     * @return int|null
     *
     * @throws ModuleError when there is more than one such field, or none and it is required
     */
    private static function findField(array $target, array $ids, $key, $required)
    {
        if (count($ids) === 1) {
            return $ids[0];
        }
        if (count($ids) === 0) {
            if (!$required) {
                return null;
            }
            throw self::missingField($target, $key);
        }
        throw self::tooMany($target, $key, count($ids));
    }

    /**
     * @param array  $target
     * @param string $key    the field key
     * @param int    $count  how many fields have it
     *
     * @return ModuleError many_fields or addon_many_fields
     */
    private static function tooMany(array $target, $key, $count)
    {
        return self::refuse(
            $target['service_id'],
            $target['addon_id'],
            $target['keys']['many_fields'],
            $target['owner'] + array('{field}' => Escape::message($key), '{count}' => (string) $count)
        );
    }

    /**
     * The custom fields of a product (type 'product', relid = tblproducts.id) or of an addon
     * (type 'addon', relid = tbladdons.id), by KEY serviceid (relid).
     *
     * @param string $type  'product' or 'addon'
     * @param int    $relid tblproducts.id or tbladdons.id
     *
     * @return array objects with id and fieldname
     */
    public static function ownerFields($type, $relid)
    {
        $rows = Capsule::table('tblcustomfields')
            ->where('type', (string) $type)
            ->where('relid', (int) $relid)
            ->orderBy('id')
            ->get(array('id', 'fieldname'));
        return self::rows($rows);
    }

    /**
     * This target's value of each of its fields with one of the four keys (one read, none when
     * there is no such field): the lowest value row wins when there are several.
     *
     * @param int   $relid tblhosting.id, or tblhostingaddons.id for an addon's fields
     * @param array $fields what fieldsByKey() returned
     *
     * @return array field id => value
     */
    private static function targetValues($relid, array $fields)
    {
        $fieldIds = array_merge($fields['details'], $fields['site_url'], $fields['local_user'], $fields['plan']);
        if (count($fieldIds) === 0) {
            return array();
        }
        $rows = Capsule::table('tblcustomfieldsvalues')
            ->whereIn('fieldid', $fieldIds)
            ->where('relid', (int) $relid)
            ->orderBy('id')
            ->get(array('id', 'fieldid', 'value'));
        $values = array();
        foreach (self::rows($rows) as $row) {
            if (!array_key_exists((int) $row->fieldid, $values)) {
                $values[(int) $row->fieldid] = (string) $row->value;
            }
        }
        return $values;
    }

    /**
     * Why a Site URL is unusable, in the worker's words (rules.json's site_url_problems), or
     * null when it looks fine. These are the worker's SiteUrl::parse rules that can be checked
     * without a URL parser, in the worker's order: empty, too long, spaces, scheme, then what
     * its URL parser refuses (empty host, a character no host can have, a bad port), a user
     * name, `?` or `#`, and for a plain ASCII host name, no dot or a bad label; then port 0.
     * IPv4 and IPv6 addresses, punycode (`xn--`), percent-escapes and non-ASCII host names are
     * left to the worker, which checks every Site URL again in full. When a value has several
     * problems, the two may name different ones.
     *
     * @param string $raw the value, already cut at `|`
     *
     * @return string|null e.g. "is empty", "is not a web address (contains spaces)"
     *
     * @throws ModuleError when rules.json is missing or broken
     */
    public static function siteUrlProblem($raw)
    {
        $rules = self::rules();
        $texts = $rules['site_url_problems'];
        $reason = self::siteUrlReason(self::trim($raw), $texts['reasons'], (int) $rules['limits']['site_url_max_len']);
        if ($reason === null) {
            return null;
        }
        if ($reason === '') {
            return (string) $texts['empty'];
        }
        return strtr((string) $texts['invalid'], array('{reason}' => $reason));
    }

    /**
     * The reason behind siteUrlProblem(): '' for empty, null for fine.
     *
     * @param string $trimmed the value, cut and trimmed
     * @param array  $why     rules.json's site_url_problems.reasons
     * @param int    $max     rules.json's limits.site_url_max_len
     *
     * @return string|null
     */
    private static function siteUrlReason($trimmed, array $why, $max)
    {
        if ($trimmed === '') {
            return '';
        }
        if (strlen($trimmed) > $max) {
            return strtr($why['too_long'], array('{max}' => (string) $max));
        }
        $spaces = preg_match('/[\s\p{Z}\p{Cc}]/u', $trimmed);
        if ($spaces === false) {
            return $why['not_utf8'];
        }
        if ($spaces === 1) {
            return $why['spaces'];
        }
        $lower = strtolower($trimmed);
        if (strpos($lower, 'https://') === 0) {
            $rest = substr($trimmed, 8);
        } elseif (strpos($lower, 'http://') === 0) {
            $rest = substr($trimmed, 7);
        } elseif (strpos($trimmed, '://') !== false || self::hasSchemePrefix($trimmed)) {
            return $why['scheme'];
        } else {
            $rest = $trimmed;
        }
        // The authority: after any further slashes, up to the path, query or fragment; the
        // host and port follow the last '@'.
        $rest = ltrim($rest, '/\\');
        $parts = preg_split('~[/\\\\?#]~', $rest, 2);
        $authority = $parts[0];
        $at = strrpos($authority, '@');
        $userInfo = $at === false ? '' : substr($authority, 0, $at);
        $hostPort = $at === false ? $authority : substr($authority, $at + 1);
        $bracketed = $hostPort !== '' && $hostPort[0] === '[';
        $end = $bracketed ? strpos($hostPort, ']') : false;
        $colon = $bracketed
            ? ($end === false ? false : strpos($hostPort, ':', $end))
            : strpos($hostPort, ':');
        $host = $colon === false ? $hostPort : substr($hostPort, 0, $colon);
        $port = $colon === false ? '' : substr($hostPort, $colon + 1);

        // What the worker's URL parser refuses.
        if ($host === '') {
            return $why['empty_host'];
        }
        if (!$bracketed && strpbrk($host, '<>[]^|') !== false) {
            return $why['bad_host'];
        }
        $portNumber = null;
        if ($port !== '') {
            $digits = ltrim($port, '0');
            if (preg_match('/^[0-9]+$/', $port) !== 1 || strlen($digits) > 5 || (int) $digits > 65535) {
                return $why['bad_port'];
            }
            $portNumber = (int) $digits;
        }
        // What the worker refuses in a parsed URL.
        if ($userInfo !== '' && $userInfo !== ':') {
            return $why['user_name'];
        }
        if (strpos($rest, '?') !== false || strpos($rest, '#') !== false) {
            return $why['query'];
        }
        if (!$bracketed && self::isPlainHostName($host)) {
            if (strpos($host, '.') === false) {
                return $why['no_domain'];
            }
            foreach (explode('.', $host) as $label) {
                if (preg_match('/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/', $label) !== 1) {
                    return $why['bad_label'];
                }
            }
        }
        if ($portNumber === 0) {
            return $why['port_zero'];
        }
        return null;
    }

    /**
     * An ASCII host name the worker's URL parser takes as it is (apart from case): no
     * percent-escape, no punycode label, and not ending in a number (which makes it an IPv4
     * address to the parser).
     *
     * @param string $host
     *
     * @return bool
     */
    private static function isPlainHostName($host)
    {
        if (preg_match('/^[\x21-\x7E]+$/', $host) !== 1 || strpos($host, '%') !== false) {
            return false;
        }
        $labels = explode('.', strtolower($host));
        foreach ($labels as $label) {
            if (strpos($label, 'xn--') === 0) {
                return false;
            }
        }
        $last = end($labels);
        if ($last === '' && count($labels) > 1) {
            $last = $labels[count($labels) - 2];
        }
        return preg_match('/^(?:[0-9]+|0x[0-9a-f]*)$/', $last) !== 1;
    }

    /**
     * `javascript:alert(1)`, `mailto:x`: a scheme other than http(s), written without `//`.
     *
     * @param string $value
     *
     * @return bool
     */
    private static function hasSchemePrefix($value)
    {
        $colon = strpos($value, ':');
        if ($colon === false || $colon === 0) {
            return false;
        }
        $scheme = substr($value, 0, $colon);
        $rest = substr($value, $colon + 1);
        return preg_match('/^[A-Za-z]+$/', $scheme) === 1
            && !($rest !== '' && ctype_digit($rest[0]));
    }

    /**
     * WHMCS cuts a custom field value at the first `|` before handing it to a module.
     *
     * @param string $value
     *
     * @return string
     */
    private static function cut($value)
    {
        $parts = explode('|', (string) $value, 2);
        return $parts[0];
    }

    /**
     * Trims ASCII and Unicode white space, as the worker's `str::trim` does.
     *
     * @param string $value
     *
     * @return string
     */
    private static function trim($value)
    {
        $trimmed = preg_replace('/^[\s\p{Z}]+|[\s\p{Z}]+$/u', '', (string) $value);
        return $trimmed === null ? trim((string) $value) : $trimmed;
    }

    /**
     * @param array $values field id => value
     * @param int   $fieldId
     *
     * @return string the value, or '' when the service has no value row
     */
    private static function valueOf(array $values, $fieldId)
    {
        return array_key_exists($fieldId, $values) ? $values[$fieldId] : '';
    }

    /**
     * Query results as a plain array (the query builder returns a Collection or an array,
     * depending on the Laravel version WHMCS ships).
     *
     * @param mixed $rows
     *
     * @return array
     */
    public static function rows($rows)
    {
        if (is_array($rows)) {
            return $rows;
        }
        return method_exists($rows, 'all') ? $rows->all() : iterator_to_array($rows);
    }
}
