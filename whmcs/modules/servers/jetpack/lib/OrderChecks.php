<?php
/**
 * The order checks of Create, Terminate, ChangePackage and the admin's Retry: the worker's
 * checks (its `src/order.rs`) run before a request is recorded, so the module can refuse at
 * once with a message saying what to fix. The field names, plans, limits and message texts
 * come from rules.json (Rules). In the contract's order, the first problem wins:
 *
 * - the target exists and uses this module (Target::load);
 * - its details field exists, once;
 * - the Site URL is a web address (SiteUrl); an addon without one takes its parent's domain;
 * - the Local User is not empty (else the module setting Default Local User, configoption6),
 *   has no angle brackets and is not too long;
 * - the Plan is an allowed plan (any case; the module setting Plan, configoption3, wins over
 *   the Plan field when it names one);
 * - the module settings hold the partner client id and secret (configoption1 and 2).
 *
 * A product (or addon) that sells Jetpack licences (its setting *Jetpack API*, configoption9,
 * says licence) gets the catalogue's licence checks instead for an issue, a revoke or a change:
 * its details field, its Licensing API token and licence product (configoption10, 11), and its
 * Site URL only when *Attach to the site* is on; nothing of the partner's plan or user.
 *
 * Which of these an action gets is checksFor()'s one answer, from the catalogue: the whole
 * order (a provision, a change of plan); only what the cancel sends, the Site URL and the
 * credentials (a terminate: the worker's `read_cancel`); or only the target (a suspend).
 *
 * After a move to a product whose fields are named differently WHMCS carries no value over, so
 * a service's Site URL field is there but empty. For an action whose job reads the ledger (the
 * catalogue's `reads_ledger`: a change of plan, a terminate) the site jetpack-worker's ledger
 * holds for the service stands in, as the worker's `read_order_held` / `read_cancel_held` do:
 * the one site it holds for a change, any for a terminate (which cancels what the ledger holds).
 *
 * tests/worker/bad_input.rs runs the worker's bad-input corpus through this class too and
 * checks that both refuse with the same message (or both accept, or the case is one only the
 * worker can decide).
 */

namespace WHMCS\Module\Server\Jetpack;

use WHMCS\Database\Capsule;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

final class OrderChecks
{
    /** jetpack-worker's ledger (what the partner holds per target and site), read for the fallback. */
    const LEDGER = 'mod_jetpack_ledger';

    /** readSite()'s fallback for a licence: the site the target's licence was last attached to. */
    const HELD_BY_LICENCE = 'licence';

    /**
     * Which order checks an action gets: the one place the checks ask about an action, answered
     * by the catalogue (catalogue.json, exported from the worker's src/catalogue.rs). No action
     * (null: a retry with no job yet) and a name the catalogue does not hold get the full
     * checks (a licence product's: its licence settings).
     *
     * @param string|null $action a job action of the catalogue (provision, terminate, …), or null
     * @param string      $api    the target's API (Target::api()): a licence product's job
     *                            actions run the catalogue's licence rows, with their checks
     *
     * @return string Catalogue::CHECKS_ORDER, CHECKS_CANCEL, CHECKS_TARGET or CHECKS_LICENCE
     *
     * @throws ModuleError when catalogue.json is missing or broken
     */
    public static function checksFor($action, $api = Catalogue::API_PLAN)
    {
        $row = $action === null ? null : Catalogue::actionFor($action, $api);
        if ($row !== null) {
            return $row['checks'];
        }
        return $api === Catalogue::API_LICENCE ? Catalogue::CHECKS_LICENCE : Catalogue::CHECKS_ORDER;
    }

