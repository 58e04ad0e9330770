<?php
/**
 * Jetpack by Automattic: WHMCS server module (module name `jetpack`).
 *
 * A drop-in replacement for the original Jetpack partner module that never calls the partner
 * API itself. Create and Terminate check what jetpack-worker will need, record the work in
 * `mod_jetpack_jobs` and return at once; the worker (a separate service reading the WHMCS
 * database) provisions or cancels the plan with retries and writes the outcome back into
 * WHMCS: the service's `jetpack_provisioning_details`, its status, the activity log and, for
 * failures, the Module Queue.
 *
 * Products made for the original module work unchanged: configoption1 is the partner client
 * id, configoption2 the client secret, and the custom fields are `Site URL`, `Local User`,
 * `Plan` and `jetpack_provisioning_details` (each may be written `key|Friendly Name`).
 *
 * Install: copy this directory to `modules/servers/jetpack` of the WHMCS install and run
 * `jetpack-worker migrate` once against the WHMCS database (it creates `mod_jetpack_jobs`).
 * Runs on PHP 7.2 to 8.3.
 */

use WHMCS\Module\Server\Jetpack\Display;
use WHMCS\Module\Server\Jetpack\JobQueue;
use WHMCS\Module\Server\Jetpack\Messages;
use WHMCS\Module\Server\Jetpack\ModuleError;
use WHMCS\Module\Server\Jetpack\Order;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

require_once __DIR__ . '/lib/ModuleError.php';
require_once __DIR__ . '/lib/Order.php';
require_once __DIR__ . '/lib/Messages.php';
require_once __DIR__ . '/lib/JobQueue.php';
require_once __DIR__ . '/lib/Display.php';

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
 * client id), the second configoption2 (the client secret), as in the original module.
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
    );
}

/**
 * Queues the provisioning of the plan. 'success' means queued (WHMCS then marks the service
 * Active); jetpack_provisioning_details says so until the worker writes the activation link.
 *
 * @param array $params WHMCS module parameters
 *
 * @return string 'success' or a `JETPACK MODULE: …` error
 */
function jetpack_CreateAccount(array $params)
{
    return jetpack_queue_job($params, JobQueue::PROVISION);
}

/**
 * Queues the cancellation of the plan; a queued provision that never reached the partner API
 * is cancelled instead of run.
 *
 * @param array $params WHMCS module parameters
 *
 * @return string 'success' or a `JETPACK MODULE: …` error
 */
function jetpack_TerminateAccount(array $params)
{
    return jetpack_queue_job($params, JobQueue::TERMINATE);
}

/**
 * @return array button label => function suffix
 */
function jetpack_AdminCustomButtonArray()
{
    return array('Retry Jetpack Job' => 'Requeue');
}

/**
 * The admin button: puts the service's failed job back to queued, due now, with a fresh
 * attempt budget (what `jetpack-worker requeue SERVICE_ID` does).
 *
 * @param array $params WHMCS module parameters
 *
 * @return string 'success' or a `JETPACK MODULE: …` error
 */
function jetpack_Requeue(array $params)
{
    $serviceId = jetpack_service_id($params);
    try {
        $order = Order::load($serviceId);
        $requeued = JobQueue::requeue($order);
    } catch (ModuleError $e) {
        return $e->getMessage();
    } catch (\PDOException $e) {
        return ModuleError::fromDatabase($e, $serviceId)->getMessage();
    }
    jetpack_log_activity(
        'JETPACK MODULE: Service ID: ' . $serviceId . ' - failed ' . $requeued['action']
        . ' job #' . $requeued['job'] . ' requeued for jetpack-worker with a fresh attempt budget',
        $order->clientId
    );
    return 'success';
}

/**
 * Admin area → the service's tab: the latest job's state, attempts, next attempt, last error.
 *
 * @param array $params WHMCS module parameters
 *
 * @return array label => HTML
 */
function jetpack_AdminServicesTabFields(array $params)
{
    $serviceId = jetpack_service_id($params);
    try {
        return Display::adminFields(JobQueue::latest($serviceId));
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
 * Create/Terminate: check the order, record the job, tell the activity log.
 *
 * @param array  $params WHMCS module parameters
 * @param string $action JobQueue::PROVISION or JobQueue::TERMINATE
 *
 * @return string 'success' or a `JETPACK MODULE: …` error
 */
function jetpack_queue_job(array $params, $action)
{
    $serviceId = jetpack_service_id($params);
    try {
        $order = Order::load($serviceId);
        $outcome = JobQueue::enqueue($order, $action, 'module');
    } catch (ModuleError $e) {
        return $e->getMessage();
    } catch (\PDOException $e) {
        return ModuleError::fromDatabase($e, $serviceId)->getMessage();
    }
    jetpack_log_activity(Messages::activityAfterEnqueue($serviceId, $outcome), $order->clientId);
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
