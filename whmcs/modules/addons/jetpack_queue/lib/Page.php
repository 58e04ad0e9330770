<?php
/**
 * The admin page (jetpack_queue_output): counts, the no-worker warning, the workers, the chart,
 * failures by reason, deleted services' plans in their grace period (Deletions: Cancel now,
 * Keep the plan), plans waiting on DNS, the reconciler's drifts (keyset pages, with the
 * count of watched sites and of those seen drifting), the partner accounts on hold (Hold /
 * Resume), the licences waiting for an admin (LicenceSection), the job list (filters, search, keyset pages, Retry per failed row and in bulk,
 * "Retry all" in batches) and one job's detail (with its Retry). Every list shows the site
 * (Queries::sites). The page refreshes itself (self::REFRESH_SECONDS, the live part only,
 * fetched in the background) while its tab is visible and no form on it is being filled; a
 * toggle turns that off (remembered in the browser). Each job names its target: "Service #12", or "Addon #5 on
 * service #12" for a product addon. Rendered as one HTML string; every value escaped
 * (Escape::html5(), the server module's lib/Escape.php).
 */

namespace WHMCS\Module\Addon\JetpackQueue;

use WHMCS\Module\Server\Jetpack\Catalogue;
use WHMCS\Module\Server\Jetpack\Display;
use WHMCS\Module\Server\Jetpack\Escape;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

class Page
{
    /** Auto-refresh: the page's live part is fetched again this often while the tab is visible. */
    const REFRESH_SECONDS = 10;

    const NO_WORKER = 'jobs are queued but no jetpack-worker is running: start it with `systemctl start jetpack-worker`';

    const STATE_LABELS = array(
        'queued' => 'Queued',
        'running' => 'Running',
        'waiting_dns' => 'Waiting on DNS',
        'done' => 'Done',
        'failed' => 'Failed',
        'cancelled' => 'Cancelled',
    );

    /**
     * @param array  $vars   WHMCS's addon vars (modulelink)
     * @param array  $get    $_GET
     * @param array  $post   $_POST
     * @param string $method $_SERVER['REQUEST_METHOD']
     *
     * @return string the page's HTML
     */
    public static function render(array $vars, array $get, array $post, $method)
    {
        $link = isset($vars['modulelink']) ? (string) $vars['modulelink'] : 'addonmodules.php?module=jetpack_queue';
        $missing = Queries::missingWorkerTables();
        if (count($missing) > 0) {
            return '<div class="jetpack-queue"><div class="alert alert-danger">The worker\'s tables ('
                . Escape::html5(implode(', ', $missing)) . ') are not in this database yet: run <code>jetpack-worker migrate</code> '
                . 'on the worker\'s host.</div></div>';
        }
        $flash = Actions::handle($method, $post);
        $filter = self::filter($get);
        $out = '<div class="jetpack-queue">' . self::style() . Html::refreshToggle(self::REFRESH_SECONDS)
            . '<div id="jq-live">';
        if ($flash !== null) {
            $out .= '<div class="alert ' . ($flash['ok'] ? 'alert-success' : 'alert-danger') . '" id="jq-flash">'
                . Escape::html5($flash['message']) . '</div>';
            if (isset($flash['continue'])) {
                $out .= self::continueForm($flash['continue'], Html::link($link, $filter));
            }
        }
        $counts = Queries::counts();
        $workers = Queries::workers();
        $out .= self::warning($counts, $workers);
        $out .= self::countsSection($counts, Queries::oldestDue(), $link);
        if (isset($get['job']) && ctype_digit((string) $get['job'])) {
            $out .= self::detail(Queries::job((int) $get['job']), $link);
        }
        $out .= '<h2>Outcomes per hour (last 24 hours, UTC)</h2>' . Html::chart(Queries::outcomesPerHour());
        $out .= self::workersSection($workers);
        $out .= self::reasonsSection(Queries::failureReasons(), $link);
        $out .= Deletions::section(Deletions::pending(), Html::link($link, $filter), $link);
        $out .= self::holdsSection(Queries::holds(), Html::link($link, $filter));
        $out .= LicenceSection::section(
            LicenceSection::unknown(),
            LicenceSection::waitingDecisions(),
            Html::link($link, $filter),
            function ($serviceId, $addonId, $userId) {
                return self::targetLink($serviceId, $addonId, $userId);
            },
            function ($jobId) use ($link) {
                return '<a href="' . Html::link($link, array('job' => $jobId)) . '">#' . (int) $jobId . '</a>';
            }
        );
        $out .= self::dnsSection(Queries::waitingDns(), $link);
        $driftBefore = isset($get['drift_before']) && ctype_digit((string) $get['drift_before']) ? (int) $get['drift_before'] : null;
        $out .= self::driftSection(Queries::drifts($driftBefore), Queries::watchCounts(), $link, $driftBefore !== null);
        $before = isset($get['before']) && ctype_digit((string) $get['before']) ? (int) $get['before'] : null;
        $out .= self::listSection($filter, Queries::jobs($filter, $before), Queries::products(), $link, $counts['failed']);
        return $out . '</div>' . Html::refreshScript(self::REFRESH_SECONDS) . '</div>';
    }

