<?php
/**
 * The words the module writes for admins and clients: the "queued" texts it puts in
 * jetpack_provisioning_details until the worker writes the outcome, the activity-log lines,
 * and what the client area shows. Error messages live where the error is found (Order,
 * JobQueue, ModuleError), worded like the worker's.
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
    const PROVISION_RUNNING = 'Jetpack provisioning is in progress. The activation link will appear here once the plan is provisioned.';
    const PROVISION_AFTER_TERMINATE = 'Jetpack provisioning is queued; it starts as soon as the cancellation in progress finishes.';
    const TERMINATE_QUEUED = 'Cancellation of the Jetpack plan is queued.';
    const TERMINATE_RUNNING = 'Cancellation of the Jetpack plan is in progress.';
    const TERMINATE_AFTER_PROVISION = 'Cancellation of the Jetpack plan is queued; it starts as soon as the provisioning in progress finishes.';

    /** What a client sees while there is neither a link nor a message meant for them. */
    const CLIENT_WAITING = 'Your Jetpack plan is being set up. The activation link will appear here once it is ready.';

    /**
     * The jetpack_provisioning_details text after an enqueue, or null to leave the field as it
     * is (a plan waiting on DNS keeps the worker's message naming the site).
     *
     * @param array $outcome what JobQueue::enqueue returned
     *
     * @return string|null
     */
    public static function detailsAfterEnqueue(array $outcome)
    {
        $provision = $outcome['action'] === JobQueue::PROVISION;
        switch ($outcome['outcome']) {
            case JobQueue::FOLLOW_UP:
                return $provision ? self::PROVISION_AFTER_TERMINATE : self::TERMINATE_AFTER_PROVISION;
            case JobQueue::ALREADY_PENDING:
                if ($outcome['state'] === 'waiting_dns') {
                    return null;
                }
                if ($outcome['state'] === 'running') {
                    return $provision ? self::PROVISION_RUNNING : self::TERMINATE_RUNNING;
                }
                return $provision ? self::PROVISION_QUEUED : self::TERMINATE_QUEUED;
            default:
                return self::queued($outcome['action']);
        }
    }

    /**
     * The "queued" text for an action.
     *
     * @param string $action provision | terminate
     *
     * @return string
     */
    public static function queued($action)
    {
        return $action === JobQueue::PROVISION ? self::PROVISION_QUEUED : self::TERMINATE_QUEUED;
    }

    /**
     * The activity-log line for an enqueue (starts with JETPACK MODULE and names the service,
     * like the worker's lines).
     *
     * @param int   $serviceId tblhosting.id
     * @param array $outcome   what JobQueue::enqueue returned
     *
     * @return string
     */
    public static function activityAfterEnqueue($serviceId, array $outcome)
    {
        $head = 'JETPACK MODULE: Service ID: ' . (int) $serviceId . ' - ';
        $job = ' (job #' . $outcome['job'] . ')';
        switch ($outcome['outcome']) {
            case JobQueue::ALREADY_PENDING:
                return $head . $outcome['action'] . ' is already pending for jetpack-worker' . $job;
            case JobQueue::SUPERSEDED:
                return $head . $outcome['action'] . ' queued for jetpack-worker' . $job
                    . '; the provision job #' . $outcome['cancelled'] . ' that had not reached '
                    . 'the partner API was cancelled';
            case JobQueue::FOLLOW_UP:
                return $head . $outcome['action'] . ' queued for jetpack-worker: it runs after the '
                    . $outcome['state'] . ' ' . $outcome['other_action'] . $job;
            default:
                return $head . $outcome['action'] . ' queued for jetpack-worker' . $job;
        }
    }
}
