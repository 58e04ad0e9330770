<?php
/**
 * The module's side of the licence tables jetpack-worker keeps for products that sell Jetpack
 * licences through the Licensing API (docs/licences.md):
 *
 * - `mod_jetpack_licences`: one row per licence the worker issued or tried to issue for a
 *   target (a service, or an addon), with its key, state, issue / attach / revoke times. Read
 *   here by KEY target (service_id, addon_id, id) and, for a key an admin records, by KEY
 *   license_key. Never written here.
 * - `mod_jetpack_licence_products`: the licence products the worker fetched from the Licensing
 *   API, for the Module Settings' *Licence product* dropdown (the catalogue's built-in list
 *   while it is empty or missing).
 *
 * And the two ways out of a licence in state `unknown` (its issue answer was lost and could
 * not be looked up): the module RECORDS a request for the worker, as for every other action,
 * after checking what it can check at once: `licence_record` with the key an admin found in
 * the partner portal (its shape: it starts with the licence's product slug, has no white
 * space, fits the column), or `licence_reissue` (issue another licence, deliberately: it is
 * billed). The worker changes the licence row and requeues the job when it applies them.
 * Also the link to a site's Jetpack licence page (`<site>/wp-admin/admin.php?page=jetpack#/license/activation`)
 * that the client area and the activation email give. Used by the service's admin tab and by
 * the queue dashboard alike.
 */

namespace WHMCS\Module\Server\Jetpack;

use WHMCS\Database\Capsule;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

final class Licences
{
    const TABLE = 'mod_jetpack_licences';
    const PRODUCTS = 'mod_jetpack_licence_products';

    /** The state of a licence whose issue answer was lost and that waits for an admin's decision. */
    const UNKNOWN = 'unknown';

    /** A recorded key fits mod_jetpack_requests.detail (and the licence's license_key). */
    const KEY_MAX_CHARS = 191;

    /** The admin tab lists at most this many of a target's licences, newest first. */
    const SHOWN = 10;

    /** The columns every read of a licence row returns. */
    const COLUMNS = array(
        'id', 'service_id', 'addon_id', 'product', 'license_key', 'state', 'issue_started_at',
        'issued_at', 'attached_site', 'attached_at', 'revoked_at', 'revoked_outside', 'job_id', 'updated_at',
    );

    /**
     * The target's licences, newest first (at most SHOWN). Empty while the worker has not made
     * the table (an older jetpack-worker).
     *
     * @param int $serviceId tblhosting.id (an addon's parent)
     * @param int $addonId   tblhostingaddons.id, 0 for the service itself
     *
     * @return array rows (self::COLUMNS)
     *
     * @throws \PDOException on another database error
     */
    public static function ofTarget($serviceId, $addonId = 0)
    {
        return self::tolerant(function () use ($serviceId, $addonId) {
            return Query::rows(self::targetQuery($serviceId, $addonId)
                ->orderBy('id', 'desc')
                ->limit(self::SHOWN)
                ->get(self::COLUMNS));
        }, array());
    }

    /**
     * The target's newest licence in a live state (the catalogue's `licence_live_states`:
     * issued, attached): the key the customer uses. Null when it has none.
     *
     * @param int $serviceId tblhosting.id (an addon's parent)
     * @param int $addonId   tblhostingaddons.id, 0 for the service itself
     *
     * @return object|null a row (self::COLUMNS)
     *
     * @throws \PDOException on another database error
     */
    public static function live($serviceId, $addonId = 0)
    {
        return self::tolerant(function () use ($serviceId, $addonId) {
            return self::targetQuery($serviceId, $addonId)
                ->whereIn('state', Catalogue::lists('licence_live_states'))
                ->whereNotNull('license_key')
                ->orderBy('id', 'desc')
                ->first(self::COLUMNS);
        }, null);
    }

    /**
     * The live licence a job left (job_id = the job, newest first), else the target's live
     * licence (live()): the key the job's activation email gives. Null when it has none.
     *
     * @param int $serviceId tblhosting.id (an addon's parent)
     * @param int $addonId   tblhostingaddons.id, 0 for the service itself
     * @param int $jobId     mod_jetpack_jobs.id
     *
     * @return object|null a row (self::COLUMNS)
     *
     * @throws \PDOException on another database error
     */
    public static function ofJob($serviceId, $addonId, $jobId)
    {
        $own = self::tolerant(function () use ($serviceId, $addonId, $jobId) {
            return self::targetQuery($serviceId, $addonId)
                ->where('job_id', (int) $jobId)
                ->whereIn('state', Catalogue::lists('licence_live_states'))
                ->whereNotNull('license_key')
                ->orderBy('id', 'desc')
                ->first(self::COLUMNS);
        }, null);
        return $own !== null ? $own : self::live($serviceId, $addonId);
    }

