<?php
/**
 * Jetpack by Automattic: WHMCS server module (module name `jetpack`).
 *
 * A drop-in replacement for the original Jetpack partner module that never calls the partner
 * API itself. Create and Terminate check what jetpack-worker will need, record the request in
 * `mod_jetpack_requests` (a plain INSERT: no locking read, so a checkout never fails on a
 * deadlock) and return at once. The worker (a separate service reading the WHMCS database)
 * applies the requests in order, latest intent winning, provisions or cancels the plan with
 * retries and writes the outcome back into WHMCS: the service's
 * `jetpack_provisioning_details`, its status, the activity log and, for failures, the Module
 * Queue. The module keeps no copy of the worker's rules.
 *
 * Products made for the original module work unchanged: configoption1 is the partner client
 * id, configoption2 the client secret, and the custom fields are `Site URL`, `Local User`,
 * `Plan` and `jetpack_provisioning_details` (each may be written `key|Friendly Name`). The
 * module settings Plan (configoption3) and Default Local User (configoption6) stand in for a
 * missing or empty Plan or Local User field.
 *
 * The module also runs Jetpack product addons (tbladdons.module = 'jetpack'): WHMCS then calls
 * it with `addonId` = tblhostingaddons.id and `serviceid` = the parent service. An addon is a
 * target of its own (docs/addons.md): its request names addon_id and the parent service, its
 * module settings are in tblmodule_configuration, its "queued" text goes into the addon's own
 * jetpack_provisioning_details, and its Site URL defaults to the parent service's domain.
 * ChangePackage (after an upgrade or downgrade) records a change of plan.
 *
 * The functions here are the ones WHMCS calls by name (jetpack_<Function>); each delegates to
 * lib/Module.php, which holds what they do.
 *
 * Install: copy this directory to `modules/servers/jetpack` of the WHMCS install and run
 * `jetpack-worker migrate` once against the WHMCS database (it creates the `mod_jetpack_*`
 * tables).
 * Runs on PHP 7.2 to 8.3.
 */

use WHMCS\Module\Server\Jetpack\Catalogue;
use WHMCS\Module\Server\Jetpack\Email;
use WHMCS\Module\Server\Jetpack\Licences;
use WHMCS\Module\Server\Jetpack\Module;
use WHMCS\Module\Server\Jetpack\ModuleError;
use WHMCS\Module\Server\Jetpack\Requests;
use WHMCS\Module\Server\Jetpack\Rules;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

// Every lib file is checked before any is loaded: after a partial upload WHMCS must not die on
// the product's Module Settings, the service pages or a checkout. With a file missing, each
// function below answers jetpack_MissingFiles() (an error WHMCS shows, the Module Queue keeps)
// and records nothing.
if (!defined('JETPACK_MODULE_MISSING_FILES')) {
    $jetpackLibs = array(
        'Escape', 'Log', 'ModuleError', 'Catalogue', 'Text', 'Query', 'Rules', 'CustomFields', 'SiteUrl',
        'Target', 'Order', 'OrderChecks', 'Messages', 'Requests', 'Display', 'Licences', 'LicenceView',
        'Email', 'Module',
    );
    $jetpackMissing = array();
    foreach ($jetpackLibs as $jetpackLib) {
        if (!is_file(__DIR__ . '/lib/' . $jetpackLib . '.php')) {
            $jetpackMissing[] = 'lib/' . $jetpackLib . '.php';
        }
    }
    define('JETPACK_MODULE_MISSING_FILES', implode(', ', $jetpackMissing));
    if (count($jetpackMissing) === 0) {
        foreach ($jetpackLibs as $jetpackLib) {
            require_once __DIR__ . '/lib/' . $jetpackLib . '.php';
        }
    }
}

/**
 * The message every function gives while lib files are missing; null when the module is whole.
 *
 * @return string|null
 */
function jetpack_MissingFiles()
{
    if (JETPACK_MODULE_MISSING_FILES === '') {
        return null;
    }
    return 'JETPACK MODULE: the files of modules/servers/jetpack are incomplete (missing: '
        . JETPACK_MODULE_MISSING_FILES . '); nothing was recorded: reinstall the whole directory from the '
        . 'jetpack-worker release';
}

/**
 * @return array
 */
