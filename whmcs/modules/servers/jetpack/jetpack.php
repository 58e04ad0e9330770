<?php
/**
 * Jetpack by Automattic: WHMCS server module (module name `jetpack`).
 *
 * A drop-in replacement for the original Jetpack partner module that never calls the partner
 * API itself. Create and Terminate check what jetpack-worker will need, record the request in
 * `mod_jetpack_requests` (a plain INSERT: no locking read, so a checkout never fails on a
 * deadlock) and return at once. The worker (a separate service reading the WHMCS database)
 * applies the requests in order, latest intent winning, provisions or cancels the plan with
 * retries and writes the outcome back into WHMCS: the service's
 * `jetpack_provisioning_details`, its status, the activity log and, for failures, the Module
 * Queue. The module keeps no copy of the worker's rules.
 *
 * Products made for the original module work unchanged: configoption1 is the partner client
 * id, configoption2 the client secret, and the custom fields are `Site URL`, `Local User`,
 * `Plan` and `jetpack_provisioning_details` (each may be written `key|Friendly Name`).
 *
 * Install: copy this directory to `modules/servers/jetpack` of the WHMCS install and run
 * `jetpack-worker migrate` once against the WHMCS database (it creates the `mod_jetpack_*`
 * tables).
 * Runs on PHP 7.2 to 8.3.
 */

use WHMCS\Module\Server\Jetpack\Display;
use WHMCS\Module\Server\Jetpack\Email;
use WHMCS\Module\Server\Jetpack\Messages;
use WHMCS\Module\Server\Jetpack\ModuleError;
use WHMCS\Module\Server\Jetpack\Order;
use WHMCS\Module\Server\Jetpack\Requests;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

require_once __DIR__ . '/lib/ModuleError.php';
require_once __DIR__ . '/lib/Order.php';
require_once __DIR__ . '/lib/Messages.php';
require_once __DIR__ . '/lib/Requests.php';
require_once __DIR__ . '/lib/Display.php';
require_once __DIR__ . '/lib/Email.php';

/**
 * @return array
 */
function jetpack_MetaData()
{
    return array(
        'DisplayName' => 'Jetpack by Automattic',
        'Description' => 'Provisions Jetpack plans with your Jetpack hosting partner account, '
            . 'through the jetpack-worker service',
        'APIVersion' => '1.1',
        'RequiresServer' => false,
    );
}

/**
 * Product → Module Settings. The order matters: the first is configoption1 (the partner
 * client id), the second configoption2 (the client secret), as in the original module;
 * configoption5 switches the activation email (lib/Email.php) on or off.
 *
 * @return array
 */
function jetpack_ConfigOptions()
{
    return array(
        'Jetpack Partner Client ID' => array(
            'Type' => 'text',
            'Size' => '60',
            'Description' => 'From your Jetpack hosting partner account',
        ),
        'Jetpack Partner Client Secret' => array(
            'Type' => 'password',
            'Size' => '60',
            'Description' => 'From your Jetpack hosting partner account',
        ),
        // configoption3 is reserved for the plan (products sold without a Plan field).
        'Plan' => array(
            'Type' => 'text',
            'Size' => '20',
            'Description' => 'Reserved; leave empty (the Plan custom field names the plan)',
        ),
        // configoption4. Worded so that '' (every product saved before it existed) cancels.
        'Keep the Jetpack plan when a service is deleted' => array(
            'Type' => 'yesno',
            'Description' => 'Leave unticked to cancel the plan at the partner when an admin deletes the service',
        ),
        // configoption5: '' (products saved before this setting) and 'send' send the email.
        'Send the Jetpack activation email' => array(
            'Type' => 'dropdown',
            'Options' => array(
                'send' => 'Send "' . Email::TEMPLATE . '" to the client once the plan is provisioned (or waits on DNS)',
                Email::SETTING_OFF => 'Do not send it',
            ),
            'Default' => 'send',
            'Description' => 'From WHMCS\'s cron; the template is created when missing',
        ),
    );
}

/**
 * Requests the provisioning of the plan. 'success' means recorded for jetpack-worker (WHMCS
 * then marks the service Active); jetpack_provisioning_details says "queued" until the worker
 * writes the activation link. Also what WHMCS's Module Queue "Retry" of a Create calls.
 *
 * @param array $params WHMCS module parameters
 *
 * @return string 'success' or a `JETPACK MODULE: …` error
 */
function jetpack_CreateAccount(array $params)
{
    return jetpack_request($params, Requests::PROVISION);
}

/**
 * Requests the cancellation of the plan (the worker decides what becomes of a provision not
 * yet done). Also what WHMCS's Module Queue "Retry" of a Terminate calls.
 *
 * @param array $params WHMCS module parameters
 *
 * @return string 'success' or a `JETPACK MODULE: …` error
 */
function jetpack_TerminateAccount(array $params)
{
    return jetpack_request($params, Requests::TERMINATE);
}

