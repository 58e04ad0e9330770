<?php
/**
 * Loads a copy of the WHMCS modules directory the way WHMCS does, for PartialUploadTest: the
 * `WHMCS` constant, add_hook() and logActivity() as WHMCS has them, then the server module's
 * hooks.php (included from inside a function, as WHMCS's hook loader does), its jetpack.php and
 * the queue addon's main file; then calls what WHMCS would call without a database: the admin
 * header hooks, the daily cron hooks, Create, the Module Settings, the admin tab, the client
 * area, and the addon's config, activation and page. Prints one JSON object on stdout.
 *
 * Usage: php whmcs/tests/Support/load_modules.php MODULES_DIR
 */

error_reporting(E_ALL);
ini_set('display_errors', 'stderr');

define('WHMCS', true);

$GLOBALS['hooks'] = array();
$GLOBALS['activity'] = array();

/**
 * @param string   $hook
 * @param int      $priority
 * @param callable $callback
 */
function add_hook($hook, $priority, $callback)
{
    $GLOBALS['hooks'][$hook][] = $callback;
}

/**
 * @param string $description
 * @param int    $userId
 */
function logActivity($description, $userId = 0)
{
    $GLOBALS['activity'][] = $description;
}

/**
 * @param string $hook
 *
 * @return array what each callback returned
 */
function run_hooks_of($hook)
{
    $out = array();
    foreach (isset($GLOBALS['hooks'][$hook]) ? $GLOBALS['hooks'][$hook] : array() as $callback) {
        $out[] = $callback(array());
    }
    return $out;
}

/**
 * WHMCS includes a module's hooks.php from inside its hook loader.
 *
 * @param string $path
 */
function load_hook_file($path)
{
    include $path;
}

$modules = $argv[1];
load_hook_file($modules . '/servers/jetpack/hooks.php');
$out = array('hooks' => array_keys($GLOBALS['hooks']));
$out['admin_header'] = run_hooks_of('AdminAreaHeaderOutput');
run_hooks_of('DailyCronJob');
require_once $modules . '/servers/jetpack/jetpack.php';
$out['missing'] = jetpack_MissingFiles();
if ($out['missing'] !== null) {
    $out['create'] = jetpack_CreateAccount(array('serviceid' => 1));
    $out['tab'] = jetpack_AdminServicesTabFields(array('serviceid' => 1));
    $out['client_area'] = jetpack_ClientArea(array('serviceid' => 1))['templateVariables']['jetpackMessage'];
}
$options = jetpack_ConfigOptions();
$out['settings'] = array_keys($options);
$out['settings_types'] = array_column(array_values($options), 'Type');
$out['settings_note'] = reset($options)['Description'];
require_once $modules . '/addons/jetpack_queue/jetpack_queue.php';
$out['addon_description'] = jetpack_queue_config()['description'];
if (jetpack_queue_missing() !== null) {
    $out['addon_activate'] = jetpack_queue_activate();
    ob_start();
    jetpack_queue_output(array());
    $out['addon_page'] = ob_get_clean();
}
$out['activity'] = $GLOBALS['activity'];
echo json_encode($out), "\n";
