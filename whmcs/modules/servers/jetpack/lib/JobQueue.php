<?php
/**
 * The module's side of `mod_jetpack_jobs`, the table it shares with jetpack-worker. The rules
 * are the worker's (`src/store/jobs.rs`), so both sides agree whoever writes first:
 *
 * - enqueue: at most one unfinished job per service (a UNIQUE index on the generated column
 *   `unfinished_service_id` enforces it). In one transaction, lock the service's unfinished
 *   job: none → insert a queued job due now; same action → no new job (a queued one waiting
 *   out a retry delay becomes due now); a terminate while a provision is not running → the
 *   provision is cancelled and the terminate queued; otherwise the action becomes that job's
 *   `follow_up` (the worker queues it when the job finishes), so a terminate is never lost.
 *   A duplicate key on insert (a race) retries the transaction once.
 * - requeue: the service's latest job, when it failed, goes back to queued, due now, with a
 *   fresh attempt budget.
 *
 * Times are UTC from the database clock (UTC_TIMESTAMP(6)); `unfinished_service_id` is never
 * written. Every query is parameterised through the query builder.
 */

namespace WHMCS\Module\Server\Jetpack;

use WHMCS\Database\Capsule;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

class JobQueue
{
    const TABLE = 'mod_jetpack_jobs';

    const PROVISION = 'provision';
    const TERMINATE = 'terminate';

    /** Enqueue outcomes. */
    const QUEUED = 'queued';
    const ALREADY_PENDING = 'already_pending';
    const SUPERSEDED = 'superseded';
    const FOLLOW_UP = 'follow_up';

    /**
     * Queues an action for the order's service and writes the "queued" text into this
     * service's jetpack_provisioning_details, in one transaction.
     *
     * @param Order  $order       the checked order
     * @param string $action      provision | terminate
     * @param string $requestedBy module | admin
     *
     * @return array outcome (QUEUED, ALREADY_PENDING, SUPERSEDED or FOLLOW_UP), action, job
     *               (the job that will do it, or runs first for FOLLOW_UP), cancelled (the
     *               superseded provision), state and other_action (the unfinished job found)
     *
     * @throws \PDOException on a database error
     */
    public static function enqueue(Order $order, $action, $requestedBy)
    {
        for ($try = 1;; $try++) {
            try {
                return Capsule::connection()->transaction(function () use ($order, $action, $requestedBy) {
                    return self::enqueueOnce($order, $action, $requestedBy);
                });
            } catch (\PDOException $e) {
                // Another writer inserted the service's unfinished job between our SELECT and
                // INSERT: the second try sees it.
                if ($try < 2 && ModuleError::isDuplicateKey($e)) {
                    continue;
                }
                throw $e;
            }
        }
    }

    /**
     * One try of enqueue, inside its transaction.
     *
     * @return array see enqueue()
     */
    private static function enqueueOnce(Order $order, $action, $requestedBy)
    {
        $serviceId = $order->serviceId;
        $existing = Capsule::table(self::TABLE)
            ->where('unfinished_service_id', $serviceId)
            ->lockForUpdate()
            ->first(array('id', 'action', 'state'));
        $outcome = array(
            'action' => $action,
            'job' => null,
            'cancelled' => null,
            'state' => $existing === null ? null : (string) $existing->state,
            'other_action' => $existing === null ? null : (string) $existing->action,
        );
        if ($existing === null) {
            $outcome['outcome'] = self::QUEUED;
            $outcome['job'] = self::insert($serviceId, $action, $requestedBy);
        } elseif ($existing->action === $action) {
            // Asked again (a Module Queue Retry, a double click): a job waiting out a retry
            // delay becomes due now; one in flight or waiting on DNS is left alone.
            Capsule::table(self::TABLE)
                ->where('id', (int) $existing->id)
                ->where('state', 'queued')
                ->where('run_at', '>', Capsule::raw('UTC_TIMESTAMP(6)'))
                ->update(array(
                    'run_at' => Capsule::raw('UTC_TIMESTAMP(6)'),
                    'updated_at' => Capsule::raw('UTC_TIMESTAMP(6)'),
                ));
            $outcome['outcome'] = self::ALREADY_PENDING;
            $outcome['job'] = (int) $existing->id;
        } elseif ($action === self::TERMINATE && $existing->state !== 'running') {
            // A provision that has not reached the API (queued, or waiting on DNS): the
            // terminate replaces it.
            Capsule::table(self::TABLE)->where('id', (int) $existing->id)->update(array(
                'state' => 'cancelled',
                'result' => 'superseded by a terminate',
                'finished_at' => Capsule::raw('UTC_TIMESTAMP(6)'),
                'updated_at' => Capsule::raw('UTC_TIMESTAMP(6)'),
            ));
            $outcome['outcome'] = self::SUPERSEDED;
            $outcome['cancelled'] = (int) $existing->id;
            $outcome['job'] = self::insert($serviceId, $action, $requestedBy);
        } else {
            Capsule::table(self::TABLE)->where('id', (int) $existing->id)->update(array(
                'follow_up' => $action,
                'updated_at' => Capsule::raw('UTC_TIMESTAMP(6)'),
            ));
            $outcome['outcome'] = self::FOLLOW_UP;
            $outcome['job'] = (int) $existing->id;
        }
        $details = Messages::detailsAfterEnqueue($outcome);
        if ($details !== null) {
            self::writeDetails($serviceId, $order->detailsFieldId, $details);
        }
        return $outcome;
    }

