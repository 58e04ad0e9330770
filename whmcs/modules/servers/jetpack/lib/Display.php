<?php
/**
 * What admins and clients see: the fields of the admin "Products/Services" tab (the latest
 * job, the requests jetpack-worker has not applied yet, what it made of the last one, the plans
 * its ledger holds, the reconciler's latest drift, a warning when that work waits and no worker
 * is running; on a service's tab, its Jetpack addons' latest jobs) and the client area's activation link or waiting
 * message. The same fields serve a service and an addon (each is a target of its own).
 * Everything returned for the admin tab is HTML (WHMCS prints it as it is), so every stored
 * value is escaped here (Escape::html(), lib/Escape.php).
 */

namespace WHMCS\Module\Server\Jetpack;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

class Display
{
    const NONE = '—';

    /** Between the lines of one admin tab field. */
    const LINE = '<br />';

    /** The admin tab's warning when work waits and no worker runs (jetpack-worker's own words). */
    const NO_WORKER = 'jobs are queued but no jetpack-worker is running: start it with `systemctl start jetpack-worker`';

    /**
     * Who asks for jobs (mod_jetpack_requests.requested_by, copied to the job's) and the word
     * shown for each, here and on the queue dashboard. The keys are jetpack-worker's
     * RequestedBy values (src/domain.rs); DisplayTest checks that the two lists agree.
     */
    const REQUESTERS = array(
        'module' => 'module',
        'admin' => 'admin',
        'cli' => 'cli',
        'adopt' => 'adopt',
        'hook' => 'hook',
        'reconcile' => 'the reconciler',
    );

    /**
     * The word for who asked (REQUESTERS), or the stored value as it is when unknown.
     *
     * @param string|null $requestedBy mod_jetpack_requests.requested_by
     *
     * @return string not escaped
     */
    public static function requester($requestedBy)
    {
        $by = (string) $requestedBy;
        return isset(self::REQUESTERS[$by]) ? self::REQUESTERS[$by] : $by;
    }

    /**
     * Adds "Jetpack Drift", the target's latest drift the reconciler confirmed ("The reconciler
     * found none on https://a.example/ where WHMCS expects the premium plan, at … UTC, and
     * reported"), when it has one.
     *
     * @param array       $fields what adminFields() returned
     * @param object|null $drift  what Requests::latestDrift() returned
     *
     * @return array label => HTML
     */
    public static function withDrift(array $fields, $drift)
    {
        if ($drift === null) {
            return $fields;
        }
        $fields['Jetpack Drift'] = Escape::html(
            'The reconciler found ' . $drift->found . ' on ' . $drift->site . ' where WHMCS expects '
            . $drift->expected . ', at ' . self::utc($drift->created_at) . ', and ' . $drift->done
        );
        return $fields;
    }

    /**
     * Adds "Jetpack Partner Account" when the product's (addon's) partner account is on hold
     * (the queue dashboard's Hold): its jobs stay queued, no partner call, until resumed.
     *
     * @param array       $fields what adminFields() returned
     * @param object|null $hold   what Requests::accountHold() returned
     *
     * @return array label => HTML
     */
    public static function withHold(array $fields, $hold)
    {
        if ($hold === null) {
            return $fields;
        }
        $fields['Jetpack Partner Account'] = Escape::html(
            'On hold since ' . self::utc($hold->held_at) . ' by ' . self::requester($hold->held_by)
            . ($hold->reason === '' ? '' : ' (' . $hold->reason . ')') . ': jetpack-worker leaves this account\'s jobs queued, '
            . 'with no partner call, until it is resumed on Addons → Jetpack Provisioning Queue.'
        );
        return $fields;
    }

    /**
     * Whether the service's work waits on a worker: its latest job is queued, running or
     * waiting on DNS, or it has requests not yet applied.
     *
     * @param object|null $job     what Requests::latestJob() returned
     * @param array       $pending what Requests::pending() returned
     *
     * @return bool
     */
    public static function waitsOnWorker($job, array $pending)
    {
        if (count($pending) > 0) {
            return true;
        }
        return $job !== null && in_array($job->state, Catalogue::lists('unfinished_states'), true);
    }

    /**
     * Adds the "no worker is running" warning first, when the service's work waits and the
     * worker's heartbeat says none runs; nothing when that cannot be told.
     *
     * @param array     $fields        what adminFields() returned
     * @param bool|null $workerRunning what Requests::workerRunning() returned
     *
     * @return array label => HTML
     */
    public static function withWorkerWarning(array $fields, $workerRunning)
    {
        if ($workerRunning !== false) {
            return $fields;
        }
        return array('Jetpack Worker' => '<strong>' . Escape::html(self::NO_WORKER) . '</strong>') + $fields;
    }

