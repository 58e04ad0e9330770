<?php
/**
 * The dashboard's Jetpack licences (products that sell licences through the Licensing API):
 *
 * - the product of each listed job whose target holds licences ("licence jetpack-scan" beside
 *   the action);
 * - "Licences waiting for an admin": every licence in state `unknown` (its issue answer was
 *   lost and jetpack-worker could not look it up), each with the same two ways out as the
 *   service's tab: **Record the key** found in the partner portal (request `licence_record`,
 *   the key's shape checked first by the server module's Licences) and **Issue another
 *   licence** (request `licence_reissue`, with a confirm that says it bills another licence);
 *   a decision recorded and not applied yet is shown instead of the buttons;
 * - a job's page: its target's licences.
 *
 * Reads (mod_jetpack_licences, from jetpack-worker's migrations): the unknown ones by KEY live
 * (state, checked_at); a page's targets' by KEY target (service_id, addon_id, id) (service_id
 * IN the page's services); the decisions waiting by mod_jetpack_requests KEY unapplied
 * (applied_at, id). Writes: the requests only, through the server module (Licences, Requests).
 * Nothing is shown or read while the worker has not made the table (an older jetpack-worker).
 */

namespace WHMCS\Module\Addon\JetpackQueue;

use WHMCS\Database\Capsule;
use WHMCS\Module\Server\Jetpack\Escape;
use WHMCS\Module\Server\Jetpack\LicenceView;
use WHMCS\Module\Server\Jetpack\Licences;
use WHMCS\Module\Server\Jetpack\Messages;
use WHMCS\Module\Server\Jetpack\ModuleError;
use WHMCS\Module\Server\Jetpack\Requests;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

class LicenceSection
{
    /** The actions of the section's forms (jq_action). */
    const RECORD = 'licence_record';
    const REISSUE = 'licence_reissue';

    /** The section lists at most this many unknown licences, oldest first. */
    const SHOWN = 100;

    /**
     * The licences in state `unknown`, oldest first (KEY live, forced: with ORDER BY id the
     * optimizer would rather walk the primary key over every licence), with the parent's client; null
     * when the worker has not made mod_jetpack_licences yet.
     *
     * @return array|null rows: id, service_id, addon_id, product, issue_started_at, job_id, userid
     */
    public static function unknown()
    {
        try {
            return Capsule::select(
                'SELECT l.id, l.service_id, l.addon_id, l.product, l.issue_started_at, l.job_id, h.userid
                 FROM ' . Licences::TABLE . ' l FORCE INDEX (live) LEFT JOIN tblhosting h ON h.id = l.service_id
                 WHERE l.state = ? ORDER BY l.id LIMIT ' . self::SHOWN,
                array(Licences::UNKNOWN)
            );
        } catch (\Exception $e) {
            if (Queries::isMissingTable($e)) {
                return null;
            }
            throw $e;
        }
    }

    /**
     * The licence decisions recorded and not applied yet (KEY unapplied), by target.
     *
     * @return array "service_id:addon_id" => request row (action, detail, created_at)
     */
    public static function waitingDecisions()
    {
        $out = array();
        foreach (Capsule::select(
            'SELECT service_id, addon_id, action, detail, created_at FROM ' . Queries::REQUESTS . '
             WHERE applied_at IS NULL AND action IN (?, ?) ORDER BY id LIMIT 1000',
            array(Requests::LICENCE_RECORD, Requests::LICENCE_REISSUE)
        ) as $r) {
            $out[(int) $r->service_id . ':' . (int) $r->addon_id] = $r;
        }
        return $out;
    }

