<?php
/**
 * The module's WHMCS hooks. WHMCS loads this file on every page once the module is in its hook
 * cache (tblconfiguration `ModuleHooks`, built from the modules products use; after uploading
 * the module, re-save a Jetpack product's Module Settings once). One add_hook per hook, each
 * delegating to a class in lib/, which catches everything: a hook never throws into WHMCS.
 *
 * Hooks::acceptOrder / orderPaid / invoicePaid record provision requests for the Pending
 * services of manual-setup Jetpack products that now qualify; Hooks::addonActivation for a
 * Pending Jetpack addon without automatic activation that qualifies; Hooks::serviceDelete records a
 * terminate request for a deleted service whose plan the ledger holds; Email::afterCron sends
 * the client's activation email once per job, after WHMCS's cron.
 */

use WHMCS\Module\Server\Jetpack\Email;
use WHMCS\Module\Server\Jetpack\Hooks;
use WHMCS\Module\Server\Jetpack\Log;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

require_once __DIR__ . '/lib/Escape.php';
require_once __DIR__ . '/lib/Log.php';
require_once __DIR__ . '/lib/ModuleError.php';
require_once __DIR__ . '/lib/Catalogue.php';
require_once __DIR__ . '/lib/Text.php';
require_once __DIR__ . '/lib/Query.php';
require_once __DIR__ . '/lib/Rules.php';
require_once __DIR__ . '/lib/CustomFields.php';
require_once __DIR__ . '/lib/SiteUrl.php';
require_once __DIR__ . '/lib/Target.php';
require_once __DIR__ . '/lib/Order.php';
require_once __DIR__ . '/lib/OrderChecks.php';
require_once __DIR__ . '/lib/Messages.php';
require_once __DIR__ . '/lib/Requests.php';
require_once __DIR__ . '/lib/Hooks.php';
require_once __DIR__ . '/lib/Email.php';

add_hook('AcceptOrder', 1, function (array $vars) {
    Hooks::acceptOrder($vars);
});

add_hook('OrderPaid', 1, function (array $vars) {
    Hooks::orderPaid($vars);
});

add_hook('InvoicePaid', 1, function (array $vars) {
    Hooks::invoicePaid($vars);
});

add_hook('AddonActivation', 1, function (array $vars) {
    Hooks::addonActivation($vars);
});

add_hook('ServiceDelete', 1, function (array $vars) {
    Hooks::serviceDelete($vars);
});

// After every cron run: the client's "Jetpack Activation" email for provision jobs that ended
// done or started waiting on DNS, once per job (lib/Email.php).
add_hook('AfterCronJob', 1, function ($vars) {
    try {
        Email::afterCron();
    } catch (\Throwable $e) {
        Log::activity('JETPACK MODULE: activation emails: ' . $e->getMessage(), 0);
    }
});
