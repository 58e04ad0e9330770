<?php
/**
 * The words the module writes for admins and clients: the "queued" texts it puts in
 * jetpack_provisioning_details until the worker writes the outcome, the activity-log lines,
 * and what the client area shows. Error messages live where the error is found (Order,
 * ModuleError), worded like the worker's. What becomes of a request (superseded, run after
 * another job, already done) is the worker's to say, in the request's `decision`.
 */

namespace WHMCS\Module\Server\Jetpack;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

class Messages
{
    /** The worker's success text starts with this (the original module's wording). */
    const ACTIVATION_PREFIX = 'URL to Activate Jetpack: ';

    const PROVISION_QUEUED = 'Jetpack provisioning is queued. The activation link will appear here once the plan is provisioned.';
    const TERMINATE_QUEUED = 'Cancellation of the Jetpack plan is queued.';
    const CHANGE_QUEUED = 'A change of the Jetpack plan is queued. The activation link will appear here once the new plan is provisioned.';

    /** Every "queued" text (what only module writers put in the details field). */
    const QUEUED = array(self::PROVISION_QUEUED, self::TERMINATE_QUEUED, self::CHANGE_QUEUED);

    /** What a client sees while there is neither a link nor a message meant for them. */
    const CLIENT_WAITING = 'Your Jetpack plan is being set up. The activation link will appear here once it is ready.';

    /**
     * The "queued" text for an action.
     *
     * @param string $action Requests::PROVISION, Requests::TERMINATE or Requests::CHANGE
     *
     * @return string
     */
    public static function queued($action)
    {
        if ($action === Requests::TERMINATE) {
            return self::TERMINATE_QUEUED;
        }
        return $action === Requests::CHANGE ? self::CHANGE_QUEUED : self::PROVISION_QUEUED;
    }

    /**
     * The activity-log line for a recorded request (starts with JETPACK MODULE and names the
     * target, like the worker's lines): "JETPACK MODULE: Service ID: 12 - provision requested
     * for jetpack-worker (request #7)", or "JETPACK MODULE: Addon ID: 5 (Service ID: 12) - …"
     * for an addon.
     *
     * @param int    $serviceId tblhosting.id (an addon's parent)
     * @param string $action    provision | terminate | retry | change
     * @param int    $requestId mod_jetpack_requests.id
     * @param int    $addonId   tblhostingaddons.id, 0 for the service itself
     *
     * @return string
     */
    public static function requested($serviceId, $action, $requestId, $addonId = 0)
    {
        return ModuleError::PREFIX . ModuleError::target($serviceId, $addonId) . ' - ' . $action
            . ' requested for jetpack-worker (request #' . (int) $requestId . ')';
    }
}