function jetpack_MetaData()
{
    return array(
        'DisplayName' => 'Jetpack by Automattic',
        'Description' => 'Provisions Jetpack plans with your Jetpack hosting partner account, or issues '
            . 'Jetpack licences through the Licensing API, through the jetpack-worker service',
        'APIVersion' => '1.1',
        'RequiresServer' => false,
    );
}

/**
 * Product (or product addon) → Module Settings. The order matters: the Nth entry is
 * configoptionN. configoption1 is the partner client id, configoption2 the client secret, as
 * in the original module; configoption3 the Plan (a dropdown of rules.json's plans, empty = the
 * Plan custom field names it); configoption4 keeps the plan of a deleted service;
 * configoption5 switches the activation email (lib/Email.php) on or off; configoption6 is the
 * Default Local User (used when the Local User field is missing or empty); configoption7 what
 * a WHMCS suspend does; configoption9..12 the licence settings (jetpack_LicenceOptions()).
 *
 * @return array
 */
function jetpack_ConfigOptions()
{
    $whole = jetpack_MissingFiles() === null;
    $plans = array('' => 'Use the Plan custom field');
    try {
        foreach ($whole ? Rules::planSlugs() : array() as $slug) {
            $plans[$slug] = $slug;
        }
    } catch (ModuleError $e) {
        // rules.json is unusable: Create says so; the setting keeps its empty choice.
    }
    $template = $whole ? Email::TEMPLATE : 'Jetpack Activation';
    $emailOff = $whole ? Email::SETTING_OFF : 'off';
    $suspendCancel = $whole ? Catalogue::suspendCancelValue() : 'cancel';
    $manualSetup = $whole ? Catalogue::manualSetupChoices() : array();
    $options = array(
        'Jetpack Partner Client ID' => array(
            'Type' => 'text',
            'Size' => '60',
            'Description' => 'From your Jetpack hosting partner account',
        ),
        'Jetpack Partner Client Secret' => array(
            'Type' => 'password',
            'Size' => '60',
            'Description' => 'From your Jetpack hosting partner account',
        ),
        // configoption3: the plan; '' = the Plan custom field names it (docs/addons.md).
        'Plan' => array(
            'Type' => 'dropdown',
            'Options' => $plans,
            'Default' => '',
            'Description' => 'Wins over a Plan custom field (an upgrade to this product keeps the old '
                . 'field value); leave it on the first choice to let the Plan custom field name the plan',
        ),
        // configoption4. Worded so that '' (every product saved before it existed) cancels.
        'Keep the Jetpack plan when a service is deleted' => array(
            'Type' => 'yesno',
            'Description' => 'Leave unticked to cancel the plan at the partner when an admin deletes the service',
        ),
        // configoption5: '' (products saved before this setting) and 'send' send the email.
        'Send the Jetpack activation email' => array(
            'Type' => 'dropdown',
            'Options' => array(
                'send' => 'Send "' . $template . '" to the client once the plan is provisioned (or waits on DNS)',
                $emailOff => 'Do not send it',
            ),
            'Default' => 'send',
            'Description' => 'From WHMCS\'s cron; the template is created when missing',
        ),
        // configoption6: the Local User when the Local User field is missing or empty.
        'Default Local User' => array(
            'Type' => 'text',
            'Size' => '30',
            'Description' => 'The WordPress user name used when the Local User custom field is missing or empty',
        ),
        // configoption7: '' (products saved before this setting) and 'keep' keep the plan.
        'When WHMCS suspends the service' => array(
            'Type' => 'dropdown',
            'Options' => array(
                'keep' => 'Keep the Jetpack plan',
                $suspendCancel => 'Cancel the Jetpack plan, and provision it again on unsuspend',
            ),
            'Default' => 'keep',
            'Description' => 'The partner API has no suspend: a kept plan keeps costing you while the service is suspended',
        ),
        // configoption8: '' (products saved before this setting) means the first choice, 'paid'.
        // The choices and what each waits for come from catalogue.json (the worker decides).
        'When to provision a manual-setup order' => array(
            'Type' => 'dropdown',
            'Options' => $manualSetup,
            'Default' => (string) key($manualSetup),
            'Description' => 'Only for "Do not automatically setup" (an addon: Auto Activate off); the '
                . 'adoption scan and the hooks follow it',
        ),
    );
    $options += jetpack_LicenceOptions($whole);
    return $whole ? $options : jetpack_OptionsAsStored($options);
}