    /**
     * The site the target's licence was last attached to (its newest row with one): what
     * stands in for an empty Site URL field of a licence that attaches, as for the worker.
     *
     * @param int $serviceId tblhosting.id (an addon's parent)
     * @param int $addonId   tblhostingaddons.id, 0 for the service itself
     *
     * @return string|null
     *
     * @throws \PDOException on another database error than a missing table
     */
    public static function lastAttachedSite($serviceId, $addonId = 0)
    {
        $site = self::tolerant(function () use ($serviceId, $addonId) {
            return self::targetQuery($serviceId, $addonId)
                ->whereNotNull('attached_site')
                ->orderBy('id', 'desc')
                ->value('attached_site');
        }, null);
        return $site === null ? null : (string) $site;
    }

    /**
     * The target's newest licence in state `unknown`, the one an admin's decision is for;
     * null when none waits.
     *
     * @param int $serviceId tblhosting.id (an addon's parent)
     * @param int $addonId   tblhostingaddons.id, 0 for the service itself
     *
     * @return object|null a row (self::COLUMNS)
     *
     * @throws \PDOException on another database error
     */
    public static function unknown($serviceId, $addonId = 0)
    {
        return self::tolerant(function () use ($serviceId, $addonId) {
            return self::targetQuery($serviceId, $addonId)
                ->where('state', self::UNKNOWN)
                ->orderBy('id', 'desc')
                ->first(self::COLUMNS);
        }, null);
    }

    /**
     * The choices of the Module Settings' *Licence product* (configoption11): the products
     * jetpack-worker fetched from the Licensing API, by name; the catalogue's built-in list
     * while there are none, the table is missing, or the database cannot be asked (WHMCS asks
     * for the settings' definitions on pages without a service).
     *
     * @return array slug => "name (slug)"
     */
    public static function productChoices()
    {
        $products = array();
        try {
            foreach (Capsule::table(self::PRODUCTS)->orderBy('name')->orderBy('slug')->get(array('slug', 'name')) as $row) {
                $products[(string) $row->slug] = (string) $row->name;
            }
        } catch (\Throwable $e) {
            $products = array();
        }
        if (count($products) === 0) {
            $products = Catalogue::licenceProducts();
        }
        $choices = array();
        foreach ($products as $slug => $name) {
            $choices[(string) $slug] = $name . ' (' . $slug . ')';
        }
        return $choices;
    }

    /**
     * The site a licence belongs to: where it is (or was last) attached, else the target's
     * Site URL as it reads now (an addon's parent domain when it has none); null when none.
     *
     * @param object      $licence a Licences row
     * @param string|null $siteUrl what Requests::currentSiteUrl() returned
     *
     * @return string|null
     */
    public static function site($licence, $siteUrl)
    {
        $attached = trim((string) $licence->attached_site);
        if ($attached !== '') {
            return $attached;
        }
        $siteUrl = trim((string) $siteUrl);
        return $siteUrl === '' ? null : $siteUrl;
    }

    /**
     * The site's Jetpack licence page: the site (https:// when it names no scheme), without
     * trailing slashes, then the catalogue's `licence_activation_path`. Null for no site, or one
     * that is not a web address (the module's Site URL checks), so nothing but an http(s)
     * address ever reaches a link.
     *
     * @param string|null $site
     *
     * @return string|null
     */
    public static function activationUrl($site)
    {
        $site = Text::trim((string) $site);
        try {
            if ($site === '' || SiteUrl::problem($site) !== null) {
                return null;
            }
        } catch (ModuleError $e) {
            return null;
        }
        if (preg_match('~^https?://~i', $site) !== 1) {
            $site = 'https://' . $site;
        }
        return rtrim($site, '/') . Catalogue::licenceActivationPath();
    }

    /**
     * What is wrong with a key an admin pasted for a licence of $product, or null when its
     * shape is right: not empty, no white space, at most KEY_MAX_CHARS characters, valid
     * UTF-8, and it starts with the product slug followed by more (keys look like
     * `jetpack-anti-spam_xZjt…`). Surrounding white space is not the admin's intent and is
     * trimmed before (see recordKey()).
     *
     * @param string $key     trimmed
     * @param string $product the licence's product slug
     *
     * @return string|null what to fix (HTML-escaped)
     */
    public static function keyProblem($key, $product)
    {
        $key = (string) $key;
        if ($key === '') {
            return 'enter the licence key you found in the partner portal';
        }
        if (preg_match('//u', $key) !== 1) {
            return 'the licence key is not valid UTF-8 text; copy the key from the partner portal again';
        }
        if (preg_match('/[\s\p{Z}\p{Cc}]/u', $key) === 1) {
            return 'the licence key ' . Escape::quote($key) . ' contains spaces, line breaks or control characters; '
                . 'paste the key alone';
        }
        if (mb_strlen($key, 'UTF-8') > self::KEY_MAX_CHARS) {
            return 'the licence key is longer than ' . self::KEY_MAX_CHARS . ' characters; paste the key alone';
        }
        if (strpos($key, (string) $product) !== 0 || strlen($key) === strlen((string) $product)) {
            return 'the licence key ' . Escape::quote($key) . ' does not start with ' . Escape::message($product)
                . ', the product of the licence that waits; paste the key of that ' . Escape::message($product)
                . ' licence';
        }
        return null;
    }

