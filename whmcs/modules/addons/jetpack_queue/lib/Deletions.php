<?php
/**
 * The page's "Deleted services" section (issue 21): the plans of deleted services and addons
 * waiting out the deletion grace period before jetpack-worker cancels them (the terminate a
 * `deleted` request queued, mod_jetpack_jobs.grace_until in the future), each with its target,
 * client, site, plan and when it is cancelled, and two buttons: **Cancel now** and **Keep the
 * plan**. Each RECORDS one request (`cancel_now`, `keep_plan`; requested_by 'admin', with the
 * client) through the server module's Requests::record; jetpack-worker decides
 * (src/lifecycle_deleted.rs: both act only on a terminate still in its grace period, so a stale
 * page changes nothing else). Nothing here writes a job or the ledger.
 *
 * Reads by index only: the jobs by KEY grace (grace_until), the ledger by its UNIQUE
 * (service_id, addon_id, site_hash) prefix, the requests by KEY service (service_id, id).
 */

namespace WHMCS\Module\Addon\JetpackQueue;

use WHMCS\Database\Capsule;
use WHMCS\Module\Server\Jetpack\Escape;
use WHMCS\Module\Server\Jetpack\Requests;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

class Deletions
{
    /** At most this many are listed (soonest cancel first). */
    const SHOWN = 100;

    /** The job state of a terminate waiting out its grace period. */
    const WAITING = 'queued';