    /**
     * The next batch of "Retry all failed": a form the page submits by itself (a button
     * without JavaScript), carrying where the batch starts and how many were done.
     *
     * @param array  $next array(after => array(service_id, addon_id), done => int)
     * @param string $here the page's URL (HTML-escaped)
     */
    private static function continueForm(array $next, $here)
    {
        return '<form method="post" action="' . $here . '" id="jq-continue">' . Actions::tokenField()
            . '<input type="hidden" name="jq_action" value="retry_all">'
            . '<input type="hidden" name="after_service" value="' . (int) $next['after'][0] . '">'
            . '<input type="hidden" name="after_addon" value="' . (int) $next['after'][1] . '">'
            . '<input type="hidden" name="done" value="' . (int) $next['done'] . '">'
            . '<button type="submit" class="btn btn-warning">Continue with the next batch</button></form>'
            . '<script>document.getElementById("jq-continue").submit();</script>';
    }

    /**
     * The partner accounts on hold, each with Resume, and a form to hold one (its Client ID).
     *
     * @param array|null $holds what Queries::holds() returned (null: no mod_jetpack_holds)
     * @param string     $here  the page's URL (HTML-escaped)
     */
    private static function holdsSection($holds, $here)
    {
        $out = '<h2 id="jq-holds-title">Partner accounts on hold</h2>';
        if ($holds === null) {
            return $out . '<p id="jq-holds-none">Hold / Resume needs a newer jetpack-worker (mod_jetpack_holds is missing; '
                . 'its <code>migrate</code> creates it).</p>';
        }
        if (count($holds) === 0) {
            $out .= '<p id="jq-holds-empty">No partner account is on hold.</p>';
        } else {
            $out .= '<table class="table" id="jq-holds"><tr><th>Client ID</th><th>On hold since</th><th>By</th><th>Reason</th>'
                . '<th></th></tr>';
            foreach ($holds as $h) {
                $out .= '<tr data-hold="' . Escape::html5($h->account) . '"><td>' . Escape::html5($h->account) . '</td><td>'
                    . Html::utc($h->held_at) . '</td><td>' . Escape::html5(Display::requester($h->held_by)) . '</td><td>'
                    . Escape::html5($h->reason === '' ? '—' : $h->reason) . '</td><td><form method="post" action="' . $here
                    . '" class="jq-inline">' . Actions::tokenField() . '<input type="hidden" name="jq_action" value="resume">'
                    . '<input type="hidden" name="account" value="' . Escape::html5($h->account) . '">'
                    . '<button type="submit" class="btn btn-success btn-xs">Resume</button></form></td></tr>';
            }
            $out .= '</table><p>Their jobs stay queued: jetpack-worker makes no partner call and counts no attempt for them '
                . 'until they are resumed, then runs them in their order.</p>';
        }
        return $out . '<form method="post" action="' . $here . '" id="jq-hold" class="jq-inline">' . Actions::tokenField()
            . '<input type="hidden" name="jq_action" value="hold"> Hold the partner account with Client ID '
            . '<input type="text" name="account" required maxlength="191" placeholder="the product\'s Client ID"> reason '
            . '<input type="text" name="reason" maxlength="500" placeholder="e.g. rotating credentials"> '
            . '<button type="submit" class="btn btn-default">Hold</button></form>';
    }

