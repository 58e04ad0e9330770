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
 * the client's activation email once per job, after WHMCS's cron; Outcome::afterServiceSave and
 * afterAddonSave put the worker's latest outcome back over a stale details text after a save.
 */

use WHMCS\Module\Server\Jetpack\Email;
use WHMCS\Module\Server\Jetpack\Hooks;
use WHMCS\Module\Server\Jetpack\Log;
use WHMCS\Module\Server\Jetpack\Outcome;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

// WHMCS loads this file on every page (client area, admin, cron): a lib file missing after a
// partial upload must not become a fatal error there. Every file is checked before any is
// loaded; when one is missing, no hook of the module is registered and the admin area shows
// one message (on every admin page, at its top), with one activity-log line a day from the
// daily cron, until the directory is uploaded whole again.
$jetpackLibs = array(
    'Escape', 'Log', 'ModuleError', 'Catalogue', 'Text', 'Query', 'Rules', 'CustomFields', 'SiteUrl', 'Target',
    'Order', 'OrderChecks', 'Messages', 'Requests', 'Licences', 'Hooks', 'Email', 'Outcome',
);
$jetpackMissing = array();
foreach ($jetpackLibs as $jetpackLib) {
    if (!is_file(__DIR__ . '/lib/' . $jetpackLib . '.php')) {
        $jetpackMissing[] = 'lib/' . $jetpackLib . '.php';
    }
}
if (count($jetpackMissing) > 0) {
    $jetpackMessage = 'JETPACK MODULE: the files of modules/servers/jetpack are incomplete (missing: '
        . implode(', ', $jetpackMissing) . '), so its hooks are off: reinstall the whole directory from '
        . 'the jetpack-worker release';
    add_hook('AdminAreaHeaderOutput', 1, function () use ($jetpackMessage) {
        return '<div class="alert alert-danger">' . htmlspecialchars($jetpackMessage, ENT_QUOTES, 'UTF-8') . '</div>';
    });
    add_hook('DailyCronJob', 1, function () use ($jetpackMessage) {
        if (function_exists('logActivity')) {
            logActivity($jetpackMessage, 0);
        }
    });
    return;
}
foreach ($jetpackLibs as $jetpackLib) {
    require_once __DIR__ . '/lib/' . $jetpackLib . '.php';
}

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

// After a save of the service (or addon) page, whose form writes every custom field back: the
// worker's latest outcome is put back over a stale details text (lib/Outcome.php). An addon's
// save fires AddonEdit, or the hook of the status it changed to instead.
foreach (array('ServiceEdit', 'AdminServiceEdit') as $jetpackHook) {
    add_hook($jetpackHook, 1, function (array $vars) use ($jetpackHook) {
        Outcome::afterServiceSave($vars, $jetpackHook);
    });
}
foreach (Outcome::ADDON_SAVE_HOOKS as $jetpackHook) {
    add_hook($jetpackHook, 1, function (array $vars) use ($jetpackHook) {
        Outcome::afterAddonSave($vars, $jetpackHook);
    });
}

// After every cron run: the client's "Jetpack Activation" email for provision jobs that ended
// done or started waiting on DNS, once per job (lib/Email.php).
add_hook('AfterCronJob', 1, function ($vars) {
    try {
        Email::afterCron();
    } catch (\Throwable $e) {
        Log::activity('JETPACK MODULE: activation emails: ' . $e->getMessage(), 0);
    }
});
