<?php
/**
 * Loads the real module file the way WHMCS does: the `WHMCS` constant is defined,
 * `WHMCS\Database\Capsule` is Laravel's Capsule manager (WHMCS's class is that manager under
 * another name), and the WHMCS global functions the module calls, logActivity(), logModuleCall()
 * and (in hooks.php) add_hook(), have stand-ins that record their calls. Each test connects the Capsule to a database of its own
 * (see Support/DatabaseTestCase.php).
 */

use Illuminate\Database\Capsule\Manager;

error_reporting(E_ALL);
ini_set('display_errors', '1');

define('WHMCS', true);
define('JETPACK_REPO_ROOT', dirname(__DIR__, 2));
define('JETPACK_MODULE_DIR', dirname(__DIR__) . '/modules/servers/jetpack');

// Debian's php-illuminate-database and php-parser (a phpunit dependency) install autoloaders
// under /usr/share/php, which is on the default include_path.
require_once 'Illuminate/Database/autoload.php';
require_once 'PhpParser/autoload.php';

foreach (array('Db', 'DatabaseTestCase', 'HookCalls', 'Whmcs', 'Processes', 'DashboardSeed', 'Templates', 'LicenceSeed') as $support) {
    require_once __DIR__ . '/Support/' . $support . '.php';
}

// An unconnected Capsule until a test connects one to its own database (tests that need no
// database run without DATABASE_URL).
$capsule = new Manager();
$capsule->setAsGlobal();
class_alias(Manager::class, 'WHMCS\Database\Capsule');

/**
 * Stand-in for WHMCS's logActivity(): records the call (the tests read it back).
 *
 * @param string $description
 * @param int    $userId
 */
function logActivity($description, $userId = 0)
{
    $GLOBALS['jetpack_test_activity'][] = array('description' => $description, 'userid' => $userId);
}

/**
 * Stand-in for WHMCS's logModuleCall(): records the call as the module made it (the tests read
 * it back). WHMCS writes it to tblmodulelog only in Module Debug Mode, with each of
 * $replaceVars masked; the record keeps the arguments unmasked, so a test sees what the module
 * itself put in.
 *
 * @param string $module
 * @param string $action
 * @param mixed  $requestString
 * @param mixed  $responseData
 * @param mixed  $processedData
 * @param array  $replaceVars
 */
function logModuleCall($module, $action, $requestString, $responseData, $processedData = '', $replaceVars = array())
{
    $GLOBALS['jetpack_test_module_log'][] = array(
        'module' => $module,
        'action' => $action,
        'request' => $requestString,
        'response' => $responseData,
        'processed' => $processedData,
        'replaceVars' => $replaceVars,
    );
}

$GLOBALS['jetpack_test_module_log'] = array();

/**
 * Stand-in for WHMCS's add_hook(): records the callback (HooksTest runs them).
 *
 * @param string   $hook
 * @param int      $priority
 * @param callable $callback
 */
function add_hook($hook, $priority, $callback)
{
    $GLOBALS['jetpack_test_hooks'][$hook][] = array(
        'priority' => $priority,
        'callback' => $callback,
        'function' => $callback,
    );
}

$GLOBALS['jetpack_test_hooks'] = array();

require_once JETPACK_MODULE_DIR . '/jetpack.php';

// localAPI() and run_test_hooks() stand-ins for the hooks (EmailTest); add_hook() is above.
require_once __DIR__ . '/Support/whmcs_api.php';
require_once JETPACK_MODULE_DIR . '/hooks.php';

// The queue dashboard (addon module) and WHMCS's admin CSRF token function it uses: the
// stand-in returns the test session's token (DashboardTest sets and changes it).
$GLOBALS['jetpack_test_csrf'] = 'test-csrf-token';

/**
 * Stand-in for WHMCS's generate_token(): 'plain' is the session's token, 'form' its hidden
 * input, 'link' a query string fragment.
 *
 * @param string $type
 *
 * @return string
 */
function generate_token($type = 'form')
{
    $token = (string) $GLOBALS['jetpack_test_csrf'];
    if ($type === 'plain') {
        return $token;
    }
    if ($type === 'link') {
        return '&token=' . $token;
    }
    return '<input type="hidden" name="token" value="' . htmlspecialchars($token) . '" />';
}

require_once dirname(__DIR__) . '/modules/addons/jetpack_queue/jetpack_queue.php';