    /**
     * Loads and checks the order of a target for an action, as checksFor() says. Only the
     * target: the order names it, nothing more. A cancel's, as the worker's `read_cancel`: the
     * Local User is not read, and a plan that is missing, doubled, empty or not an allowed plan
     * (a legacy order) leaves the order's plan null: the cancel then names no plan.
     *
     * Three parts, in this order: the rules (a broken rules.json is reported before any query),
     * the target (the rows that must exist, and its module), then its fields and settings.
     *
     * @param int         $serviceId tblhosting.id (for an addon: the parent WHMCS passed, named
     *                               in the message when the addon row is gone)
     * @param string|null $action    an action of the catalogue, or null (none known)
     * @param int         $addonId   tblhostingaddons.id, or 0 for the service itself
     *
     * @return Order
     *
     * @throws ModuleError when something must be fixed first
     * @throws \PDOException on a database error
     */
    public static function check($serviceId, $action = null, $addonId = 0)
    {
        Rules::get();
        $target = Target::load($serviceId, $addonId);
        $fields = CustomFields::byKey($target->fields);
        $values = CustomFields::values($target->relid, $fields);

        $order = Order::of($target);
        $checks = self::checksFor($action, $order->api);
        if ($checks === Catalogue::CHECKS_TARGET) {
            return $order;
        }
        $order->detailsFieldId = self::findField($target, $fields['details'], Rules::fieldName('details'), true);
        if ($checks === Catalogue::CHECKS_LICENCE) {
            return self::checkLicence($order, $target, $fields, $values);
        }
        $fallback = null;
        if (self::readsLedger($action)) {
            $fallback = $checks === Catalogue::CHECKS_CANCEL ? 'any' : 'one';
        }
        list($order->siteUrl, $order->siteFromLedger) =
            self::readSite($target, $fields['site_url'], $values, $fallback);
        if ($checks === Catalogue::CHECKS_CANCEL) {
            $order->localUser = null;
            $order->plan = self::usablePlan($target, $fields['plan'], $values);
        } else {
            $order->localUser = self::readLocalUser($target, $fields['local_user'], $values);
            $order->plan = self::readPlan($target, $fields['plan'], $values);
        }
        self::checkCredentials($target);
        return $order;
    }

    /**
     * A licence product's order, as the worker's `read_licence_order` (src/order_licence.rs)
     * reads it after the details field: the Licensing API token (configoption10) is filled
     * in; the licence product (configoption11) can be a product slug (lower-case letters,
     * digits and `-`, at most 64); then, only when *Attach to the site* is on, the Site URL (an
     * addon without one takes its parent's domain; a service's empty field, the site its
     * licence was last attached to). No Local User, no Plan, no partner client id or secret.
     *
     * @param Order  $order  what check() has read so far
     * @param Target $target
     * @param array  $fields field key => ids (CustomFields::byKey)
     * @param array  $values field id => value
     *
     * @return Order
     *
     * @throws ModuleError when something must be fixed first
     */
    private static function checkLicence(Order $order, Target $target, array $fields, array $values)
    {
        if (Text::trim($target->settings[Target::LICENCE_TOKEN]) === '') {
            throw $target->refusal($target->messageKey('licence_no_token'), $target->owner);
        }
        $slug = Text::trim($target->settings[Target::LICENCE_PRODUCT]);
        if (preg_match('/^[a-z0-9-]{1,64}$/', $slug) !== 1) {
            throw $target->refusal(
                $target->messageKey('licence_no_product'),
                $target->owner + array('{value}' => Escape::quote($slug))
            );
        }
        $order->licenceProduct = $slug;
        if ($target->attaches()) {
            list($order->siteUrl, $order->siteFromLedger) =
                self::readSite($target, $fields['site_url'], $values, self::HELD_BY_LICENCE);
        }
        return $order;
    }

    /**
     * A terminate's plan: the plan when it is usable, else null (the cancel then names none).
     *
     * @param Target $target
     * @param int[]  $ids    the fields with the Plan key
     * @param array  $values field id => value
     *
     * @return string|null the slug, lower case
     */
    private static function usablePlan(Target $target, array $ids, array $values)
    {
        try {
            return self::readPlan($target, $ids, $values);
        } catch (ModuleError $e) {
            return null;
        }
    }

