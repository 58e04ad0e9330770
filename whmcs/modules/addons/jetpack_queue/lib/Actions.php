<?php
/**
 * The dashboard's state-changing actions: Record the key / Issue another licence for a licence
 * waiting for an admin (LicenceSection::handle, requests through the server module), Retry (one failed job's, the selected ones, or every
 * failed one in batches of Queries::RETRY_BATCH, the page continuing with the next batch so
 * thousands fit WHMCS's request time) and Hold / Resume of a partner account. Retry RECORDS one 'retry' request per
 * target (a service, or a product addon: the request carries the job's addon_id; requested_by
 * 'admin') through the server module's Requests::record, the same path as the "Retry Jetpack
 * Job" button; jetpack-worker applies it with its rules
 * (src/lifecycle.rs: a retry requeues the latest job only when it failed, so a service that was
 * terminated or provisioned meanwhile is left alone). Nothing here writes a job.
 *
 * There is no "cancel" of a job: a terminate is not a cancel (it removes the plan at the
 * partner). The one exception is a deleted service's plan waiting out its grace period:
 * Cancel now and Keep the plan (Deletions::choose) record `cancel_now` / `keep_plan` requests,
 * which the worker applies only to a terminate still in its grace period. The dashboard does
 * not change job states itself.
 *
 * Hold / Resume write mod_jetpack_holds only (the partner Client ID, who, why): the worker
 * reads the held accounts once per poll and leaves their jobs queued, with no partner call
 * and no attempt counted, until the hold is removed (src/worker/holds.rs).
 *
 * Every action is a POST carrying WHMCS's CSRF token (generate_token('plain') in the form,
 * compared here in constant time); anything else is refused before a query runs.
 */

namespace WHMCS\Module\Addon\JetpackQueue;

use WHMCS\Module\Server\Jetpack\Escape;
use WHMCS\Module\Server\Jetpack\Requests;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

class Actions
{
    /**
     * @param string $method the request method
     * @param array  $post   $_POST
     *
     * @return array|null null when nothing was asked; else array(ok => bool, message => text,
     *                    and for a full batch of "Retry all", continue => array(after, done))
     */
    public static function handle($method, array $post)
    {
        if (!isset($post['jq_action'])) {
            return null;
        }
        if (strtoupper((string) $method) !== 'POST') {
            return array('ok' => false, 'message' => 'Refused: actions must be sent as a POST.');
        }
        if (!self::tokenValid(isset($post['token']) ? $post['token'] : null)) {
            return array('ok' => false, 'message' => 'Refused: the security token is missing or invalid. Reload the page and try again.');
        }
        switch ((string) $post['jq_action']) {
            case 'retry_selected':
                $ids = isset($post['jobs']) && is_array($post['jobs']) ? $post['jobs'] : array();
                $ids = array_filter($ids, function ($v) {
                    return is_string($v) && ctype_digit($v) || is_int($v);
                });
                return self::retry(Queries::failedTargets(array_values($ids)));
            case 'retry_job':
                $id = isset($post['job']) ? (string) $post['job'] : '';
                return self::retry(ctype_digit($id) ? Queries::failedTargets(array((int) $id)) : array());
            case 'retry_all':
                return self::retryBatch($post);
            case 'hold':
            case 'resume':
                return self::holdOrResume((string) $post['jq_action'], $post);
            case 'cancel_now':
            case 'keep_plan':
                return Deletions::choose((string) $post['jq_action'], $post);
            case LicenceSection::RECORD:
            case LicenceSection::REISSUE:
                return LicenceSection::handle((string) $post['jq_action'], $post);
            default:
                return array('ok' => false, 'message' => 'Refused: unknown action.');
        }
    }

    /**
     * "Retry all failed": one batch of Queries::RETRY_BATCH targets after the one the previous
     * batch ended at (`after_service`, `after_addon`); when a full batch was recorded, the
     * flash carries where the next one starts (`continue`), and the page submits it.
     */
    private static function retryBatch(array $post)
    {
        $after = null;
        if (isset($post['after_service'], $post['after_addon']) && ctype_digit((string) $post['after_service'])
            && ctype_digit((string) $post['after_addon'])) {
            $after = array((int) $post['after_service'], (int) $post['after_addon']);
        }
        $targets = Queries::failedTargets(null, $after, Queries::RETRY_BATCH);
        $done = isset($post['done']) && ctype_digit((string) $post['done']) ? (int) $post['done'] : 0;
        $flash = self::retry($targets);
        if (!$flash['ok'] || count($targets) < Queries::RETRY_BATCH) {
            if ($done > 0 && $flash['ok']) {
                $flash['message'] = 'Retry requested for ' . ($done + count($targets)) . ' in all (batches of '
                    . Queries::RETRY_BATCH . '); this last batch: ' . $flash['message'];
            }
            return $flash;
        }
        $flash['continue'] = array('after' => end($targets), 'done' => $done + count($targets));
        $flash['message'] .= ' Continuing with the next ' . Queries::RETRY_BATCH . '…';
        return $flash;
    }

