<?php
/**
 * The module's order rules: `../rules.json`, the file the worker embeds at build time (its
 * `src/rules.rs`). Read once per request and checked for every rule the module uses, so a
 * missing or broken file is one clear `JETPACK MODULE: …` message instead of a PHP warning.
 * Also what the rules are asked for: the allowed plan slugs, the custom field names, and the
 * refusals built from their message templates.
 */

namespace WHMCS\Module\Server\Jetpack;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

final class Rules
{
    /** The messages the module uses (rules.json "messages"). */
    const MESSAGES = array(
        'service_missing', 'product_missing', 'wrong_module', 'no_field', 'many_fields',
        'bad_site_url', 'local_user_empty', 'local_user_markup', 'local_user_too_long',
        'bad_plan', 'no_credentials', 'addon_missing', 'addon_definition_missing',
        'addon_wrong_module', 'addon_no_field', 'addon_many_fields', 'addon_no_credentials',
        'addon_no_parent', 'addon_no_site', 'licence_no_token', 'licence_no_product',
        'addon_licence_no_token', 'addon_licence_no_product',
    );

    /** The Site URL reasons the module uses (rules.json "site_url_problems.reasons"). */
    const SITE_URL_REASONS = array(
        'too_long', 'spaces', 'not_utf8', 'scheme', 'empty_host', 'bad_host', 'bad_port',
        'user_name', 'query', 'no_domain', 'bad_label', 'port_zero',
    );

    /** @var array|null rules.json, once read (once per request) */
    private static $rules;

    /**
     * The rules (rules.json beside lib/), read once per request.
     *
     * @return array
     *
     * @throws ModuleError when the file is missing or broken
     */
    public static function get()
    {
        if (self::$rules === null) {
            self::$rules = self::load(dirname(__DIR__) . '/rules.json');
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
    public static function load($path)
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
        if (!is_array($rules)) {
            return 'not a JSON object';
        }
        $missing = self::missingSection($rules);
        if ($missing === null) {
            $missing = self::missingReason($rules);
        }
        return $missing === null ? self::missingPlans($rules) : $missing;
    }

    /**
     * The first top-level rule, or entry of one, that $rules lacks.
     *
     * @param array $rules
     *
     * @return string|null e.g. "fields.plan"
     */
    private static function missingSection(array $rules)
    {
        $needed = array(
            'module' => null,
            'fields' => array('site_url', 'local_user', 'plan', 'details'),
            'limits' => array('site_url_max_len', 'local_user_max_chars'),
            'messages' => self::MESSAGES,
            'site_url_problems' => array('empty', 'invalid'),
        );
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
        return null;
    }

    /**
     * The first Site URL reason $rules lacks.
     *
     * @param array $rules
     *
     * @return string|null e.g. "site_url_problems.reasons.bad_port"
     */
    private static function missingReason(array $rules)
    {
        foreach (self::SITE_URL_REASONS as $name) {
            if (!isset($rules['site_url_problems']['reasons'][$name])
                || !is_string($rules['site_url_problems']['reasons'][$name])
            ) {
                return 'site_url_problems.reasons.' . $name;
            }
        }
        return null;
    }

    /**
     * 'plans' when $rules has no plan, 'plans.slug' when one has no slug.
     *
     * @param array $rules
     *
     * @return string|null
     */
    private static function missingPlans(array $rules)
    {
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
     *
     * @throws ModuleError when rules.json is missing or broken
     */
    public static function planSlugs()
    {
        $slugs = array();
        foreach (self::get()['plans'] as $plan) {
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
     *
     * @throws ModuleError when rules.json is missing or broken
     */
    public static function fieldName($which)
    {
        $rules = self::get();
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
     *
     * @throws ModuleError when rules.json is missing or broken
     */
    public static function refusal($serviceId, $addonId, $key, array $vars)
    {
        $rules = self::get();
        return ModuleError::forTarget($serviceId, $addonId, self::render($rules['messages'][$key], $vars));
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
    public static function render($template, array $vars)
    {
        $html = Escape::message($template);
        return count($vars) === 0 ? $html : strtr($html, $vars);
    }
}
