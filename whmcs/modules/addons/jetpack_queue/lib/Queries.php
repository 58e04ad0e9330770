<?php
/**
 * Every read the queue dashboard makes, each one through an index of the worker's tables
 * (migrations/*.sql) or of WHMCS's (whmcs-8 fixture):
 *
 *  - counts by state:         mod_jetpack_jobs KEY state_run_at (state, run_at, id), covering
 *  - oldest due queued job:   state_run_at, ref state='queued', run_at range, first row
 *  - job list (keyset):       PRIMARY (id < ? ORDER BY id DESC LIMIT n), or KEY service
 *                             (service_id, id) when a search names services
 *  - a job's history:         PRIMARY; KEY service (service_id, id) for its target's jobs
 *                             (addon_id = the job's); requests KEY service likewise; its
 *                             licences mod_jetpack_licences KEY target; an
 *                             addon's row, definition and fields by primary key / KEY serviceid
 *  - failures by reason:      state_run_at, ref state='failed' (the latest REASON_SAMPLE)
 *  - waiting on DNS:          state_run_at, ref state='waiting_dns' ordered by run_at
 *  - outcomes per hour:       KEY finished (finished_at) range over the last day; requests
 *                             KEY unapplied (applied_at, id); state_run_at for DNS waits
 *  - workers:                 mod_jetpack_workers KEY seen (last_seen_at)
 *  - drifts (keyset):         mod_jetpack_drift KEY created (created_at, id) read backwards;
 *                             a page's start by PRIMARY
 *  - watched sites:           mod_jetpack_watch KEY site (site_hash), COUNT(DISTINCT)
 *  - sites seen drifting:     no index has `seen`: the next WATCH_SAMPLE rows by KEY due
 *                             (next_check_at), so the read stays bounded (exact below that)
 *  - the site of a list's rows: tblcustomfieldsvalues KEY fieldid_relid (the page's services'
 *                             and addons' Site URL fields, relid IN the page's ids);
 *                             tblhostingaddons PRIMARY; tblcustomfields by (type, relid)
 *  - holds:                   mod_jetpack_holds PRIMARY (account), a handful of rows
 *  - search:                  tblhosting KEY userid / domain(64) / PRIMARY; tblclients KEY
 *                             email(64) / firstname_lastname; tblcustomfieldsvalues KEY
 *                             fieldid_relid (Site URL fields only)
 *
 * A job's target is a service (addon_id = 0) or a product addon on it (addon_id =
 * tblhostingaddons.id, service_id = its parent): lists show which, and a retry names it.
 *
 * Written here (the dashboard's only writes besides the requests): mod_jetpack_holds, the
 * partner accounts on hold (the worker reads them and decides).
 *
 * Never read here: tblproducts.configoption* or tblmodule_configuration (the partner
 * credentials) or any other secret.
 * Every value is bound (query builder or ? placeholders). Times are UTC (UTC_TIMESTAMP(6)).
 */

namespace WHMCS\Module\Addon\JetpackQueue;

use WHMCS\Database\Capsule;
use WHMCS\Module\Server\Jetpack\Catalogue;
use WHMCS\Module\Server\Jetpack\Licences;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

class Queries
{
    const JOBS = 'mod_jetpack_jobs';
    const REQUESTS = 'mod_jetpack_requests';
    const WORKERS = 'mod_jetpack_workers';
    const DRIFT = 'mod_jetpack_drift';
    const WATCH = 'mod_jetpack_watch';
    const HOLDS = 'mod_jetpack_holds';

    /** "Retry all failed" records at most this many requests per page request (WHMCS's request time). */
    const RETRY_BATCH = 500;

    /** Jobs per page of the list. */
    const PAGE = 50;

    /** A search matches at most this many services (the IN list stays small). */
    const SEARCH_LIMIT = 500;

    /** Failures by reason: the latest this many failed jobs are grouped. */
    const REASON_SAMPLE = 5000;

    /** A worker not seen for this long is not running. */
    const WORKER_SILENCE = 120;

    /** Drifts per page of the drift list. */
    const DRIFT_PAGE = 20;

    /** Sites seen drifting are counted among at most this many watched rows (next due first). */
    const WATCH_SAMPLE = 20000;

    /** The window a plan may wait on DNS (the worker's rule: 14 days from waiting_since). */
    const DNS_WINDOW_DAYS = 14;

