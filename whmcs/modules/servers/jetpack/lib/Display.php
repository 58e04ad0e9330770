<?php
/**
 * What admins and clients see: the job fields of the admin "Products/Services" tab and the
 * client area's activation link or waiting message. Everything returned for the admin tab is
 * HTML (WHMCS prints it as it is), so every stored value is escaped here.
 */

namespace WHMCS\Module\Server\Jetpack;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

class Display
{
    const NONE = '—';

    /**
     * The admin tab fields for the service's latest job.
     *
     * @param object|null $job what JobQueue::latest() returned
     *
     * @return array label => HTML
     */
    public static function adminFields($job)
    {
        if ($job === null) {
            return array(
                'Jetpack Job' => 'none yet: Create queues the provisioning for jetpack-worker',
            );
        }
        $summary = '#' . (int) $job->id . ' ' . $job->action . ': ' . self::stateLabel($job->state)
            . ' (requested by ' . $job->requested_by . ')';
        if ($job->follow_up !== null && $job->follow_up !== '') {
            $summary .= '; then ' . $job->follow_up;
        }
        $fields = array(
            'Jetpack Job' => ModuleError::escape($summary),
            'Jetpack Attempts' => ModuleError::escape(self::attempts($job)),
            'Jetpack Next Attempt' => ModuleError::escape(self::nextAttempt($job)),
            'Jetpack Last Error' => $job->last_error === null || $job->last_error === ''
                ? self::NONE
                : ModuleError::escape($job->last_error),
        );
        if ($job->result !== null && $job->result !== '') {
            $fields['Jetpack Result'] = ModuleError::escape($job->result);
        }
        return $fields;
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
