<?php
/**
 * One WHMCS request, in a process of its own, for ConcurrentCreateTest: boots the module
 * against a test database as tests/bootstrap.php does (the `WHMCS` constant, Laravel's Capsule
 * as WHMCS\Database\Capsule, a logActivity() stand-in), sets the session's isolation level,
 * builds the module parameters, then waits at a barrier and calls the module function.
 *
 * The barrier: once ready, the process prints `ready` and reads one line from stdin, a Unix
 * time (float seconds) a little in the future that the parent sends to every process once all
 * of them are ready; it sleeps until then, so every process calls the module at the same
 * instant.
 *
 * Usage: php concurrent_call.php DATABASE FUNCTION SERVICE_ID ISOLATION
 *   FUNCTION  CreateAccount or TerminateAccount
 *   ISOLATION "REPEATABLE READ", "READ COMMITTED", "SERIALIZABLE" or "READ UNCOMMITTED"
 * Needs DATABASE_URL like the suite. After `ready`, prints one JSON line: result (what the
 * module returned), late (true when the start time had passed already), started_at (when the
 * call started, Unix time) and activity (the lines logged through logActivity()).
 */

use Illuminate\Database\Capsule\Manager;
use JetpackTests\Support\Db;
use JetpackTests\Support\Whmcs;

error_reporting(E_ALL);
ini_set('display_errors', 'stderr');

if ($argc !== 5) {
    fwrite(STDERR, "usage: php concurrent_call.php DATABASE FUNCTION SERVICE_ID ISOLATION\n");
    exit(2);
}
list(, $database, $function, $serviceId, $isolation) = $argv;
if (!in_array($function, array('CreateAccount', 'TerminateAccount'), true)
    || !in_array($isolation, array('REPEATABLE READ', 'READ COMMITTED', 'SERIALIZABLE', 'READ UNCOMMITTED'), true)
) {
    fwrite(STDERR, "bad FUNCTION or ISOLATION\n");
    exit(2);
}

define('WHMCS', true);
define('JETPACK_REPO_ROOT', dirname(__DIR__, 3));
define('JETPACK_MODULE_DIR', dirname(__DIR__, 2) . '/modules/servers/jetpack');

require_once 'Illuminate/Database/autoload.php';
require_once __DIR__ . '/Db.php';
require_once __DIR__ . '/Whmcs.php';

$capsule = new Manager();
$capsule->addConnection(Db::connectionConfig($database));
$capsule->setAsGlobal();
class_alias(Manager::class, 'WHMCS\Database\Capsule');

$GLOBALS['jetpack_test_activity'] = array();

/**
 * Stand-in for WHMCS's logActivity(): records the call.
 *
 * @param string $description
 * @param int    $userId
 */
function logActivity($description, $userId = 0)
{
    $GLOBALS['jetpack_test_activity'][] = $description;
}

require_once JETPACK_MODULE_DIR . '/jetpack.php';

// Connect, set the isolation level and read the parameters before the barrier, so that the
// module calls themselves start together.
$capsule->getConnection()->statement('SET SESSION TRANSACTION ISOLATION LEVEL ' . $isolation);
$params = Whmcs::params((int) $serviceId);

echo "ready\n";
fflush(STDOUT);
$startAt = fgets(STDIN);
if ($startAt === false || !is_numeric(trim($startAt))) {
    fwrite(STDERR, "no start time on stdin\n");
    exit(2);
}
$wait = (float) trim($startAt) - microtime(true);
$late = $wait <= 0;
if (!$late) {
    usleep((int) round($wait * 1000000));
}
$startedAt = microtime(true);

try {
    $result = call_user_func('jetpack_' . $function, $params);
} catch (\Throwable $e) {
    $result = 'uncaught ' . get_class($e) . ': ' . $e->getMessage();
}

echo json_encode(array(
    'result' => $result,
    'late' => $late,
    'started_at' => $startedAt,
    'activity' => $GLOBALS['jetpack_test_activity'],
)), "\n";