    /**
     * @return array state => count (every state, 0 when none)
     */
    public static function counts()
    {
        $counts = array_fill_keys(Catalogue::lists('job_states'), 0);
        $rows = Capsule::select('SELECT state, COUNT(*) AS n FROM ' . self::JOBS . ' GROUP BY state');
        foreach ($rows as $row) {
            $counts[$row->state] = (int) $row->n;
        }
        return $counts;
    }

    /**
     * @return int requests jetpack-worker has not applied yet (KEY unapplied (applied_at, id))
     */
    public static function pendingRequests()
    {
        return (int) Capsule::selectOne(
            'SELECT COUNT(*) AS n FROM ' . self::REQUESTS . ' WHERE applied_at IS NULL'
        )->n;
    }

    /**
     * @return object|null the queued job due longest ago (id, service_id, addon_id, action, run_at, overdue seconds)
     */
    public static function oldestDue()
    {
        $rows = Capsule::select(
            "SELECT id, service_id, addon_id, action, run_at,
                    TIMESTAMPDIFF(SECOND, run_at, UTC_TIMESTAMP(6)) AS overdue
             FROM " . self::JOBS . "
             WHERE state = 'queued' AND run_at <= UTC_TIMESTAMP(6)
             ORDER BY run_at, id LIMIT 1"
        );
        return count($rows) === 0 ? null : $rows[0];
    }

    /**
     * The jetpack products (id and name only: never configoption*).
     *
     * @return array id => name
     */
    public static function products()
    {
        $out = array();
        foreach (Capsule::table('tblproducts')->where('servertype', 'jetpack')->orderBy('id')
                     ->get(array('id', 'name')) as $row) {
            $out[(int) $row->id] = (string) $row->name;
        }
        return $out;
    }

    /**
     * One page of jobs, newest first, by keyset: WHERE id < $before ORDER BY id DESC LIMIT n.
     *
     * @param array    $filter state, action, product, date (YYYY-MM-DD, created that UTC day),
     *                         q, in (service | client | domain | site)
     * @param int|null $before the last id of the previous page (null: the first page)
     *
     * @return array rows (id, service_id, addon_id, action, state, attempts, max_attempts, run_at,
     *               last_error, created_at, updated_at, finished_at, userid, domain,
     *               packageid) and 'next' (the id to pass as $before, null on the last page)
     */
    public static function jobs(array $filter, $before = null, $limit = self::PAGE)
    {
        $services = self::searchServices($filter);
        if ($services !== null && count($services) === 0) {
            return array('rows' => array(), 'next' => null);
        }
        $where = array();
        $bind = array();
        if ($before !== null) {
            $where[] = 'j.id < ?';
            $bind[] = (int) $before;
        }
        if (isset($filter['state']) && in_array($filter['state'], Catalogue::lists('job_states'), true)) {
            $where[] = 'j.state = ?';
            $bind[] = $filter['state'];
        }
        if (isset($filter['action']) && in_array($filter['action'], Catalogue::actionNames(), true)) {
            $where[] = 'j.action = ?';
            $bind[] = $filter['action'];
        }
        if (isset($filter['date']) && self::validDate($filter['date'])) {
            $where[] = 'j.created_at >= ? AND j.created_at < ? + INTERVAL 1 DAY';
            $bind[] = $filter['date'] . ' 00:00:00';
            $bind[] = $filter['date'] . ' 00:00:00';
        }
        if (isset($filter['product']) && ctype_digit((string) $filter['product'])) {
            // A product's jobs are its services' own (an addon on such a service is not the product's).
            $where[] = 'j.addon_id = 0 AND h.packageid = ?';
            $bind[] = (int) $filter['product'];
        }
        if ($services !== null) {
            $where[] = 'j.service_id IN (' . implode(',', array_fill(0, count($services), '?')) . ')';
            $bind = array_merge($bind, $services);
        }
        $sql = 'SELECT j.id, j.service_id, j.addon_id, j.action, j.state, j.attempts, j.max_attempts, j.run_at,
                       j.last_error, j.created_at, j.updated_at, j.finished_at,
                       h.userid, h.domain, h.packageid
                FROM ' . self::JOBS . ' j
                LEFT JOIN tblhosting h ON h.id = j.service_id'
            . (count($where) > 0 ? ' WHERE ' . implode(' AND ', $where) : '')
            . ' ORDER BY j.id DESC LIMIT ' . ((int) $limit + 1);
        $rows = Capsule::select($sql, $bind);
        $next = null;
        if (count($rows) > $limit) {
            array_pop($rows);
            $next = (int) end($rows)->id;
        }
        return array('rows' => $rows, 'next' => $next);
    }

