<?php

namespace JetpackTests\Support;

use WHMCS\Database\Capsule;

/**
 * The few things WHMCS itself does around a module call, for the tests that follow a service
 * through WHMCS (as described in shared/reference/whmcs.md, "How module functions are
 * called"): build the module parameters, call the module function, and on 'success' set the
 * service status and resolve the Module Queue entry; on an error add or bump the Module Queue
 * entry and leave the status alone. Module Queue "Retry" calls the same path again.
 */
final class Whmcs
{
    const MODULE = 'jetpack';

    /**
     * The module parameters WHMCS passes (the ones the module could use).
     *
     * @param int $serviceId tblhosting.id
     *
     * @return array
     */
    public static function params($serviceId)
    {
        $service = Capsule::table('tblhosting')->where('id', $serviceId)->first();
        $product = Capsule::table('tblproducts')->where('id', $service->packageid)->first();
        $customFields = array();
        $fields = Capsule::table('tblcustomfields')
            ->where('type', 'product')->where('relid', $service->packageid)->orderBy('id')->get();
        foreach ($fields as $field) {
            $value = Capsule::table('tblcustomfieldsvalues')
                ->where('fieldid', $field->id)->where('relid', $serviceId)->orderBy('id')->value('value');
            $key = trim(explode('|', $field->fieldname, 2)[0]);
            $customFields[$key] = explode('|', (string) $value, 2)[0];
        }
        $params = array(
            'addonId' => 0,
            'serviceid' => (int) $serviceId,
            'accountid' => (int) $serviceId,
            'userid' => (int) $service->userid,
            'pid' => (int) $service->packageid,
            'packageid' => (int) $service->packageid,
            'domain' => $service->domain,
            'status' => $service->domainstatus,
            'moduletype' => $product->servertype,
            'customfields' => $customFields,
        );
        // Every module setting, configoption1..24, as WHMCS passes them.
        for ($n = 1; $n <= 24; $n++) {
            $params['configoption' . $n] = (string) $product->{'configoption' . $n};
        }
        return $params;
    }

    /**
     * The module parameters WHMCS passes for a product addon [shared/reference/whmcs.md §4]:
     * `addonId` = `accountid` = tblhostingaddons.id, `serviceid` = the parent service, `pid` =
     * `packageid` = tbladdons.id, the domain of the parent, the addon's module settings
     * (tblmodule_configuration) and custom fields.
     *
     * @param int $addonId tblhostingaddons.id
     *
     * @return array
     */
    public static function addonParams($addonId)
    {
        $addon = Capsule::table('tblhostingaddons')->where('id', $addonId)->first();
        $service = Capsule::table('tblhosting')->where('id', $addon->hostingid)->first();
        $settings = array();
        foreach (Capsule::table('tblmodule_configuration')->where('entity_type', 'addon')
                     ->where('entity_id', $addon->addonid)->get() as $row) {
            $settings[$row->setting_name] = $row->value;
        }
        $module = Capsule::table('tbladdons')->where('id', $addon->addonid)->value('module');
        $customFields = array();
        $fields = Capsule::table('tblcustomfields')
            ->where('type', 'addon')->where('relid', $addon->addonid)->orderBy('id')->get();
        foreach ($fields as $field) {
            $value = Capsule::table('tblcustomfieldsvalues')
                ->where('fieldid', $field->id)->where('relid', $addonId)->orderBy('id')->value('value');
            $key = trim(explode('|', $field->fieldname, 2)[0]);
            $customFields[$key] = explode('|', (string) $value, 2)[0];
        }
        return array(
            'addonId' => (int) $addonId,
            'accountid' => (int) $addonId,
            'serviceid' => (int) $addon->hostingid,
            'userid' => (int) $addon->userid,
            'pid' => (int) $addon->addonid,
            'packageid' => (int) $addon->addonid,
            'domain' => $service === null ? '' : $service->domain,
            'status' => $addon->status,
            'moduletype' => (string) $module,
            'customfields' => $customFields,
        ) + self::addonSettings($settings);
    }

