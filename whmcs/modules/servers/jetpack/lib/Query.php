<?php
/**
 * Query results the same on every WHMCS: its query builder returns a Collection or an array,
 * depending on the Laravel version WHMCS ships, and the module and the dashboard read both
 * as a plain array.
 */

namespace WHMCS\Module\Server\Jetpack;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

final class Query
{
    /**
     * Query results as a plain array.
     *
     * @param mixed $rows a Collection, an array or another Traversable
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
