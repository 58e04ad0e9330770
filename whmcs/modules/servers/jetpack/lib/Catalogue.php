<?php
/**
 * The lists the module and the dashboard share with jetpack-worker, read from catalogue.json
 * (generated from the worker's src/catalogue.rs; never edited by hand): each action's stored
 * name, the WHMCS function that records it, its words, which order checks it needs and the
 * "queued" text it writes; the request kinds; the job states; the requesters; the choices of
 * the manual-setup setting and which order events each waits for. Nothing here
 * decides what an action does: the worker does.
 */

namespace WHMCS\Module\Server\Jetpack;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

final class Catalogue
{
    /** The order checks of an action that sends the whole order (site, user, plan, credentials). */
    const CHECKS_ORDER = 'order';
    /** The order checks of an action that cancels (site, credentials). */
    const CHECKS_CANCEL = 'cancel';
    /** Only that the target exists and uses the module (suspend, unsuspend). */
    const CHECKS_TARGET = 'target';
    /**
     * A licence product's settings: the Licensing API token and the licence product, and the
     * Site URL when *Attach to the site* is on (issue, revoke and change of a licence).
     */
    const CHECKS_LICENCE = 'licence';

    /** The catalogue's names of the two APIs (its `api_settings` keys, each row's `api`). */
    const API_PLAN = 'plan';
    const API_LICENCE = 'licence';

    /** @var array|null the decoded file */
    private static $catalogue = null;

    /**
     * The decoded catalogue.json (read once per request).
     *
     * @return array
     *
     * @throws ModuleError when the file is missing or broken
     */
    public static function all()
    {
        if (self::$catalogue === null) {
            self::$catalogue = self::load(dirname(__DIR__) . '/catalogue.json');
        }
        return self::$catalogue;
    }

    /**
     * Reads and checks a catalogue file.
     *
     * @param string $path
     *
     * @return array
     *
     * @throws ModuleError when the file is missing, not JSON, or lacks a list
     */
    public static function load($path)
    {
        $text = is_readable($path) ? file_get_contents($path) : false;
        $doc = $text === false ? null : json_decode($text, true);
        $lists = array('actions', 'request_kinds', 'job_states', 'unfinished_states', 'requesters', 'manual_setup',
            'api_settings', 'licence_products', 'licence_states', 'licence_live_states');
        $broken = !is_array($doc);
        foreach ($lists as $list) {
            $broken = $broken || !isset($doc[$list]) || !is_array($doc[$list]);
        }
        if ($broken) {
            throw new ModuleError(
                ModuleError::PREFIX . 'the module\'s catalogue file ' . Escape::html($path)
                . ' is missing or broken; reinstall the Jetpack module\'s files'
            );
        }
        return $doc;
    }

    /**
     * The stored names of every action, in display order.
     *
     * @return string[]
     */
    public static function actionNames()
    {
        $names = array();
        foreach (self::all()['actions'] as $action) {
            $names[] = $action['name'];
        }
        return $names;
    }

    /**
     * One action's row, or null for a name the catalogue does not hold.
     *
     * @param string $name e.g. 'provision'
     *
     * @return array|null
     */
    public static function action($name)
    {
        foreach (self::all()['actions'] as $action) {
            if ($action['name'] === $name) {
                return $action;
            }
        }
        return null;
    }

    /**
     * The actions a job can have (mod_jetpack_jobs.action: the plan rows' names, which the
     * licence rows run for too), in display order.
     *
     * @return string[]
     */
    public static function jobActions()
    {
        $names = array();
        foreach (self::all()['actions'] as $action) {
            $jobAction = self::jobActionOf($action);
            if (!in_array($jobAction, $names, true)) {
                $names[] = $jobAction;
            }
        }
        return $names;
    }

    /**
     * The row a job action runs for a product of the given API: the licence row (e.g.
     * `issue_licence` for `provision`) for a licence product, else the plan row; null for a
     * name the catalogue does not hold.
     *
     * @param string $jobAction e.g. 'provision'
     * @param string $api       self::API_PLAN or self::API_LICENCE
     *
     * @return array|null
     */
    public static function actionFor($jobAction, $api)
    {
        foreach (self::all()['actions'] as $action) {
            $rowApi = isset($action['api']) ? $action['api'] : self::API_PLAN;
            if (self::jobActionOf($action) === $jobAction && $rowApi === $api) {
                return $action;
            }
        }
        return null;
    }

    /**
     * The API a product's (addon's) setting *Jetpack API* (configoption9) names, read as the
     * worker reads it (`Api::parse`): the licence value, trimmed and in any case, sells
     * licences; anything else ('' on every product saved before the setting) plans.
     *
     * @param string|null $setting the stored configoption9
     *
     * @return string self::API_PLAN or self::API_LICENCE
     */
    public static function apiOf($setting)
    {
        $licence = (string) self::all()['api_settings'][self::API_LICENCE];
        return strcasecmp(trim((string) $setting), $licence) === 0 ? self::API_LICENCE : self::API_PLAN;
    }