    /**
     * The filters a URL query carries (unknown values dropped).
     */
    public static function filter(array $get)
    {
        $f = array();
        foreach (array('state', 'action', 'product', 'date', 'q', 'in') as $k) {
            if (isset($get[$k]) && is_string($get[$k]) && $get[$k] !== '') {
                $f[$k] = $get[$k];
            }
        }
        if (isset($f['state']) && !in_array($f['state'], Catalogue::lists('job_states'), true)) {
            unset($f['state']);
        }
        if (isset($f['action']) && !in_array($f['action'], Catalogue::jobActions(), true)) {
            unset($f['action']);
        }
        if (isset($f['product']) && !ctype_digit($f['product'])) {
            unset($f['product']);
        }
        if (isset($f['date']) && !Queries::validDate($f['date'])) {
            unset($f['date']);
        }
        if (isset($f['in']) && !in_array($f['in'], array('service', 'client', 'domain', 'site'), true)) {
            unset($f['in']);
        }
        return $f;
    }

    private static function warning(array $counts, $workers)
    {
        $unfinished = $counts['queued'] + $counts['running'] + $counts['waiting_dns'];
        if ($workers === null) {
            return '<div class="alert alert-info" id="jq-no-worker-info">No worker information yet: this jetpack-worker '
                . 'does not record heartbeats (mod_jetpack_workers is missing; a newer worker\'s <code>migrate</code> creates it).</div>';
        }
        $alive = 0;
        foreach ($workers as $w) {
            if ($w->alive) {
                $alive++;
            }
        }
        if ($unfinished > 0 && $alive === 0) {
            return '<div class="alert alert-danger" id="jq-no-worker"><strong>Warning:</strong> '
                . Escape::html5(self::NO_WORKER) . '</div>';
        }
        return '';
    }

    private static function countsSection(array $counts, $oldest, $link)
    {
        $out = '<h2>Jobs by state</h2><table class="table jq-counts" id="jq-counts"><tr>';
        foreach (self::STATE_LABELS as $state => $label) {
            $out .= '<th>' . Escape::html5($label) . '</th>';
        }
        $out .= '</tr><tr>';
        foreach (self::STATE_LABELS as $state => $label) {
            $out .= '<td data-state="' . Escape::html5($state) . '"><a href="' . Html::link($link, array('state' => $state)) . '">'
                . (int) $counts[$state] . '</a></td>';
        }
        $out .= '</tr></table>';
        $out .= '<p>Requests waiting for jetpack-worker: <span id="jq-pending">' . (int) Queries::pendingRequests() . '</span></p>';
        if ($oldest === null) {
            $out .= '<p id="jq-oldest">No queued job is due.</p>';
        } else {
            $out .= '<p id="jq-oldest">Oldest due job: <a href="' . Html::link($link, array('job' => $oldest->id)) . '">#'
                . (int) $oldest->id . '</a> (' . Escape::html5($oldest->action) . ' of '
                . ((int) $oldest->addon_id > 0 ? 'addon ' . (int) $oldest->addon_id . ' on ' : '')
                . 'service ' . (int) $oldest->service_id . '), due since ' . Html::utc($oldest->run_at) . ' (' . self::duration((int) $oldest->overdue) . ' ago).</p>';
        }
        return $out;
    }