    /**
     * An addon's module settings as WHMCS passes them: configoption1..24, '' when unset.
     *
     * @param array $settings setting_name => value (tblmodule_configuration)
     *
     * @return array
     */
    private static function addonSettings(array $settings)
    {
        $params = array();
        for ($n = 1; $n <= 24; $n++) {
            $params['configoption' . $n] = isset($settings['configoption' . $n]) ? (string) $settings['configoption' . $n] : '';
        }
        return $params;
    }

    /**
     * WHMCS's ModuleCallFunction for an addon's CreateAccount / TerminateAccount: on 'success'
     * the addon's status (Active; Terminated with termination_date) and its Module Queue entry
     * (service_type 'addon', service_id = tblhostingaddons.id) resolved; on an error the entry
     * added or bumped.
     *
     * @param string $function CreateAccount or TerminateAccount
     * @param int    $addonId  tblhostingaddons.id
     *
     * @return string what the module returned
     */
    public static function addonModuleCall($function, $addonId)
    {
        $params = self::addonParams($addonId);
        $result = call_user_func('jetpack_' . $function, $params);
        $queue = Capsule::table('tblmodulequeue')
            ->where('service_type', 'addon')->where('service_id', $addonId)
            ->where('module_name', self::MODULE)->where('module_action', $function)
            ->where('completed', 0);
        if ($result === 'success') {
            if ($function === 'CreateAccount') {
                Capsule::table('tblhostingaddons')->where('id', $addonId)->update(array('status' => 'Active'));
            } else {
                Capsule::update(
                    "UPDATE tblhostingaddons SET status = 'Terminated',
                       termination_date = IF(termination_date IN ('0000-00-00', '1970-01-01'), CURDATE(), termination_date)
                     WHERE id = ?",
                    array($addonId)
                );
            }
            $queue->update(array('completed' => 1, 'last_attempt' => Capsule::raw('NOW()'), 'updated_at' => Capsule::raw('NOW()')));
            return $result;
        }
        $open = (clone $queue)->orderBy('id')->first();
        if ($open === null) {
            Capsule::table('tblmodulequeue')->insert(array(
                'service_type' => 'addon',
                'service_id' => $addonId,
                'module_name' => self::MODULE,
                'module_action' => $function,
                'last_attempt' => Capsule::raw('NOW()'),
                'last_attempt_error' => (string) $result,
                'num_retries' => 0,
                'completed' => 0,
                'created_at' => Capsule::raw('NOW()'),
                'updated_at' => Capsule::raw('NOW()'),
            ));
        } else {
            Capsule::table('tblmodulequeue')->where('id', $open->id)->update(array(
                'last_attempt' => Capsule::raw('NOW()'),
                'last_attempt_error' => (string) $result,
                'num_retries' => $open->num_retries + 1,
                'updated_at' => Capsule::raw('NOW()'),
            ));
        }
        return $result;
    }

