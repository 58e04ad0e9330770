<?php
/**
 * What admins and clients see of a target's Jetpack licences (products that sell licences
 * through the Licensing API; Licences reads the rows):
 *
 * - the admin tab's "Jetpack Licences": each licence's product, state, key, issue, attach and
 *   revoke times; for one in state `unknown` (its issue answer was lost and could not be looked
 *   up) what happened and the two ways out, a text input with **Record the key** and **Issue
 *   another licence** (with a confirm that says it bills another licence). Both are submit
 *   buttons of WHMCS's service form: WHMCS saves the page and calls the module's
 *   AdminServicesTabFieldsSave, which reads them (Module::saveAdminTab);
 * - the client area's key, with a copy button, and the link to the site's Jetpack licence page
 *   (`<site>/wp-admin/admin.php?page=jetpack#/license/activation`);
 *
 * Everything returned for the admin tab is HTML, every stored value escaped here.
 */

namespace WHMCS\Module\Server\Jetpack;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

final class LicenceView
{
    /** The admin tab's field. */
    const FIELD = 'Jetpack Licences';

    /** The names of the tab's inputs, read back by Module::saveAdminTab from $_POST. */
    const INPUT_ACTION = 'jetpack_licence_action';
    const INPUT_KEY = 'jetpack_licence_key';
    const RECORD = 'record';
    const REISSUE = 'reissue';

    /** What the confirm of "Issue another licence" says. */
    const REISSUE_CONFIRM = 'Issue another Jetpack licence? The Licensing API bills it as one more licence. '
        . 'If the lost one was issued after all, revoke it in the partner portal.';

    /**
     * Adds "Jetpack Licences" to the admin tab when the target has licence rows.
     *
     * @param array       $fields   label => HTML, what Display::adminFields() returned
     * @param array       $licences what Licences::ofTarget() returned, newest first
     * @param string|null $flash    a refusal of the last Record / Issue another (Module::saveAdminTab):
     *                              a `JETPACK MODULE: …` message, HTML already (ModuleError's)
     *
     * @return array label => HTML
     */
    public static function withLicences(array $fields, array $licences, $flash = null)
    {
        $lines = array();
        if ($flash !== null) {
            $lines[] = '<strong>' . $flash . '</strong>';
        }
        foreach ($licences as $licence) {
            $lines[] = Escape::html(self::line($licence));
            if ($licence->state === Licences::UNKNOWN) {
                $lines[] = self::decision($licence);
            }
        }
        if (count($lines) > 0) {
            $fields[self::FIELD] = implode(Display::LINE, $lines);
        }
        return $fields;
    }

    /**
     * "Licence #3 jetpack-backup-daily, attached: key jetpack-backup-daily_x; issued
     * 2026-12-07 14:02:11 UTC; attached to https://a.example/ at …; revoked —".
     *
     * @param object $licence a Licences row
     *
     * @return string not escaped
     */
    public static function line($licence)
    {
        $text = 'Licence #' . (int) $licence->id . ' ' . $licence->product . ', ' . $licence->state
            . ': key ' . ($licence->license_key === null || $licence->license_key === '' ? Display::NONE : $licence->license_key)
            . '; issued ' . self::utc($licence->issued_at);
        if ($licence->attached_site !== null && $licence->attached_site !== '') {
            $text .= '; ' . ($licence->state === 'attached' ? 'attached to ' : 'last attached to ')
                . $licence->attached_site . ' at ' . self::utc($licence->attached_at);
        }
        $text .= '; revoked ' . self::utc($licence->revoked_at);
        if ((int) $licence->revoked_outside === 1) {
            $text .= ' (outside WHMCS: the reconciler found it revoked)';
        }
        return $text;
    }

    /**
     * What happened to an `unknown` licence and the two ways out: the key input with Record
     * the key, and Issue another licence with its confirm.
     *
     * @param object $licence a Licences row in state unknown
     *
     * @return string HTML
     */
    private static function decision($licence)
    {
        $at = $licence->issue_started_at === null ? 'an unknown time' : substr((string) $licence->issue_started_at, 0, 19) . ' UTC';
        $said = 'A licence for ' . $licence->product . ' may have been issued at ' . $at . ' and its answer was lost. '
            . 'Find it in the partner portal (licences issued around that time) and record its key here, '
            . 'or issue another licence (billed as another licence).';
        $confirm = json_encode(self::REISSUE_CONFIRM, JSON_HEX_TAG | JSON_HEX_APOS | JSON_HEX_QUOT | JSON_HEX_AMP);
        return '<em>' . Escape::html($said) . '</em>' . Display::LINE
            . '<input type="text" name="' . self::INPUT_KEY . '" maxlength="' . Licences::KEY_MAX_CHARS . '" size="50" '
            . 'placeholder="' . Escape::html($licence->product . '_…') . '" autocomplete="off" /> '
            . '<button type="submit" name="' . self::INPUT_ACTION . '" value="' . self::RECORD . '" class="btn btn-default btn-sm">'
            . 'Record the key</button> '
            . '<button type="submit" name="' . self::INPUT_ACTION . '" value="' . self::REISSUE . '" class="btn btn-warning btn-sm" '
            . 'onclick="return confirm(' . Escape::html($confirm) . ');">Issue another licence</button>';
    }

    /**
     * The client area's variables for a target with a live licence: the key, the link to the
     * site's licence page (or, without a usable site, the path to paste it at), and a message.
     *
     * @param object      $licence what Licences::live() returned
     * @param string|null $site    the site (Licences::site())
     *
     * @return array jetpackLicenceKey, jetpackLicenceUrl ('' without a site), jetpackLicencePath, jetpackMessage
     */
    public static function clientVars($licence, $site)
    {
        $url = Licences::activationUrl($site);
        return array(
            'jetpackLicenceKey' => (string) $licence->license_key,
            'jetpackLicenceUrl' => $url === null ? '' : $url,
            'jetpackLicencePath' => Catalogue::licenceActivationPath(),
            'jetpackMessage' => $url === null
                ? 'Your Jetpack licence is ready. Copy the key and paste it in your site\'s WordPress admin, at Jetpack → '
                    . 'License (' . Catalogue::licenceActivationPath() . ' after your site\'s address).'
                : 'Your Jetpack licence is ready. Copy the key, then paste it on your site\'s Jetpack licence page.',
        );
    }

    /**
     * "2026-11-24 10:15:00 UTC" from a DATETIME(6) value, or a dash.
     */
    private static function utc($datetime)
    {
        return $datetime === null || $datetime === '' ? Display::NONE : substr((string) $datetime, 0, 19) . ' UTC';
    }
}