    private static function workersSection($workers)
    {
        $out = '<h2>Workers</h2>';
        if ($workers === null) {
            return $out . '<p>No worker information yet.</p>';
        }
        if (count($workers) === 0) {
            return $out . '<p id="jq-workers-none">No worker has recorded a heartbeat.</p>';
        }
        $out .= '<table class="table" id="jq-workers"><tr><th>Worker</th><th>Host</th><th>PID</th><th>Version</th>'
            . '<th>Started</th><th>Last seen</th><th>In flight</th><th>Status</th><th>Last database error</th></tr>';
        foreach ($workers as $w) {
            $status = $w->stopped_at !== null ? 'stopped ' . Html::utc($w->stopped_at)
                : ($w->alive ? 'running' : 'not seen for ' . self::duration((int) $w->silent_for));
            $out .= '<tr class="' . ($w->alive ? 'jq-alive' : 'jq-silent') . '"><td>' . Escape::html5($w->owner) . '</td><td>'
                . Escape::html5($w->host) . '</td><td>' . (int) $w->pid . '</td><td>' . Escape::html5($w->version) . '</td><td>'
                . Html::utc($w->started_at) . '</td><td>' . Html::utc($w->last_seen_at) . '</td><td>' . (int) $w->in_flight
                . '</td><td>' . $status . '</td><td>' . Escape::html5($w->last_db_error === null ? '—' : $w->last_db_error) . '</td></tr>';
        }
        return $out . '</table>';
    }

    private static function reasonsSection(array $reasons, $link)
    {
        $out = '<h2>Failures by reason</h2>';
        if (count($reasons) === 0) {
            return $out . '<p>No failed jobs.</p>';
        }
        $out .= '<table class="table" id="jq-reasons"><tr><th>Jobs</th><th>Reason (numbers shown as N)</th><th>Latest</th></tr>';
        foreach ($reasons as $r) {
            $out .= '<tr><td>' . (int) $r['count'] . '</td><td class="jq-error">' . Escape::html5($r['reason'])
                . '</td><td><a href="' . Html::link($link, array('job' => $r['example'])) . '">#' . (int) $r['example']
                . '</a> ' . Html::utc($r['latest']) . '</td></tr>';
        }
        return $out . '</table>';
    }

    private static function dnsSection(array $rows, $link)
    {
        $out = '<h2>Waiting on DNS</h2>';
        if (count($rows) === 0) {
            return $out . '<p>No plan is waiting on DNS.</p>';
        }
        $sites = Queries::sites($rows);
        $out .= '<table class="table" id="jq-dns"><tr><th>Job</th><th>Target</th><th>Site</th><th>Checks</th>'
            . '<th>Next check</th><th>Waiting since</th><th>Window ends</th></tr>';
        foreach ($rows as $r) {
            $out .= '<tr><td><a href="' . Html::link($link, array('job' => $r->id)) . '">#' . (int) $r->id . '</a></td><td>'
                . self::targetLink($r->service_id, $r->addon_id, $r->userid) . '</td><td>'
                . self::site($sites, $r) . '</td><td>'
                . (int) $r->dns_checks . '</td><td>' . Html::utc($r->run_at) . '</td><td>' . Html::utc($r->waiting_since)
                . '</td><td>' . Html::utc($r->window_ends) . '</td></tr>';
        }
        return $out . '</table>';
    }

    /**
     * The reconciler's confirmed drifts, newest first (a keyset page), and how many sites it
     * watches and sees drifting now.
     *
     * @param array|null $page   what Queries::drifts() returned (null: no mod_jetpack_drift)
     * @param array|null $counts what Queries::watchCounts() returned (null: no mod_jetpack_watch)
     * @param bool       $older  whether this is a later page (a link back to the latest)
     */
    private static function driftSection($page, $counts, $link, $older)
    {
        $out = '<h2 id="jq-drift-title">Drift</h2>';
        if ($page === null || $counts === null) {
            return $out . '<p id="jq-drift-none">No drift information: this jetpack-worker has no reconciler yet '
                . '(mod_jetpack_drift is missing; a newer worker\'s <code>migrate</code> creates it).</p>';
        }
        $out .= '<p id="jq-watch">Sites watched by the reconciler: <span id="jq-watched">' . (int) $counts['sites']
            . '</span>; seen drifting now: <span id="jq-drifting">' . (int) $counts['drifting'] . '</span>'
            . ($counts['complete'] ? '' : ' (among the ' . (int) $counts['sampled'] . ' checked next)') . '.</p>';
        if (count($page['rows']) === 0) {
            return $out . '<p id="jq-drift-empty">The reconciler has found no drift'
                . ' between what WHMCS intends and what the partner holds.</p>';
        }
        $out .= '<table class="table" id="jq-drift"><tr><th>Target</th><th>Site</th><th>Expected</th><th>Found</th>'
            . '<th>Done</th><th>When</th></tr>';
        foreach ($page['rows'] as $d) {
            $out .= '<tr data-drift="' . (int) $d->id . '"><td>' . self::targetLink($d->service_id, $d->addon_id, $d->userid)
                . '</td><td>' . Escape::html5($d->site) . '</td><td>' . Escape::html5($d->expected) . '</td><td>'
                . Escape::html5($d->found) . '</td><td>' . Escape::html5($d->done) . '</td><td>' . Html::utc($d->created_at)
                . '</td></tr>';
        }
        $out .= '</table>';
        $pages = array();
        if ($older) {
            $pages[] = '<a href="' . Html::link($link, array()) . '#jq-drift-title">latest drifts</a>';
        }
        if ($page['next'] !== null) {
            $pages[] = '<a id="jq-drift-next" href="' . Html::link($link, array('drift_before' => $page['next']))
                . '#jq-drift-title">older drifts →</a>';
        }
        return $out . (count($pages) === 0 ? '' : '<p class="jq-pages">' . implode(' · ', $pages) . '</p>');
    }

