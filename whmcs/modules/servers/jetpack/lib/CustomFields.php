<?php
/**
 * The custom fields of a target, read as WHMCS hands them to a module (docs/addons.md,
 * "Reading an order"):
 *
 * - a service's fields are its product's (tblcustomfields type 'product', relid =
 *   tblproducts.id) with values by relid = tblhosting.id; an addon's are its definition's
 *   (type 'addon', relid = tbladdons.id) with values by relid = tblhostingaddons.id;
 * - a field is found by its key: the part of `fieldname` before the first `|`, trimmed
 *   (`Site URL|Your WordPress site` is the `Site URL` field);
 * - a value is the target's lowest `tblcustomfieldsvalues` row, cut at the first `|`.
 *
 * Which fields a target must have, and how many, is for OrderChecks to say.
 */

namespace WHMCS\Module\Server\Jetpack;

use WHMCS\Database\Capsule;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

final class CustomFields
{
    /** The rules' field names read for an order (rules.json "fields"). */
    const ORDER_FIELDS = array('details', 'site_url', 'local_user', 'plan');

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
     * The custom fields of a product (type 'product', relid = tblproducts.id) or of an addon
     * (type 'addon', relid = tbladdons.id), by KEY serviceid (relid).
     *
     * @param string $type  'product' or 'addon'
     * @param int    $relid tblproducts.id or tbladdons.id
     *
     * @return array objects with id and fieldname
     *
     * @throws \PDOException on a database error
     */
    public static function ownerFields($type, $relid)
    {
        $rows = Capsule::table('tblcustomfields')
            ->where('type', (string) $type)
            ->where('relid', (int) $relid)
            ->orderBy('id')
            ->get(array('id', 'fieldname'));
        return Query::rows($rows);
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
        return Text::trim($parts[0]);
    }

    /**
     * The ids of the fields with each of the rules' four field names.
     *
     * @param array $fields what ownerFields() returned
     *
     * @return array 'details', 'site_url', 'local_user', 'plan' => tblcustomfields.id[]
     *
     * @throws ModuleError when rules.json is missing or broken
     */
    public static function byKey(array $fields)
    {
        $matches = array();
        foreach (self::ORDER_FIELDS as $which) {
            $name = Rules::fieldName($which);
            $matches[$which] = array();
            foreach ($fields as $field) {
                if (self::fieldKey($field->fieldname) === $name) {
                    $matches[$which][] = (int) $field->id;
                }
            }
        }
        return $matches;
    }

    /**
     * A target's value of each of these fields (one read, none when there is no field): the
     * lowest value row wins when there are several.
     *
     * @param int   $relid  tblhosting.id, or tblhostingaddons.id for an addon's fields
     * @param array $byKey  what byKey() returned
     *
     * @return array field id => value (uncut)
     *
     * @throws \PDOException on a database error
     */
    public static function values($relid, array $byKey)
    {
        $fieldIds = array();
        foreach (self::ORDER_FIELDS as $which) {
            $fieldIds = array_merge($fieldIds, $byKey[$which]);
        }
        if (count($fieldIds) === 0) {
            return array();
        }
        $rows = Capsule::table('tblcustomfieldsvalues')
            ->whereIn('fieldid', $fieldIds)
            ->where('relid', (int) $relid)
            ->orderBy('id')
            ->get(array('id', 'fieldid', 'value'));
        $values = array();
        foreach (Query::rows($rows) as $row) {
            if (!array_key_exists((int) $row->fieldid, $values)) {
                $values[(int) $row->fieldid] = (string) $row->value;
            }
        }
        return $values;
    }

    /**
     * A field's value as WHMCS hands it to a module: cut at the first `|` ('' when the target
     * has no value row).
     *
     * @param array $values  what values() returned
     * @param int   $fieldId
     *
     * @return string
     */
    public static function valueOf(array $values, $fieldId)
    {
        return self::cut(array_key_exists($fieldId, $values) ? $values[$fieldId] : '');
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
            $detailsKey = Rules::fieldName('details');
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
}