    /**
     * Whether the action's job reads the ledger (the catalogue's `reads_ledger`).
     *
     * @param string|null $action
     *
     * @return bool
     */
    private static function readsLedger($action)
    {
        $row = $action === null ? null : Catalogue::action($action);
        return $row !== null && !empty($row['reads_ledger']);
    }

    /**
     * The site jetpack-worker's ledger holds for a service (KEY service_site, by service and
     * addon 0): the only one ($which 'one'), or any ('any'); null when there is none (or, for
     * 'one', several). For a licence (self::HELD_BY_LICENCE) the site its licence was last
     * attached to.
     *
     * @param Target $target a service
     * @param string $which  'one', 'any' or self::HELD_BY_LICENCE
     *
     * @return string|null as the worker sent it
     *
     * @throws \PDOException on a database error
     */
    private static function heldSite(Target $target, $which)
    {
        if ($which === self::HELD_BY_LICENCE) {
            return Licences::lastAttachedSite($target->serviceId, 0);
        }
        try {
            $sites = Query::rows(Capsule::table(self::LEDGER)
                ->where('service_id', (int) $target->serviceId)
                ->where('addon_id', 0)
                ->limit(2)
                ->get(array('site')));
        } catch (\PDOException $e) {
            if (ModuleError::isWorkerTableMissing($e)) {
                return null; // before `jetpack-worker migrate`: the ledger holds nothing yet
            }
            throw $e;
        }
        if (count($sites) === 0 || ($which === 'one' && count($sites) > 1)) {
            return null;
        }
        return (string) $sites[0]->site;
    }

    /**
     * The Site URL: the field's value (a service's field is required); for an addon whose
     * field is missing or empty, the parent service's domain; for a service whose field is
     * there but empty, with $fallback, the site the ledger holds (heldSite()); checked as a web
     * address.
     *
     * @param Target      $target
     * @param int[]       $ids      the fields with the Site URL key
     * @param array       $values   field id => value
     * @param string|null $fallback 'one', 'any' or self::HELD_BY_LICENCE (heldSite()), null for none
     *
     * @return array (string the site, trimmed; bool whether it is the ledger's)
     *
     * @throws ModuleError
     */
    private static function readSite(Target $target, array $ids, array $values, $fallback = null)
    {
        $key = Rules::fieldName('site_url');
        $isAddon = $target->addonId > 0;
        $fieldId = self::findField($target, $ids, $key, !$isAddon);
        $site = $fieldId === null ? '' : CustomFields::valueOf($values, $fieldId);
        if (!$isAddon && $fieldId !== null && $fallback !== null && Text::trim($site) === '') {
            $held = self::heldSite($target, $fallback);
            if ($held !== null && SiteUrl::problem($held) === null) {
                return array(Text::trim($held), true);
            }
        }
        if ($isAddon && Text::trim($site) === '') {
            $site = Text::trim((string) $target->domain);
            if ($site === '') {
                throw $target->refusal('addon_no_site', array(
                    '{field}' => Escape::message($key),
                    '{service_id}' => (string) $target->serviceId,
                ));
            }
        }
        $problem = SiteUrl::problem($site);
        if ($problem !== null) {
            throw $target->refusal('bad_site_url', array(
                '{field}' => Escape::message($key),
                '{value}' => Escape::quote($site),
                '{problem}' => Escape::message($problem),
            ));
        }
        return array(Text::trim($site), false);
    }

