<?php
/**
 * Reads a service's order the way the worker does (tblhosting, tblproducts, the product's
 * custom fields and this service's values) and checks everything the worker will need, so
 * Create/Terminate can refuse at once with a message saying what to fix. The rules and the
 * wording follow the worker's `src/order.rs`:
 *
 * - a custom field is found by its key: the part of `fieldname` before the first `|`, trimmed
 *   (`Site URL|Your WordPress site` is the `Site URL` field); exactly one field per key;
 * - a value is this service's lowest `tblcustomfieldsvalues` row, cut at the first `|`;
 * - Site URL is a web address, Local User is not empty, Plan is an allowed plan (any case),
 *   and the product has the partner client id and secret (configoption1 and configoption2).
 */

namespace WHMCS\Module\Server\Jetpack;

use WHMCS\Database\Capsule;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

class Order
{
    const MODULE_NAME = 'jetpack';

    const FIELD_SITE_URL = 'Site URL';
    const FIELD_LOCAL_USER = 'Local User';
    const FIELD_PLAN = 'Plan';
    const FIELD_DETAILS = 'jetpack_provisioning_details';

    /** Longest Site URL the worker accepts (host, colon, port, path). */
    const SITE_URL_MAX_LEN = 771;

    /** Longest Local User the worker accepts, in characters. */
    const LOCAL_USER_MAX_LEN = 200;

    /** Plans and products the partner API provisions (the worker's ALLOWED_PLANS). */
    const ALLOWED_PLANS = array(
        'free',
        'personal',
        'premium',
        'professional',
        'jetpack-backup-realtime',
        'jetpack-backup-daily',
        'jetpack-scan',
        'jetpack-anti-spam',
    );

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

    /** @var string the Local User (trimmed) */
    public $localUser;

    /** @var string the plan slug, lower case */
    public $plan;

    /**
     * Loads and checks the order of a service.
     *
     * @param int $serviceId tblhosting.id
     *
     * @return self
     *
     * @throws ModuleError when something must be fixed first
     * @throws \PDOException on a database error
     */
    public static function load($serviceId)
    {
        $serviceId = (int) $serviceId;
        $service = Capsule::table('tblhosting')
            ->where('id', $serviceId)
            ->first(array('id', 'userid', 'packageid'));
        if ($service === null) {
            throw ModuleError::forService($serviceId, 'it does not exist in tblhosting; nothing to do');
        }
        $product = Capsule::table('tblproducts')
            ->where('id', (int) $service->packageid)
            ->first(array('id', 'name', 'servertype', 'configoption1', 'configoption2'));
        if ($product === null) {
            throw ModuleError::forService(
                $serviceId,
                'its product (id ' . (int) $service->packageid . ') no longer exists; '
                . 'assign the service to a Jetpack product'
            );
        }
        $productName = ModuleError::quote($product->name);
        if (strtolower((string) $product->servertype) !== self::MODULE_NAME) {
            throw ModuleError::forService(
                $serviceId,
                'product ' . $productName . ' does not use the jetpack module (its module is '
                . ModuleError::quote($product->servertype) . '); set Module Settings → Module Name '
                . 'to &quot;Jetpack by Automattic&quot;'
            );
        }

        $fields = self::productFields((int) $product->id);
        $fieldIds = array();
        foreach (array(self::FIELD_DETAILS, self::FIELD_SITE_URL, self::FIELD_LOCAL_USER, self::FIELD_PLAN) as $key) {
            $fieldIds[$key] = self::findField($serviceId, $productName, $fields, $key);
        }
        $values = self::serviceValues($serviceId, array_values($fieldIds));

        $order = new self();
        $order->serviceId = $serviceId;
        $order->clientId = (int) $service->userid;
        $order->productName = (string) $product->name;
        $order->detailsFieldId = $fieldIds[self::FIELD_DETAILS];

        $site = self::cut(self::valueOf($values, $fieldIds[self::FIELD_SITE_URL]));
        $problem = self::siteUrlProblem($site);
        if ($problem !== null) {
            throw ModuleError::forService(
                $serviceId,
                'the Site URL ' . ModuleError::quote($site) . ' ' . $problem
                . '; enter the WordPress site\'s address (like example.com) and retry'
            );
        }
        $order->siteUrl = self::trim($site);

        $user = self::trim(self::cut(self::valueOf($values, $fieldIds[self::FIELD_LOCAL_USER])));
        if ($user === '') {
            throw ModuleError::forService(
                $serviceId,
                'the Local User is empty; enter an existing WordPress user name of the site and retry'
            );
        }
        if (preg_match_all('/./su', $user) > self::LOCAL_USER_MAX_LEN) {
            throw ModuleError::forService(
                $serviceId,
                'the Local User is longer than ' . self::LOCAL_USER_MAX_LEN . ' characters'
            );
        }
        $order->localUser = $user;

        $plan = self::cut(self::valueOf($values, $fieldIds[self::FIELD_PLAN]));
        $slug = strtolower(self::trim($plan));
        if (!in_array($slug, self::ALLOWED_PLANS, true)) {
            throw ModuleError::forService(
                $serviceId,
                ModuleError::quote(self::trim($plan)) . ' is not an allowed plan; use one of: '
                . implode(', ', self::ALLOWED_PLANS)
            );
        }
        $order->plan = $slug;

        if (self::trim((string) $product->configoption1) === ''
            || self::trim((string) $product->configoption2) === ''
        ) {
            throw ModuleError::forService(
                $serviceId,
                'your credentials for provisioning are not complete: product ' . $productName
                . ' needs the Jetpack Partner Client ID and Client Secret in Module Settings'
            );
        }
        return $order;
    }