    private static function listSection(array $filter, array $page, array $products, $link, $failed)
    {
        $parts = parse_url($link);
        $action = isset($parts['path']) ? $parts['path'] : 'addonmodules.php';
        $hidden = '';
        if (isset($parts['query'])) {
            parse_str($parts['query'], $fixed);
            foreach ($fixed as $k => $v) {
                if (is_string($v)) {
                    $hidden .= '<input type="hidden" name="' . Escape::html5($k) . '" value="' . Escape::html5($v) . '">';
                }
            }
        }
        $out = '<h2>Jobs</h2><form method="get" action="' . Escape::html5($action) . '" class="jq-filter" id="jq-filter">' . $hidden;
        $out .= self::select('state', array('' => 'any state') + self::STATE_LABELS, $filter);
        $actions = Catalogue::jobActions();
        $out .= self::select('action', array('' => 'any action') + array_combine($actions, $actions), $filter);
        $out .= self::select('product', array('' => 'any product') + $products, $filter);
        $out .= ' created on <input type="date" name="date" value="' . Escape::html5(isset($filter['date']) ? $filter['date'] : '') . '">';
        $out .= ' search <input type="text" name="q" value="' . Escape::html5(isset($filter['q']) ? $filter['q'] : '') . '" placeholder="id, client, domain, site">';
        $out .= self::select('in', array('service' => 'service id', 'client' => 'client (id, email, first name)',
            'domain' => 'domain', 'site' => 'Site URL'), $filter);
        $out .= ' <button type="submit" class="btn btn-default">Filter</button> <a href="' . Escape::html5($link) . '">reset</a></form>';

        $here = Html::link($link, $filter);
        $out .= '<form method="post" action="' . $here . '" id="jq-retry-all" class="jq-inline">' . Actions::tokenField()
            . '<input type="hidden" name="jq_action" value="retry_all"><button type="submit" class="btn btn-warning"'
            . ($failed === 0 ? ' disabled' : '') . '>Retry all failed (' . (int) $failed . ')</button>'
            . ($failed > Queries::RETRY_BATCH ? ' <small>(in batches of ' . Queries::RETRY_BATCH . ')</small>' : '') . '</form>';
        // One failed job's Retry: a button in its row submits this form (the `form` attribute;
        // forms cannot nest in the bulk form).
        $out .= '<form method="post" action="' . $here . '" id="jq-retry-one">' . Actions::tokenField()
            . '<input type="hidden" name="jq_action" value="retry_job"></form>';
        $out .= '<form method="post" action="' . $here . '" id="jq-bulk">' . Actions::tokenField()
            . '<input type="hidden" name="jq_action" value="retry_selected">';
        $out .= '<table class="table" id="jq-jobs"><tr><th></th><th>Job</th><th>Target</th><th>Client</th><th>Site</th>'
            . '<th>Action</th><th>State</th><th>Attempts</th><th>Next attempt</th><th>Created</th><th>Last error</th></tr>';
        $sites = Queries::sites($page['rows']);
        $licences = LicenceSection::ofJobs($page['rows']);
        foreach ($page['rows'] as $r) {
            $out .= '<tr data-job="' . (int) $r->id . '"><td>'
                . ($r->state === 'failed' ? '<input type="checkbox" name="jobs[]" value="' . (int) $r->id . '"> '
                    . '<button type="submit" form="jq-retry-one" name="job" value="' . (int) $r->id
                    . '" class="btn btn-warning btn-xs jq-retry-row">Retry</button>' : '')
                . '</td><td><a href="' . Html::link($link, $filter + array('job' => $r->id)) . '">#' . (int) $r->id . '</a></td><td>'
                . self::targetLink($r->service_id, $r->addon_id, $r->userid) . '</td><td>'
                . ($r->userid === null ? '—' : self::clientLink($r->userid)) . '</td><td>' . self::site($sites, $r) . '</td><td>'
                . Escape::html5($r->action) . LicenceSection::jobLabel($licences, $r) . '</td><td class="jq-state-' . Escape::html5($r->state) . '">' . Escape::html5(self::label($r->state))
                . '</td><td>' . (int) $r->attempts . ($r->max_attempts === null ? '' : ' of ' . (int) $r->max_attempts) . '</td><td>'
                . (in_array($r->state, Catalogue::lists('unfinished_states'), true) ? Html::utc($r->run_at) : '—') . '</td><td>'
                . Html::utc($r->created_at) . '</td><td class="jq-error">' . Escape::html5(self::cut($r->last_error)) . '</td></tr>';
        }
        if (count($page['rows']) === 0) {
            $out .= '<tr><td colspan="11">No jobs match.</td></tr>';
        }
        $out .= '</table><button type="submit" class="btn btn-warning">Retry selected failed jobs</button></form>';
        $out .= '<p class="jq-pages"><a href="' . Html::link($link, $filter) . '">first page</a>';
        if ($page['next'] !== null) {
            $out .= ' · <a id="jq-next" href="' . Html::link($link, $filter + array('before' => $page['next'])) . '">older jobs →</a>';
        }
        return $out . '</p>';
    }

