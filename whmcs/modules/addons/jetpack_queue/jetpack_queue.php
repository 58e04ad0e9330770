<?php
/**
 * Jetpack Provisioning Queue: a WHMCS addon module, the admin dashboard of jetpack-worker's
 * queue (Addons → Jetpack Provisioning Queue, addonmodules.php?module=jetpack_queue).
 *
 * It reads the worker's tables (mod_jetpack_jobs, mod_jetpack_requests, mod_jetpack_workers,
 * mod_jetpack_drift, mod_jetpack_watch, mod_jetpack_holds, mod_jetpack_ledger), records retry,
 * Cancel now and Keep the plan requests through the server module's Requests::record and
 * partner-account holds in mod_jetpack_holds; it decides
 * nothing (jetpack-worker applies the requests with its rules and leaves a held account's jobs
 * queued) and creates no table (`jetpack-worker migrate` owns them).
 *
 * Access: WHMCS shows the page only to the admin roles ticked under Setup → Addon Modules →
 * Jetpack Provisioning Queue → Access Control (WHMCS checks it before calling _output).
 * Actions are POSTs carrying WHMCS's CSRF token.
 */

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

// The server module's lib, from the same WHMCS install (modules/servers/jetpack): Escape for
// every value the page prints; Requests for bulk Retry (it retries through ModuleError on a
// lock conflict, Query::rows reads its results) with what it reads (the order's files, as the
// module loads them); Display for the words of who asked. Then this
// addon's own lib. WHMCS loads this file to list the addon modules (Setup → Addon Modules), so
// every file is checked before any is loaded: with one missing (a partial upload), nothing is
// loaded, and the list, the activation and the page say which file is missing and to reinstall
// (jetpack_queue_missing()), instead of a fatal error.
if (!defined('JETPACK_QUEUE_MISSING_FILES')) {
    $jetpackQueueFiles = array();
    $jetpackLibs = array(
        'Escape', 'ModuleError', 'Catalogue', 'Text', 'Query', 'Rules', 'CustomFields', 'SiteUrl',
        'Target', 'Order', 'OrderChecks', 'Messages', 'Requests', 'Display', 'Licences', 'LicenceView',
    );
    foreach ($jetpackLibs as $jetpackLib) {
        $jetpackQueueFiles['modules/servers/jetpack/lib/' . $jetpackLib . '.php'] =
            __DIR__ . '/../../servers/jetpack/lib/' . $jetpackLib . '.php';
    }
    foreach (array('Html', 'Queries', 'Deletions', 'Actions', 'LicenceSection', 'Page') as $jetpackLib) {
        $jetpackQueueFiles['modules/addons/jetpack_queue/lib/' . $jetpackLib . '.php'] =
            __DIR__ . '/lib/' . $jetpackLib . '.php';
    }
    $jetpackQueueMissing = array();
    foreach ($jetpackQueueFiles as $jetpackName => $jetpackPath) {
        if (!is_file($jetpackPath)) {
            $jetpackQueueMissing[] = $jetpackName;
        }
    }
    define('JETPACK_QUEUE_MISSING_FILES', implode(', ', $jetpackQueueMissing));
    if (count($jetpackQueueMissing) === 0) {
        foreach ($jetpackQueueFiles as $jetpackPath) {
            require_once $jetpackPath;
        }
    }
}

use WHMCS\Module\Addon\JetpackQueue\Page;
use WHMCS\Module\Addon\JetpackQueue\Queries;
use WHMCS\Module\Server\Jetpack\Escape;

/**
 * What the admin sees while files are missing; null when the addon and the server module are
 * whole.
 *
 * @return string|null
 */
function jetpack_queue_missing()
{
    if (JETPACK_QUEUE_MISSING_FILES === '') {
        return null;
    }
    return 'JETPACK MODULE: files of the Jetpack modules are missing (' . JETPACK_QUEUE_MISSING_FILES
        . '): reinstall modules/servers/jetpack and modules/addons/jetpack_queue whole from the '
        . 'jetpack-worker release';
}

function jetpack_queue_config()
{
    $missing = jetpack_queue_missing();
    return array(
        'name' => 'Jetpack Provisioning Queue',
        'description' => $missing !== null
            ? htmlspecialchars($missing, ENT_QUOTES, 'UTF-8')
            : 'The queue of jetpack-worker: jobs by state, failures, plans waiting on DNS, deleted services\' plans '
                . 'in their grace period (Cancel now, Keep the plan), workers, Retry, Hold / Resume per partner account, '
                . 'and licences waiting for an admin. Grant access to admin roles under Access Control.',
        'version' => '1.0',
        'author' => 'jetpack-worker',
        'language' => 'english',
        'fields' => array(),
    );
}

function jetpack_queue_activate()
{
    if (jetpack_queue_missing() !== null) {
        return array('status' => 'error', 'description' => htmlspecialchars(jetpack_queue_missing(), ENT_QUOTES, 'UTF-8'));
    }
    try {
        $missing = Queries::missingWorkerTables();
    } catch (\Exception $e) {
        return array('status' => 'error', 'description' => 'Could not check the worker\'s tables: '
            . Escape::htmlOrEmpty($e->getMessage()));
    }
    if (count($missing) > 0) {
        return array(
            'status' => 'error',
            'description' => 'The worker\'s tables are missing (' . implode(', ', $missing) . '): run '
                . '`jetpack-worker migrate` with DATABASE_URL pointing at this WHMCS database, then activate again.',
        );
    }
    return array(
        'status' => 'success',
        'description' => 'Jetpack Provisioning Queue is active. Grant access to admin roles under Setup → Addon Modules.',
    );
}

function jetpack_queue_deactivate()
{
    return array(
        'status' => 'success',
        'description' => 'Jetpack Provisioning Queue is deactivated; the worker\'s tables are left as they are.',
    );
}

/**
 * @param array $vars WHMCS's addon vars (modulelink, version, the settings)
 */
function jetpack_queue_output($vars)
{
    if (jetpack_queue_missing() !== null) {
        echo '<div class="alert alert-danger">' . htmlspecialchars(jetpack_queue_missing(), ENT_QUOTES, 'UTF-8') . '</div>';
        return;
    }
    echo Page::render(
        is_array($vars) ? $vars : array(),
        $_GET,
        $_POST,
        isset($_SERVER['REQUEST_METHOD']) ? $_SERVER['REQUEST_METHOD'] : 'GET'
    );
}