    /**
     * The services a search names, or null when there is no search.
     *
     * @return int[]|null
     */
    public static function searchServices(array $filter)
    {
        $q = isset($filter['q']) ? trim((string) $filter['q']) : '';
        if ($q === '') {
            return null;
        }
        $in = isset($filter['in']) ? (string) $filter['in'] : 'service';
        $limit = self::SEARCH_LIMIT;
        $like = self::likePrefix($q);
        switch ($in) {
            case 'client':
                if (ctype_digit($q)) {
                    $clients = array((int) $q);
                } else {
                    $clients = array();
                    foreach (Capsule::select(
                        "SELECT id FROM tblclients WHERE email LIKE ? LIMIT $limit", array($like)
                    ) as $r) {
                        $clients[] = (int) $r->id;
                    }
                    foreach (Capsule::select(
                        "SELECT id FROM tblclients WHERE firstname LIKE ? LIMIT $limit", array($like)
                    ) as $r) {
                        $clients[] = (int) $r->id;
                    }
                    $clients = array_values(array_unique($clients));
                }
                if (count($clients) === 0) {
                    return array();
                }
                $rows = Capsule::select(
                    // FORCE INDEX: with ORDER BY id … LIMIT the optimizer may walk the
                    // primary key back over every service instead.
                    'SELECT id FROM tblhosting FORCE INDEX (userid) WHERE userid IN ('
                    . implode(',', array_fill(0, count($clients), '?')) . ") ORDER BY id DESC LIMIT $limit",
                    $clients
                );
                break;
            case 'domain':
                $rows = Capsule::select(
                    "SELECT id FROM tblhosting FORCE INDEX (domain) WHERE domain LIKE ? ORDER BY id DESC LIMIT $limit",
                    array($like)
                );
                break;
            case 'site':
                $fields = self::siteUrlFields();
                if (count($fields) === 0) {
                    return array();
                }
                $rows = Capsule::select(
                    'SELECT relid AS id FROM tblcustomfieldsvalues WHERE fieldid IN ('
                    . implode(',', array_fill(0, count($fields), '?'))
                    . ") AND value LIKE ? LIMIT $limit",
                    array_merge($fields, array('%' . self::escapeLike($q) . '%'))
                );
                break;
            default:
                return ctype_digit($q) ? array((int) $q) : array();
        }
        $ids = array();
        foreach ($rows as $r) {
            $ids[] = (int) $r->id;
        }
        return array_values(array_unique($ids));
    }

    /**
     * The Site URL custom fields of the jetpack products.
     *
     * @return int[] tblcustomfields.id
     */
    private static function siteUrlFields()
    {
        $ids = array();
        foreach (Capsule::select(
            "SELECT f.id, f.fieldname FROM tblproducts p
             JOIN tblcustomfields f ON f.relid = p.id AND f.type = 'product'
             WHERE p.servertype = 'jetpack'"
        ) as $f) {
            if (strcasecmp(trim(explode('|', $f->fieldname, 2)[0]), 'Site URL') === 0) {
                $ids[] = (int) $f->id;
            }
        }
        return $ids;
    }

