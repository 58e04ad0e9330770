<?php
/**
 * Text the way the worker reads it: its `str::trim`, which trims Unicode white space too
 * (a no-break space pasted with a Site URL is not part of it). Shared by the order checks,
 * the custom fields and the Site URL parser, which must all trim alike.
 */

namespace WHMCS\Module\Server\Jetpack;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

final class Text
{
    /**
     * Trims ASCII and Unicode white space, as the worker's `str::trim` does.
     *
     * @param string $value
     *
     * @return string
     */
    public static function trim($value)
    {
        $trimmed = preg_replace('/^[\s\p{Z}]+|[\s\p{Z}]+$/u', '', (string) $value);
        return $trimmed === null ? trim((string) $value) : $trimmed;
    }
}
