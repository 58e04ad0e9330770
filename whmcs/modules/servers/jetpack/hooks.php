<?php
/**
 * WHMCS hooks of the Jetpack module (WHMCS loads a server module's hooks.php once a product
 * uses the module). A hook never throws into WHMCS: each delegates to a lib/ class that
 * catches everything and writes a `JETPACK MODULE:` activity-log line instead.
 */

use WHMCS\Module\Server\Jetpack\Email;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

require_once __DIR__ . '/lib/ModuleError.php';
require_once __DIR__ . '/lib/Order.php';
require_once __DIR__ . '/lib/Messages.php';
require_once __DIR__ . '/lib/Requests.php';
require_once __DIR__ . '/lib/Email.php';

// After every cron run: the client's "Jetpack Activation" email for provision jobs that ended
// done or started waiting on DNS, once per job (lib/Email.php).
add_hook('AfterCronJob', 1, function ($vars) {
    try {
        Email::afterCron();
    } catch (\Throwable $e) {
        if (function_exists('logActivity')) {
            logActivity('JETPACK MODULE: activation emails: ' . $e->getMessage(), 0);
        }
    }
});
