<?php
/**
 * What the module's WHMCS entry points (jetpack.php's jetpack_CreateAccount and the others,
 * global functions WHMCS calls by name) do: each delegates here. Reading the service or addon
 * WHMCS names from its parameters, checking its order (OrderChecks), recording the request for
 * jetpack-worker (Requests), the admin tab and client area (Display), and reporting what went
 * wrong: a `JETPACK MODULE: …` message for WHMCS to show, an activity-log line for what was
 * recorded, and, for a database error, a module-log entry (Log::moduleCall, kept by WHMCS in
 * Module Debug Mode) with the partner credentials masked.
 */

namespace WHMCS\Module\Server\Jetpack;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

final class Module
{
    /**
     * Create/Terminate/ChangePackage/Suspend/Unsuspend: check the order of the target (the
     * service, or the addon WHMCS names) as the catalogue says, write the action's "queued"
     * text (if it has one) into the target's own details, then record the
     * request (an addon's names its parent service and addon_id), then tell the activity log.
     * Details first: once the request is there the worker may finish the job at any moment, and
     * its outcome must not be overwritten by the "queued" text. When the request cannot be
     * recorded, the details write is taken back.
     *
     * @param array  $params WHMCS module parameters
     * @param string $action an action of the catalogue (Requests::PROVISION, …)
     *
     * @return string 'success' or a `JETPACK MODULE: …` error
     */
    public static function request(array $params, $action)
    {
        $serviceId = self::serviceId($params);
        $addonId = self::addonId($params);
        $text = null;
        $written = null;
        try {
            $order = OrderChecks::check($serviceId, $action, $addonId);
            $serviceId = $order->serviceId;
            $text = Messages::queued($action, $order->api);
            if ($text !== null) {
                $written = Requests::writeDetails($order->detailsRelId, $order->detailsFieldId, $text);
            }
            $requestId = Requests::record($order->serviceId, $action, Requests::BY_MODULE, $order->addonId);
        } catch (ModuleError $e) {
            return $e->getMessage();
        } catch (\PDOException $e) {
            if ($written !== null) {
                Requests::undoDetails($written, $text);
            }
            return self::databaseError($e, Catalogue::whmcsFunction($action), $params, $serviceId, $addonId, $action)
                ->getMessage();
        }
        $line = Messages::requested($order->serviceId, $action, $requestId, $order->addonId);
        if ($order->siteFromLedger) {
            $line .= Messages::siteFromLedger($order->siteUrl);
        }
        Log::activity($line, $order->clientId);
        return 'success';
    }

    /**
     * The admin button: requests a retry of the target's failed job (the service's, or the
     * addon's when WHMCS shows an addon). jetpack-worker decides whether there is one (it then
     * goes back to queued, due now, with a fresh attempt budget, as `jetpack-worker requeue
     * SERVICE_ID` does) and says what it did on the tab.
     *
     * @param array $params WHMCS module parameters
     *
     * @return string 'success' or a `JETPACK MODULE: …` error
     */
    public static function requeue(array $params)
    {
        $serviceId = self::serviceId($params);
        $addonId = self::addonId($params);
        try {
            // A retry re-runs the latest job, so its order is checked for that job's action
            // (with no job yet, for none: OrderChecks::checksFor decides).
            $latest = Requests::latestJob($serviceId, $addonId);
            $order = OrderChecks::check($serviceId, $latest !== null ? $latest->action : null, $addonId);
            $requestId = Requests::record($order->serviceId, Requests::RETRY, Requests::BY_ADMIN, $order->addonId);
        } catch (ModuleError $e) {
            return $e->getMessage();
        } catch (\PDOException $e) {
            return self::databaseError($e, 'Requeue', $params, $serviceId, $addonId, Requests::RETRY)->getMessage();
        }
        Log::activity(
            Messages::requested($order->serviceId, Requests::RETRY, $requestId, $order->addonId),
            $order->clientId
        );
        return 'success';
    }