    /**
     * The Local User: the field's value; when the field is missing or its value empty, the
     * module setting Default Local User (configoption6); neither: the field's usual message.
     *
     * @param Target $target
     * @param int[]  $ids    the fields with the Local User key
     * @param array  $values field id => value
     *
     * @return string trimmed
     *
     * @throws ModuleError
     */
    private static function readLocalUser(Target $target, array $ids, array $values)
    {
        $key = Rules::fieldName('local_user');
        $fieldId = self::findField($target, $ids, $key, false);
        $user = $fieldId === null ? '' : Text::trim(CustomFields::valueOf($values, $fieldId));
        if ($user === '') {
            $user = Text::trim($target->settings[Target::DEFAULT_USER]);
        }
        $userField = array('{field}' => Escape::message($key));
        if ($user === '') {
            if ($fieldId === null) {
                throw self::missingField($target, $key);
            }
            throw $target->refusal('local_user_empty', $userField);
        }
        if (strpbrk($user, '<>') !== false) {
            throw $target->refusal('local_user_markup', $userField);
        }
        $maxUser = (int) Rules::get()['limits']['local_user_max_chars'];
        if (preg_match_all('/./su', $user) > $maxUser) {
            throw $target->refusal('local_user_too_long', $userField + array('{max}' => (string) $maxUser));
        }
        return $user;
    }

    /**
     * The plan: the module setting Plan (configoption3) wins when it names one (an upgrade
     * changes the product, and with it the setting, while WHMCS carries custom field values
     * over unchanged: docs/addons.md, "Which plan"); else the Plan field; neither: no_field
     * (no field) or bad_plan (an empty value). The name found must be an allowed plan (any
     * case).
     *
     * @param Target $target
     * @param int[]  $ids    the fields with the Plan key
     * @param array  $values field id => value
     *
     * @return string the slug, lower case
     *
     * @throws ModuleError
     */
    private static function readPlan(Target $target, array $ids, array $values)
    {
        $key = Rules::fieldName('plan');
        $fieldId = self::findField($target, $ids, $key, false);
        $plan = Text::trim($target->settings[Target::PLAN_SETTING]);
        if ($plan === '') {
            if ($fieldId === null) {
                throw self::missingField($target, $key);
            }
            $plan = Text::trim(CustomFields::valueOf($values, $fieldId));
        }
        $slug = strtolower($plan);
        $slugs = Rules::planSlugs();
        if (!in_array($slug, $slugs, true)) {
            throw $target->refusal('bad_plan', array(
                '{value}' => Escape::quote($plan),
                '{plans}' => Escape::message(implode(', ', $slugs)),
            ));
        }
        return $slug;
    }

    /**
     * @param Target $target its settings: configoption1 (client id), configoption2 (secret)
     *
     * @throws ModuleError when the partner client id or secret is missing
     */
    private static function checkCredentials(Target $target)
    {
        if (Text::trim($target->settings[Target::CLIENT_ID]) === ''
            || Text::trim($target->settings[Target::CLIENT_SECRET]) === ''
        ) {
            throw $target->refusal($target->messageKey('no_credentials'), $target->owner);
        }
    }

    /**
     * The id of the product's (or addon's) one field with this key.
     *
     * @param Target $target
     * @param int[]  $ids      the fields with this key
     * @param string $key      the field key
     * @param bool   $required whether a missing field is a refusal (else null)
     *
     * @return int|null
     *
     * @throws ModuleError when there is more than one such field, or none and it is required
     */
    private static function findField(Target $target, array $ids, $key, $required)
    {
        if (count($ids) === 1) {
            return $ids[0];
        }
        if (count($ids) === 0) {
            if (!$required) {
                return null;
            }
            throw self::missingField($target, $key);
        }
        throw $target->refusal(
            $target->messageKey('many_fields'),
            $target->owner + array('{field}' => Escape::message($key), '{count}' => (string) count($ids))
        );
    }

    /**
     * The refusal for a field the product (or addon) lacks: no_field or addon_no_field.
     *
     * @param Target $target
     * @param string $key    the field key
     *
     * @return ModuleError
     */
    private static function missingField(Target $target, $key)
    {
        return $target->refusal(
            $target->messageKey('no_field'),
            $target->owner + array('{field}' => Escape::message($key))
        );
    }
}
