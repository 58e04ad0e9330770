<?php
/**
 * The module's side of the tables it shares with jetpack-worker.
 *
 * Writes: the module only RECORDS what was asked (`mod_jetpack_requests`, one plain INSERT) and
 * writes the "queued" text into the target's jetpack_provisioning_details. A request, a job and
 * a ledger row name their target (docs/addons.md): a service (`addon_id` = 0) or one product
 * addon (`addon_id` = tblhostingaddons.id, `service_id` = its parent service), so every read
 * of "this service's" rows says `addon_id = 0`, and an addon's rows are read by
 * (service_id, addon_id). Which request wins
 * (supersede, follow-up, asked again, retry with a fresh budget) is the worker's decision alone
 * (src/lifecycle.rs): it applies the requests in id order, latest intent winning, and fills in
 * applied_at, job_id and decision. No write here takes a locking read or opens a transaction;
 * each statement runs on its own (autocommit) and is tried again, after a short random sleep,
 * on a deadlock or lock-wait timeout (1213 is also what Galera returns for a certification
 * conflict).
 *
 * Reads, for the admin tab: the latest job (`mod_jetpack_jobs`), the requests, and the ledger
 * (`mod_jetpack_ledger`: the plan each success left at the partner, per site), and whether a
 * worker is running (`mod_jetpack_workers`, the worker's heartbeat rows). Every query uses an
 * index: requests KEY service (service_id, id), ledger UNIQUE (service_id, addon_id,
 * site_hash), jobs KEY service (service_id, id), workers KEY seen (last_seen_at).
 *
 * Times are UTC from the database clock (UTC_TIMESTAMP(6)). Every query is parameterised
 * through the query builder.
 */

namespace WHMCS\Module\Server\Jetpack;

use WHMCS\Database\Capsule;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

class Requests
{
    const TABLE = 'mod_jetpack_requests';
    const JOBS = 'mod_jetpack_jobs';
    const LEDGER = 'mod_jetpack_ledger';
    const WORKERS = 'mod_jetpack_workers';
    const DRIFT = 'mod_jetpack_drift';
    const HOLDS = 'mod_jetpack_holds';

    /** A worker counts as running when seen within this many seconds (and not stopped). */
    const WORKER_LIVE_SECONDS = 120;
    const VALUES = 'tblcustomfieldsvalues';

    /** Actions. */
    const PROVISION = 'provision';
    const TERMINATE = 'terminate';
    const RETRY = 'retry';
    /** A change of plan (WHMCS ChangePackage, after an upgrade or downgrade). */
    const CHANGE = 'change';
    /** WHMCS SuspendAccount and UnsuspendAccount (the product's setting says what they do). */
    const SUSPEND = 'suspend';
    const UNSUSPEND = 'unsuspend';
    /**
     * A deleted service or addon (the ServiceDelete hook): the worker cancels its plan once the
     * deletion grace period (JETPACK_DELETE_GRACE) ends; the queue page's Cancel now and Keep
     * the plan record the other two.
     */
    const DELETED = 'deleted';
    const CANCEL_NOW = 'cancel_now';
    const KEEP_PLAN = 'keep_plan';
    /** An admin's key for the target's `unknown` licence (detail = the key; Licences::recordKey). */
    const LICENCE_RECORD = 'licence_record';
    /** An admin's deliberate choice to issue another licence for an `unknown` one (Licences::reissue). */
    const LICENCE_REISSUE = 'licence_reissue';

    /** Who asked. */
    const BY_MODULE = 'module';
    const BY_ADMIN = 'admin';

    /** Tries of one statement after a deadlock or lock-wait timeout, the first included. */
    const MAX_TRIES = 6;

    /** At most this many requests not yet applied are listed on the admin tab. */
    const PENDING_SHOWN = 10;

    /** The service's tab lists the jobs of at most this many of its addons. */
    const ADDONS_SHOWN = 10;

    /** Of the service's addons' jobs, at most this many (newest first) are read for that list. */
    const ADDON_JOBS_READ = 100;