    /**
     * The terminates of deleted targets still in their grace period, soonest first, each with
     * `sites` (the ledger's site => plan) and `client` (the client the deletion named, or
     * null); null when the worker's tables predate the grace period (an older jetpack-worker).
     *
     * @return array|null rows: id, service_id, addon_id, grace_until, due_in, sites, client
     */
    public static function pending()
    {
        try {
            $rows = Capsule::select(
                'SELECT id, service_id, addon_id, grace_until,
                        TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(6), grace_until) AS due_in
                 FROM ' . Requests::JOBS . ' WHERE grace_until > UTC_TIMESTAMP(6) AND state = ?
                 ORDER BY grace_until, id LIMIT ' . self::SHOWN,
                array(self::WAITING)
            );
        } catch (\Exception $e) {
            if (self::isMissingColumn($e)) {
                return null;
            }
            throw $e;
        }
        if (count($rows) === 0) {
            return array();
        }
        $services = array_values(array_unique(array_map(function ($r) {
            return (int) $r->service_id;
        }, $rows)));
        $sites = self::ledger($services);
        $clients = self::clients($services);
        foreach ($rows as $r) {
            $key = (int) $r->service_id . ':' . (int) $r->addon_id;
            $r->sites = isset($sites[$key]) ? $sites[$key] : array();
            $r->client = self::clientOf($clients, $r->service_id, $r->addon_id);
        }
        return $rows;
    }

    /**
     * The target of a job still in its grace period, or null (it ran, runs, was kept or made
     * due): array(service_id, addon_id, client or null).
     *
     * @param int $jobId mod_jetpack_jobs.id
     *
     * @return array|null
     */
    public static function waiting($jobId)
    {
        $job = Capsule::table(Requests::JOBS)
            ->where('id', (int) $jobId)
            ->where('state', self::WAITING)
            ->where('grace_until', '>', Capsule::raw('UTC_TIMESTAMP(6)'))
            ->first(array('service_id', 'addon_id'));
        if ($job === null) {
            return null;
        }
        $client = self::clientOf(self::clients(array((int) $job->service_id)), $job->service_id, $job->addon_id);
        return array((int) $job->service_id, (int) $job->addon_id, $client);
    }

    /**
     * Cancel now or Keep the plan of the job's target (`jq_action` cancel_now / keep_plan,
     * `job`): one request, recorded only while the job is in its grace period.
     *
     * @param string $action 'cancel_now' or 'keep_plan'
     * @param array  $post   $_POST
     *
     * @return array ok => bool, message => text
     */
    public static function choose($action, array $post)
    {
        $id = isset($post['job']) ? (string) $post['job'] : '';
        $target = ctype_digit($id) ? self::waiting((int) $id) : null;
        if ($target === null) {
            return array('ok' => true, 'message' => 'Nothing to do: job #' . (int) $id . ' no longer waits for its '
                . 'grace period (it ran, was kept, or was made due already).');
        }
        list($serviceId, $addonId, $client) = $target;
        $keep = $action === 'keep_plan';
        $requestId = Requests::record($serviceId, $keep ? Requests::KEEP_PLAN : Requests::CANCEL_NOW,
            Requests::BY_ADMIN, $addonId, $client);
        $named = ($addonId > 0 ? 'addon ' . $addonId . ' on ' : '') . 'service ' . $serviceId;
        if (function_exists('logActivity')) {
            logActivity('Jetpack Provisioning Queue: ' . ($keep ? 'Keep the plan' : 'Cancel now') . ' requested for deleted '
                . $named . ' (request #' . $requestId . ')', $client === null ? 0 : $client);
        }
        return array('ok' => true, 'message' => $keep
            ? 'Keep the plan requested for deleted ' . $named . ': jetpack-worker withdraws its cancel within seconds; '
                . 'the plan stays at the partner.'
            : 'Cancel now requested for deleted ' . $named . ': jetpack-worker cancels its plan within seconds.');
    }

    /**
     * The section.
     *
     * @param array|null $rows what pending() returned
     * @param string     $here the page's URL (HTML-escaped)
     * @param string     $link the module's link (for the job pages)
     */
    public static function section($rows, $here, $link)
    {
        $out = '<h2 id="jq-deletions-title">Deleted services</h2>';
        if ($rows === null) {
            return $out . '<p id="jq-deletions-none">The grace period on delete needs a newer jetpack-worker (its '
                . '<code>migrate</code> adds it).</p>';
        }
        $out .= '<p>jetpack-worker cancels the plan of a service or addon deleted in WHMCS once the grace period '
            . '(<code>JETPACK_DELETE_GRACE</code>, a day by default) has passed. Until then: <strong>Cancel now</strong>, '
            . 'or <strong>Keep the plan</strong> (it stays at the partner, and nothing cancels it later).</p>';
        if (count($rows) === 0) {
            return $out . '<p id="jq-deletions-empty">No deleted service\'s plan is waiting to be cancelled.</p>';
        }
        $out .= '<table class="table" id="jq-deletions"><tr><th>Job</th><th>Target</th><th>Client</th><th>Site</th>'
            . '<th>Plan</th><th>Cancelled at</th><th></th></tr>';
        foreach ($rows as $r) {
            $out .= '<tr data-deletion="' . (int) $r->id . '"><td><a href="' . Html::link($link, array('job' => $r->id)) . '">#'
                . (int) $r->id . '</a></td><td>' . self::target($r) . '</td><td>' . ($r->client === null ? '—'
                : '<a href="' . Escape::html5('clientssummary.php?userid=' . (int) $r->client) . '">#' . (int) $r->client . '</a>')
                . '</td><td>' . self::cell(array_keys($r->sites)) . '</td><td>' . self::cell(array_values($r->sites)) . '</td><td>'
                . Html::utc($r->grace_until) . ' (in ' . self::hours((int) $r->due_in) . ')</td><td>'
                . self::button($here, 'cancel_now', $r->id, 'Cancel now', 'btn-danger') . ' '
                . self::button($here, 'keep_plan', $r->id, 'Keep the plan', 'btn-success') . '</td></tr>';
        }
        return $out . '</table>';
    }

    private static function button($here, $action, $jobId, $label, $class)
    {
        return '<form method="post" action="' . $here . '" class="jq-inline">' . Actions::tokenField()
            . '<input type="hidden" name="jq_action" value="' . Escape::html5($action) . '">'
            . '<input type="hidden" name="job" value="' . (int) $jobId . '">'
            . '<button type="submit" class="btn ' . $class . ' btn-xs jq-' . Escape::html5($action) . '">'
            . Escape::html5($label) . '</button></form>';
    }

    /**
     * "Service #12 (deleted)" or "Addon #5 on service #12 (deleted)": no link, the rows are gone.
     */
    private static function target($row)
    {
        return ((int) $row->addon_id > 0 ? 'Addon #' . (int) $row->addon_id . ' on service #' : 'Service #')
            . (int) $row->service_id . ' (deleted)';
    }

    private static function cell(array $values)
    {
        return count($values) === 0 ? '—' : Escape::html5(implode(', ', $values));
    }

    private static function hours($seconds)
    {
        $seconds = max(0, (int) $seconds);
        return $seconds < 3600 ? intdiv($seconds + 59, 60) . ' min' : intdiv($seconds, 3600) . ' h ' . intdiv($seconds % 3600, 60) . ' min';
    }

    /**
     * The ledger's sites and plans of these services' targets (UNIQUE prefix service_id).
     *
     * @param int[] $services
     *
     * @return array "service_id:addon_id" => array(site => plan)
     */
    private static function ledger(array $services)
    {
        $out = array();
        foreach (Capsule::select(
            'SELECT service_id, addon_id, site, plan FROM ' . Requests::LEDGER . ' WHERE service_id IN ('
            . implode(',', array_fill(0, count($services), '?')) . ') ORDER BY id',
            $services
        ) as $l) {
            $out[(int) $l->service_id . ':' . (int) $l->addon_id][(string) $l->site] = (string) $l->plan;
        }
        return $out;
    }

    /**
     * The client of each target: the one its latest deletion named (KEY service (service_id,
     * id)), else, for an addon deleted on its own (the sweep names none), its parent service's
     * (tblhosting by PRIMARY), under the key "service_id:0" and each addon's.
     *
     * @param int[] $services
     *
     * @return array "service_id:addon_id" => client id; "service_id:*" => the parent's client
     */
    private static function clients(array $services)
    {
        $out = array();
        foreach (Capsule::select(
            'SELECT id, userid FROM tblhosting WHERE id IN (' . implode(',', array_fill(0, count($services), '?')) . ')',
            $services
        ) as $h) {
            $out[(int) $h->id . ':*'] = (int) $h->userid;
        }
        foreach (Capsule::select(
            'SELECT service_id, addon_id, client_id FROM ' . Requests::TABLE . ' WHERE service_id IN ('
            . implode(',', array_fill(0, count($services), '?')) . ') AND action = ? AND client_id IS NOT NULL ORDER BY id',
            array_merge($services, array(Requests::DELETED))
        ) as $r) {
            $out[(int) $r->service_id . ':' . (int) $r->addon_id] = (int) $r->client_id;
        }
        return $out;
    }

    /**
     * A target's client from clients(): the deletion's, else its (parent) service's; null.
     */
    private static function clientOf(array $clients, $serviceId, $addonId)
    {
        $key = (int) $serviceId . ':' . (int) $addonId;
        if (isset($clients[$key])) {
            return $clients[$key];
        }
        return isset($clients[(int) $serviceId . ':*']) ? $clients[(int) $serviceId . ':*'] : null;
    }

    /**
     * Whether a query failed on a column an older jetpack-worker's tables lack (1054).
     */
    private static function isMissingColumn(\Exception $e)
    {
        $info = $e instanceof \PDOException && is_array($e->errorInfo) ? $e->errorInfo
            : ($e->getPrevious() instanceof \PDOException && is_array($e->getPrevious()->errorInfo)
                ? $e->getPrevious()->errorInfo : array());
        return (isset($info[1]) && (int) $info[1] === 1054) || strpos($e->getMessage(), '1054') !== false;
    }
}
