<?php
/**
 * Runs the module's order checks (OrderChecks::check, whose Site URL verdicts are SiteUrl's)
 * on services of an existing database and prints, as one JSON object, what it made of each:
 * {"<service id>": {"accepted": true, "site": …, "user": …, "plan": …}} or {"<service id>": {"accepted": false, "message": <as WHMCS shows it, HTML>,
 * "text": <the same, HTML entities decoded>}}. For the worker's contract test
 * (tests/worker/bad_input.rs), which seeds the database and compares with the worker.
 *
 * Usage: DATABASE_URL=mysql://… [JETPACK_ORDER_ACTION=terminate|change] php whmcs/tests/Support/load_orders.php DATABASE TARGET…
 * (the order is checked for a provision unless JETPACK_ORDER_ACTION says otherwise). A TARGET is
 * a service id, or SERVICE_ID:ADDON_ID for a product addon (the parent WHMCS passes, then
 * tblhostingaddons.id); the output is keyed by the TARGET as given.
 *
 * It boots the module as tests/bootstrap.php does: the `WHMCS` constant, Laravel's Capsule
 * (Debian's php-illuminate-database) as `WHMCS\Database\Capsule`, connected like WHMCS
 * (Support/Db.php's settings: utf8, sql_mode '').
 */

use Illuminate\Database\Capsule\Manager;
use JetpackTests\Support\Db;
use WHMCS\Module\Server\Jetpack\ModuleError;
use WHMCS\Module\Server\Jetpack\OrderChecks;

error_reporting(E_ALL);
ini_set('display_errors', 'stderr');

define('WHMCS', true);

require_once 'Illuminate/Database/autoload.php';
require_once __DIR__ . '/Db.php';

$moduleDir = dirname(__DIR__, 2) . '/modules/servers/jetpack';
require_once $moduleDir . '/lib/Escape.php';
require_once $moduleDir . '/lib/ModuleError.php';
require_once $moduleDir . '/lib/Catalogue.php';
require_once $moduleDir . '/lib/Text.php';
require_once $moduleDir . '/lib/Query.php';
require_once $moduleDir . '/lib/Rules.php';
require_once $moduleDir . '/lib/CustomFields.php';
require_once $moduleDir . '/lib/SiteUrl.php';
require_once $moduleDir . '/lib/Target.php';
require_once $moduleDir . '/lib/Order.php';
require_once $moduleDir . '/lib/OrderChecks.php';

if ($argc < 2) {
    fwrite(STDERR, "usage: php load_orders.php DATABASE SERVICE_ID...\n");
    exit(2);
}

$capsule = new Manager();
$capsule->addConnection(Db::connectionConfig($argv[1]));
$capsule->setAsGlobal();
class_alias(Manager::class, 'WHMCS\Database\Capsule');

$action = getenv('JETPACK_ORDER_ACTION') ?: 'provision';
$out = array();
foreach (array_slice($argv, 2) as $serviceId) {
    $ids = explode(':', $serviceId, 2);
    try {
        $order = OrderChecks::check((int) $ids[0], $action, isset($ids[1]) ? (int) $ids[1] : 0);
        $out[$serviceId] = array(
            'accepted' => true,
            'site' => $order->siteUrl,
            'user' => $order->localUser,
            'plan' => $order->plan,
        );
    } catch (ModuleError $e) {
        $out[$serviceId] = array(
            'accepted' => false,
            'message' => $e->getMessage(),
            'text' => html_entity_decode($e->getMessage(), ENT_QUOTES | ENT_HTML5, 'UTF-8'),
        );
    }
}
$json = json_encode((object) $out, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES);
if ($json === false) {
    fwrite(STDERR, 'json_encode: ' . json_last_error_msg() . "\n");
    exit(1);
}
echo $json, "\n";