    /**
     * WHMCS's ModuleCallFunction for CreateAccount / TerminateAccount.
     *
     * @param string $function  CreateAccount or TerminateAccount
     * @param int    $serviceId tblhosting.id
     *
     * @return string what the module returned
     */
    public static function moduleCall($function, $serviceId)
    {
        $verbs = array('CreateAccount' => 'Create', 'TerminateAccount' => 'Terminate');
        $params = self::params($serviceId);
        $result = call_user_func('jetpack_' . $function, $params);
        if ($result === 'success') {
            if ($function === 'CreateAccount') {
                Capsule::table('tblhosting')->where('id', $serviceId)
                    ->update(array('domainstatus' => 'Active', 'termination_date' => '0000-00-00'));
            } else {
                Capsule::update(
                    "UPDATE tblhosting SET domainstatus = 'Terminated',
                       termination_date = IF(termination_date IN ('0000-00-00', '1970-01-01'), CURDATE(), termination_date)
                     WHERE id = ?",
                    array($serviceId)
                );
            }
            logActivity('Module ' . $verbs[$function] . ' Successful - Service ID: ' . $serviceId, $params['userid']);
            Capsule::table('tblmodulequeue')
                ->where('service_type', 'service')->where('service_id', $serviceId)
                ->where('module_name', self::MODULE)->where('module_action', $function)
                ->where('completed', 0)
                ->update(array(
                    'completed' => 1,
                    'last_attempt' => Capsule::raw('NOW()'),
                    'updated_at' => Capsule::raw('NOW()'),
                ));
            return $result;
        }
        $open = Capsule::table('tblmodulequeue')
            ->where('service_type', 'service')->where('service_id', $serviceId)
            ->where('module_name', self::MODULE)->where('module_action', $function)
            ->where('completed', 0)->orderBy('id')->first();
        if ($open === null) {
            Capsule::table('tblmodulequeue')->insert(array(
                'service_type' => 'service',
                'service_id' => $serviceId,
                'module_name' => self::MODULE,
                'module_action' => $function,
                'last_attempt' => Capsule::raw('NOW()'),
                'last_attempt_error' => (string) $result,
                'num_retries' => 0,
                'completed' => 0,
                'created_at' => Capsule::raw('NOW()'),
                'updated_at' => Capsule::raw('NOW()'),
            ));
        } else {
            Capsule::table('tblmodulequeue')->where('id', $open->id)->update(array(
                'last_attempt' => Capsule::raw('NOW()'),
                'last_attempt_error' => (string) $result,
                'num_retries' => $open->num_retries + 1,
                'updated_at' => Capsule::raw('NOW()'),
            ));
        }
        logActivity(
            'Module ' . $verbs[$function] . ' Failed - Service ID: ' . $serviceId . ' - Error: ' . $result,
            $params['userid']
        );
        return $result;
    }

    /**
     * Utilities → Module Queue → Retry on one entry.
     *
     * @param int $queueId tblmodulequeue.id
     *
     * @return string what the module returned
     */
    public static function retry($queueId)
    {
        $item = Capsule::table('tblmodulequeue')->where('id', $queueId)->first();
        if ($item->service_type === 'addon') {
            return self::addonModuleCall($item->module_action, (int) $item->service_id);
        }
        return self::moduleCall($item->module_action, (int) $item->service_id);
    }

    /**
     * An admin custom button (no status change, no queue entry).
     *
     * @param string $suffix    the function suffix from AdminCustomButtonArray
     * @param int    $serviceId
     *
     * @return string what the module returned
     */
    public static function customButton($suffix, $serviceId)
    {
        return call_user_func('jetpack_' . $suffix, self::params($serviceId));
    }

    /**
     * An admin custom button on an addon's page.
     *
     * @param string $suffix  the function suffix from AdminCustomButtonArray
     * @param int    $addonId tblhostingaddons.id
     *
     * @return string what the module returned
     */
    public static function addonCustomButton($suffix, $addonId)
    {
        return call_user_func('jetpack_' . $suffix, self::addonParams($addonId));
    }

    /**
     * The admin service page as WHMCS renders it (clientsservices.php): every custom field of
     * the product, Admin Only ones included, as an input holding the value of the moment
     * (the lowest value row; none yet: empty). What its form posts back, keyed by field id.
     *
     * @param int $serviceId tblhosting.id
     *
     * @return array tblcustomfields.id => value
     */
    public static function adminServicePage($serviceId)
    {
        $productId = Capsule::table('tblhosting')->where('id', $serviceId)->value('packageid');
        return self::pageFields('product', (int) $productId, (int) $serviceId);
    }