    /**
     * Puts the service's latest job back to queued, due now, with a fresh attempt budget, when
     * it failed; writes the "queued" text into this service's details.
     *
     * @param Order $order the checked order
     *
     * @return array job (id) and action
     *
     * @throws ModuleError when there is nothing to requeue or another job is pending
     * @throws \PDOException on a database error
     */
    public static function requeue(Order $order)
    {
        return Capsule::connection()->transaction(function () use ($order) {
            return self::requeueOnce($order);
        });
    }

    /**
     * requeue() inside its transaction.
     *
     * @return array see requeue()
     */
    private static function requeueOnce(Order $order)
    {
        $serviceId = $order->serviceId;
        $latest = Capsule::table(self::TABLE)
            ->where('service_id', $serviceId)
            ->orderBy('id', 'desc')
            ->lockForUpdate()
            ->first(array('id', 'action', 'state'));
        if ($latest === null) {
            throw ModuleError::forService(
                $serviceId,
                'there is no Jetpack job to requeue; use Create (or Terminate) to queue one'
            );
        }
        $job = '#' . (int) $latest->id . ' (' . ModuleError::escape($latest->action) . ')';
        if ($latest->state !== 'failed') {
            throw ModuleError::forService(
                $serviceId,
                'nothing to requeue: the latest job ' . $job . ' is '
                . ModuleError::escape($latest->state) . ', not failed'
            );
        }
        try {
            $updated = Capsule::table(self::TABLE)
                ->where('id', (int) $latest->id)
                ->where('state', 'failed')
                ->update(array(
                    'state' => 'queued',
                    'attempts' => 0,
                    'dns_checks' => 0,
                    'waiting_since' => null,
                    'run_at' => Capsule::raw('UTC_TIMESTAMP(6)'),
                    'finished_at' => null,
                    'lease_owner' => null,
                    'lease_token' => null,
                    'lease_expires_at' => null,
                    'updated_at' => Capsule::raw('UTC_TIMESTAMP(6)'),
                ));
        } catch (\PDOException $e) {
            if (!ModuleError::isDuplicateKey($e)) {
                throw $e;
            }
            $pending = Capsule::table(self::TABLE)
                ->where('unfinished_service_id', $serviceId)
                ->first(array('id', 'action', 'state'));
            $which = $pending === null ? '' : ' (job #' . (int) $pending->id . ', '
                . ModuleError::escape($pending->action) . ', ' . ModuleError::escape($pending->state) . ')';
            throw ModuleError::forService(
                $serviceId,
                'job ' . $job . ' was not requeued: another job for this service is already pending'
                . $which . '; it runs first'
            );
        }
        if ($updated !== 1) {
            throw ModuleError::forService(
                $serviceId,
                'job ' . $job . ' changed while it was being requeued; reload the page and try again'
            );
        }
        self::writeDetails($serviceId, $order->detailsFieldId, Messages::queued($latest->action));
        return array('job' => (int) $latest->id, 'action' => (string) $latest->action);
    }

    /**
     * The service's latest job for the admin area, with `due_in` = seconds until run_at by the
     * database clock (negative when overdue); null when the service never had a job.
     *
     * @param int $serviceId tblhosting.id
     *
     * @return object|null
     *
     * @throws \PDOException on a database error
     */
    public static function latest($serviceId)
    {
        return Capsule::table(self::TABLE)
            ->where('service_id', (int) $serviceId)
            ->orderBy('id', 'desc')
            ->first(array(
                'id', 'action', 'state', 'attempts', 'max_attempts', 'dns_checks', 'run_at',
                'lease_expires_at', 'follow_up', 'last_error', 'result', 'requested_by',
                'finished_at',
                Capsule::raw('TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(6), run_at) AS due_in'),
            ));
    }

    /**
     * Sets THIS service's jetpack_provisioning_details: updates its lowest value row, or
     * inserts one. Never an UPDATE scoped by the field alone (the original module's bug, which
     * overwrote the field of every service of the product).
     *
     * @param int    $serviceId tblhosting.id
     * @param int    $fieldId   tblcustomfields.id of the product's details field
     * @param string $text
     */
    public static function writeDetails($serviceId, $fieldId, $text)
    {
        $row = Capsule::table('tblcustomfieldsvalues')
            ->where('fieldid', (int) $fieldId)
            ->where('relid', (int) $serviceId)
            ->orderBy('id')
            ->lockForUpdate()
            ->first(array('id'));
        if ($row !== null) {
            Capsule::table('tblcustomfieldsvalues')->where('id', (int) $row->id)->update(array(
                'value' => $text,
                'updated_at' => Capsule::raw('NOW()'),
            ));
            return;
        }
        Capsule::table('tblcustomfieldsvalues')->insert(array(
            'fieldid' => (int) $fieldId,
            'relid' => (int) $serviceId,
            'value' => $text,
            'created_at' => Capsule::raw('NOW()'),
            'updated_at' => Capsule::raw('NOW()'),
        ));
    }

    /**
     * Inserts a queued job, due now.
     *
     * @return int the new job's id
     */
    private static function insert($serviceId, $action, $requestedBy)
    {
        return (int) Capsule::table(self::TABLE)->insertGetId(array(
            'service_id' => (int) $serviceId,
            'action' => $action,
            'state' => 'queued',
            'run_at' => Capsule::raw('UTC_TIMESTAMP(6)'),
            'requested_by' => $requestedBy,
            'created_at' => Capsule::raw('UTC_TIMESTAMP(6)'),
            'updated_at' => Capsule::raw('UTC_TIMESTAMP(6)'),
        ));
    }
}
