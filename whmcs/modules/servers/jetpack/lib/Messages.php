<?php
/**
 * The words the module writes for admins and clients: the "queued" texts it puts in
 * jetpack_provisioning_details until the worker writes the outcome (the catalogue's), the
 * activity-log lines, and what the client area shows. Error messages live where the error is
 * found (the order checks' in rules.json, read by Rules; ModuleError), worded like the worker's.
 * What becomes of a request (superseded, run after another job, already done) is the worker's
 * to say, in the request's `decision`.
 */

namespace WHMCS\Module\Server\Jetpack;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

class Messages
{
    /** The worker's success text starts with this (the original module's wording). */
    const ACTIVATION_PREFIX = 'URL to Activate Jetpack: ';

    /** What a client sees while there is neither a link nor a message meant for them. */
    const CLIENT_WAITING = 'Your Jetpack plan is being set up. The activation link will appear here once it is ready.';

    /**
     * The "queued" text for an action (the catalogue's); null for an action that leaves the
     * details field as it is (suspend, unsuspend: the client keeps the activation link or the
     * licence key). A licence product's job action has its licence row's text.
     *
     * @param string $action a job action of the catalogue (provision, …)
     * @param string $api    Catalogue::API_PLAN or Catalogue::API_LICENCE
     *
     * @return string|null
     */
    public static function queued($action, $api = Catalogue::API_PLAN)
    {
        $row = Catalogue::actionFor($action, $api);
        return $row !== null ? $row['queued_text'] : Catalogue::queuedText($action);
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

    /**
     * Appended to the activity line of a request whose order's Site URL field was empty and
     * whose site is the one jetpack-worker's ledger holds (the worker's words, its
     * `messages::site_from_ledger`).
     *
     * @param string $site
     *
     * @return string
     */
    public static function siteFromLedger($site)
    {
        return ' (the Site URL field is empty, as after a move to a product whose fields are named '
            . 'differently: the site is ' . $site . ', where jetpack-worker provisioned the plan)';
    }
}