    /**
     * The service's tab: adds "Jetpack Addons", the latest job of each of its Jetpack addons
     * (addon id, job, state, last error), when any addon has one.
     *
     * @param array $fields what adminFields() returned
     * @param array $jobs   what Requests::addonJobs() returned
     *
     * @return array label => HTML
     */
    public static function withAddonJobs(array $fields, array $jobs)
    {
        if (count($jobs) === 0) {
            return $fields;
        }
        $lines = array();
        foreach ($jobs as $job) {
            $text = 'Addon #' . (int) $job->addon_id . ': job #' . (int) $job->id . ' ' . $job->action
                . ', ' . self::stateLabel($job->state);
            $error = $job->last_error === null ? '' : trim((string) $job->last_error);
            $text .= '; last error: ' . ($error === '' ? self::NONE : $error);
            $lines[] = Escape::html($text);
        }
        $fields['Jetpack Addons'] = implode(self::LINE, $lines);
        return $fields;
    }

    /**
     * The admin tab fields for the target (a service or an addon).
     *
     * @param object|null $job     what Requests::latestJob() returned
     * @param array       $pending what Requests::pending() returned (oldest first)
     * @param object|null $applied what Requests::latestApplied() returned
     * @param array       $ledger  what Requests::ledger() returned
     * @param string|null $siteUrl what Requests::currentSiteUrl() returned
     *
     * @return array label => HTML
     */
    public static function adminFields(
        $job,
        array $pending = array(),
        $applied = null,
        array $ledger = array(),
        $siteUrl = null
    ) {
        if ($job === null && count($pending) === 0 && $applied === null && count($ledger) === 0) {
            return array(
                'Jetpack Job' => 'none yet: Create queues the provisioning for jetpack-worker',
            );
        }
        $fields = $job === null
            ? array('Jetpack Job' => count($pending) > 0
                ? 'none yet: jetpack-worker has not applied the requests below yet'
                : 'none')
            : self::jobFields($job);
        if (count($pending) > 0) {
            $fields['Jetpack Requests'] = self::pendingLines($pending);
        }
        if ($applied !== null) {
            $fields['Jetpack Last Request'] = self::appliedLine($applied);
        }
        $fields['Jetpack Plans'] = self::ledgerLines($ledger, $siteUrl);
        return $fields;
    }

    /**
     * The latest job's fields.
     *
     * @param object $job what Requests::latestJob() returned
     *
     * @return array label => HTML
     */
    private static function jobFields($job)
    {
        $summary = '#' . (int) $job->id . ' ' . $job->action . ': ' . self::stateLabel($job->state)
            . ' (requested by ' . self::requester($job->requested_by) . ')';
        if ($job->follow_up !== null && $job->follow_up !== '') {
            $summary .= '; then ' . $job->follow_up;
        }
        $fields = array(
            'Jetpack Job' => Escape::html($summary),
            'Jetpack Attempts' => Escape::html(self::attempts($job)),
            'Jetpack Next Attempt' => Escape::html(self::nextAttempt($job)),
            'Jetpack Last Error' => $job->last_error === null || $job->last_error === ''
                ? self::NONE
                : Escape::html($job->last_error),
        );
        if ($job->result !== null && $job->result !== '') {
            $fields['Jetpack Result'] = Escape::html($job->result);
        }
        return $fields;
    }

    /**
     * "#12 provision requested by module at 2026-12-01 10:00:00 UTC, waiting for
     * jetpack-worker", one line per request not yet applied.
     *
     * @param array $pending oldest first, at most Requests::PENDING_SHOWN + 1
     *
     * @return string HTML
     */
    private static function pendingLines(array $pending)
    {
        $lines = array();
        foreach (array_slice($pending, 0, Requests::PENDING_SHOWN) as $request) {
            $lines[] = Escape::html(self::requestText($request) . ', waiting for jetpack-worker');
        }
        if (count($pending) > Requests::PENDING_SHOWN) {
            $lines[] = 'and more, waiting for jetpack-worker';
        }
        return implode(self::LINE, $lines);
    }

    /**
     * "#11 retry requested by admin at … UTC, applied at … UTC (job #5): <decision>".
     *
     * @param object $request what Requests::latestApplied() returned
     *
     * @return string HTML
     */
    private static function appliedLine($request)
    {
        $text = self::requestText($request) . ', applied at ' . self::utc($request->applied_at);
        if ($request->job_id !== null) {
            $text .= ' (job #' . (int) $request->job_id . ')';
        }
        if ($request->decision !== null && $request->decision !== '') {
            $text .= ': ' . $request->decision;
        }
        return Escape::html($text);
    }

    /**
     * @param object $request a mod_jetpack_requests row
     *
     * @return string "#12 provision requested by module at 2026-12-01 10:00:00 UTC" (not escaped)
     */
    private static function requestText($request)
    {
        return '#' . (int) $request->id . ' ' . $request->action . ' requested by '
            . self::requester($request->requested_by) . ' at ' . self::utc($request->created_at);
    }

