<?php
/**
 * WHMCS's two logs, when WHMCS's functions are there (outside WHMCS, e.g. in the worker's
 * contract scripts, they are not, and nothing is written): the activity log (logActivity),
 * which every admin reads, and the module log (logModuleCall), which WHMCS writes only while
 * Utilities → Logs → Module Log → Module Debug Mode is on (tblconfiguration ModuleDebugMode),
 * so it is called whatever the setting: WHMCS decides.
 */

namespace WHMCS\Module\Server\Jetpack;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

final class Log
{
    /** tblmodulelog.module of what the module writes (the module's name). */
    const MODULE = 'jetpack';

    /**
     * WHMCS's logActivity().
     *
     * @param string $line     starts with JETPACK MODULE and names the service or addon
     * @param int    $clientId tblclients.id (tblhosting.userid), 0 when unknown
     */
    public static function activity($line, $clientId)
    {
        if (function_exists('logActivity')) {
            logActivity($line, (int) $clientId);
        }
    }

    /**
     * WHMCS's logModuleCall('jetpack', …), for Module Debug Mode. WHMCS replaces every
     * occurrence of each of $secrets in what it writes with as many `*`; empty ones are left
     * out here. Never throws: the log is written through the database, which may be what just
     * failed, and the caller's answer to WHMCS must not be lost to it.
     *
     * @param string       $action    what WHMCS called, e.g. CreateAccount
     * @param array|string $request   what the module was asked
     * @param array|string $response  what it got back
     * @param array|string $processed what it made of it
     * @param string[]     $secrets   the partner client id and secret (WHMCS's $replaceVars)
     */
    public static function moduleCall($action, $request, $response, $processed, array $secrets)
    {
        if (!function_exists('logModuleCall')) {
            return;
        }
        $replace = array();
        foreach ($secrets as $secret) {
            if (is_string($secret) && $secret !== '' && !in_array($secret, $replace, true)) {
                $replace[] = $secret;
            }
        }
        try {
            logModuleCall(self::MODULE, $action, $request, $response, $processed, $replace);
        } catch (\Throwable $e) {
            // The module log is a debugging aid; the caller reports the error itself.
        }
    }
}
