<?php
/**
 * An error the module reports to WHMCS as its return value: the message always starts with
 * "JETPACK MODULE: " and every customer- or admin-supplied part of it is already HTML-escaped
 * (WHMCS shows the string in the admin area as HTML).
 */

namespace WHMCS\Module\Server\Jetpack;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

class ModuleError extends \RuntimeException
{
    const PREFIX = 'JETPACK MODULE: ';

    /** MySQL/MariaDB error numbers the module acts on. */
    const ER_DUP_ENTRY = 1062;
    const ER_NO_SUCH_TABLE = 1146;
    const ER_BAD_FIELD = 1054;

    /**
     * An error about one service. $text must already be safe HTML (use quote() for values).
     *
     * @param int    $serviceId tblhosting.id
     * @param string $text      what is wrong and what to do about it
     *
     * @return self
     */
    public static function forService($serviceId, $text)
    {
        return new self(self::PREFIX . 'Service ID: ' . (int) $serviceId . ' - ' . $text);
    }

    /**
     * Translates a database error into a message: missing worker tables name the command that
     * creates them; anything else is reported with the driver's message (never the SQL or its
     * bindings).
     *
     * @param \PDOException $e         what the query builder threw
     * @param int           $serviceId tblhosting.id
     *
     * @return self
     */
    public static function fromDatabase(\PDOException $e, $serviceId)
    {
        if (self::isWorkerTableMissing($e)) {
            return self::forService(
                $serviceId,
                'the jetpack-worker tables are missing or out of date in the WHMCS database '
                . '(mod_jetpack_jobs); run `jetpack-worker migrate` with the WHMCS database\'s '
                . 'DATABASE_URL, then retry'
            );
        }
        $info = self::errorInfo($e);
        $detail = isset($info[2]) && $info[2] !== '' ? $info[2] : $e->getCode();
        return self::forService(
            $serviceId,
            'database error: ' . self::escape((string) $detail)
        );
    }

    /**
     * True for "table mod_jetpack_jobs doesn't exist" (or a column of it missing).
     *
     * @return bool
     */
    public static function isWorkerTableMissing(\PDOException $e)
    {
        $info = self::errorInfo($e);
        $number = isset($info[1]) ? (int) $info[1] : 0;
        // The driver names a missing table; for a missing column, the query names the table.
        $text = (isset($info[2]) ? (string) $info[2] : $e->getMessage())
            . ' ' . (method_exists($e, 'getSql') ? (string) $e->getSql() : '');
        return ($number === self::ER_NO_SUCH_TABLE || $number === self::ER_BAD_FIELD)
            && strpos($text, 'mod_jetpack_') !== false;
    }

    /**
     * True for a duplicate-key error (the UNIQUE index on unfinished jobs).
     *
     * @return bool
     */
    public static function isDuplicateKey(\PDOException $e)
    {
        $info = self::errorInfo($e);
        return isset($info[1]) && (int) $info[1] === self::ER_DUP_ENTRY;
    }

    /**
     * A customer- or admin-supplied value, quoted the way the worker quotes it (no control
     * characters, at most 80 characters) and HTML-escaped.
     *
     * @param string $value
     *
     * @return string
     */
    public static function quote($value)
    {
        $clean = preg_replace('/\p{Cc}/u', '', (string) $value);
        if ($clean === null) {
            // Not valid UTF-8: keep the printable ASCII only.
            $clean = preg_replace('/[^\x20-\x7E]/', '', (string) $value);
        }
        if (preg_match_all('/./su', $clean, $chars) > 80) {
            $clean = implode('', array_slice($chars[0], 0, 80)) . '…';
        }
        return "'" . self::escape($clean) . "'";
    }

    /**
     * HTML-escapes text for WHMCS's admin pages.
     *
     * @param string $text
     *
     * @return string
     */
    public static function escape($text)
    {
        return htmlspecialchars((string) $text, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
    }

    /**
     * @return array the PDO error info (SQLSTATE, driver code, driver message), possibly empty
     */
    private static function errorInfo(\PDOException $e)
    {
        if (is_array($e->errorInfo)) {
            return $e->errorInfo;
        }
        $previous = $e->getPrevious();
        if ($previous instanceof \PDOException && is_array($previous->errorInfo)) {
            return $previous->errorInfo;
        }
        return array();
    }
}