    private static function detail($data, $link)
    {
        if ($data === null) {
            return '<div class="alert alert-warning" id="jq-detail">No such job.</div>';
        }
        $j = $data['job'];
        $s = $data['service'];
        $addonId = (int) $j->addon_id;
        $out = '<div class="jq-detail" id="jq-detail"><h2>Job #' . (int) $j->id . ': ' . Escape::html5($j->action) . ', '
            . Escape::html5(self::label($j->state)) . '</h2>';
        if ($j->state === 'failed') {
            $out .= '<form method="post" action="' . Html::link($link, array('job' => $j->id)) . '" id="jq-detail-retry" class="jq-inline">'
                . Actions::tokenField() . '<input type="hidden" name="jq_action" value="retry_job"><input type="hidden" name="job" value="'
                . (int) $j->id . '"><button type="submit" class="btn btn-warning">Retry this job</button></form>';
        }
        $out .= '<table class="table">';
        $rows = array();
        if ($addonId > 0) {
            $a = $data['addon'];
            $rows['Addon'] = $a === null ? 'addon ' . $addonId . ' (no longer in WHMCS)'
                : self::targetLink($j->service_id, $addonId, $s === null ? null : $s->userid) . ' (' . Escape::html5($a->status) . ')'
                . ($data['product'] === null ? '' : ', ' . Escape::html5($data['product']));
        }
        $rows += array(
            'Service' => $s === null ? 'service ' . (int) $j->service_id . ' (no longer in WHMCS)'
                : self::serviceLink($j->service_id, $s->userid) . ' (' . Escape::html5($s->domainstatus) . ')'
                . ($addonId > 0 || $data['product'] === null ? '' : ', ' . Escape::html5($data['product'])),
            'Client' => $s === null ? '—' : self::clientLink($s->userid) . ($data['client'] === null ? ''
                : ' ' . Escape::html5(trim($data['client']->firstname . ' ' . $data['client']->lastname))
                . ($data['client']->companyname === '' ? '' : ' (' . Escape::html5($data['client']->companyname) . ')')),
            'Domain' => $s === null ? '—' : Escape::html5($s->domain),
            'Site URL' => $data['site'] === null ? '—' : Escape::html5($data['site']),
            'Requested by' => Escape::html5(Display::requester($j->requested_by)),
            'Attempts' => (int) $j->attempts . ($j->max_attempts === null ? ' (budget: the worker\'s JETPACK_MAX_ATTEMPTS)' : ' of ' . (int) $j->max_attempts)
                . ((int) $j->reclaims > 0 ? ', lease taken over ' . (int) $j->reclaims . ' time(s)' : ''),
            'Next attempt' => in_array($j->state, Catalogue::lists('unfinished_states'), true) ? Html::utc($j->run_at) : 'none (finished ' . Html::utc($j->finished_at) . ')',
            'Last error' => $j->last_error === null ? '—' : '<span class="jq-error">' . Escape::html5($j->last_error) . '</span> (at ' . Html::utc($j->updated_at) . ')',
            'Result' => $j->result === null ? '—' : Escape::html5($j->result),
            'Follow-up' => $j->follow_up === null ? '—' : Escape::html5($j->follow_up),
            'Created' => Html::utc($j->created_at),
        );
        if ($j->waiting_since !== null) {
            $rows['Waiting on DNS'] = 'since ' . Html::utc($j->waiting_since) . ', ' . (int) $j->dns_checks . ' check(s)';
        }
        foreach ($rows as $k => $v) {
            $out .= '<tr><th>' . Escape::html5($k) . '</th><td>' . $v . '</td></tr>';
        }
        $out .= '</table>' . LicenceSection::ofTargetRows($data['licences']) . '<h3>The ' . ($addonId > 0 ? 'addon' : 'service') . '\'s jobs</h3><table class="table"><tr><th>Job</th><th>Action</th><th>State</th>'
            . '<th>Attempts</th><th>Created</th><th>Updated</th><th>Finished</th><th>Error</th></tr>';
        foreach ($data['jobs'] as $o) {
            $out .= '<tr><td><a href="' . Html::link($link, array('job' => $o->id)) . '">#' . (int) $o->id . '</a></td><td>'
                . Escape::html5($o->action) . '</td><td>' . Escape::html5(self::label($o->state)) . '</td><td>' . (int) $o->attempts
                . '</td><td>' . Html::utc($o->created_at) . '</td><td>' . Html::utc($o->updated_at) . '</td><td>'
                . Html::utc($o->finished_at) . '</td><td class="jq-error">' . Escape::html5(self::cut($o->last_error)) . '</td></tr>';
        }
        $out .= '</table><h3>Requests</h3><table class="table"><tr><th>Request</th><th>Action</th><th>By</th>'
            . '<th>Recorded</th><th>Applied</th><th>Job</th><th>Decision</th></tr>';
        foreach ($data['requests'] as $r) {
            $out .= '<tr><td>#' . (int) $r->id . '</td><td>' . Escape::html5($r->action) . '</td><td>' . Escape::html5(Display::requester($r->requested_by))
                . '</td><td>' . Html::utc($r->created_at) . '</td><td>' . ($r->applied_at === null ? 'waiting for jetpack-worker'
                : Html::utc($r->applied_at)) . '</td><td>' . ($r->job_id === null ? '—' : '#' . (int) $r->job_id) . '</td><td>'
                . Escape::html5($r->decision === null ? '—' : $r->decision) . '</td></tr>';
        }
        if (count($data['requests']) === 0) {
            $out .= '<tr><td colspan="7">None recorded.</td></tr>';
        }
        return $out . '</table></div>';
    }

