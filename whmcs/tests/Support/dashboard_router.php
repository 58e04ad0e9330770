<?php
/**
 * A minimal WHMCS admin frame around the queue dashboard, for PHP's built-in server (the
 * browser test, DashboardBrowserTest): `php -S 127.0.0.1:PORT dashboard_router.php` with
 * DATABASE_URL, JETPACK_DASH_DB (the test database) and JETPACK_DASH_TOKEN (the session's CSRF
 * token) in the environment.
 *
 *   /addonmodules.php?module=jetpack_queue&…  the page (GET and POST), as WHMCS would call
 *                                             jetpack_queue_output($vars)
 *   /autopost?jq_action=retry_all             a form that POSTs that action with the token on
 *                                             load (how the browser clicks "Retry all failed")
 *   /addonmodules.php?…&click=SEL[&fill[NAME]=V]  the page, then a script that types V into
 *                                             the fields named NAME and clicks the element SEL
 *                                             (a row's Retry, Hold, Resume) as an admin would
 *
 * Boots like load_orders.php: the WHMCS constant, Laravel's Capsule as WHMCS\Database\Capsule.
 */

use Illuminate\Database\Capsule\Manager;
use JetpackTests\Support\Db;

error_reporting(E_ALL);
ini_set('display_errors', '1');
define('WHMCS', true);

require_once 'Illuminate/Database/autoload.php';
require_once __DIR__ . '/Db.php';

$capsule = new Manager();
$capsule->addConnection(Db::connectionConfig((string) getenv('JETPACK_DASH_DB')));
$capsule->setAsGlobal();
class_alias(Manager::class, 'WHMCS\Database\Capsule');

function generate_token($type = 'form')
{
    $token = (string) getenv('JETPACK_DASH_TOKEN');
    return $type === 'plain' ? $token : '<input type="hidden" name="token" value="' . htmlspecialchars($token) . '">';
}

function logActivity($description, $userId = 0)
{
}

require_once dirname(__DIR__, 2) . '/modules/addons/jetpack_queue/jetpack_queue.php';

$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
header('Content-Type: text/html; charset=utf-8');
if ($path === '/autopost') {
    $action = isset($_GET['jq_action']) ? (string) $_GET['jq_action'] : '';
    echo '<!DOCTYPE html><html><body><form method="post" action="/addonmodules.php?module=jetpack_queue">',
        '<input type="hidden" name="token" value="', htmlspecialchars(generate_token('plain')), '">',
        '<input type="hidden" name="jq_action" value="', htmlspecialchars($action), '"></form>',
        '<script>document.forms[0].submit();</script></body></html>';
    return true;
}
if ($path !== '/addonmodules.php') {
    http_response_code(404);
    echo 'not found';
    return true;
}
echo '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Jetpack Provisioning Queue - WHMCS admin</title>',
    '<style>body{font-family:sans-serif;margin:0}#top{background:#1a4d80;color:#fff;padding:10px 16px;font-size:18px}',
    '#contentarea{padding:12px 16px}</style></head><body>',
    '<div id="top">WHMCS admin · Addons · Jetpack Provisioning Queue</div><div id="contentarea">';
jetpack_queue_output(array('modulelink' => '/addonmodules.php?module=jetpack_queue', 'version' => '1.0'));
if (isset($_GET['click']) && is_string($_GET['click'])) {
    $fill = isset($_GET['fill']) && is_array($_GET['fill']) ? $_GET['fill'] : array();
    echo '<script>(function(){var fill=', json_encode((object) $fill, JSON_HEX_TAG), ';',
        'for(var k in fill){document.querySelectorAll("[name=\\""+k+"\\"]").forEach(function(e){e.value=fill[k];});}',
        'document.querySelector(', json_encode($_GET['click'], JSON_HEX_TAG), ').click();})();</script>';
}
echo '</div></body></html>';
return true;