    /**
     * The admin area's tab of the service (or addon): the target's latest job's state,
     * attempts, next attempt, last error; the requests jetpack-worker has not applied yet and
     * what it made of the last one; the plans the ledger holds for the target; on a service's
     * tab, the latest job of each of its Jetpack addons; first of all, a warning when that work
     * (or an addon's listed job) waits and no jetpack-worker has been seen for two minutes
     * (nothing extra when the worker's heartbeat table is not there yet).
     *
     * @param array $params WHMCS module parameters
     *
     * @return array label => HTML
     */
    public static function adminServicesTabFields(array $params)
    {
        $serviceId = self::serviceId($params);
        $addonId = self::addonId($params);
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
            $fields = Display::withDrift($fields, Requests::latestDrift($serviceId, $addonId));
            $fields = LicenceView::withLicences(
                $fields,
                Licences::ofTarget($serviceId, $addonId),
                self::takeFlash($serviceId, $addonId)
            );
            $fields = Display::withHold($fields, Requests::accountHold(isset($params['configoption1']) ? $params['configoption1'] : ''));
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
            $error = self::databaseError($e, 'AdminServicesTabFields', $params, $serviceId, $addonId, null);
            return array('Jetpack Job' => $error->getMessage());
        }
    }

    /**
     * The client area's overview of the service (or addon): the activation link once there is
     * one, else a waiting message (templates/clientarea.tpl). An addon shows its own details.
     * A database error shows the waiting message.
     *
     * @param array $params WHMCS module parameters
     *
     * @return array
     */
    public static function clientArea(array $params)
    {
        $serviceId = self::serviceId($params);
        $addonId = self::addonId($params);
        $licence = null;
        try {
            $details = CustomFields::currentDetails($serviceId, $addonId);
            $licence = Licences::live($serviceId, $addonId);
            $site = $licence === null ? null : Licences::site($licence, Requests::currentSiteUrl($serviceId, $addonId));
        } catch (\PDOException $e) {
            $details = isset($details) ? $details : '';
            $licence = null;
        }
        $vars = Display::clientVars($details) + array(
            'jetpackLicenceKey' => '',
            'jetpackLicenceUrl' => '',
            'jetpackLicencePath' => '',
        );
        if ($licence !== null) {
            $vars = array_merge($vars, LicenceView::clientVars($licence, $site));
        }
        return array(
            'tabOverviewModuleOutputTemplate' => 'templates/clientarea.tpl',
            'templateVariables' => $vars,
        );
    }

    /**
     * WHMCS saved the service's (or addon's) admin page: when the admin pressed one of the
     * licence buttons of the tab (LicenceView), records what they chose for the target's
     * `unknown` licence: `licence_record` with the key typed (its shape checked first) or
     * `licence_reissue`. Anything else posted is left alone. A refusal records nothing; the
     * tab shows it on the page WHMCS loads next (the admin's session), and it is returned.
     *
     * @param array $params WHMCS module parameters
     * @param array $post   $_POST of the save
     *
     * @return string 'success' or a `JETPACK MODULE: …` error
     */
    public static function saveAdminTab(array $params, array $post)
    {
        $choice = isset($post[LicenceView::INPUT_ACTION]) ? (string) $post[LicenceView::INPUT_ACTION] : '';
        if ($choice !== LicenceView::RECORD && $choice !== LicenceView::REISSUE) {
            return 'success';
        }
        $serviceId = self::serviceId($params);
        $addonId = self::addonId($params);
        try {
            $target = Target::load($serviceId, $addonId);
            $requestId = $choice === LicenceView::RECORD
                ? Licences::recordKey(
                    $target->serviceId,
                    $target->addonId,
                    isset($post[LicenceView::INPUT_KEY]) && is_string($post[LicenceView::INPUT_KEY]) ? $post[LicenceView::INPUT_KEY] : '',
                    Requests::BY_ADMIN
                )
                : Licences::reissue($target->serviceId, $target->addonId, Requests::BY_ADMIN);
        } catch (ModuleError $e) {
            self::putFlash($serviceId, $addonId, $e->getMessage());
            return $e->getMessage();
        } catch (\PDOException $e) {
            $message = self::databaseError($e, 'AdminServicesTabFieldsSave', $params, $serviceId, $addonId, null)->getMessage();
            self::putFlash($serviceId, $addonId, $message);
            return $message;
        }
        $kind = $choice === LicenceView::RECORD ? Requests::LICENCE_RECORD : Requests::LICENCE_REISSUE;
        Log::activity(Messages::requested($target->serviceId, $kind, $requestId, $target->addonId), $target->clientId);
        return 'success';
    }

    /**
     * Keeps a refusal of saveAdminTab() in the admin's session for the next tab.
     */
    private static function putFlash($serviceId, $addonId, $message)
    {
        if (isset($_SESSION) && is_array($_SESSION)) {
            $_SESSION['jetpack_licence_flash'][(int) $serviceId . ':' . (int) $addonId] = (string) $message;
        }
    }

    /**
     * The refusal putFlash() kept for the target, once (then forgotten); null when none.
     *
     * @return string|null
     */
    private static function takeFlash($serviceId, $addonId)
    {
        $key = (int) $serviceId . ':' . (int) $addonId;
        if (!isset($_SESSION['jetpack_licence_flash'][$key])) {
            return null;
        }
        $message = (string) $_SESSION['jetpack_licence_flash'][$key];
        unset($_SESSION['jetpack_licence_flash'][$key]);
        return $message;
    }

    /**
     * The service id WHMCS passes (`serviceid`; for a service also known as `accountid`, which
     * for an addon is the addon's id, so it is read only when `serviceid` is missing on a
     * service).
     *
     * @param array $params WHMCS module parameters
     *
     * @return int tblhosting.id (for an addon: its parent)
     */
    public static function serviceId(array $params)
    {
        if (isset($params['serviceid'])) {
            return (int) $params['serviceid'];
        }
        if (self::addonId($params) > 0) {
            return 0;
        }
        return isset($params['accountid']) ? (int) $params['accountid'] : 0;
    }

    /**
     * The addon WHMCS calls the module for: `addonId` (= tblhostingaddons.id) when above 0; 0
     * for a service (WHMCS passes 0, or nothing on older versions).
     *
     * @param array $params WHMCS module parameters
     *
     * @return int tblhostingaddons.id, or 0
     */
    public static function addonId(array $params)
    {
        $addonId = isset($params['addonId']) ? (int) $params['addonId'] : 0;
        return $addonId > 0 ? $addonId : 0;
    }

    /**
     * The values WHMCS must mask in the module log (its $replaceVars): the partner client id
     * and secret (configoption1, 2) and the Licensing API token (configoption10).
     *
     * @param array $params WHMCS module parameters
     *
     * @return string[]
     */
    public static function secrets(array $params)
    {
        $secrets = array();
        foreach (array(Target::CLIENT_ID, Target::CLIENT_SECRET, Target::LICENCE_TOKEN) as $name) {
            $secrets[] = isset($params[$name]) ? (string) $params[$name] : '';
        }
        return $secrets;
    }

    /**
     * A database error: the message for WHMCS (ModuleError::fromDatabase), also written to the
     * module log with what was asked and what the database said (never the statement's
     * bindings, never $params: they hold the partner secret and the client's details), the
     * partner client id and secret and the Licensing API token WHMCS passed given as the values
     * to mask (secrets()).
     *
     * @param \PDOException $e         what the query builder threw
     * @param string        $function  the WHMCS function, e.g. CreateAccount
     * @param array         $params    WHMCS module parameters (for the secrets to mask)
     * @param int           $serviceId tblhosting.id (an addon's parent)
     * @param int           $addonId   tblhostingaddons.id, 0 for the service itself
     * @param string|null   $action    the request's action, null when none was being recorded
     *
     * @return ModuleError
     */
    private static function databaseError(\PDOException $e, $function, array $params, $serviceId, $addonId, $action)
    {
        $error = ModuleError::fromDatabase($e, $serviceId, $addonId);
        $asked = array('service_id' => (int) $serviceId, 'addon_id' => (int) $addonId);
        if ($action !== null) {
            $asked['action'] = $action;
        }
        Log::moduleCall(
            $function,
            $asked,
            ModuleError::databaseAnswer($e),
            $error->getMessage(),
            self::secrets($params)
        );
        return $error;
    }
}