/**
 * The settings of a product (or addon) that sells Jetpack licences through the Licensing API
 * (configoption9..12): Jetpack API (plan, the default for every product saved before it, or
 * licence), the Licensing API token (a password field: WHMCS masks it, and the module gives it
 * to the module log's masking like the client secret), the licence product (the products
 * jetpack-worker fetched, or the catalogue's built-in list) and Attach to the site (off).
 *
 * @param bool $whole whether the module's files are all there (else plain stand-ins)
 *
 * @return array label => option
 */
function jetpack_LicenceOptions($whole)
{
    $plan = $whole ? Catalogue::apiSetting(Catalogue::API_PLAN) : 'plan';
    $licence = $whole ? Catalogue::apiSetting(Catalogue::API_LICENCE) : 'licence';
    return array(
        // configoption9: '' (every product saved before it) and 'plan' provision plans.
        'Jetpack API' => array(
            'Type' => 'dropdown',
            'Options' => array(
                $plan => 'Jetpack plan (partner provisioning)',
                $licence => 'Jetpack licence (Licensing API)',
            ),
            'Default' => $plan,
            'Description' => 'A licence product needs the token and the licence product below (not the partner '
                . 'Client ID, Secret, Plan or Local User); the customer gets a licence key to paste in their site',
        ),
        // configoption10: a secret, like the client secret.
        'Licensing API token' => array(
            'Type' => 'password',
            'Size' => '60',
            'Description' => 'The bearer token Automattic gave you for the Licensing API (licence products only)',
        ),
        // configoption11: a product slug.
        'Licence product' => array(
            'Type' => 'dropdown',
            'Options' => $whole ? Licences::productChoices() : array(),
            'Description' => 'The Jetpack product each licence is issued for (licence products only; the list '
                . 'jetpack-worker fetched from the Licensing API)',
        ),
        // configoption12: 'on' attaches; '' (the default) leaves the key to the customer.
        'Attach to the site' => array(
            'Type' => 'yesno',
            'Description' => 'Only for partners Automattic allowlisted for attaching licences: attaches each '
                . 'licence to the Site URL. Leave it off otherwise: the customer pastes the key in their site',
        ),
    );
}

/**
 * The Module Settings while lib files are missing: the same settings in the same order, each a
 * plain text box showing the value as stored (a dropdown without its real choices would save
 * another value), the first saying what is wrong.
 *
 * @param array $options what jetpack_ConfigOptions() shows when the module is whole
 *
 * @return array
 */
function jetpack_OptionsAsStored(array $options)
{
    $out = array();
    foreach ($options as $label => $option) {
        $out[$label] = array(
            'Type' => $option['Type'] === 'password' ? 'password' : 'text',
            'Size' => '60',
            'Description' => count($out) === 0
                ? htmlspecialchars((string) jetpack_MissingFiles(), ENT_QUOTES, 'UTF-8')
                : 'Shown as stored while the module\'s files are incomplete',
        );
    }
    return $out;
}

/**
 * Requests the provisioning of the plan. 'success' means recorded for jetpack-worker (WHMCS
 * then marks the service or addon Active); jetpack_provisioning_details says "queued" until the
 * worker writes the activation link. Also what WHMCS's Module Queue "Retry" of a Create calls.
 * Module::request() says in which order it checks, writes and records.
 *
 * @param array $params WHMCS module parameters
 *
 * @return string 'success' or a `JETPACK MODULE: …` error
 */
function jetpack_CreateAccount(array $params)
{
    if (jetpack_MissingFiles() !== null) {
        return jetpack_MissingFiles();
    }
    return Module::request($params, Requests::PROVISION);
}

/**
 * Requests the cancellation of the plan (the worker decides what becomes of a provision not
 * yet done). Also what WHMCS's Module Queue "Retry" of a Terminate calls.
 *
 * @param array $params WHMCS module parameters
 *
 * @return string 'success' or a `JETPACK MODULE: …` error
 */
function jetpack_TerminateAccount(array $params)
{
    if (jetpack_MissingFiles() !== null) {
        return jetpack_MissingFiles();
    }
    return Module::request($params, Requests::TERMINATE);
}

