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
 * `Plan` and `jetpack_provisioning_details` (each may be written `key|Friendly Name`). The
 * module settings Plan (configoption3) and Default Local User (configoption6) stand in for a
 * missing or empty Plan or Local User field.
 *
 * The module also runs Jetpack product addons (tbladdons.module = 'jetpack'): WHMCS then calls
 * it with `addonId` = tblhostingaddons.id and `serviceid` = the parent service. An addon is a
 * target of its own (docs/addons.md): its request names addon_id and the parent service, its
 * module settings are in tblmodule_configuration, its "queued" text goes into the addon's own
 * jetpack_provisioning_details, and its Site URL defaults to the parent service's domain.
 * ChangePackage (after an upgrade or downgrade) records a change of plan.
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
 * Product (or product addon) → Module Settings. The order matters: the Nth entry is
 * configoptionN. configoption1 is the partner client id, configoption2 the client secret, as
 * in the original module; configoption3 the Plan (a dropdown of rules.json's plans, empty = the
 * Plan custom field names it); configoption4 keeps the plan of a deleted service;
 * configoption5 switches the activation email (lib/Email.php) on or off; configoption6 is the
 * Default Local User (used when the Local User field is missing or empty).
 *
 * @return array
 */
function jetpack_ConfigOptions()
{
    $plans = array('' => 'Use the Plan custom field');
    try {
        foreach (Order::planSlugs() as $slug) {
            $plans[$slug] = $slug;
        }
    } catch (ModuleError $e) {
        // rules.json is unusable: Create says so; the setting keeps its empty choice.
    }
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
        // configoption3: the plan; '' = the Plan custom field names it (docs/addons.md).
        'Plan' => array(
            'Type' => 'dropdown',
            'Options' => $plans,
            'Default' => '',
            'Description' => 'Wins over a Plan custom field (an upgrade to this product keeps the old '
                . 'field value); leave it on the first choice to let the Plan custom field name the plan',
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
        // configoption6: the Local User when the Local User field is missing or empty.
        'Default Local User' => array(
            'Type' => 'text',
            'Size' => '30',
            'Description' => 'The WordPress user name used when the Local User custom field is missing or empty',
        ),
    );
}

/**
 * Requests the provisioning of the plan. 'success' means recorded for jetpack-worker (WHMCS
 * then marks the service or addon Active); jetpack_provisioning_details says "queued" until the
 * worker writes the activation link. Also what WHMCS's Module Queue "Retry" of a Create calls.
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
 * After an upgrade or downgrade order is paid (the new product, addon or configurable options
 * already stored): checks the order as for a provision and requests a change of plan. The
 * worker provisions the plan the order names now over the current one (a lower plan ends the
 * job failed, with what to do, and leaves the site as it was).
 *
 * @param array $params WHMCS module parameters
 *
 * @return string 'success' or a `JETPACK MODULE: …` error
 */
function jetpack_ChangePackage(array $params)
{
    return jetpack_request($params, Requests::CHANGE);
}

/**
 * @return array button label => function suffix
 */
function jetpack_AdminCustomButtonArray()
{
    return array('Retry Jetpack Job' => 'Requeue');
}

/**
 * The admin button: requests a retry of the target's failed job (the service's, or the
 * addon's when WHMCS shows an addon). jetpack-worker decides whether there is one (it then goes
 * back to queued, due now, with a fresh attempt budget, as `jetpack-worker requeue SERVICE_ID`
 * does) and says what it did on the tab.
 *
 * @param array $params WHMCS module parameters
 *
 * @return string 'success' or a `JETPACK MODULE: …` error
 */
function jetpack_Requeue(array $params)
{
    $serviceId = jetpack_service_id($params);
    $addonId = jetpack_addon_id($params);
    try {
        // A retry re-runs the latest job, so its order is checked for that job's action.
        $latest = Requests::latestJob($serviceId, $addonId);
        $order = Order::load($serviceId, $latest !== null ? $latest->action : Requests::PROVISION, $addonId);
        $requestId = Requests::record($order->serviceId, Requests::RETRY, Requests::BY_ADMIN, $order->addonId);
    } catch (ModuleError $e) {
        return $e->getMessage();
    } catch (\PDOException $e) {
        return ModuleError::fromDatabase($e, $serviceId, $addonId)->getMessage();
    }
    jetpack_log_activity(
        Messages::requested($order->serviceId, Requests::RETRY, $requestId, $order->addonId),
        $order->clientId
    );
    return 'success';
}

/**
 * Admin area → the service's (or addon's) tab: the target's latest job's state, attempts, next
 * attempt, last error; the requests jetpack-worker has not applied yet and what it made of the
 * last one; the plans the ledger holds for the target; on a service's tab, the latest job of
 * each of its Jetpack addons; first of all, a warning when that work (or an addon's listed job)
 * waits and no jetpack-worker has been seen for two minutes (nothing extra when the worker's heartbeat table is not there
 * yet).
 *
 * @param array $params WHMCS module parameters
 *
 * @return array label => HTML
 */