    /**
     * Records a request for the worker: one INSERT, applied_at, job_id and decision left NULL.
     *
     * @param int         $serviceId   tblhosting.id (for an addon: its parent, tblhostingaddons.hostingid)
     * @param string      $action      a request kind (self::PROVISION, …, self::LICENCE_RECORD)
     * @param string      $requestedBy self::BY_MODULE, self::BY_ADMIN or Hooks::BY_HOOK
     * @param int         $addonId     tblhostingaddons.id, 0 for the service itself
     * @param int|null    $clientId    tblclients.id, for a target that may be gone (a deletion's
     *                                 requests: the page lists it, the worker's activity line goes
     *                                 to that client); null writes no client
     * @param string|null $detail      what the request carries besides its kind (the key of a
     *                                 licence_record); null writes no detail column, so the
     *                                 other kinds record on a worker schema without it
     *
     * @return int the request's id
     *
     * @throws \PDOException on a database error (after the retries, for a lock conflict)
     */
    public static function record($serviceId, $action, $requestedBy, $addonId = 0, $clientId = null, $detail = null)
    {
        $row = array(
            'service_id' => (int) $serviceId,
            'addon_id' => (int) $addonId,
            'action' => (string) $action,
            'requested_by' => (string) $requestedBy,
            'created_at' => Capsule::raw('UTC_TIMESTAMP(6)'),
        );
        if ($clientId !== null) {
            $row['client_id'] = (int) $clientId;
        }
        if ($detail !== null) {
            $row['detail'] = (string) $detail;
        }
        return (int) self::retrying(function () use ($row) {
            return Capsule::table(self::TABLE)->insertGetId($row);
        });
    }

    /**
     * Sets THIS target's jetpack_provisioning_details: a plain (non-locking) SELECT of its
     * lowest value row, then an UPDATE of that row by id, or an INSERT when it has none. Never
     * an UPDATE scoped by the field alone (the original module's bug, which overwrote the field
     * of every service of the product). A service's value has relid = tblhosting.id on its
     * product's field; an addon's has relid = tblhostingaddons.id on the addon's own field, so
     * the parent service's details are never touched.
     *
     * Two calls at once that both find no row each insert one. The lowest row is the one WHMCS
     * and the worker read, so the others are deleted again (see removeRacingInserts), which
     * keeps one row per service as WHMCS does.
     *
     * @param int    $serviceId the value's relid: tblhosting.id, or tblhostingaddons.id for an addon
     * @param int    $fieldId   tblcustomfields.id of the product's (or addon's) details field
     * @param string $text
     *
     * @return array what undoDetails() needs: id (the row written, null when it was another
     *               writer's), inserted (bool), previous (the value it replaced, null for an
     *               inserted row)
     *
     * @throws \PDOException on a database error
     */
    public static function writeDetails($serviceId, $fieldId, $text)
    {
        for ($pass = 1;; $pass++) {
            $row = self::lowestDetailsRow($serviceId, $fieldId);
            if ($row === null) {
                $id = (int) self::retrying(function () use ($serviceId, $fieldId, $text) {
                    return Capsule::table(self::VALUES)->insertGetId(array(
                        'fieldid' => (int) $fieldId,
                        'relid' => (int) $serviceId,
                        'value' => (string) $text,
                        'created_at' => Capsule::raw('NOW()'),
                        'updated_at' => Capsule::raw('NOW()'),
                    ));
                });
                $keptOwn = self::removeRacingInserts($serviceId, $fieldId, $id);
                if (!$keptOwn) {
                    return array('id' => null, 'inserted' => false, 'previous' => null);
                }
                return array('id' => $id, 'inserted' => true, 'previous' => null);
            }
            $changed = self::retrying(function () use ($row, $text) {
                return Capsule::table(self::VALUES)->where('id', (int) $row->id)->update(array(
                    'value' => (string) $text,
                    'updated_at' => Capsule::raw('NOW()'),
                ));
            });
            // PDO counts changed rows only, so 0 may also mean the row already held this text
            // and timestamp: only a row deleted between the SELECT and the UPDATE (confirmed
            // gone) sends us round again, to insert one.
            if ($changed > 0 || $pass >= 3 || self::rowExists((int) $row->id)) {
                return array('id' => (int) $row->id, 'inserted' => false, 'previous' => (string) $row->value);
            }
        }
    }

