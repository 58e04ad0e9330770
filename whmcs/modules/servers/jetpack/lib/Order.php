<?php
/**
 * Reads a service's order the way the worker does (tblhosting, tblproducts, the product's
 * custom fields and this service's values) and checks everything the worker will need, so
 * Create/Terminate can refuse at once with a message saying what to fix. The field names, plans,
 * limits and message texts come from `../rules.json`, the file the worker embeds (its
 * `src/rules.rs`), and the checks follow the worker's `src/order.rs`:
 *
 * - a custom field is found by its key: the part of `fieldname` before the first `|`, trimmed
 *   (`Site URL|Your WordPress site` is the `Site URL` field); exactly one field per key;
 * - a value is this service's lowest `tblcustomfieldsvalues` row, cut at the first `|`;
 * - Site URL is a web address, Local User is not empty, has no angle brackets and is not too
 *   long, Plan is an allowed plan (any case), and the product has the partner client id and
 *   secret (configoption1 and configoption2);
 * - a terminate needs only what the cancel sends: the Site URL and the credentials (the
 *   worker's `read_cancel`).
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
    /** @var array|null rules.json, once read (once per request) */
    private static $rules;

    /** @var int tblhosting.id */
    public $serviceId;

    /** @var int tblhosting.userid (the WHMCS client) */
    public $clientId;

    /** @var string tblproducts.name */
    public $productName;

    /** @var int tblcustomfields.id of this product's jetpack_provisioning_details field */
    public $detailsFieldId;

    /** @var string the Site URL as entered (trimmed) */
    public $siteUrl;

    /** @var string|null the Local User (trimmed); null when loaded for a terminate */
    public $localUser;

    /** @var string|null the plan slug, lower case; null for a terminate without an allowed plan */
    public $plan;

    /**
     * Loads and checks the order of a service for an action. A provision needs everything;
     * a terminate only what the cancel call sends (as the worker's `read_cancel`): the Site
     * URL and the credentials. Its Local User is not read, and a Plan field that is missing,
     * doubled, empty or not an allowed plan (a legacy order) leaves $plan null: the cancel
     * then names no plan.
     *
     * @param int    $serviceId tblhosting.id
     * @param string $action    'provision' or 'terminate'
     *
     * @return self
     *
     * @throws ModuleError when something must be fixed first
     * @throws \PDOException on a database error
     */
    public static function load($serviceId, $action = 'provision')
    {
        $terminate = $action === 'terminate';
        $rules = self::rules();
        $fieldNames = $rules['fields'];
        $serviceId = (int) $serviceId;
        $service = Capsule::table('tblhosting')
            ->where('id', $serviceId)
            ->first(array('id', 'userid', 'packageid'));
        if ($service === null) {
            throw self::refuse($serviceId, 'service_missing', array());
        }
        $product = Capsule::table('tblproducts')
            ->where('id', (int) $service->packageid)
            ->first(array('id', 'name', 'servertype', 'configoption1', 'configoption2'));
        if ($product === null) {
            throw self::refuse($serviceId, 'product_missing', array(
                '{product_id}' => (string) (int) $service->packageid,
            ));
        }
        $productName = ModuleError::quote($product->name);
        if (strtolower((string) $product->servertype) !== $rules['module']) {
            throw self::refuse($serviceId, 'wrong_module', array(
                '{product}' => $productName,
                '{module}' => self::html($rules['module']),
                '{value}' => ModuleError::quote($product->servertype),
            ));
        }

        $fields = self::productFields((int) $product->id);
        $fieldIds = array();
        $needed = $terminate ? array('details', 'site_url') : array('details', 'site_url', 'local_user', 'plan');
        foreach ($needed as $which) {
            $fieldIds[$which] = self::findField($serviceId, $productName, $fields, $fieldNames[$which]);
        }
        if ($terminate) {
            try {
                $fieldIds['plan'] = self::findField($serviceId, $productName, $fields, $fieldNames['plan']);
            } catch (ModuleError $e) {
                // No usable Plan field: the cancel names no plan.
            }
        }
        $values = self::serviceValues($serviceId, array_values($fieldIds));

        $order = new self();
        $order->serviceId = $serviceId;
        $order->clientId = (int) $service->userid;
        $order->productName = (string) $product->name;
        $order->detailsFieldId = $fieldIds['details'];

        $site = self::cut(self::valueOf($values, $fieldIds['site_url']));
        $problem = self::siteUrlProblem($site);
        if ($problem !== null) {
            throw self::refuse($serviceId, 'bad_site_url', array(
                '{field}' => self::html($fieldNames['site_url']),
                '{value}' => ModuleError::quote($site),
                '{problem}' => self::html($problem),
            ));
        }
        $order->siteUrl = self::trim($site);

        if ($terminate) {
            $order->localUser = null;
            $order->plan = null;
            if (isset($fieldIds['plan'])) {
                $slug = strtolower(self::trim(self::cut(self::valueOf($values, $fieldIds['plan']))));
                $order->plan = in_array($slug, self::planSlugs(), true) ? $slug : null;
            }
            self::checkCredentials($serviceId, $product, $productName);
            return $order;
        }

        $user = self::trim(self::cut(self::valueOf($values, $fieldIds['local_user'])));
        $userField = array('{field}' => self::html($fieldNames['local_user']));
        if ($user === '') {
            throw self::refuse($serviceId, 'local_user_empty', $userField);
        }
        if (strpbrk($user, '<>') !== false) {
            throw self::refuse($serviceId, 'local_user_markup', $userField);
        }
        $maxUser = (int) $rules['limits']['local_user_max_chars'];
        if (preg_match_all('/./su', $user) > $maxUser) {
            throw self::refuse($serviceId, 'local_user_too_long', $userField + array('{max}' => (string) $maxUser));
        }
        $order->localUser = $user;

        $plan = self::cut(self::valueOf($values, $fieldIds['plan']));
        $slug = strtolower(self::trim($plan));
        $slugs = self::planSlugs();
        if (!in_array($slug, $slugs, true)) {
            throw self::refuse($serviceId, 'bad_plan', array(
                '{value}' => ModuleError::quote(self::trim($plan)),
                '{plans}' => self::html(implode(', ', $slugs)),
            ));
        }
        $order->plan = $slug;

        self::checkCredentials($serviceId, $product, $productName);
        return $order;
    }

    /**
     * @param int    $serviceId   tblhosting.id
     * @param object $product     the tblproducts row (configoption1, configoption2)
     * @param string $productName quoted for messages
     *
     * @throws ModuleError when the partner client id or secret is missing
     */
    private static function checkCredentials($serviceId, $product, $productName)
    {
        if (self::trim((string) $product->configoption1) === ''
            || self::trim((string) $product->configoption2) === ''
        ) {
            throw self::refuse($serviceId, 'no_credentials', array('{product}' => $productName));
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
                ModuleError::PREFIX . 'the module\'s rules file ' . ModuleError::escape($path)
                . ' is missing or unreadable; reinstall the Jetpack module\'s files'
            );
        }
        $rules = json_decode($text, true);
        $broken = $rules === null ? json_last_error_msg() : self::missingRule($rules);
        if ($broken !== null) {
            throw new ModuleError(
                ModuleError::PREFIX . 'the module\'s rules file ' . ModuleError::escape($path)
                . ' is broken (' . ModuleError::escape($broken) . '); reinstall the Jetpack module\'s files'
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
                'bad_plan', 'no_credentials',
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
     * A refusal with one of the rules' message templates.
     *
     * @param int    $serviceId tblhosting.id
     * @param string $key       the template's key under "messages"
     * @param array  $vars      '{placeholder}' => value, each already safe HTML
     *
     * @return ModuleError
     */
    private static function refuse($serviceId, $key, array $vars)
    {
        $rules = self::rules();
        return ModuleError::forService($serviceId, self::render($rules['messages'][$key], $vars));
    }

    /**
     * Text for a message: HTML-escaped, except `'` (which the messages use as quotes and WHMCS
     * shows as it is).
     *
     * @param string $text
     *
     * @return string
     */
    private static function html($text)
    {
        return htmlspecialchars((string) $text, ENT_COMPAT | ENT_SUBSTITUTE, 'UTF-8');
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
        $html = self::html($template);
        return count($vars) === 0 ? $html : strtr($html, $vars);
    }

    /**
     * This service's jetpack_provisioning_details text ('' when there is none), without
     * checking the rest of the order: for display ('' too when rules.json is unusable: Create
     * and Terminate report that).
     *
     * @param int $serviceId tblhosting.id
     *
     * @return string
     *
     * @throws \PDOException on a database error
     */
    public static function currentDetails($serviceId)
    {
        try {
            $detailsKey = self::fieldName('details');
        } catch (ModuleError $e) {
            return '';
        }
        $service = Capsule::table('tblhosting')->where('id', (int) $serviceId)->first(array('packageid'));
        if ($service === null) {
            return '';
        }
        foreach (self::productFields((int) $service->packageid) as $field) {
            if (self::fieldKey($field->fieldname) === $detailsKey) {
                $value = Capsule::table('tblcustomfieldsvalues')
                    ->where('fieldid', (int) $field->id)
                    ->where('relid', (int) $serviceId)
                    ->orderBy('id')
                    ->value('value');
                return $value === null ? '' : (string) $value;
            }
        }
        return '';
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
     * The id of the product's one field with this key.
     *
     * @param int    $serviceId   for the message
     * @param string $productName quoted product name, for the message
     * @param array  $fields      the product's fields (objects with id, fieldname)
     * @param string $key         the field key
     *
     * @return int
     *
     * @throws ModuleError when there is no such field, or more than one
     */
    private static function findField($serviceId, $productName, $fields, $key)
    {
        $ids = array();
        foreach ($fields as $field) {
            if (self::fieldKey($field->fieldname) === $key) {
                $ids[] = (int) $field->id;
            }
        }
        if (count($ids) === 1) {
            return $ids[0];
        }
        $vars = array('{product}' => $productName, '{field}' => self::html($key));
        if (count($ids) === 0) {
            throw self::refuse($serviceId, 'no_field', $vars);
        }
        throw self::refuse($serviceId, 'many_fields', $vars + array('{count}' => (string) count($ids)));
    }

    /**
     * The product's custom fields.
     *
     * @param int $productId tblproducts.id
     *
     * @return array objects with id and fieldname
     */
    private static function productFields($productId)
    {
        $rows = Capsule::table('tblcustomfields')
            ->where('type', 'product')
            ->where('relid', $productId)
            ->orderBy('id')
            ->get(array('id', 'fieldname'));
        return self::rows($rows);
    }

    /**
     * This service's value of each field: the lowest value row wins when there are several.
     *
     * @param int   $serviceId tblhosting.id
     * @param int[] $fieldIds  tblcustomfields.id
     *
     * @return array field id => value
     */
    private static function serviceValues($serviceId, array $fieldIds)
    {
        $rows = Capsule::table('tblcustomfieldsvalues')
            ->whereIn('fieldid', $fieldIds)
            ->where('relid', $serviceId)
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