    /**
     * The newest licence of each target of a page of jobs (KEY target, forced as in unknown(),
     * service_id IN the page's services), for "licence <product>" beside the job's action.
     *
     * @param array $rows jobs with service_id and addon_id
     *
     * @return array "service_id:addon_id" => licence row (product, state)
     */
    public static function ofJobs(array $rows)
    {
        $services = array();
        foreach ($rows as $r) {
            $services[(int) $r->service_id] = true;
        }
        if (count($services) === 0) {
            return array();
        }
        try {
            $licences = Capsule::select(
                'SELECT id, service_id, addon_id, product, state FROM ' . Licences::TABLE . ' FORCE INDEX (target) WHERE service_id IN ('
                . implode(',', array_fill(0, count($services), '?')) . ') ORDER BY id DESC LIMIT 1000',
                array_keys($services)
            );
        } catch (\Exception $e) {
            if (Queries::isMissingTable($e)) {
                return array();
            }
            throw $e;
        }
        $out = array();
        foreach ($licences as $l) {
            $key = (int) $l->service_id . ':' . (int) $l->addon_id;
            if (!isset($out[$key])) {
                $out[$key] = $l;
            }
        }
        return $out;
    }

    /**
     * "licence jetpack-scan" for a job row whose target holds licences, else ''.
     *
     * @param array  $licences what ofJobs() returned
     * @param object $row      a job
     *
     * @return string HTML
     */
    public static function jobLabel(array $licences, $row)
    {
        $key = (int) $row->service_id . ':' . (int) $row->addon_id;
        if (!isset($licences[$key])) {
            return '';
        }
        return ' <span class="jq-licence">licence ' . Escape::html5($licences[$key]->product) . '</span>';
    }

    /**
     * The section: every unknown licence with its two ways out (or the decision waiting).
     *
     * @param array|null $unknown   what unknown() returned
     * @param array      $decisions what waitingDecisions() returned
     * @param string     $here      the page's URL (HTML-escaped)
     * @param callable   $target    fn(service_id, addon_id, userid): the target's link (HTML)
     * @param callable   $job       fn(job id): the job's link (HTML)
     *
     * @return string HTML
     */
    public static function section($unknown, array $decisions, $here, callable $target, callable $job)
    {
        $out = '<h2 id="jq-licences-title">Licences waiting for an admin</h2>';
        if ($unknown === null) {
            return $out . '<p id="jq-licences-none">No licence information: this jetpack-worker sells no licences yet '
                . '(mod_jetpack_licences is missing; a newer worker\'s <code>migrate</code> creates it).</p>';
        }
        if (count($unknown) === 0) {
            return $out . '<p id="jq-licences-empty">No licence waits: every licence issue was answered or looked up.</p>';
        }
        $out .= '<p>Each licence below may have been issued (and billed) while its answer was lost, and jetpack-worker '
            . 'could not look it up. Find it in the partner portal (licences issued around that time) and record its key, '
            . 'or issue another licence (billed as another one). A plain Retry does not issue again.</p>'
            . '<table class="table" id="jq-licences"><tr><th>Licence</th><th>Target</th><th>Product</th><th>Issue started</th>'
            . '<th>Job</th><th>Decision</th></tr>';
        foreach ($unknown as $l) {
            $key = (int) $l->service_id . ':' . (int) $l->addon_id;
            $out .= '<tr data-licence="' . (int) $l->id . '"><td>#' . (int) $l->id . '</td><td>'
                . $target($l->service_id, $l->addon_id, $l->userid) . '</td><td>' . Escape::html5($l->product) . '</td><td>'
                . Html::utc($l->issue_started_at) . '</td><td>' . ($l->job_id === null ? '—' : $job($l->job_id)) . '</td><td>'
                . (isset($decisions[$key]) ? self::decided($decisions[$key]) : self::forms($l, $here)) . '</td></tr>';
        }
        return $out . '</table>';
    }

    /**
     * A decision recorded and not applied yet.
     */
    private static function decided($request)
    {
        $what = $request->action === Requests::LICENCE_RECORD
            ? 'key ' . (string) $request->detail . ' recorded'
            : 'another licence requested';
        return '<span class="jq-decided">' . Escape::html5($what . ' at ' . substr((string) $request->created_at, 0, 19)
            . ' UTC, waiting for jetpack-worker') . '</span>';
    }

