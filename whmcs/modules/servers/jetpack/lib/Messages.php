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

    /** What a client sees while there is neither a link nor a message meant for them. */
    const CLIENT_WAITING = 'Your Jetpack plan is being set up. The activation link will appear here once it is ready.';

    /**
     * The "queued" text for an action.
     *
     * @param string $action Requests::PROVISION or Requests::TERMINATE
     *
     * @return string
     */
    public static function queued($action)
    {
        return $action === Requests::TERMINATE ? self::TERMINATE_QUEUED : self::PROVISION_QUEUED;
    }

    /**
     * The activity-log line for a recorded request (starts with JETPACK MODULE and names the
     * service, like the worker's lines).
     *
     * @param int    $serviceId tblhosting.id
     * @param string $action    provision | terminate | retry
     * @param int    $requestId mod_jetpack_requests.id
     *
     * @return string
     */
    public static function requested($serviceId, $action, $requestId)
    {
        return 'JETPACK MODULE: Service ID: ' . (int) $serviceId . ' - ' . $action
            . ' requested for jetpack-worker (request #' . (int) $requestId . ')';
    }
}