/**
 * After an upgrade or downgrade order is paid (the new product, addon or configurable options
 * already stored): checks the order as for a provision and requests a change of plan. The
 * worker provisions the plan the order names now over the current one (a lower plan ends the
 * job failed, with what to do, and leaves the site as it was).
 *
 * @param array $params WHMCS module parameters
 *
 * @return string 'success' or a `JETPACK MODULE: …` error
 */
function jetpack_ChangePackage(array $params)
{
    if (jetpack_MissingFiles() !== null) {
        return jetpack_MissingFiles();
    }
    return Module::request($params, Requests::CHANGE);
}

/**
 * WHMCS suspended the service (or addon), usually for an overdue invoice: records a suspend
 * for jetpack-worker, which keeps the plan or cancels it as the product's setting "When WHMCS
 * suspends the service" says. Never refused for an order detail (WHMCS must be able to
 * suspend); the details field keeps the activation link.
 *
 * @param array $params WHMCS module parameters
 *
 * @return string 'success' or a `JETPACK MODULE: …` error
 */
function jetpack_SuspendAccount(array $params)
{
    if (jetpack_MissingFiles() !== null) {
        return jetpack_MissingFiles();
    }
    return Module::request($params, Requests::SUSPEND);
}

/**
 * WHMCS unsuspended the service (paid): records an unsuspend; jetpack-worker provisions the
 * plan the order names again if the suspend cancelled it (nothing is called otherwise).
 *
 * @param array $params WHMCS module parameters
 *
 * @return string 'success' or a `JETPACK MODULE: …` error
 */
function jetpack_UnsuspendAccount(array $params)
{
    if (jetpack_MissingFiles() !== null) {
        return jetpack_MissingFiles();
    }
    return Module::request($params, Requests::UNSUSPEND);
}

/**
 * @return array button label => function suffix
 */
function jetpack_AdminCustomButtonArray()
{
    return array('Retry Jetpack Job' => 'Requeue');
}

/**
 * The admin button "Retry Jetpack Job": requests a retry of the target's failed job, which
 * jetpack-worker applies with its rules (Module::requeue()).
 *
 * @param array $params WHMCS module parameters
 *
 * @return string 'success' or a `JETPACK MODULE: …` error
 */
function jetpack_Requeue(array $params)
{
    if (jetpack_MissingFiles() !== null) {
        return jetpack_MissingFiles();
    }
    return Module::requeue($params);
}

/**
 * Admin area → the service's (or addon's) tab: its latest job, its requests, its plans and,
 * when its work waits, whether a jetpack-worker runs (Module::adminServicesTabFields()).
 *
 * @param array $params WHMCS module parameters
 *
 * @return array label => HTML
 */
function jetpack_AdminServicesTabFields(array $params)
{
    if (jetpack_MissingFiles() !== null) {
        return array('Jetpack Job' => htmlspecialchars(jetpack_MissingFiles(), ENT_QUOTES, 'UTF-8'));
    }
    return Module::adminServicesTabFields($params);
}

/**
 * Admin area → Save Changes on the service's (or addon's) page: records what the admin chose
 * for a licence whose issue answer was lost (the tab's Record the key / Issue another licence
 * buttons submit the page; Module::saveAdminTab()). Nothing else is read from the form.
 *
 * @param array $params WHMCS module parameters
 *
 * @return string 'success' or a `JETPACK MODULE: …` error
 */
function jetpack_AdminServicesTabFieldsSave(array $params)
{
    if (jetpack_MissingFiles() !== null) {
        return jetpack_MissingFiles();
    }
    return Module::saveAdminTab($params, isset($_POST) && is_array($_POST) ? $_POST : array());
}

/**
 * Client area → the service's (or addon's) overview: the activation link once there is one,
 * else a waiting message (Module::clientArea(), templates/clientarea.tpl).
 *
 * @param array $params WHMCS module parameters
 *
 * @return array
 */
function jetpack_ClientArea(array $params)
{
    if (jetpack_MissingFiles() !== null) {
        // The client sees the waiting text; the admin pages say what is wrong.
        return array(
            'tabOverviewModuleOutputTemplate' => 'templates/clientarea.tpl',
            'templateVariables' => array(
                'jetpackActivationUrl' => '',
                'jetpackLicenceKey' => '',
                'jetpackLicenceUrl' => '',
                'jetpackLicencePath' => '',
                'jetpackMessage' => 'Your Jetpack plan is being set up. The activation link will appear here once it is ready.',
            ),
        );
    }
    return Module::clientArea($params);
}
