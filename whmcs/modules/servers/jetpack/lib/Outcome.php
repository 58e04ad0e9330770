<?php
/**
 * The worker's latest outcome survives a WHMCS save. WHMCS's admin service page (and an addon's)
 * shows every custom field, Admin Only ones included, as an input and writes the whole form
 * back on "Save Changes"; so does the API's UpdateClientProduct with customfields. A page loaded
 * while the details field said "queued" (or showed an older outcome) and saved after the worker
 * wrote the activation link writes the stale text back over the link, and nothing would write it
 * again: the client area, the admin tab and the activation email would show "queued" for good.
 *
 * WHMCS fires ServiceEdit and AdminServiceEdit (a service) or AddonEdit, or the status hook the
 * save caused (an addon), after it saved the custom fields (developers.whmcs.com
 * hooks-reference/service/#serviceedit, /admin-area/#adminserviceedit, /addon/#addonedit).
 * putBack() then compares the target's details field with the worker's latest word on it: the
 * text the target's latest job that wrote one wrote (mod_jetpack_jobs.details, set by the
 * worker in the outcome's own fenced update). When they differ, the worker's text is written
 * back at once (compare-and-set on the value the save left, so a worker write in between wins)
 * and one activity line says so. The field is the worker's: any other text a save leaves there
 * is put right too.
 *
 * Nothing is put back while the worker has not spoken yet: a request of the target not applied
 * yet, or a latest job that wrote nothing and did not end done (still unfinished, overtaken by
 * a newer request, or failed without its outcome written) or has another action waiting behind
 * it (the module's "queued" text is then the right one). A latest job that ended done without
 * writing (a suspend that kept the plan) leaves the text of the job before it. Decides nothing
 * about the job: it only shows what the worker wrote.
 *
 * Every read is by an index: the jobs by KEY service (service_id, id), the requests by KEY
 * target_created (service_id, addon_id, created_at, id), the custom fields by their relid and
 * the values by fieldid_relid. A service of another module has no job, so it costs one read.
 */

namespace WHMCS\Module\Server\Jetpack;

use WHMCS\Database\Capsule;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

final class Outcome
{
    /** The state of a job that ended as asked (mod_jetpack_jobs.state). */
    const DONE = 'done';

    /** What the hook's activity line says when the check itself failed. */
    const FAILED = 'could not check jetpack_provisioning_details after the save';

    /**
     * The hooks an addon's save fires after writing its custom fields: AddonEdit, or instead
     * the one of the status it changed to (developers.whmcs.com hooks-reference/addon).
     */
    const ADDON_SAVE_HOOKS = array(
        'AddonEdit', 'AddonActivated', 'AddonSuspended', 'AddonUnsuspended', 'AddonTerminated',
        'AddonCancelled', 'AddonFraud',
    );

    /**
     * The service hooks of a save (ServiceEdit, AdminServiceEdit: {userid, serviceid}).
     *
     * @param array  $vars the hook's parameters
     * @param string $hook its name, for the log
     */
    public static function afterServiceSave(array $vars, $hook)
    {
        $serviceId = isset($vars['serviceid']) ? (int) $vars['serviceid'] : 0;
        $clientId = isset($vars['userid']) ? (int) $vars['userid'] : 0;
        Hooks::guard($hook, 'service ' . $serviceId, function () use ($serviceId, $clientId) {
            self::putBack($serviceId, 0, $clientId);
        }, self::FAILED);
    }

    /**
     * The addon hooks of a save (AddonEdit, or the status hook it fires instead:
     * {id, userid, serviceid, addonid}, id = tblhostingaddons.id).
     *
     * @param array  $vars the hook's parameters
     * @param string $hook its name, for the log
     */
    public static function afterAddonSave(array $vars, $hook)
    {
        $addonId = isset($vars['id']) ? (int) $vars['id'] : 0;
        $clientId = isset($vars['userid']) ? (int) $vars['userid'] : 0;
        Hooks::guard($hook, 'addon ' . $addonId, function () use ($addonId, $clientId) {
            $serviceId = Capsule::table('tblhostingaddons')->where('id', $addonId)->value('hostingid');
            if ($serviceId !== null && $addonId > 0) {
                self::putBack((int) $serviceId, $addonId, $clientId);
            }
        }, self::FAILED);
    }

