<?php
/**
 * The escaping of everything the module and the dashboard show: values from clients, admins,
 * the partner API and the worker are hostile, and WHMCS prints what a module returns as HTML
 * (the admin tab's fields, the `JETPACK MODULE: …` messages, the dashboard page). Also the
 * quoting of customer values in messages, the way the worker quotes them.
 *
 * The flavours differ only where their callers have always differed, and the difference is
 * kept so that no output changes:
 *
 * - html(): the admin tab, the module's messages (`'` becomes `&#039;`, bad UTF-8 U+FFFD);
 * - message(): the text of a message template and its plain placeholders (`'` kept: the
 *   messages use it as quotes);
 * - quote(): a customer value inside a message, cleaned and cut like the worker's, in quotes;
 * - html5(): the dashboard (addons/jetpack_queue), which also loads this file (`'` becomes
 *   `&apos;`);
 * - htmlOrEmpty(): the activation email's merge fields and the dashboard's activation error
 *   (text that is not valid UTF-8 comes out empty: PHP's default without ENT_SUBSTITUTE).
 *
 * The client area's template (templates/clientarea.tpl) escapes its variables with Smarty.
 */

namespace WHMCS\Module\Server\Jetpack;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

final class Escape
{
    /** quote() keeps at most this many characters of a value (the worker's limit). */
    const QUOTE_MAX_CHARS = 80;

    /**
     * HTML-escapes text for WHMCS's admin pages: `& < > " '` (`'` as `&#039;`); bytes that are
     * not valid UTF-8 become U+FFFD.
     *
     * @param mixed $text
     *
     * @return string
     */
    public static function html($text)
    {
        return htmlspecialchars((string) $text, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
    }

    /**
     * HTML-escapes the text of a module message: as html(), except `'` (which the messages use
     * as quotes and WHMCS shows as it is).
     *
     * @param mixed $text
     *
     * @return string
     */
    public static function message($text)
    {
        return htmlspecialchars((string) $text, ENT_COMPAT | ENT_SUBSTITUTE, 'UTF-8');
    }

    /**
     * A customer- or admin-supplied value, quoted the way the worker quotes it (no control
     * characters, at most QUOTE_MAX_CHARS characters, then `…`) and HTML-escaped.
     *
     * @param mixed $value
     *
     * @return string e.g. `'my site'`
     */
    public static function quote($value)
    {
        $clean = preg_replace('/\p{Cc}/u', '', (string) $value);
        if ($clean === null) {
            // Not valid UTF-8: keep the printable ASCII only.
            $clean = preg_replace('/[^\x20-\x7E]/', '', (string) $value);
        }
        if (preg_match_all('/./su', $clean, $chars) > self::QUOTE_MAX_CHARS) {
            $clean = implode('', array_slice($chars[0], 0, self::QUOTE_MAX_CHARS)) . '…';
        }
        return "'" . self::html($clean) . "'";
    }

    /**
     * HTML-escapes a value for the dashboard page, in text and quoted attributes alike: as
     * html(), with `'` written `&apos;` (HTML5).
     *
     * @param mixed $value
     *
     * @return string
     */
    public static function html5($value)
    {
        return htmlspecialchars((string) $value, ENT_QUOTES | ENT_SUBSTITUTE | ENT_HTML5, 'UTF-8');
    }

    /**
     * HTML-escapes text as html() does, except that text which is not valid UTF-8 comes out as
     * '' (no ENT_SUBSTITUTE): the activation email's merge fields and the dashboard's
     * activation error.
     *
     * @param mixed $text
     *
     * @return string
     */
    public static function htmlOrEmpty($text)
    {
        return htmlspecialchars((string) $text, ENT_QUOTES, 'UTF-8');
    }
}