    /**
     * One job with what the page shows beside it: its target (the service, or the addon and its
     * parent service; no secrets), the product's (or addon's) name, the client's name, the Site
     * URL (an addon without one: the parent's domain), all the target's jobs and its latest
     * requests.
     *
     * @return array|null job, service, addon (tblhostingaddons row or null), product, client,
     *                    site, jobs, requests, licences (Licences::ofTarget)
     */
    public static function job($id)
    {
        $job = Capsule::table(self::JOBS)->where('id', (int) $id)->first(array(
            'id', 'service_id', 'addon_id', 'action', 'state', 'attempts', 'max_attempts', 'dns_checks', 'run_at',
            'lease_owner', 'lease_expires_at', 'reclaims', 'outcome_unknown', 'waiting_since',
            'follow_up', 'last_error', 'result', 'requested_by', 'created_at', 'updated_at', 'finished_at',
        ));
        if ($job === null) {
            return null;
        }
        $addonId = (int) $job->addon_id;
        $service = Capsule::table('tblhosting')->where('id', (int) $job->service_id)
            ->first(array('id', 'userid', 'packageid', 'domain', 'domainstatus'));
        $addon = null;
        $product = null;
        $client = null;
        $site = null;
        if ($addonId > 0) {
            $addon = Capsule::table('tblhostingaddons')->where('id', $addonId)
                ->first(array('id', 'hostingid', 'addonid', 'status'));
            if ($addon !== null) {
                $product = Capsule::table('tbladdons')->where('id', (int) $addon->addonid)->value('name');
                $fields = self::siteUrlFieldsOf('addon', (int) $addon->addonid);
                if (count($fields) > 0) {
                    $site = Capsule::table('tblcustomfieldsvalues')->whereIn('fieldid', $fields)
                        ->where('relid', $addonId)->orderBy('id')->value('value');
                }
            }
            if (($site === null || trim((string) $site) === '') && $service !== null && trim((string) $service->domain) !== '') {
                $site = $service->domain;
            }
        } elseif ($service !== null) {
            $product = Capsule::table('tblproducts')->where('id', (int) $service->packageid)->value('name');
            $fields = self::siteUrlFields();
            if (count($fields) > 0) {
                $site = Capsule::table('tblcustomfieldsvalues')->whereIn('fieldid', $fields)
                    ->where('relid', (int) $service->id)->orderBy('id')->value('value');
            }
        }
        if ($service !== null) {
            $client = Capsule::table('tblclients')->where('id', (int) $service->userid)
                ->first(array('id', 'firstname', 'lastname', 'companyname'));
        }
        $jobs = Capsule::select(
            'SELECT id, action, state, attempts, max_attempts, dns_checks, run_at, last_error, result,
                    requested_by, created_at, updated_at, finished_at
             FROM ' . self::JOBS . ' WHERE service_id = ? AND addon_id = ? ORDER BY id DESC LIMIT 50',
            array((int) $job->service_id, $addonId)
        );
        $requests = Capsule::select(
            'SELECT id, action, requested_by, created_at, applied_at, job_id, decision
             FROM ' . self::REQUESTS . ' WHERE service_id = ? AND addon_id = ?
             ORDER BY created_at DESC, id DESC LIMIT 50',
            array((int) $job->service_id, $addonId)
        );
        return array(
            'job' => $job,
            'service' => $service,
            'addon' => $addon,
            'product' => $product,
            'client' => $client,
            'site' => $site,
            'jobs' => $jobs,
            'requests' => $requests,
            'licences' => Licences::ofTarget((int) $job->service_id, $addonId),
        );
    }

    /**
     * The Site URL custom fields of one product or addon.
     *
     * @param string $type  'product' or 'addon'
     * @param int    $relid tblproducts.id or tbladdons.id
     *
     * @return int[] tblcustomfields.id
     */
    private static function siteUrlFieldsOf($type, $relid)
    {
        $ids = array();
        foreach (Capsule::table('tblcustomfields')->where('type', (string) $type)->where('relid', (int) $relid)
                     ->orderBy('id')->get(array('id', 'fieldname')) as $f) {
            if (strcasecmp(trim(explode('|', $f->fieldname, 2)[0]), 'Site URL') === 0) {
                $ids[] = (int) $f->id;
            }
        }
        return $ids;
    }

    /**
     * Failed jobs grouped by their error with the numbers taken out (service ids, HTTP codes,
     * times), most frequent first.
     *
     * @return array of array(reason, count, example (job id), latest (updated_at))
     */
    public static function failureReasons($top = 10)
    {
        $rows = Capsule::select(
            "SELECT id, last_error, updated_at FROM " . self::JOBS . "
             WHERE state = 'failed' ORDER BY run_at DESC, id DESC LIMIT " . self::REASON_SAMPLE
        );
        $groups = array();
        foreach ($rows as $row) {
            $reason = self::normaliseError((string) $row->last_error);
            if (!isset($groups[$reason])) {
                $groups[$reason] = array('reason' => $reason, 'count' => 0, 'example' => (int) $row->id,
                    'latest' => $row->updated_at);
            }
            $groups[$reason]['count']++;
            if ($row->updated_at > $groups[$reason]['latest']) {
                $groups[$reason]['latest'] = $row->updated_at;
                $groups[$reason]['example'] = (int) $row->id;
            }
        }
        usort($groups, function ($a, $b) {
            return $b['count'] <=> $a['count'] ?: strcmp($a['reason'], $b['reason']);
        });
        return array_slice($groups, 0, $top);
    }