    /**
     * Writes the worker's latest text back into the target's details field when the field
     * holds anything else, and logs it.
     *
     * @param int $serviceId tblhosting.id (an addon's parent)
     * @param int $addonId   tblhostingaddons.id, 0 for the service itself
     * @param int $clientId  for the activity log
     *
     * @return bool whether it was put back
     *
     * @throws \PDOException on a database error
     */
    public static function putBack($serviceId, $addonId, $clientId)
    {
        try {
            $latest = self::workerText($serviceId, $addonId);
        } catch (\PDOException $e) {
            // The module was uploaded before `jetpack-worker migrate` added the column (or the
            // tables): the worker has recorded no text yet, so there is nothing to put back.
            $number = isset($e->errorInfo[1]) ? (int) $e->errorInfo[1] : 0;
            if ($number === ModuleError::ER_BAD_FIELD || ModuleError::isWorkerTableMissing($e)) {
                return false;
            }
            throw $e;
        }
        if ($latest === null) {
            return false;
        }
        $field = self::detailsField($serviceId, $addonId);
        if ($field === null) {
            return false;
        }
        $row = Capsule::table(Requests::VALUES)
            ->where('fieldid', $field[0])
            ->where('relid', $field[1])
            ->orderBy('id')
            ->first(array('id', 'value'));
        if ($row !== null && (string) $row->value === $latest->details) {
            return false;
        }
        if ($row === null) {
            Requests::writeDetails($field[1], $field[0], $latest->details);
        } elseif (Capsule::table(Requests::VALUES)
            ->where('id', (int) $row->id)
            ->where('value', (string) $row->value)
            ->update(array('value' => $latest->details, 'updated_at' => Capsule::raw('NOW()'))) === 0
        ) {
            return false;
        }
        Log::activity(self::line($serviceId, $addonId, (int) $latest->id), $clientId);
        return true;
    }

    /**
     * The worker's latest word on the target's details: the newest job that wrote one, with
     * its text; null while the worker has not spoken since the latest request (a request not
     * applied yet, or a latest job that wrote nothing yet and is unfinished or has an action
     * waiting behind it), or when no job ever wrote one.
     *
     * @param int $serviceId tblhosting.id (an addon's parent)
     * @param int $addonId   tblhostingaddons.id, 0 for the service itself
     *
     * @return object|null id and details
     *
     * @throws \PDOException on a database error
     */
    public static function workerText($serviceId, $addonId)
    {
        $jobs = Capsule::table(Requests::JOBS)
            ->where('service_id', (int) $serviceId)
            ->where('addon_id', (int) $addonId)
            ->orderBy('id', 'desc');
        $job = (clone $jobs)->first(array('id', 'state', 'follow_up', 'details'));
        if ($job === null || self::requestWaits($serviceId, $addonId)) {
            return null;
        }
        if ($job->details !== null) {
            return $job;
        }
        // Only a job that ended done without writing (a suspend that kept the plan, an
        // unsuspend with nothing to do) leaves the earlier text as the worker's word. One still
        // unfinished has not spoken; a cancelled one was overtaken by a request whose "queued"
        // text stands; a failed one whose outcome could not be written left the field unknown.
        if ($job->state !== self::DONE || ($job->follow_up !== null && $job->follow_up !== '')) {
            return null;
        }
        return $jobs->whereNotNull('details')->first(array('id', 'details'));
    }

    /**
     * Whether the target has a request the worker has not applied yet.
     *
     * @return bool
     */
    private static function requestWaits($serviceId, $addonId)
    {
        return Capsule::table(Requests::TABLE)
            ->where('service_id', (int) $serviceId)
            ->where('addon_id', (int) $addonId)
            ->whereNull('applied_at')
            ->exists();
    }

    /**
     * The target's details field and whose values it holds.
     *
     * @return array|null array(tblcustomfields.id, the values' relid); null when there is none
     *
     * @throws \PDOException on a database error
     */
    private static function detailsField($serviceId, $addonId)
    {
        try {
            $key = Rules::fieldName('details');
        } catch (ModuleError $e) {
            return null;
        }
        $owner = CustomFields::fieldOwner($serviceId, $addonId);
        if ($owner === null) {
            return null;
        }
        foreach (CustomFields::ownerFields($owner[0], $owner[1]) as $field) {
            if (CustomFields::fieldKey($field->fieldname) === $key) {
                return array((int) $field->id, $owner[2]);
            }
        }
        return null;
    }

    /**
     * The activity line for a text put back.
     *
     * @param int $serviceId
     * @param int $addonId
     * @param int $jobId the job whose text it is
     *
     * @return string
     */
    public static function line($serviceId, $addonId, $jobId)
    {
        return ModuleError::PREFIX . ModuleError::target($serviceId, $addonId) . ' - a save in WHMCS wrote '
            . 'another text over jetpack_provisioning_details; jetpack-worker\'s latest outcome (job #'
            . (int) $jobId . ') was put back. The field shows what the worker did: use Create, '
            . 'Terminate or Retry Jetpack Job to change it';
    }
}