    /**
     * This service's jetpack_provisioning_details text ('' when there is none), without
     * checking the rest of the order: for display.
     *
     * @param int $serviceId tblhosting.id
     *
     * @return string
     *
     * @throws \PDOException on a database error
     */
    public static function currentDetails($serviceId)
    {
        $service = Capsule::table('tblhosting')->where('id', (int) $serviceId)->first(array('packageid'));
        if ($service === null) {
            return '';
        }
        foreach (self::productFields((int) $service->packageid) as $field) {
            if (self::fieldKey($field->fieldname) === self::FIELD_DETAILS) {
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
        if (count($ids) === 0) {
            throw ModuleError::forService(
                $serviceId,
                'product ' . $productName . ' has no custom field named \'' . $key . '\'; add it '
                . 'under Products/Services → Custom Fields with exactly that name (or \''
                . $key . '|Display Name\')'
            );
        }
        throw ModuleError::forService(
            $serviceId,
            'product ' . $productName . ' has ' . count($ids) . ' custom fields named \''
            . $key . '\'; delete all but one'
        );
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
     * Why a Site URL is unusable (the worker's SiteUrl::parse rules that can be checked without
     * a URL parser), or null when it looks fine. The worker checks it again in full.
     *
     * @param string $raw the value, already cut at `|`
     *
     * @return string|null e.g. "is empty", "is not a web address (contains spaces)"
     */
    public static function siteUrlProblem($raw)
    {
        $trimmed = self::trim($raw);
        if ($trimmed === '') {
            return 'is empty';
        }
        if (strlen($trimmed) > self::SITE_URL_MAX_LEN) {
            return 'is not a web address (longer than ' . self::SITE_URL_MAX_LEN . ' characters)';
        }
        $spaces = preg_match('/[\s\p{Z}\p{Cc}]/u', $trimmed);
        if ($spaces === false) {
            return 'is not a web address (not valid UTF-8)';
        }
        if ($spaces === 1) {
            return 'is not a web address (contains spaces)';
        }
        $lower = strtolower($trimmed);
        if (strpos($lower, 'https://') === 0) {
            $rest = substr($trimmed, 8);
        } elseif (strpos($lower, 'http://') === 0) {
            $rest = substr($trimmed, 7);
        } elseif (strpos($trimmed, '://') !== false || self::hasSchemePrefix($trimmed)) {
            return 'is not a web address (only http:// and https:// are allowed)';
        } else {
            $rest = $trimmed;
        }
        $authority = preg_split('~[/\\\\?#]~', $rest, 2);
        $authority = $authority[0];
        if (strpos($authority, '@') !== false) {
            return 'is not a web address (contains a user name)';
        }
        if (strpos($rest, '?') !== false || strpos($rest, '#') !== false) {
            return 'is not a web address (contains ? or #)';
        }
        if ($authority !== '' && $authority[0] === '[') {
            return null; // an IPv6 literal; the worker checks it
        }
        $colon = strrpos($authority, ':');
        $host = $colon === false ? $authority : substr($authority, 0, $colon);
        $numeric = preg_match('/^(0x[0-9a-f]*|[0-9]+)$/i', $host) === 1; // an IPv4 number
        if ($host === '') {
            return 'is not a web address (empty host)';
        }
        if (!$numeric && (strpos($host, '.') === false || $host[0] === '.')) {
            return 'is not a web address (has no domain name)';
        }
        return null;
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