    /**
     * An error text with its variable parts made alike: digit runs become "N", whitespace is
     * squeezed, and it is cut at 200 characters.
     */
    public static function normaliseError($error)
    {
        $error = trim($error);
        if ($error === '') {
            return '(no error recorded)';
        }
        $error = preg_replace('/\d+/', 'N', $error);
        $error = preg_replace('/\s+/u', ' ', $error);
        return mb_substr($error, 0, 200, 'UTF-8');
    }

    /**
     * Plans waiting on DNS, next check first.
     *
     * @return array rows: id, service_id, addon_id, dns_checks, run_at (next check), waiting_since,
     *               window_ends (waiting_since + 14 days), userid, domain
     */
    public static function waitingDns($limit = 20)
    {
        return Capsule::select(
            "SELECT j.id, j.service_id, j.addon_id, j.dns_checks, j.run_at, j.waiting_since,
                    j.waiting_since + INTERVAL " . self::DNS_WINDOW_DAYS . " DAY AS window_ends,
                    h.userid, h.domain
             FROM " . self::JOBS . " j LEFT JOIN tblhosting h ON h.id = j.service_id
             WHERE j.state = 'waiting_dns' ORDER BY j.run_at, j.id LIMIT " . (int) $limit
        );
    }

    /**
     * Outcomes per hour over the last 24 hours: done and failed (finished_at), retried (retry
     * requests, by when the worker applied them or, not applied yet, recorded them), and waiting
     * on DNS (plans that started waiting in that hour and still wait).
     *
     * @return array 24 buckets, oldest first: array(hour (UTC 'Y-m-d H:00'), done, failed, retried, waiting_dns)
     */
    public static function outcomesPerHour()
    {
        $now = Capsule::selectOne("SELECT DATE_FORMAT(UTC_TIMESTAMP(), '%Y-%m-%d %H:00:00') AS h")->h;
        $buckets = array();
        $start = strtotime($now . ' UTC') - 23 * 3600;
        for ($i = 0; $i < 24; $i++) {
            $hour = gmdate('Y-m-d H:00', $start + $i * 3600);
            $buckets[$hour] = array('hour' => $hour, 'done' => 0, 'failed' => 0, 'retried' => 0, 'waiting_dns' => 0);
        }
        $since = gmdate('Y-m-d H:i:s', $start);
        foreach (Capsule::select(
            "SELECT DATE_FORMAT(finished_at, '%Y-%m-%d %H:00') AS hour, state, COUNT(*) AS n
             FROM " . self::JOBS . "
             WHERE finished_at >= ? AND state <> 'cancelled'
             GROUP BY hour, state",
            array($since)
        ) as $r) {
            if (isset($buckets[$r->hour])) {
                $buckets[$r->hour][$r->state] += (int) $r->n;
            }
        }
        foreach (Capsule::select(
            "SELECT DATE_FORMAT(COALESCE(applied_at, created_at), '%Y-%m-%d %H:00') AS hour, COUNT(*) AS n
             FROM " . self::REQUESTS . "
             WHERE (applied_at >= ? OR applied_at IS NULL) AND action = 'retry'
             GROUP BY hour",
            array($since)
        ) as $r) {
            if (isset($buckets[$r->hour])) {
                $buckets[$r->hour]['retried'] += (int) $r->n;
            }
        }
        foreach (Capsule::select(
            "SELECT DATE_FORMAT(waiting_since, '%Y-%m-%d %H:00') AS hour, COUNT(*) AS n
             FROM " . self::JOBS . "
             WHERE state = 'waiting_dns' AND waiting_since >= ?
             GROUP BY hour",
            array($since)
        ) as $r) {
            if (isset($buckets[$r->hour])) {
                $buckets[$r->hour]['waiting_dns'] += (int) $r->n;
            }
        }
        return array_values($buckets);
    }

