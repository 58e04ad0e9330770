<?php
/**
 * Runs one of the module's hooks (lib/Hooks.php) on an existing database, once per id, as
 * WHMCS would call it: `AcceptOrder` with {orderid}, `OrderPaid` with {orderId}, `InvoicePaid` with {invoiceid},
 * `AddonActivation` with {id} (a tblhostingaddons.id). For the
 * worker's contract test (tests/worker/adoption.rs), which seeds the database, runs the hooks
 * here, and compares what they recorded with what the worker's adoption scan adopts.
 *
 * Usage: DATABASE_URL=mysql://… php whmcs/tests/Support/run_hooks.php DATABASE HOOK ID…
 *
 * It boots the module as tests/bootstrap.php does (the `WHMCS` constant, Laravel's Capsule as
 * `WHMCS\Database\Capsule`, connected like WHMCS). Prints the activity lines it would have
 * logged, one per line, on stdout.
 */

use Illuminate\Database\Capsule\Manager;
use JetpackTests\Support\Db;
use WHMCS\Module\Server\Jetpack\Hooks;

error_reporting(E_ALL);
ini_set('display_errors', 'stderr');

define('WHMCS', true);

require_once 'Illuminate/Database/autoload.php';
require_once __DIR__ . '/Db.php';

$moduleDir = dirname(__DIR__, 2) . '/modules/servers/jetpack';
$libs = array(
    'Escape', 'Log', 'ModuleError', 'Catalogue', 'Text', 'Query', 'Rules', 'CustomFields', 'SiteUrl', 'Target', 'Order',
    'OrderChecks', 'Messages', 'Requests', 'Hooks',
);
foreach ($libs as $lib) {
    require_once $moduleDir . '/lib/' . $lib . '.php';
}

/**
 * WHMCS's logActivity(): printed, so the caller sees what the hook would have logged.
 *
 * @param string $description
 * @param int    $userId
 */
function logActivity($description, $userId = 0)
{
    echo $description, "\n";
}

if ($argc < 3) {
    fwrite(STDERR, "usage: php run_hooks.php DATABASE AcceptOrder|OrderPaid|InvoicePaid|AddonActivation ID...\n");
    exit(2);
}

$capsule = new Manager();
$capsule->addConnection(Db::connectionConfig($argv[1]));
$capsule->setAsGlobal();
class_alias(Manager::class, 'WHMCS\Database\Capsule');

foreach (array_slice($argv, 3) as $id) {
    switch ($argv[2]) {
        case 'AcceptOrder':
            Hooks::acceptOrder(array('orderid' => (int) $id));
            break;
        case 'OrderPaid':
            Hooks::orderPaid(array('orderId' => (int) $id, 'userId' => 0, 'invoiceId' => 0));
            break;
        case 'InvoicePaid':
            Hooks::invoicePaid(array('invoiceid' => (int) $id));
            break;
        case 'AddonActivation':
            // {id, userid, serviceid, addonid}: the hook reads only id (tblhostingaddons.id).
            Hooks::addonActivation(array('id' => (int) $id, 'userid' => 0, 'serviceid' => 0, 'addonid' => 0));
            break;
        default:
            fwrite(STDERR, "unknown hook {$argv[2]}\n");
            exit(2);
    }
}