    /**
     * Takes back a details write whose request could not be recorded, so the field does not
     * say "queued" for nothing: the row goes back to its previous value (an inserted row is
     * deleted), but only while it still holds $text (the worker may have written since). Best
     * effort: a database error here is ignored, the caller reports the first one.
     *
     * @param array  $written what writeDetails() returned
     * @param string $text    the text writeDetails() wrote
     */
    public static function undoDetails(array $written, $text)
    {
        if ($written['id'] === null) {
            return;
        }
        try {
            $query = Capsule::table(self::VALUES)
                ->where('id', (int) $written['id'])
                ->where('value', (string) $text);
            if ($written['inserted']) {
                $query->delete();
            } else {
                $query->update(array('value' => (string) $written['previous']));
            }
        } catch (\PDOException $e) {
            // The caller reports the error that made it undo.
        }
    }

    /**
     * The target's latest job for the admin area, with `due_in` = seconds until run_at by the
     * database clock (negative when overdue); null when the target never had a job.
     *
     * @param int $serviceId tblhosting.id (an addon's parent)
     * @param int $addonId   tblhostingaddons.id, 0 for the service itself
     *
     * @return object|null
     *
     * @throws \PDOException on a database error
     */
    public static function latestJob($serviceId, $addonId = 0)
    {
        return Capsule::table(self::JOBS)
            ->where('service_id', (int) $serviceId)
            ->where('addon_id', (int) $addonId)
            ->orderBy('id', 'desc')
            ->first(array(
                'id', 'action', 'state', 'attempts', 'max_attempts', 'dns_checks', 'run_at',
                'lease_expires_at', 'follow_up', 'last_error', 'result', 'requested_by',
                'finished_at',
                Capsule::raw('TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(6), run_at) AS due_in'),
            ));
    }

    /**
     * The target's requests the worker has not applied yet, oldest (created_at, then id)
     * first (at most PENDING_SHOWN + 1, so the caller can tell there are more).
     *
     * @param int $serviceId tblhosting.id (an addon's parent)
     * @param int $addonId   tblhostingaddons.id, 0 for the service itself
     *
     * @return array objects with id, action, requested_by, created_at
     *
     * @throws \PDOException on a database error
     */
    public static function pending($serviceId, $addonId = 0)
    {
        return Query::rows(Capsule::table(self::TABLE)
            ->where('service_id', (int) $serviceId)
            ->where('addon_id', (int) $addonId)
            ->whereNull('applied_at')
            ->orderBy('created_at')
            ->orderBy('id')
            ->limit(self::PENDING_SHOWN + 1)
            ->get(array('id', 'action', 'requested_by', 'created_at')));
    }

    /**
     * The target's latest request the worker has applied, with its decision; null when none.
     * Latest by created_at (the database's clock), then id: on a multi-primary Galera cluster
     * ids interleave by node, so a later request can have a lower id.
     *
     * @param int $serviceId tblhosting.id (an addon's parent)
     * @param int $addonId   tblhostingaddons.id, 0 for the service itself
     *
     * @return object|null id, action, requested_by, created_at, applied_at, job_id, decision
     *
     * @throws \PDOException on a database error
     */
    public static function latestApplied($serviceId, $addonId = 0)
    {
        return Capsule::table(self::TABLE)
            ->where('service_id', (int) $serviceId)
            ->where('addon_id', (int) $addonId)
            ->whereNotNull('applied_at')
            ->orderBy('created_at', 'desc')
            ->orderBy('id', 'desc')
            ->first(array('id', 'action', 'requested_by', 'created_at', 'applied_at', 'job_id', 'decision'));
    }

    /**
     * What the ledger holds for the target: one row per site a plan was provisioned on and
     * not cancelled since (UNIQUE service_site (service_id, addon_id, site_hash)).
     *
     * @param int $serviceId tblhosting.id (an addon's parent)
     * @param int $addonId   tblhostingaddons.id, 0 for the service itself
     *
     * @return array objects with site, plan, pending, since, updated_at, job_id
     *
     * @throws \PDOException on a database error
     */
    public static function ledger($serviceId, $addonId = 0)
    {
        return Query::rows(Capsule::table(self::LEDGER)
            ->where('service_id', (int) $serviceId)
            ->where('addon_id', (int) $addonId)
            ->orderBy('id')
            ->get(array('site', 'plan', 'pending', 'since', 'updated_at', 'job_id')));
    }

