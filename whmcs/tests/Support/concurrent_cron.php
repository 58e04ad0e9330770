<?php
/**
 * One WHMCS cron run, in a process of its own, for EmailTest: boots the module and its
 * hooks.php against a test database as tests/bootstrap.php does, waits at the same barrier as
 * concurrent_call.php (prints `ready`, reads a Unix start time from stdin, sleeps until then),
 * then runs the AfterCronJob hooks, as two WHMCS servers running cron at the same instant do.
 *
 * Usage: php concurrent_cron.php DATABASE
 * Needs DATABASE_URL like the suite. After `ready`, prints one JSON line: sends (the
 * SendEmail calls made: job's service id and merge fields), late, activity.
 */

use Illuminate\Database\Capsule\Manager;
use JetpackTests\Support\Db;

error_reporting(E_ALL);
ini_set('display_errors', 'stderr');

if ($argc !== 2) {
    fwrite(STDERR, "usage: php concurrent_cron.php DATABASE\n");
    exit(2);
}
$database = $argv[1];

define('WHMCS', true);
define('JETPACK_REPO_ROOT', dirname(__DIR__, 3));
define('JETPACK_MODULE_DIR', dirname(__DIR__, 2) . '/modules/servers/jetpack');

require_once 'Illuminate/Database/autoload.php';
require_once __DIR__ . '/Db.php';

$capsule = new Manager();
$capsule->addConnection(Db::connectionConfig($database));
$capsule->setAsGlobal();
class_alias(Manager::class, 'WHMCS\Database\Capsule');

$GLOBALS['jetpack_test_activity'] = array();
$GLOBALS['jetpack_test_localapi'] = array();

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

require_once __DIR__ . '/whmcs_api.php';
require_once JETPACK_MODULE_DIR . '/jetpack.php';
require_once JETPACK_MODULE_DIR . '/hooks.php';

// Connect before the barrier, so that the runs themselves start together.
$capsule->getConnection()->select('SELECT 1');

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

run_test_hooks('AfterCronJob');

$sends = array();
foreach ($GLOBALS['jetpack_test_localapi'] as $call) {
    if ($call['command'] === 'SendEmail') {
        $sends[] = array('id' => $call['values']['id'], 'customvars' => $call['customvars']);
    }
}
echo json_encode(array('sends' => $sends, 'late' => $late, 'activity' => $GLOBALS['jetpack_test_activity'])), "\n";