    /**
     * The stored value of the setting *Jetpack API* for an API (catalogue `api_settings`).
     *
     * @param string $api self::API_PLAN or self::API_LICENCE
     *
     * @return string
     */
    public static function apiSetting($api)
    {
        return (string) self::all()['api_settings'][$api];
    }

    /**
     * The built-in licence products (slug => name), offered while jetpack-worker has not
     * fetched the list from the Licensing API (mod_jetpack_licence_products is empty).
     *
     * @return array slug => name
     */
    public static function licenceProducts()
    {
        $products = array();
        foreach (self::all()['licence_products'] as $product) {
            $products[(string) $product['slug']] = (string) $product['name'];
        }
        return $products;
    }

    /**
     * Where a site's owner pastes a licence key, after the site's address
     * (`/wp-admin/admin.php?page=jetpack#/license/activation`).
     *
     * @return string
     */
    public static function licenceActivationPath()
    {
        return (string) self::all()['licence_activation_path'];
    }

    /**
     * The stored job action of a row (`job_action`; a catalogue without it: the name).
     *
     * @param array $action
     *
     * @return string
     */
    private static function jobActionOf(array $action)
    {
        return isset($action['job_action']) ? (string) $action['job_action'] : (string) $action['name'];
    }

    /**
     * The WHMCS function that records an action (CreateAccount, …); the name itself for a
     * name that is not an action (e.g. 'retry' is recorded by the Requeue button).
     *
     * @param string $name
     *
     * @return string
     */
    public static function whmcsFunction($name)
    {
        $action = self::action($name);
        return $action !== null ? $action['whmcs_function'] : 'Requeue';
    }

    /**
     * The order checks an action needs (self::CHECKS_*); an unknown name gets the full checks.
     *
     * @param string $name
     *
     * @return string
     */
    public static function checks($name)
    {
        $action = self::action($name);
        return $action !== null ? $action['checks'] : self::CHECKS_ORDER;
    }

    /**
     * The text written into the details field when the action is recorded; null leaves the
     * field as it is.
     *
     * @param string $name
     *
     * @return string|null
     */
    public static function queuedText($name)
    {
        $action = self::action($name);
        return $action !== null ? $action['queued_text'] : null;
    }

    /**
     * Every "queued" text (what only the module writes in the details field).
     *
     * @return string[]
     */
    public static function queuedTexts()
    {
        $texts = array();
        foreach (self::all()['actions'] as $action) {
            if ($action['queued_text'] !== null) {
                $texts[] = $action['queued_text'];
            }
        }
        return $texts;
    }

    /**
     * The stored value of the product setting "When WHMCS suspends the service" that cancels
     * the plan (configoption7; anything else keeps it).
     *
     * @return string
     */
    public static function suspendCancelValue()
    {
        return (string) self::all()['suspend_setting_cancel'];
    }

    /**
     * The module setting "When to provision a manual-setup order" (tblproducts.configoptionN,
     * an addon's tblmodule_configuration setting_name).
     *
     * @return string e.g. 'configoption8'
     *
     * @throws ModuleError when the catalogue names no such setting
     */
    public static function manualSetupSetting()
    {
        $setting = isset(self::all()['manual_setup']['setting']) ? (string) self::all()['manual_setup']['setting'] : '';
        if (preg_match('/^configoption[0-9]+$/', $setting) !== 1) {
            throw new ModuleError(
                ModuleError::PREFIX . 'the module\'s catalogue file names no manual-setup setting; reinstall the '
                . 'Jetpack module\'s files'
            );
        }
        return $setting;
    }

    /**
     * The choices of "When to provision a manual-setup order", for its drop-down: stored value
     * => words, the default first.
     *
     * @return array
     */
    public static function manualSetupChoices()
    {
        $choices = array();
        foreach (self::all()['manual_setup']['choices'] as $choice) {
            $choices[$choice['value']] = $choice['label'];
        }
        return $choices;
    }

    /**
     * The stored values of "When to provision a manual-setup order" ('' included) whose targets
     * an order event lets be provisioned: 'accepted' (the order is accepted) or 'paid' (its
     * invoice is paid). The worker decides which (src/manual_setup.rs); its adoption scan
     * reads the same lists.
     *
     * @param string $event 'accepted' or 'paid'
     *
     * @return string[]
     */
    public static function provisionedOn($event)
    {
        $lists = self::all()['manual_setup']['provisioned_on'];
        return isset($lists[$event]) ? array_map('strval', $lists[$event]) : array();
    }

    /**
     * A list by its key: 'request_kinds', 'job_states', 'unfinished_states', 'requesters',
     * 'licence_states', 'licence_live_states'.
     *
     * @param string $key
     *
     * @return string[]
     */
    public static function lists($key)
    {
        return self::all()[$key];
    }
}