    /**
     * The workers' heartbeats, most recently seen first, or null when the worker has not made
     * mod_jetpack_workers yet (an older jetpack-worker).
     *
     * @return array|null rows: owner, host, pid, version, started_at, last_seen_at, in_flight,
     *                    stopped_at, last_db_error, silent_for (seconds), alive (bool)
     */
    public static function workers($limit = 50)
    {
        try {
            $rows = Capsule::select(
                'SELECT owner, host, pid, version, started_at, last_seen_at, in_flight, stopped_at,
                        last_db_error, TIMESTAMPDIFF(SECOND, last_seen_at, UTC_TIMESTAMP(6)) AS silent_for
                 FROM ' . self::WORKERS . ' ORDER BY last_seen_at DESC LIMIT ' . (int) $limit
            );
        } catch (\Exception $e) {
            if (self::isMissingTable($e)) {
                return null;
            }
            throw $e;
        }
        foreach ($rows as $row) {
            $row->alive = $row->stopped_at === null && (int) $row->silent_for < self::WORKER_SILENCE;
        }
        return $rows;
    }

    /**
     * One page of the reconciler's confirmed drifts, newest first, by keyset on (created_at,
     * id): the rows before drift $before (null: the first page). Null when the worker has not
     * made mod_jetpack_drift yet (a jetpack-worker without the reconciler).
     *
     * @return array|null rows (id, service_id, addon_id, site, expected, found, done,
     *                    created_at, userid (null when the service is gone)) and 'next' (the
     *                    id to pass as $before, null on the last page)
     */
    public static function drifts($before = null, $limit = self::DRIFT_PAGE)
    {
        try {
            return self::driftPage($before, (int) $limit);
        } catch (\Exception $e) {
            if (self::isMissingTable($e)) {
                return null;
            }
            throw $e;
        }
    }

    private static function driftPage($before, $limit)
    {
        $where = '';
        $bind = array();
        if ($before !== null) {
            $start = Capsule::selectOne('SELECT id, created_at FROM ' . self::DRIFT . ' WHERE id = ?', array((int) $before));
            if ($start !== null) {
                $where = ' WHERE d.created_at <= ? AND (d.created_at < ? OR d.id < ?)';
                $bind = array($start->created_at, $start->created_at, (int) $start->id);
            }
        }
        $rows = Capsule::select(
            'SELECT d.id, d.service_id, d.addon_id, d.site, d.expected, d.found, d.done, d.created_at, h.userid
             FROM ' . self::DRIFT . ' d LEFT JOIN tblhosting h ON h.id = d.service_id' . $where . '
             ORDER BY d.created_at DESC, d.id DESC LIMIT ' . ($limit + 1),
            $bind
        );
        $next = null;
        if (count($rows) > $limit) {
            array_pop($rows);
            $next = (int) end($rows)->id;
        }
        return array('rows' => $rows, 'next' => $next);
    }