function jetpack_AdminServicesTabFields(array $params)
{
    $serviceId = jetpack_service_id($params);
    $addonId = jetpack_addon_id($params);
    try {
        $job = Requests::latestJob($serviceId, $addonId);
        $pending = Requests::pending($serviceId, $addonId);
        $fields = Display::adminFields(
            $job,
            $pending,
            Requests::latestApplied($serviceId, $addonId),
            Requests::ledger($serviceId, $addonId),
            Requests::currentSiteUrl($serviceId, $addonId)
        );
        $waits = Display::waitsOnWorker($job, $pending);
        if ($addonId === 0) {
            $addonJobs = Requests::addonJobs($serviceId);
            $fields = Display::withAddonJobs($fields, $addonJobs);
            foreach ($addonJobs as $addonJob) {
                $waits = $waits || Display::waitsOnWorker($addonJob, array());
            }
        }
        if (!$waits) {
            return $fields;
        }
        return Display::withWorkerWarning($fields, Requests::workerRunning());
    } catch (\PDOException $e) {
        return array('Jetpack Job' => ModuleError::fromDatabase($e, $serviceId, $addonId)->getMessage());
    }
}

/**
 * Client area → the service's (or addon's) overview: the activation link once there is one,
 * else a waiting message (templates/clientarea.tpl). An addon shows its own details.
 *
 * @param array $params WHMCS module parameters
 *
 * @return array
 */
function jetpack_ClientArea(array $params)
{
    try {
        $details = Order::currentDetails(jetpack_service_id($params), jetpack_addon_id($params));
    } catch (\PDOException $e) {
        $details = '';
    }
    return array(
        'tabOverviewModuleOutputTemplate' => 'templates/clientarea.tpl',
        'templateVariables' => Display::clientVars($details),
    );
}

/**
 * Create/Terminate/ChangePackage: check the order of the target (the service, or the addon
 * WHMCS names), write the "queued" text into the target's own details, then record the request
 * (an addon's names its parent service and addon_id), then tell the activity log. Details
 * first: once the request is there the worker may finish the job at any moment, and its outcome
 * must not be overwritten by the "queued" text. When the request cannot be recorded, the
 * details write is taken back.
 *
 * @param array  $params WHMCS module parameters
 * @param string $action Requests::PROVISION, Requests::TERMINATE or Requests::CHANGE
 *
 * @return string 'success' or a `JETPACK MODULE: …` error
 */
function jetpack_request(array $params, $action)
{
    $serviceId = jetpack_service_id($params);
    $addonId = jetpack_addon_id($params);
    $text = Messages::queued($action);
    $written = null;
    try {
        $order = Order::load($serviceId, $action, $addonId);
        $serviceId = $order->serviceId;
        $written = Requests::writeDetails($order->detailsRelId, $order->detailsFieldId, $text);
        $requestId = Requests::record($order->serviceId, $action, Requests::BY_MODULE, $order->addonId);
    } catch (ModuleError $e) {
        return $e->getMessage();
    } catch (\PDOException $e) {
        if ($written !== null) {
            Requests::undoDetails($written, $text);
        }
        return ModuleError::fromDatabase($e, $serviceId, $addonId)->getMessage();
    }
    jetpack_log_activity(
        Messages::requested($order->serviceId, $action, $requestId, $order->addonId),
        $order->clientId
    );
    return 'success';
}

/**
 * The service id WHMCS passes (`serviceid`; for a service also known as `accountid`, which for
 * an addon is the addon's id, so it is read only when `serviceid` is missing on a service).
 *
 * @param array $params WHMCS module parameters
 *
 * @return int tblhosting.id (for an addon: its parent)
 */
function jetpack_service_id(array $params)
{
    if (isset($params['serviceid'])) {
        return (int) $params['serviceid'];
    }
    if (jetpack_addon_id($params) > 0) {
        return 0;
    }
    return isset($params['accountid']) ? (int) $params['accountid'] : 0;
}

/**
 * The addon WHMCS calls the module for: `addonId` (= tblhostingaddons.id) when above 0; 0 for
 * a service (WHMCS passes 0, or nothing on older versions).
 *
 * @param array $params WHMCS module parameters
 *
 * @return int tblhostingaddons.id, or 0
 */
function jetpack_addon_id(array $params)
{
    $addonId = isset($params['addonId']) ? (int) $params['addonId'] : 0;
    return $addonId > 0 ? $addonId : 0;
}

/**
 * WHMCS's logActivity(), when it is there.
 *
 * @param string $line     starts with JETPACK MODULE and names the service or addon
 * @param int    $clientId tblhosting.userid
 */
function jetpack_log_activity($line, $clientId)
{
    if (function_exists('logActivity')) {
        logActivity($line, (int) $clientId);
    }
}