    /**
     * Records the key an admin found in the partner portal for the target's `unknown` licence
     * (request `licence_record`, detail = the key), once its shape is right and no other
     * licence row holds it. jetpack-worker then records the key on the licence and finishes the
     * job with it, without issuing anything.
     *
     * @param int    $serviceId   tblhosting.id (an addon's parent)
     * @param int    $addonId     tblhostingaddons.id, 0 for the service itself
     * @param string $key         as typed
     * @param string $requestedBy Requests::BY_ADMIN
     *
     * @return int the request's id
     *
     * @throws ModuleError when nothing waits or the key must be fixed (nothing recorded)
     * @throws \PDOException on a database error
     */
    public static function recordKey($serviceId, $addonId, $key, $requestedBy)
    {
        $licence = self::waiting($serviceId, $addonId);
        $key = Text::trim((string) $key);
        $problem = self::keyProblem($key, (string) $licence->product);
        if ($problem === null) {
            $problem = self::heldElsewhere($key, (int) $licence->id);
        }
        if ($problem !== null) {
            throw new ModuleError(ModuleError::PREFIX . ModuleError::target($serviceId, $addonId) . ' - ' . $problem);
        }
        return Requests::record($serviceId, Requests::LICENCE_RECORD, $requestedBy, $addonId, null, $key);
    }

    /**
     * Records the admin's deliberate choice to issue another licence for the target's
     * `unknown` one (request `licence_reissue`): jetpack-worker stops following the lost one
     * and issues exactly one new licence (billed).
     *
     * @param int    $serviceId   tblhosting.id (an addon's parent)
     * @param int    $addonId     tblhostingaddons.id, 0 for the service itself
     * @param string $requestedBy Requests::BY_ADMIN
     *
     * @return int the request's id
     *
     * @throws ModuleError when no licence of the target waits (nothing recorded)
     * @throws \PDOException on a database error
     */
    public static function reissue($serviceId, $addonId, $requestedBy)
    {
        self::waiting($serviceId, $addonId);
        return Requests::record($serviceId, Requests::LICENCE_REISSUE, $requestedBy, $addonId);
    }

    /**
     * The target's `unknown` licence, which a decision needs.
     *
     * @return object
     *
     * @throws ModuleError when none waits
     */
    private static function waiting($serviceId, $addonId)
    {
        $licence = self::unknown($serviceId, $addonId);
        if ($licence === null) {
            throw new ModuleError(ModuleError::PREFIX . ModuleError::target($serviceId, $addonId)
                . ' - no licence of this ' . ((int) $addonId > 0 ? 'addon' : 'service')
                . ' is waiting for an admin\'s decision; nothing was recorded');
        }
        return $licence;
    }

    /**
     * What is wrong when another licence row already holds the key (KEY license_key): it
     * belongs to that licence, not to the one that waits.
     *
     * @param string $key
     * @param int    $ownId the waiting licence's id
     *
     * @return string|null
     */
    private static function heldElsewhere($key, $ownId)
    {
        $other = Capsule::table(self::TABLE)->where('license_key', $key)->where('id', '<>', (int) $ownId)
            ->first(array('service_id', 'addon_id'));
        if ($other === null) {
            return null;
        }
        return 'the licence key ' . Escape::quote($key) . ' is already recorded for '
            . Escape::message(ModuleError::target((int) $other->service_id, (int) $other->addon_id))
            . '; find the key of this service\'s licence in the partner portal';
    }

    /**
     * @return \Illuminate\Database\Query\Builder the target's licences (KEY target)
     */
    private static function targetQuery($serviceId, $addonId)
    {
        return Capsule::table(self::TABLE)
            ->where('service_id', (int) $serviceId)
            ->where('addon_id', (int) $addonId);
    }

    /**
     * Runs a read; a missing licence table (an older jetpack-worker: SQLSTATE 42S02) answers
     * $none.
     *
     * @param callable $read
     * @param mixed    $none
     *
     * @return mixed
     *
     * @throws \PDOException on another database error
     */
    private static function tolerant(callable $read, $none)
    {
        try {
            return $read();
        } catch (\PDOException $e) {
            if ((string) $e->getCode() === '42S02') {
                return $none;
            }
            throw $e;
        }
    }
}