    /**
     * How many sites the reconciler watches, and how many of them its last look found drifting
     * (`seen` not 'fine': missing, unexpected or unmapped). The second is counted among the
     * WATCH_SAMPLE rows due next (no index has `seen`), which is every row below that size.
     * Null when the worker has not made mod_jetpack_watch yet.
     *
     * @return array|null sites (distinct sites watched), drifting (distinct sites seen
     *                    drifting among the sample), sampled (rows read), complete (whether
     *                    the sample was every watched row)
     */
    public static function watchCounts()
    {
        try {
            $sites = (int) Capsule::selectOne('SELECT COUNT(DISTINCT site_hash) AS n FROM ' . self::WATCH)->n;
            // FORCE INDEX: for a sample that is a large part of the table the optimizer would
            // rather scan it all and sort; the index reads WATCH_SAMPLE entries and stops.
            $sample = Capsule::selectOne(
                "SELECT COUNT(*) AS sampled, COUNT(DISTINCT IF(w.seen <> 'fine', w.site_hash, NULL)) AS drifting
                 FROM (SELECT site_hash, seen FROM " . self::WATCH . ' FORCE INDEX (due) ORDER BY next_check_at LIMIT '
                . (int) self::WATCH_SAMPLE . ') w'
            );
        } catch (\Exception $e) {
            if (self::isMissingTable($e)) {
                return null;
            }
            throw $e;
        }
        return array(
            'sites' => $sites,
            'drifting' => (int) $sample->drifting,
            'sampled' => (int) $sample->sampled,
            'complete' => (int) $sample->sampled < self::WATCH_SAMPLE,
        );
    }

    /**
     * @return bool whether the exception says a table does not exist (SQLSTATE 42S02, 1146)
     */
    public static function isMissingTable(\Exception $e)
    {
        $code = (string) $e->getCode();
        $info = $e instanceof \PDOException && is_array($e->errorInfo) ? $e->errorInfo
            : ($e->getPrevious() instanceof \PDOException && is_array($e->getPrevious()->errorInfo)
                ? $e->getPrevious()->errorInfo : array());
        return $code === '42S02' || (isset($info[1]) && (int) $info[1] === 1146)
            || strpos($e->getMessage(), '1146') !== false;
    }

    /**
     * The worker tables that are missing from the WHMCS database.
     *
     * @return string[]
     */
    public static function missingWorkerTables()
    {
        $present = array();
        foreach (Capsule::select(
            'SELECT TABLE_NAME AS t FROM information_schema.TABLES
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (?, ?)',
            array(self::JOBS, self::REQUESTS)
        ) as $r) {
            $present[] = $r->t;
        }
        return array_values(array_diff(array(self::JOBS, self::REQUESTS), $present));
    }

    /**
     * The targets whose latest job failed, among the given jobs (null: every failed job): a
     * service (addon_id 0) or an addon, each judged by its own jobs only. Mirrors
     * jetpack-worker's `requeue --all-failed` (src/store/requests.rs). One batch: the targets
     * after $after (the previous batch's last), at most $limit of them.
     *
     * @param int[]|null $jobIds
     * @param int[]|null $after  array(service_id, addon_id): the previous batch's last target
     * @param int|null   $limit  at most this many targets (null: all)
     *
     * @return array of array(service_id, addon_id), by service then addon
     */
    public static function failedTargets(?array $jobIds = null, ?array $after = null, $limit = null)
    {
        $sql = "SELECT DISTINCT j.service_id, j.addon_id FROM " . self::JOBS . " j
                WHERE j.state = 'failed'
                  AND NOT EXISTS (SELECT 1 FROM " . self::JOBS . " k
                                  WHERE k.service_id = j.service_id AND k.addon_id = j.addon_id AND k.id > j.id)";
        $bind = array();
        if ($after !== null) {
            $sql .= ' AND (j.service_id > ? OR (j.service_id = ? AND j.addon_id > ?))';
            $bind = array((int) $after[0], (int) $after[0], (int) $after[1]);
        }
        if ($jobIds !== null) {
            $jobIds = array_values(array_unique(array_map('intval', $jobIds)));
            if (count($jobIds) === 0) {
                return array();
            }
            $sql .= ' AND j.id IN (' . implode(',', array_fill(0, count($jobIds), '?')) . ')';
            $bind = array_merge($bind, $jobIds);
        }
        $targets = array();
        $sql .= ' ORDER BY j.service_id, j.addon_id' . ($limit === null ? '' : ' LIMIT ' . (int) $limit);
        foreach (Capsule::select($sql, $bind) as $r) {
            $targets[] = array((int) $r->service_id, (int) $r->addon_id);
        }
        return $targets;
    }

    /**
     * The site of each row of a list: the Site URL field value of its target (the service's,
     * or the addon's own), else (an addon without one, a service without a value) the parent
     * service's domain. Read for the page's rows only: tblcustomfieldsvalues by KEY
     * fieldid_relid (relid IN the page's ids), tblhostingaddons by PRIMARY.
     *
     * @param array $rows objects with service_id, addon_id and domain (the parent's, may be null)
     *
     * @return array "service_id:addon_id" => site ('' when there is none)
     */
    public static function sites(array $rows)
    {
        $services = array();
        $addons = array();
        foreach ($rows as $r) {
            if ((int) $r->addon_id > 0) {
                $addons[(int) $r->addon_id] = true;
            } else {
                $services[(int) $r->service_id] = true;
            }
        }
        $serviceSites = self::fieldValues(self::siteUrlFields(), array_keys($services));
        $addonSites = self::fieldValues(self::addonSiteUrlFields(array_keys($addons)), array_keys($addons));
        $out = array();
        foreach ($rows as $r) {
            $addonId = (int) $r->addon_id;
            $site = $addonId > 0 ? (isset($addonSites[$addonId]) ? $addonSites[$addonId] : '')
                : (isset($serviceSites[(int) $r->service_id]) ? $serviceSites[(int) $r->service_id] : '');
            if ($site === '' && isset($r->domain) && trim((string) $r->domain) !== '') {
                $site = trim((string) $r->domain);
            }
            $out[(int) $r->service_id . ':' . $addonId] = $site;
        }
        return $out;
    }

    /**
     * The first non-empty value of the given fields per relid (KEY fieldid_relid).
     *
     * @param int[] $fields tblcustomfields.id
     * @param int[] $relids tblhosting.id or tblhostingaddons.id
     *
     * @return array relid => value
     */
    private static function fieldValues(array $fields, array $relids)
    {
        if (count($fields) === 0 || count($relids) === 0) {
            return array();
        }
        $out = array();
        foreach (Capsule::select(
            'SELECT relid, value FROM tblcustomfieldsvalues WHERE fieldid IN ('
            . implode(',', array_fill(0, count($fields), '?')) . ') AND relid IN ('
            . implode(',', array_fill(0, count($relids), '?')) . ') ORDER BY id',
            array_merge($fields, array_map('intval', $relids))
        ) as $v) {
            $value = trim((string) $v->value);
            if ($value !== '' && !isset($out[(int) $v->relid])) {
                $out[(int) $v->relid] = $value;
            }
        }
        return $out;
    }

    /**
     * The Site URL fields of the addons' definitions (tblhostingaddons PRIMARY, then
     * tblcustomfields of type 'addon' for those definitions).
     *
     * @param int[] $addonIds tblhostingaddons.id
     *
     * @return int[] tblcustomfields.id
     */
    private static function addonSiteUrlFields(array $addonIds)
    {
        if (count($addonIds) === 0) {
            return array();
        }
        $definitions = array();
        // FORCE INDEX: a page names a few addons; on a small table the optimizer would scan it.
        foreach (Capsule::select(
            'SELECT id, addonid FROM tblhostingaddons FORCE INDEX (PRIMARY) WHERE id IN ('
            . implode(',', array_fill(0, count($addonIds), '?')) . ')',
            array_map('intval', $addonIds)
        ) as $a) {
            $definitions[(int) $a->addonid] = true;
        }
        $ids = array();
        foreach (array_keys($definitions) as $definition) {
            $ids = array_merge($ids, self::siteUrlFieldsOf('addon', $definition));
        }
        return $ids;
    }

    /**
     * The partner accounts on hold (mod_jetpack_holds), by Client ID; null when the worker
     * has not made the table yet (an older jetpack-worker).
     *
     * @return array|null rows: account, held_at, held_by, reason
     */
    public static function holds()
    {
        try {
            return Capsule::select(
                'SELECT account, held_at, held_by, reason FROM ' . self::HOLDS . ' ORDER BY account LIMIT 100'
            );
        } catch (\Exception $e) {
            if (self::isMissingTable($e)) {
                return null;
            }
            throw $e;
        }
    }

    /**
     * Holds a partner account (its Client ID): the worker leaves its jobs queued until it is
     * resumed. A repeated hold keeps its time and takes the new who and why.
     */
    public static function hold($account, $by, $reason)
    {
        Capsule::statement(
            'INSERT INTO ' . self::HOLDS . ' (account, held_at, held_by, reason) VALUES (?, UTC_TIMESTAMP(6), ?, ?)
             ON DUPLICATE KEY UPDATE held_by = VALUES(held_by), reason = VALUES(reason)',
            array((string) $account, (string) $by, (string) $reason)
        );
    }

    /**
     * Resumes a partner account: its hold is deleted. True when there was one.
     */
    public static function resume($account)
    {
        return Capsule::delete('DELETE FROM ' . self::HOLDS . ' WHERE account = ?', array((string) $account)) > 0;
    }

    public static function validDate($date)
    {
        return is_string($date) && preg_match('/^\d{4}-\d{2}-\d{2}$/', $date) === 1
            && checkdate((int) substr($date, 5, 2), (int) substr($date, 8, 2), (int) substr($date, 0, 4));
    }

    private static function likePrefix($q)
    {
        return self::escapeLike($q) . '%';
    }

    private static function escapeLike($q)
    {
        return addcslashes($q, '\\%_');
    }
}