    /**
     * The latest job of each of the service's addons that has one, for the service's tab:
     * the newest ADDON_JOBS_READ addon jobs of the service (KEY service (service_id, id), read
     * backwards), the first per addon, at most ADDONS_SHOWN addons, newest first.
     *
     * @param int $serviceId tblhosting.id
     *
     * @return array objects with id, addon_id, action, state, last_error, finished_at
     *
     * @throws \PDOException on a database error
     */
    public static function addonJobs($serviceId)
    {
        $rows = Query::rows(Capsule::table(self::JOBS)
            ->where('service_id', (int) $serviceId)
            ->where('addon_id', '>', 0)
            ->orderBy('id', 'desc')
            ->limit(self::ADDON_JOBS_READ)
            ->get(array('id', 'addon_id', 'action', 'state', 'last_error', 'finished_at')));
        $latest = array();
        foreach ($rows as $row) {
            if (!isset($latest[(int) $row->addon_id]) && count($latest) < self::ADDONS_SHOWN) {
                $latest[(int) $row->addon_id] = $row;
            }
        }
        return array_values($latest);
    }

    /**
     * The target's latest drift the worker's reconciler confirmed (KEY target (service_id,
     * addon_id), newest id first); null when none, or when the worker has not made
     * mod_jetpack_drift yet (SQLSTATE 42S02: a jetpack-worker without the reconciler).
     *
     * @param int $serviceId tblhosting.id (an addon's parent)
     * @param int $addonId   tblhostingaddons.id, 0 for the service itself
     *
     * @return object|null site, expected, found, done, created_at
     *
     * @throws \PDOException on any other database error
     */
    public static function latestDrift($serviceId, $addonId = 0)
    {
        try {
            return Capsule::table(self::DRIFT)
                ->where('service_id', (int) $serviceId)
                ->where('addon_id', (int) $addonId)
                ->orderBy('id', 'desc')
                ->first(array('site', 'expected', 'found', 'done', 'created_at'));
        } catch (\PDOException $e) {
            if ((string) $e->getCode() === '42S02') {
                return null;
            }
            throw $e;
        }
    }

    /**
     * The hold on a partner account (its Client ID), recorded on the queue dashboard: the
     * worker leaves the account's jobs queued until it is resumed. Null when it is not held,
     * when no Client ID is given, or when the worker has not made mod_jetpack_holds yet.
     *
     * @param string $account the product's (addon's) Client ID
     *
     * @return object|null account, held_at, held_by, reason
     *
     * @throws \PDOException on any other database error
     */
    public static function accountHold($account)
    {
        $account = trim((string) $account);
        if ($account === '') {
            return null;
        }
        try {
            return Capsule::table(self::HOLDS)->where('account', $account)
                ->first(array('account', 'held_at', 'held_by', 'reason'));
        } catch (\PDOException $e) {
            if ((string) $e->getCode() === '42S02') {
                return null;
            }
            throw $e;
        }
    }

    /**
     * Whether a jetpack-worker is running: a `mod_jetpack_workers` row not stopped and seen
     * within WORKER_LIVE_SECONDS, by the database clock (a range over KEY seen). Null when it
     * cannot be told (the table is missing because the worker has not migrated yet, or the
     * read failed): the caller then shows nothing extra.
     *
     * @return bool|null
     */
    public static function workerRunning()
    {
        try {
            $row = Capsule::table(self::WORKERS)
                ->where('last_seen_at', '>=', Capsule::raw(
                    'UTC_TIMESTAMP(6) - INTERVAL ' . (int) self::WORKER_LIVE_SECONDS . ' SECOND'
                ))
                ->whereNull('stopped_at')
                ->first(array('owner'));
        } catch (\PDOException $e) {
            return null;
        }
        return $row !== null;
    }