    /**
     * Hold or Resume; without mod_jetpack_holds (an older jetpack-worker) one clear refusal.
     */
    private static function holdOrResume($action, array $post)
    {
        try {
            return $action === 'hold' ? self::hold($post) : self::resume($post);
        } catch (\Exception $e) {
            if (!Queries::isMissingTable($e)) {
                throw $e;
            }
            return array('ok' => false, 'message' => 'Refused: Hold / Resume needs a newer jetpack-worker '
                . '(mod_jetpack_holds is missing; its `migrate` creates it).');
        }
    }

    /**
     * Holds a partner account (`account`: a product's or addon's Client ID; `reason`).
     */
    private static function hold(array $post)
    {
        $account = isset($post['account']) && is_string($post['account']) ? trim($post['account']) : '';
        $reason = isset($post['reason']) && is_string($post['reason']) ? trim($post['reason']) : '';
        if ($account === '' || mb_strlen($account, 'UTF-8') > 191) {
            return array('ok' => false, 'message' => 'Refused: name the partner account by its Client ID (up to 191 characters).');
        }
        Queries::hold($account, self::admin(), mb_substr($reason, 0, 500, 'UTF-8'));
        if (function_exists('logActivity')) {
            logActivity('Jetpack Provisioning Queue: partner account ' . $account . ' put on hold'
                . ($reason === '' ? '' : ': ' . $reason));
        }
        return array('ok' => true, 'message' => 'Partner account ' . $account . ' is on hold: jetpack-worker leaves its jobs '
            . 'queued (no partner call, no attempt counted) from its next poll until you resume it.');
    }

    /**
     * Resumes a partner account (`account`): its hold is removed.
     */
    private static function resume(array $post)
    {
        $account = isset($post['account']) && is_string($post['account']) ? $post['account'] : '';
        if (!Queries::resume($account)) {
            return array('ok' => true, 'message' => 'Partner account ' . $account . ' was not on hold.');
        }
        if (function_exists('logActivity')) {
            logActivity('Jetpack Provisioning Queue: partner account ' . $account . ' resumed');
        }
        return array('ok' => true, 'message' => 'Partner account ' . $account . ' resumed: jetpack-worker runs its '
            . 'queued jobs again, in their order, within seconds.');
    }

    /**
     * Who holds: "admin:<id>" for the logged-in WHMCS admin, else "admin".
     */
    private static function admin()
    {
        return isset($_SESSION['adminid']) && ctype_digit((string) $_SESSION['adminid'])
            ? 'admin:' . (int) $_SESSION['adminid'] : 'admin';
    }

    /**
     * @param array $targets array(service_id, addon_id) each, from Queries::failedTargets()
     */
    private static function retry(array $targets)
    {
        $done = 0;
        try {
            foreach ($targets as $target) {
                Requests::record($target[0], Requests::RETRY, Requests::BY_ADMIN, $target[1]);
                $done++;
            }
        } catch (\PDOException $e) {
            $said = isset($e->errorInfo[2]) ? (string) $e->errorInfo[2] : 'database error';
            return array('ok' => false, 'message' => 'Retry requested for ' . $done . ' of '
                . self::count($targets) . ', then the database refused: ' . $said
                . '. Press Retry again for the rest (a repeated retry is harmless).');
        }
        if (count($targets) === 0) {
            return array('ok' => true, 'message' => 'Nothing to retry: no selected service or addon has a failed latest job.');
        }
        if (function_exists('logActivity')) {
            $named = array();
            foreach (array_slice($targets, 0, 50) as $target) {
                $named[] = $target[1] > 0 ? 'addon ' . $target[1] . ' on service ' . $target[0] : (string) $target[0];
            }
            logActivity('Jetpack Provisioning Queue: retry requested for ' . self::count($targets) . ': ' . implode(', ', $named));
        }
        return array('ok' => true, 'message' => 'Retry requested for ' . self::count($targets)
            . '; jetpack-worker applies the requests with its rules within seconds.');
    }

    /**
     * "2 services", "1 addon", "2 services and 1 addon".
     *
     * @param array $targets array(service_id, addon_id) each
     *
     * @return string
     */
    private static function count(array $targets)
    {
        $addons = 0;
        foreach ($targets as $target) {
            if ($target[1] > 0) {
                $addons++;
            }
        }
        $services = count($targets) - $addons;
        $parts = array();
        if ($services > 0 || $addons === 0) {
            $parts[] = $services . ' service' . ($services === 1 ? '' : 's');
        }
        if ($addons > 0) {
            $parts[] = $addons . ' addon' . ($addons === 1 ? '' : 's');
        }
        return implode(' and ', $parts);
    }

    /**
     * WHMCS's admin-area CSRF token (generate_token('plain') is the session's token).
     * Without WHMCS's token function every action is refused.
     */
    public static function tokenValid($posted)
    {
        if (!is_string($posted) || $posted === '' || !function_exists('generate_token')) {
            return false;
        }
        $expected = (string) generate_token('plain');
        return $expected !== '' && hash_equals($expected, $posted);
    }

    /**
     * The hidden token field for a form.
     */
    public static function tokenField()
    {
        $token = function_exists('generate_token') ? (string) generate_token('plain') : '';
        return '<input type="hidden" name="token" value="' . Escape::html5($token) . '">';
    }
}