    /**
     * The two forms of an unknown licence: the key with Record the key, and Issue another
     * licence (with its confirm).
     */
    private static function forms($licence, $here)
    {
        $target = '<input type="hidden" name="service" value="' . (int) $licence->service_id . '">'
            . '<input type="hidden" name="addon" value="' . (int) $licence->addon_id . '">';
        $confirm = json_encode(LicenceView::REISSUE_CONFIRM, JSON_HEX_TAG | JSON_HEX_APOS | JSON_HEX_QUOT | JSON_HEX_AMP);
        return '<form method="post" action="' . $here . '" class="jq-inline jq-licence-record">' . Actions::tokenField()
            . '<input type="hidden" name="jq_action" value="' . self::RECORD . '">' . $target
            . '<input type="text" name="key" required maxlength="' . Licences::KEY_MAX_CHARS . '" size="40" autocomplete="off" placeholder="'
            . Escape::html5($licence->product . '_…') . '"> <button type="submit" class="btn btn-default btn-xs">Record the key</button></form> '
            . '<form method="post" action="' . $here . '" class="jq-inline jq-licence-reissue" onsubmit="return confirm('
            . Escape::html5($confirm) . ');">' . Actions::tokenField() . '<input type="hidden" name="jq_action" value="' . self::REISSUE . '">'
            . $target . '<button type="submit" class="btn btn-warning btn-xs">Issue another licence</button></form>';
    }

    /**
     * A job's page: its target's licences (newest first).
     *
     * @param array $licences Licences::ofTarget() of the job's target
     *
     * @return string HTML ('' when none)
     */
    public static function ofTargetRows(array $licences)
    {
        if (count($licences) === 0) {
            return '';
        }
        $out = '<h3>Licences</h3><ul id="jq-detail-licences">';
        foreach ($licences as $l) {
            $out .= '<li>' . Escape::html5(LicenceView::line($l)) . '</li>';
        }
        return $out . '</ul>';
    }

    /**
     * Record the key / Issue another licence posted from the section: records the request
     * through the server module (which checks that the target's licence waits and the key's
     * shape), as the admin.
     *
     * @param string $action self::RECORD or self::REISSUE
     * @param array  $post   service, addon, key
     *
     * @return array ok, message (plain text)
     */
    public static function handle($action, array $post)
    {
        $service = isset($post['service']) && ctype_digit((string) $post['service']) ? (int) $post['service'] : 0;
        $addon = isset($post['addon']) && ctype_digit((string) $post['addon']) ? (int) $post['addon'] : 0;
        if ($service === 0) {
            return array('ok' => false, 'message' => 'Refused: name the service of the licence.');
        }
        try {
            $requestId = $action === self::RECORD
                ? Licences::recordKey($service, $addon, isset($post['key']) && is_string($post['key']) ? $post['key'] : '', Requests::BY_ADMIN)
                : Licences::reissue($service, $addon, Requests::BY_ADMIN);
        } catch (ModuleError $e) {
            return array('ok' => false, 'message' => html_entity_decode($e->getMessage(), ENT_QUOTES | ENT_HTML5, 'UTF-8'));
        } catch (\PDOException $e) {
            $said = isset($e->errorInfo[2]) ? (string) $e->errorInfo[2] : 'database error';
            return array('ok' => false, 'message' => 'The database refused: ' . $said . '. Nothing was recorded.');
        }
        $kind = $action === self::RECORD ? Requests::LICENCE_RECORD : Requests::LICENCE_REISSUE;
        if (function_exists('logActivity')) {
            logActivity(Messages::requested($service, $kind, $requestId, $addon));
        }
        return array('ok' => true, 'message' => ($action === self::RECORD ? 'The key was recorded' : 'Another licence was requested')
            . ' for ' . ($addon > 0 ? 'addon ' . $addon . ' on service ' . $service : 'service ' . $service)
            . ' (request #' . $requestId . '); jetpack-worker applies it within seconds.');
    }
}