/**
 * @return array button label => function suffix
 */
function jetpack_AdminCustomButtonArray()
{
    return array('Retry Jetpack Job' => 'Requeue');
}

/**
 * The admin button: requests a retry of the service's failed job. jetpack-worker decides
 * whether there is one (it then goes back to queued, due now, with a fresh attempt budget, as
 * `jetpack-worker requeue SERVICE_ID` does) and says what it did on the service's tab.
 *
 * @param array $params WHMCS module parameters
 *
 * @return string 'success' or a `JETPACK MODULE: …` error
 */
function jetpack_Requeue(array $params)
{
    $serviceId = jetpack_service_id($params);
    try {
        // A retry re-runs the latest job, so its order is checked for that job's action.
        $latest = Requests::latestJob($serviceId);
        $order = Order::load($serviceId, $latest !== null ? $latest->action : Requests::PROVISION);
        $requestId = Requests::record($serviceId, Requests::RETRY, Requests::BY_ADMIN);
    } catch (ModuleError $e) {
        return $e->getMessage();
    } catch (\PDOException $e) {
        return ModuleError::fromDatabase($e, $serviceId)->getMessage();
    }
    jetpack_log_activity(Messages::requested($serviceId, Requests::RETRY, $requestId), $order->clientId);
    return 'success';
}

/**
 * Admin area → the service's tab: the latest job's state, attempts, next attempt, last error;
 * the requests jetpack-worker has not applied yet and what it made of the last one; the plans
 * the ledger holds for the service; first of all, a warning when that work waits and no
 * jetpack-worker has been seen for two minutes (nothing extra when the worker's heartbeat
 * table is not there yet).
 *
 * @param array $params WHMCS module parameters
 *
 * @return array label => HTML
 */
function jetpack_AdminServicesTabFields(array $params)
{
    $serviceId = jetpack_service_id($params);
    try {
        $job = Requests::latestJob($serviceId);
        $pending = Requests::pending($serviceId);
        $fields = Display::adminFields(
            $job,
            $pending,
            Requests::latestApplied($serviceId),
            Requests::ledger($serviceId),
            Requests::currentSiteUrl($serviceId)
        );
        if (!Display::waitsOnWorker($job, $pending)) {
            return $fields;
        }
        return Display::withWorkerWarning($fields, Requests::workerRunning());
    } catch (\PDOException $e) {
        return array('Jetpack Job' => ModuleError::fromDatabase($e, $serviceId)->getMessage());
    }
}

/**
 * Client area → the service's overview: the activation link once there is one, else a
 * waiting message (templates/clientarea.tpl).
 *
 * @param array $params WHMCS module parameters
 *
 * @return array
 */
function jetpack_ClientArea(array $params)
{
    try {
        $details = Order::currentDetails(jetpack_service_id($params));
    } catch (\PDOException $e) {
        $details = '';
    }
    return array(
        'tabOverviewModuleOutputTemplate' => 'templates/clientarea.tpl',
        'templateVariables' => Display::clientVars($details),
    );
}

/**
 * Create/Terminate: check the order, write the "queued" text into this service's details,
 * then record the request, then tell the activity log. Details first: once the request is
 * there the worker may finish the job at any moment, and its outcome must not be overwritten
 * by the "queued" text. When the request cannot be recorded, the details write is taken back.
 *
 * @param array  $params WHMCS module parameters
 * @param string $action Requests::PROVISION or Requests::TERMINATE
 *
 * @return string 'success' or a `JETPACK MODULE: …` error
 */
function jetpack_request(array $params, $action)
{
    $serviceId = jetpack_service_id($params);
    $text = Messages::queued($action);
    $written = null;
    try {
        $order = Order::load($serviceId, $action);
        $written = Requests::writeDetails($serviceId, $order->detailsFieldId, $text);
        $requestId = Requests::record($serviceId, $action, Requests::BY_MODULE);
    } catch (ModuleError $e) {
        return $e->getMessage();
    } catch (\PDOException $e) {
        if ($written !== null) {
            Requests::undoDetails($written, $text);
        }
        return ModuleError::fromDatabase($e, $serviceId)->getMessage();
    }
    jetpack_log_activity(Messages::requested($serviceId, $action, $requestId), $order->clientId);
    return 'success';
}

/**
 * The service id WHMCS passes (`serviceid`, also known as `accountid`).
 *
 * @param array $params WHMCS module parameters
 *
 * @return int
 */
function jetpack_service_id(array $params)
{
    if (isset($params['serviceid'])) {
        return (int) $params['serviceid'];
    }
    return isset($params['accountid']) ? (int) $params['accountid'] : 0;
}

/**
 * WHMCS's logActivity(), when it is there.
 *
 * @param string $line     starts with JETPACK MODULE and names the service
 * @param int    $clientId tblhosting.userid
 */
function jetpack_log_activity($line, $clientId)
{
    if (function_exists('logActivity')) {
        logActivity($line, (int) $clientId);
    }
}
