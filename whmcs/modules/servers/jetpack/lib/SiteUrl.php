<?php
/**
 * The Site URL parser: why a Site URL is unusable, in the worker's words, checked without a
 * URL parser. The worker's `SiteUrl::parse` (src/domain.rs) is the reference: this class
 * refuses what it refuses, for the same reason, where that can be told without a URL parser,
 * and leaves the rest (IP addresses, punycode, percent-escapes, non-ASCII host names) to the
 * worker, which checks every Site URL again in full.
 *
 * Checked against the worker by the shared corpus test: tests/worker/bad_input.rs
 * (`php_module_and_worker_agree_on_bad_input`) runs its Site URL rows through the module's
 * order checks (OrderChecks, which asks this class) and through the worker, and both must
 * refuse with the same message, or both accept, or the row is listed as worker-only.
 * tests/SiteUrlTest.php holds the worker's unit-test cases.
 */

namespace WHMCS\Module\Server\Jetpack;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

final class SiteUrl
{
    /**
     * Why a Site URL is unusable, in the worker's words (rules.json's site_url_problems), or
     * null when it looks fine. These are the worker's SiteUrl::parse rules that can be checked
     * without a URL parser, in the worker's order: empty, too long, spaces, scheme, then what
     * its URL parser refuses (empty host, a character no host can have, a bad port), a user
     * name, `?` or `#`, and for a plain ASCII host name, no dot or a bad label; then port 0.
     * IPv4 and IPv6 addresses, punycode (`xn--`), percent-escapes and non-ASCII host names are
     * left to the worker, which checks every Site URL again in full. When a value has several
     * problems, the two may name different ones.
     *
     * @param string $raw the value, already cut at `|`
     *
     * @return string|null e.g. "is empty", "is not a web address (contains spaces)"
     *
     * @throws ModuleError when rules.json is missing or broken
     */
    public static function problem($raw)
    {
        $rules = Rules::get();
        $texts = $rules['site_url_problems'];
        $reason = self::reason(Text::trim($raw), $texts['reasons'], (int) $rules['limits']['site_url_max_len']);
        if ($reason === null) {
            return null;
        }
        if ($reason === '') {
            return (string) $texts['empty'];
        }
        return strtr((string) $texts['invalid'], array('{reason}' => $reason));
    }

    /**
     * The reason behind problem(): '' for empty, null for fine.
     *
     * @param string $trimmed the value, cut and trimmed
     * @param array  $why     rules.json's site_url_problems.reasons
     * @param int    $max     rules.json's limits.site_url_max_len
     *
     * @return string|null
     */
    private static function reason($trimmed, array $why, $max)
    {
        if ($trimmed === '') {
            return '';
        }
        if (strlen($trimmed) > $max) {
            return strtr($why['too_long'], array('{max}' => (string) $max));
        }
        $spaces = preg_match('/[\s\p{Z}\p{Cc}]/u', $trimmed);
        if ($spaces === false) {
            return $why['not_utf8'];
        }
        if ($spaces === 1) {
            return $why['spaces'];
        }
        $rest = self::afterScheme($trimmed);
        if ($rest === null) {
            return $why['scheme'];
        }
        return self::urlReason(self::parts($rest), $why);
    }

    /**
     * The value after `http://` or `https://` (any case), the whole value when it names no
     * scheme, or null for any other scheme.
     *
     * @param string $trimmed
     *
     * @return string|null
     */
    private static function afterScheme($trimmed)
    {
        $lower = strtolower($trimmed);
        if (strpos($lower, 'https://') === 0) {
            return substr($trimmed, 8);
        }
        if (strpos($lower, 'http://') === 0) {
            return substr($trimmed, 7);
        }
        if (strpos($trimmed, '://') !== false || self::hasSchemePrefix($trimmed)) {
            return null;
        }
        return $trimmed;
    }