    /**
     * A row's site from Queries::sites() (escaped), or a dash.
     */
    private static function site(array $sites, $row)
    {
        $key = (int) $row->service_id . ':' . (int) $row->addon_id;
        return isset($sites[$key]) && $sites[$key] !== '' ? Escape::html5($sites[$key]) : '—';
    }

    private static function select($name, array $options, array $filter)
    {
        $current = isset($filter[$name]) ? (string) $filter[$name] : '';
        $out = ' <select name="' . Escape::html5($name) . '">';
        foreach ($options as $value => $label) {
            $out .= '<option value="' . Escape::html5($value) . '"' . ((string) $value === $current ? ' selected' : '') . '>'
                . Escape::html5($label) . '</option>';
        }
        return $out . '</select>';
    }

    private static function serviceLink($serviceId, $userId, $prefix = '')
    {
        if ($userId === null) {
            return $prefix . (int) $serviceId;
        }
        return '<a href="' . Escape::html5('clientsservices.php?userid=' . (int) $userId . '&id=' . (int) $serviceId) . '">'
            . $prefix . (int) $serviceId . '</a>';
    }

    /**
     * A job's target: "Service #12" (linked to the service) or "Addon #5 on service #12"
     * (linked to the addon's page and to the service).
     *
     * @param int      $serviceId tblhosting.id (an addon's parent)
     * @param int      $addonId   tblhostingaddons.id, 0 for the service itself
     * @param int|null $userId    tblhosting.userid, null when the service is gone (no links)
     *
     * @return string HTML
     */
    private static function targetLink($serviceId, $addonId, $userId)
    {
        $service = 'Service #' . (int) $serviceId;
        if ((int) $addonId === 0) {
            return $userId === null ? $service : '<a href="' . Escape::html5('clientsservices.php?userid=' . (int) $userId
                . '&id=' . (int) $serviceId) . '">' . $service . '</a>';
        }
        $addon = 'Addon #' . (int) $addonId;
        if ($userId === null) {
            return $addon . ' on service #' . (int) $serviceId;
        }
        return '<a href="' . Escape::html5('clientsservices.php?userid=' . (int) $userId . '&id=' . (int) $serviceId
            . '&aid=' . (int) $addonId) . '">' . $addon . '</a> on service ' . self::serviceLink($serviceId, $userId, '#');
    }