    /**
     * The target's Site URL as it reads now (its lowest value row, cut at the first `|`,
     * trimmed), without checking the rest of the order: for display. For an addon whose Site
     * URL field is missing or empty, the parent service's domain (what the worker provisions).
     * Null when there is none.
     *
     * @param int $serviceId tblhosting.id (an addon's parent)
     * @param int $addonId   tblhostingaddons.id, 0 for the service itself
     *
     * @return string|null
     *
     * @throws \PDOException on a database error
     */
    public static function currentSiteUrl($serviceId, $addonId = 0)
    {
        $owner = CustomFields::fieldOwner($serviceId, $addonId);
        if ($owner === null) {
            return null;
        }
        $site = null;
        foreach (CustomFields::ownerFields($owner[0], $owner[1]) as $field) {
            if (CustomFields::fieldKey($field->fieldname) !== Rules::fieldName('site_url')) {
                continue;
            }
            $value = Capsule::table(self::VALUES)
                ->where('fieldid', (int) $field->id)
                ->where('relid', $owner[2])
                ->orderBy('id')
                ->value('value');
            if ($value !== null) {
                $parts = explode('|', (string) $value, 2);
                $site = trim($parts[0]);
            }
            break;
        }
        if ((int) $addonId > 0 && ($site === null || $site === '')) {
            $domain = Capsule::table('tblhosting')->where('id', (int) $serviceId)->value('domain');
            $domain = trim((string) $domain);
            return $domain === '' ? $site : $domain;
        }
        return $site;
    }

    /**
     * Runs one statement, again after a short random sleep when it lost a lock conflict
     * (deadlock, lock-wait timeout, Galera certification conflict), at most MAX_TRIES times.
     * Inside a transaction someone else opened, a conflict rolled that transaction back, so
     * it is not tried again.
     *
     * @param callable $statement runs one statement and returns its result
     *
     * @return mixed what $statement returned
     *
     * @throws \PDOException the last error
     */
    private static function retrying(callable $statement)
    {
        for ($try = 1;; $try++) {
            try {
                return $statement();
            } catch (\PDOException $e) {
                if ($try >= self::MAX_TRIES || !ModuleError::isLockConflict($e)
                    || Capsule::connection()->transactionLevel() > 0
                ) {
                    throw $e;
                }
                usleep(random_int(5000, 20000) * $try);
            }
        }
    }

    /**
     * After an INSERT of row $ownId: deletes every row of this service's details field other
     * than the lowest that holds a "queued" text (only module writers put those there).
     *
     * Auto-increment ids are handed out before commit, so racing inserts can commit out of id
     * order, and a writer that looks right after its own commit may not see a lower row yet.
     * Whichever of two racing writers commits last sees both rows when it looks, so it removes
     * the higher one, its own or the other's: however the commits fall, one row is left.
     *
     * @param int $serviceId tblhosting.id
     * @param int $fieldId   tblcustomfields.id
     * @param int $ownId     the row this writer inserted
     *
     * @return bool whether the writer's own row is the one left
     */
    private static function removeRacingInserts($serviceId, $fieldId, $ownId)
    {
        $rows = Query::rows(self::retrying(function () use ($serviceId, $fieldId) {
            return Capsule::table(self::VALUES)
                ->where('fieldid', (int) $fieldId)
                ->where('relid', (int) $serviceId)
                ->orderBy('id')
                ->get(array('id', 'value'));
        }));
        $lowest = count($rows) > 0 ? (int) $rows[0]->id : $ownId;
        $extra = array();
        foreach (array_slice($rows, 1) as $row) {
            $extra[] = (int) $row->id;
        }
        if (count($extra) > 0) {
            self::retrying(function () use ($extra) {
                return Capsule::table(self::VALUES)
                    ->whereIn('id', $extra)
                    ->whereIn('value', Catalogue::queuedTexts())
                    ->delete();
            });
        }
        return $lowest === $ownId;
    }

    /**
     * The service's lowest details row (a plain, non-locking read).
     *
     * @param int $serviceId tblhosting.id
     * @param int $fieldId   tblcustomfields.id
     *
     * @return object|null id and value
     */
    private static function lowestDetailsRow($serviceId, $fieldId)
    {
        return self::retrying(function () use ($serviceId, $fieldId) {
            return Capsule::table(self::VALUES)
                ->where('fieldid', (int) $fieldId)
                ->where('relid', (int) $serviceId)
                ->orderBy('id')
                ->first(array('id', 'value'));
        });
    }

    /**
     * @param int $id tblcustomfieldsvalues.id
     *
     * @return bool whether the row is still there
     */
    private static function rowExists($id)
    {
        return self::retrying(function () use ($id) {
            return Capsule::table(self::VALUES)->where('id', (int) $id)->exists();
        });
    }
}