    /**
     * The parts of a URL without its scheme. The authority comes after any further slashes,
     * up to the path, query or fragment; the host and port follow the last '@'.
     *
     * @param string $rest the value after the scheme
     *
     * @return array rest (without leading slashes), user (the user info), host, port (text
     *               after the host's ':', '' for none), bracketed (an IPv6 literal's `[`)
     */
    private static function parts($rest)
    {
        $rest = ltrim($rest, '/\\');
        $pieces = preg_split('~[/\\\\?#]~', $rest, 2);
        $authority = $pieces[0];
        $at = strrpos($authority, '@');
        $hostPort = $at === false ? $authority : substr($authority, $at + 1);
        $bracketed = $hostPort !== '' && $hostPort[0] === '[';
        $end = $bracketed ? strpos($hostPort, ']') : false;
        $colon = $bracketed
            ? ($end === false ? false : strpos($hostPort, ':', $end))
            : strpos($hostPort, ':');
        return array(
            'rest' => $rest,
            'user' => $at === false ? '' : substr($authority, 0, $at),
            'host' => $colon === false ? $hostPort : substr($hostPort, 0, $colon),
            'port' => $colon === false ? '' : substr($hostPort, $colon + 1),
            'bracketed' => $bracketed,
        );
    }

    /**
     * The reason the worker refuses a URL of these parts: first what its URL parser refuses
     * (an empty host, a character no host can have, a bad port), then what it refuses in a
     * parsed URL (a user name, a query or fragment, a plain host name without a dot or with a
     * bad label, port 0).
     *
     * @param array $url what parts() returned
     * @param array $why rules.json's site_url_problems.reasons
     *
     * @return string|null
     */
    private static function urlReason(array $url, array $why)
    {
        $host = $url['host'];
        if ($host === '') {
            return $why['empty_host'];
        }
        if (!$url['bracketed'] && strpbrk($host, '<>[]^|') !== false) {
            return $why['bad_host'];
        }
        $port = self::portNumber($url['port']);
        if ($port === false) {
            return $why['bad_port'];
        }
        if ($url['user'] !== '' && $url['user'] !== ':') {
            return $why['user_name'];
        }
        if (strpos($url['rest'], '?') !== false || strpos($url['rest'], '#') !== false) {
            return $why['query'];
        }
        if (!$url['bracketed'] && self::isPlainHostName($host)) {
            $bad = self::hostNameReason($host, $why);
            if ($bad !== null) {
                return $bad;
            }
        }
        return $port === 0 ? $why['port_zero'] : null;
    }

    /**
     * A port as the URL parser reads it: digits (leading zeros allowed) up to 65535.
     *
     * @param string $port the text after the host's ':'
     *
     * @return int|null|false the number, null for none, false for a bad port
     */
    private static function portNumber($port)
    {
        if ($port === '') {
            return null;
        }
        $digits = ltrim($port, '0');
        if (preg_match('/^[0-9]+$/', $port) !== 1 || strlen($digits) > 5 || (int) $digits > 65535) {
            return false;
        }
        return (int) $digits;
    }

    /**
     * Why the worker refuses a plain ASCII host name: no dot, or a label that is not letters,
     * digits and inner dashes (at most 63).
     *
     * @param string $host
     * @param array  $why  rules.json's site_url_problems.reasons
     *
     * @return string|null
     */
    private static function hostNameReason($host, array $why)
    {
        if (strpos($host, '.') === false) {
            return $why['no_domain'];
        }
        foreach (explode('.', $host) as $label) {
            if (preg_match('/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/', $label) !== 1) {
                return $why['bad_label'];
            }
        }
        return null;
    }

    /**
     * An ASCII host name the worker's URL parser takes as it is (apart from case): no
     * percent-escape, no punycode label, and not ending in a number (which makes it an IPv4
     * address to the parser).
     *
     * @param string $host
     *
     * @return bool
     */
    private static function isPlainHostName($host)
    {
        if (preg_match('/^[\x21-\x7E]+$/', $host) !== 1 || strpos($host, '%') !== false) {
            return false;
        }
        $labels = explode('.', strtolower($host));
        foreach ($labels as $label) {
            if (strpos($label, 'xn--') === 0) {
                return false;
            }
        }
        $last = end($labels);
        if ($last === '' && count($labels) > 1) {
            $last = $labels[count($labels) - 2];
        }
        return preg_match('/^(?:[0-9]+|0x[0-9a-f]*)$/', $last) !== 1;
    }

    /**
     * `javascript:alert(1)`, `mailto:x`: a scheme other than http(s), written without `//`.
     *
     * @param string $value
     *
     * @return bool
     */
    private static function hasSchemePrefix($value)
    {
        $colon = strpos($value, ':');
        if ($colon === false || $colon === 0) {
            return false;
        }
        $scheme = substr($value, 0, $colon);
        $rest = substr($value, $colon + 1);
        return preg_match('/^[A-Za-z]+$/', $scheme) === 1
            && !($rest !== '' && ctype_digit($rest[0]));
    }
}