    private static function clientLink($userId)
    {
        return '<a href="' . Escape::html5('clientssummary.php?userid=' . (int) $userId) . '">#' . (int) $userId . '</a>';
    }

    private static function label($state)
    {
        return isset(self::STATE_LABELS[$state]) ? self::STATE_LABELS[$state] : (string) $state;
    }

    private static function cut($text)
    {
        $text = (string) $text;
        return mb_strlen($text, 'UTF-8') > 160 ? mb_substr($text, 0, 160, 'UTF-8') . '…' : $text;
    }

    private static function duration($seconds)
    {
        $seconds = max(0, (int) $seconds);
        if ($seconds < 120) {
            return $seconds . ' s';
        }
        if ($seconds < 7200) {
            return intdiv($seconds, 60) . ' min';
        }
        if ($seconds < 172800) {
            return intdiv($seconds, 3600) . ' h';
        }
        return intdiv($seconds, 86400) . ' days';
    }

    private static function style()
    {
        return '<style>.jetpack-queue table.table{border-collapse:collapse;width:100%;margin-bottom:12px;font-size:12px}'
            . '.jetpack-queue th,.jetpack-queue td{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}'
            . '.jetpack-queue .jq-counts td{font-size:20px}.jetpack-queue .jq-error{color:#8a1f11;word-break:break-all}'
            . '.jetpack-queue .jq-inline{display:inline-block;margin:6px 0}.jetpack-queue .alert{padding:8px;margin:8px 0;border:1px solid}'
            . '.jetpack-queue .alert-danger{background:#fdecea;border-color:#c62828}.jetpack-queue .alert-success{background:#e8f5e9;border-color:#2e7d32}'
            . '.jetpack-queue .alert-info{background:#e3f2fd;border-color:#1565c0}.jetpack-queue .jq-state-failed{color:#c62828;font-weight:bold}'
            . '.jetpack-queue .jq-chart{max-width:960px;border:1px solid #eee}.jetpack-queue .jq-licence{color:#1565c0;white-space:nowrap}</style>';
    }
}
