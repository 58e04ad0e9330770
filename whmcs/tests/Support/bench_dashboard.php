<?php
/**
 * Times the queue dashboard's queries at 100,000 jobs (run by hand; nothing is asserted):
 *   DATABASE_URL=mysql://root@127.0.0.1:3306/test php whmcs/tests/Support/bench_dashboard.php [JOBS]
 * Makes a scratch database (fixture + migrations + DashboardSeed::bigQueue), renders the page
 * (first page, a state filter, a search, a job's detail) with Capsule's query log, prints each
 * render's total query time (ms, as PDO measured it) and the slowest queries; drops the database.
 */

use Illuminate\Database\Capsule\Manager;
use JetpackTests\Support\DashboardSeed;
use JetpackTests\Support\Db;
use WHMCS\Module\Addon\JetpackQueue\Page;

error_reporting(E_ALL);
define('WHMCS', true);
require_once 'Illuminate/Database/autoload.php';
require_once __DIR__ . '/Db.php';
require_once __DIR__ . '/DashboardSeed.php';
function generate_token($type = 'form') { return 'bench'; }
function logActivity($d, $u = 0) {}

$n = isset($argv[1]) ? (int) $argv[1] : 100000;
$root = dirname(__DIR__, 3);
$db = 'jp_bench_' . bin2hex(random_bytes(4));
Db::server()->exec("CREATE DATABASE `$db`");
try {
    $capsule = new Manager();
    $capsule->addConnection(Db::connectionConfig($db));
    $capsule->setAsGlobal();
    class_alias(Manager::class, 'WHMCS\Database\Capsule');
    require_once $root . '/whmcs/modules/addons/jetpack_queue/jetpack_queue.php';
    $pdo = $capsule->getConnection()->getPdo();
    Db::runFile($pdo, $root . '/tests/fixtures/whmcs-8.sql');
    $migrations = glob($root . '/migrations/*.sql');
    sort($migrations);
    foreach ($migrations as $m) {
        Db::runFile($pdo, $m);
    }
    $seed = new DashboardSeed($pdo);
    $seed->workersTable();
    $seed->worker('bench', 1);
    $pdo->exec("INSERT INTO tblproducts (type, gid, name, autosetup, servertype) VALUES ('other', 1, 'Jetpack', 'order', 'jetpack')");
    $product = (int) $pdo->lastInsertId();
    $pdo->exec("INSERT INTO tblcustomfields (type, relid, fieldname, fieldtype, adminonly) VALUES ('product', $product, 'Site URL', 'text', '')");
    $field = (int) $pdo->lastInsertId();
    $t = microtime(true);
    $seed->bigQueue($product, $field, $n);
    printf("seeded %d jobs in %.1f s\n", $n, microtime(true) - $t);
    $failed = (int) $pdo->query("SELECT MAX(id) FROM mod_jetpack_jobs WHERE state = 'failed'")->fetchColumn();
    $conn = $capsule->getConnection();
    $cases = array(
        'first page' => array(),
        'state=failed' => array('state' => 'failed'),
        'search site' => array('q' => 'site4242.example', 'in' => 'site'),
        'page 1000 ids back' => array('before' => (string) ($n - 1000)),
        'job detail' => array('job' => (string) $failed),
    );
    foreach ($cases as $name => $get) {
        Page::render(array('modulelink' => 'addonmodules.php?module=jetpack_queue'), $get, array(), 'GET'); // warm
        $best = null;
        $slow = array();
        for ($i = 0; $i < 5; $i++) {
            $conn->flushQueryLog();
            $conn->enableQueryLog();
            Page::render(array('modulelink' => 'addonmodules.php?module=jetpack_queue'), $get, array(), 'GET');
            $log = $conn->getQueryLog();
            $conn->disableQueryLog();
            $total = array_sum(array_column($log, 'time'));
            if ($best === null || $total < $best) {
                $best = $total;
                $slow = $log;
            }
        }
        usort($slow, function ($a, $b) { return $b['time'] <=> $a['time']; });
        printf("%-20s %6.2f ms total over %d queries (best of 5); slowest: %.2f ms %s\n", $name, $best, count($slow),
            $slow[0]['time'], preg_replace('/\s+/', ' ', substr($slow[0]['query'], 0, 90)));
    }
} finally {
    Db::server()->exec("DROP DATABASE IF EXISTS `$db`");
}