    /**
     * The admin page of a service's addon (clientsservices.php?aid=…): the addon's custom
     * fields, Admin Only ones included.
     *
     * @param int $addonId tblhostingaddons.id
     *
     * @return array tblcustomfields.id => value
     */
    public static function adminAddonPage($addonId)
    {
        $definitionId = Capsule::table('tblhostingaddons')->where('id', $addonId)->value('addonid');
        return self::pageFields('addon', (int) $definitionId, (int) $addonId);
    }

    /**
     * "Save Changes" on the admin service page, as WHMCS does it: PreServiceEdit and
     * PreAdminServiceEdit, then every custom field of the form written back as posted
     * (CustomFieldValue::firstOrNew by field and service, then save), then AdminServiceEdit and
     * ServiceEdit with {userid, serviceid}.
     *
     * @param int   $serviceId tblhosting.id
     * @param array $form      what adminServicePage() returned when the page was loaded (with
     *                         any edits)
     */
    public static function saveAdminServicePage($serviceId, array $form)
    {
        $userId = (int) Capsule::table('tblhosting')->where('id', $serviceId)->value('userid');
        run_test_hooks('PreServiceEdit', array('serviceid' => (int) $serviceId));
        run_test_hooks('PreAdminServiceEdit', array('serviceid' => (int) $serviceId));
        self::writeFields((int) $serviceId, $form);
        run_test_hooks('AdminServiceEdit', array('userid' => $userId, 'serviceid' => (int) $serviceId));
        run_test_hooks('ServiceEdit', array('userid' => $userId, 'serviceid' => (int) $serviceId));
    }

    /**
     * "Save Changes" on an addon's admin page: the form's custom fields written back, then
     * AddonEdit (or the hook of the status the save set) with {id, userid, serviceid, addonid}.
     *
     * @param int    $addonId tblhostingaddons.id
     * @param array  $form    what adminAddonPage() returned
     * @param string $hook    AddonEdit, or e.g. AddonActivated when the save changed the status
     */
    public static function saveAdminAddonPage($addonId, array $form, $hook = 'AddonEdit')
    {
        $addon = Capsule::table('tblhostingaddons')->where('id', $addonId)->first();
        self::writeFields((int) $addonId, $form);
        run_test_hooks($hook, array(
            'id' => (int) $addonId,
            'userid' => (int) $addon->userid,
            'serviceid' => (int) $addon->hostingid,
            'addonid' => (int) $addon->addonid,
        ));
    }

    /**
     * @return array tblcustomfields.id => the target's value (lowest row), '' without one
     */
    private static function pageFields($type, $relid, $valuesRelid)
    {
        $form = array();
        $fields = Capsule::table('tblcustomfields')->where('type', $type)->where('relid', $relid)
            ->orderBy('sortorder')->orderBy('id')->get(array('id'));
        foreach ($fields as $field) {
            $value = Capsule::table('tblcustomfieldsvalues')
                ->where('fieldid', $field->id)->where('relid', $valuesRelid)->orderBy('id')->value('value');
            $form[(int) $field->id] = $value === null ? '' : (string) $value;
        }
        return $form;
    }

    /**
     * Each posted field written as WHMCS's saveCustomFields does: the first row of (field,
     * target) updated, or a new one inserted.
     */
    private static function writeFields($valuesRelid, array $form)
    {
        foreach ($form as $fieldId => $value) {
            $row = Capsule::table('tblcustomfieldsvalues')
                ->where('fieldid', $fieldId)->where('relid', $valuesRelid)->orderBy('id')->first(array('id'));
            if ($row === null) {
                Capsule::table('tblcustomfieldsvalues')->insert(array(
                    'fieldid' => $fieldId,
                    'relid' => $valuesRelid,
                    'value' => (string) $value,
                    'created_at' => Capsule::raw('NOW()'),
                    'updated_at' => Capsule::raw('NOW()'),
                ));
            } else {
                Capsule::table('tblcustomfieldsvalues')->where('id', $row->id)
                    ->update(array('value' => (string) $value, 'updated_at' => Capsule::raw('NOW()')));
            }
        }
    }
}