    /**
     * One line per ledger row: its plan and site ("waiting on DNS" while pending), and a
     * warning when the site is not the one the Site URL now reads, since a terminate cancels
     * what the ledger holds.
     *
     * @param array       $ledger  what Requests::ledger() returned
     * @param string|null $siteUrl the service's Site URL now
     *
     * @return string HTML
     */
    private static function ledgerLines(array $ledger, $siteUrl)
    {
        if (count($ledger) === 0) {
            return 'none recorded by jetpack-worker';
        }
        $lines = array();
        foreach ($ledger as $row) {
            $text = $row->plan . ' on ' . $row->site . ' since ' . self::utc($row->since)
                . ' (job #' . (int) $row->job_id . ')';
            if ((int) $row->pending === 1) {
                $text .= ', waiting on DNS';
            }
            $lines[] = Escape::html($text);
            if (self::siteKey($siteUrl) !== self::siteKey($row->site)) {
                $now = self::siteKey($siteUrl) === ''
                    ? 'the Site URL is now empty'
                    : 'the Site URL now reads ' . $siteUrl;
                $lines[] = Escape::html(
                    $now . '; a terminate cancels the plan on ' . $row->site . ', where it was provisioned'
                );
            }
        }
        return implode(self::LINE, $lines);
    }

    /**
     * A site for comparison: trimmed, without its scheme and trailing slashes, lower case.
     *
     * @param string|null $site
     *
     * @return string
     */
    private static function siteKey($site)
    {
        $key = preg_replace('~^[a-z][a-z0-9+.-]*://~i', '', trim((string) $site));
        return strtolower(rtrim((string) $key, '/'));
    }

    /**
     * The client area's template variables: the activation link once there is one, else a
     * waiting message. The worker's texts for clients (queued, waiting on DNS, cancelled) are
     * shown as they are; error texts (`JETPACK MODULE: …`) are meant for admins and are not.
     *
     * @param string $details this service's jetpack_provisioning_details
     *
     * @return array jetpackActivationUrl (string, '' when none) and jetpackMessage
     */
    public static function clientVars($details)
    {
        $details = trim((string) $details);
        if (strpos($details, Messages::ACTIVATION_PREFIX) === 0) {
            $url = trim(substr($details, strlen(Messages::ACTIVATION_PREFIX)));
            if (preg_match('~^https?://[^\s<>"]+$~i', $url) === 1) {
                return array(
                    'jetpackActivationUrl' => $url,
                    'jetpackMessage' => 'Your Jetpack plan is ready: activate it to connect your site.',
                );
            }
        }
        $forClient = $details !== ''
            && strpos($details, ModuleError::PREFIX) !== 0
            && strpos($details, Messages::ACTIVATION_PREFIX) !== 0;
        return array(
            'jetpackActivationUrl' => '',
            'jetpackMessage' => $forClient ? $details : Messages::CLIENT_WAITING,
        );
    }

    /**
     * @param string $state
     *
     * @return string
     */
    private static function stateLabel($state)
    {
        switch ($state) {
            case 'waiting_dns':
                return 'waiting for the domain to resolve (re-checked automatically)';
            case 'failed':
                return 'failed (fix the cause, then use "Retry Jetpack Job" or Module Queue → Retry)';
            case 'cancelled':
                return 'cancelled';
            default:
                return (string) $state;
        }
    }

    /**
     * @return string e.g. "2 of 8", "3 (budget: the worker's JETPACK_MAX_ATTEMPTS)"
     */
    private static function attempts($job)
    {
        $text = (int) $job->attempts . ($job->max_attempts === null
            ? ' (budget: the worker\'s JETPACK_MAX_ATTEMPTS)'
            : ' of ' . (int) $job->max_attempts);
        if ((int) $job->dns_checks > 0) {
            $text .= '; DNS re-checks: ' . (int) $job->dns_checks;
        }
        return $text;
    }

    /**
     * @return string when the job runs next, by the database clock
     */
    private static function nextAttempt($job)
    {
        $at = self::utc($job->run_at);
        switch ($job->state) {
            case 'queued':
                return $at . ' (' . self::relative((int) $job->due_in) . ')';
            case 'waiting_dns':
                return 'next DNS check ' . $at . ' (' . self::relative((int) $job->due_in) . ')';
            case 'running':
                return 'running now (lease until ' . self::utc($job->lease_expires_at) . ')';
            default:
                return 'none (finished ' . self::utc($job->finished_at) . ')';
        }
    }

    /**
     * "2026-11-24 10:15:00 UTC" from a DATETIME(6) value.
     */
    private static function utc($datetime)
    {
        if ($datetime === null || $datetime === '') {
            return self::NONE;
        }
        return substr((string) $datetime, 0, 19) . ' UTC';
    }

    /**
     * "now", "in 45 s", "in 3 min", "in 2 h 5 min", "in 3 days".
     *
     * @param int $seconds until the time (<= 0: due)
     */
    private static function relative($seconds)
    {
        if ($seconds <= 0) {
            return 'due now';
        }
        if ($seconds < 60) {
            return 'in ' . $seconds . ' s';
        }
        if ($seconds < 3600) {
            return 'in ' . intdiv($seconds, 60) . ' min';
        }
        if ($seconds < 86400) {
            return 'in ' . intdiv($seconds, 3600) . ' h ' . intdiv($seconds % 3600, 60) . ' min';
        }
        return 'in ' . intdiv($seconds, 86400) . ' days';
    }
}
