<?php
/**
 * Stand-ins for the WHMCS global functions the hooks use, as WHMCS calls them: add_hook()
 * (records the hook; tests run it with runHooks()) and localAPI() (records the call in
 * $GLOBALS['jetpack_test_localapi']). localAPI('SendEmail') behaves as WHMCS's does for what
 * the module relies on: the template is looked up by name (an error when there is none),
 * `customvars` is decoded (a plain array, or base64 of a serialized array as over HTTP) and a
 * row is logged in tblemails; $GLOBALS['jetpack_test_localapi_reply'], when set, is answered
 * instead (to play a mail error). Each is defined only when missing, so other helpers'
 * stand-ins can coexist.
 */

use WHMCS\Database\Capsule;

if (!function_exists('add_hook')) {
    /**
     * @param string   $hookPoint
     * @param int      $priority
     * @param callable $function
     */
    function add_hook($hookPoint, $priority, $function)
    {
        $GLOBALS['jetpack_test_hooks'][$hookPoint][] = array('priority' => $priority, 'function' => $function);
    }
}

if (!function_exists('run_test_hooks')) {
    /**
     * Runs every function registered for a hook point, as WHMCS does (a hook that throws
     * fails the test: WHMCS would show an error page).
     *
     * @param string $hookPoint
     * @param array  $vars
     */
    function run_test_hooks($hookPoint, array $vars = array())
    {
        $hooks = isset($GLOBALS['jetpack_test_hooks'][$hookPoint]) ? $GLOBALS['jetpack_test_hooks'][$hookPoint] : array();
        usort($hooks, function ($a, $b) {
            return $a['priority'] - $b['priority'];
        });
        foreach ($hooks as $hook) {
            call_user_func($hook['function'], $vars);
        }
    }
}

if (!function_exists('localAPI')) {
    /**
     * @param string      $command
     * @param array       $values
     * @param string|null $adminUser
     *
     * @return array
     */
    function localAPI($command, $values, $adminUser = null)
    {
        $call = array('command' => $command, 'values' => $values, 'adminUser' => $adminUser);
        if ($command === 'SendEmail' && isset($values['customvars'])) {
            $vars = $values['customvars'];
            $call['customvars'] = is_array($vars) ? $vars : unserialize(base64_decode((string) $vars));
        }
        $GLOBALS['jetpack_test_localapi'][] = $call;
        if (isset($GLOBALS['jetpack_test_localapi_reply'])) {
            return $GLOBALS['jetpack_test_localapi_reply'];
        }
        if ($command !== 'SendEmail') {
            return array('result' => 'success');
        }
        $template = Capsule::table('tblemailtemplates')
            ->where('name', (string) $values['messagename'])->where('language', '')->first();
        if ($template === null) {
            return array('result' => 'error', 'message' => 'Email Template not found');
        }
        $userId = Capsule::table('tblhosting')->where('id', (int) $values['id'])->value('userid');
        if ($userId === null) {
            return array('result' => 'error', 'message' => 'Related ID not found');
        }
        Capsule::table('tblemails')->insert(array(
            'userid' => (int) $userId,
            'subject' => $template->subject,
            'message' => json_encode($call['customvars']),
            'date' => Capsule::raw('NOW()'),
        ));
        return array('result' => 'success');
    }
}
