<?php
/**
 * An error the module reports to WHMCS as its return value: the message always starts with
 * "JETPACK MODULE: " and every customer- or admin-supplied part of it is already HTML-escaped
 * (WHMCS shows the string in the admin area as HTML; lib/Escape.php).
 */

namespace WHMCS\Module\Server\Jetpack;

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

class ModuleError extends \RuntimeException
{
    const PREFIX = 'JETPACK MODULE: ';

    /** MySQL/MariaDB error numbers the module acts on. */
    const ER_NO_SUCH_TABLE = 1146;
    const ER_BAD_FIELD = 1054;
    const ER_LOCK_WAIT_TIMEOUT = 1205;
    /** Also what Galera returns when a transaction loses a certification conflict. */
    const ER_LOCK_DEADLOCK = 1213;

    /**
     * An error about one service. $text must already be safe HTML (Escape::quote() for values).
     *
     * @param int    $serviceId tblhosting.id
     * @param string $text      what is wrong and what to do about it
     *
     * @return self
     */
    public static function forService($serviceId, $text)
    {
        return self::forTarget($serviceId, 0, $text);
    }

    /**
     * An error about a target: `JETPACK MODULE: Service ID: 12 - …` for a service,
     * `JETPACK MODULE: Addon ID: 5 (Service ID: 12) - …` for an addon. $text must already be
     * safe HTML.
     *
     * @param int    $serviceId tblhosting.id (an addon's parent)
     * @param int    $addonId   tblhostingaddons.id, 0 for the service itself
     * @param string $text      what is wrong and what to do about it
     *
     * @return self
     */
    public static function forTarget($serviceId, $addonId, $text)
    {
        return new self(self::PREFIX . self::target($serviceId, $addonId) . ' - ' . $text);
    }

    /**
     * How messages and activity lines name a target (the worker's `Target` Display).
     *
     * @param int $serviceId tblhosting.id (an addon's parent)
     * @param int $addonId   tblhostingaddons.id, 0 for the service itself
     *
     * @return string "Service ID: 12" or "Addon ID: 5 (Service ID: 12)"
     */
    public static function target($serviceId, $addonId = 0)
    {
        $service = 'Service ID: ' . (int) $serviceId;
        return (int) $addonId > 0 ? 'Addon ID: ' . (int) $addonId . ' (' . $service . ')' : $service;
    }

    /**
     * Translates a database error into a message: missing worker tables name the command that
     * creates them; anything else is reported with the driver's message (never the SQL or its
     * bindings).
     *
     * @param \PDOException $e         what the query builder threw
     * @param int           $serviceId tblhosting.id (an addon's parent)
     * @param int           $addonId   tblhostingaddons.id, 0 for the service itself
     *
     * @return self
     */
    public static function fromDatabase(\PDOException $e, $serviceId, $addonId = 0)
    {
        if (self::isWorkerTableMissing($e)) {
            return self::forTarget(
                $serviceId,
                $addonId,
                'the jetpack-worker tables are missing or out of date in the WHMCS database ('
                . Escape::html(self::workerTable($e)) . '); run `jetpack-worker migrate` with the '
                . 'WHMCS database\'s DATABASE_URL, then retry'
            );
        }
        $info = self::errorInfo($e);
        $detail = isset($info[2]) && $info[2] !== '' ? $info[2] : $e->getCode();
        return self::forTarget(
            $serviceId,
            $addonId,
            'database error: ' . Escape::html((string) $detail)
        );
    }

    /**
     * What the database said, for the module log: the SQLSTATE, the driver's error number and
     * message, and the statement as the query builder wrote it (placeholders only, never the
     * bindings, which may hold customer values).
     *
     * @param \PDOException $e what the query builder threw
     *
     * @return array sqlstate, error, message, statement ('' when unknown)
     */
    public static function databaseAnswer(\PDOException $e)
    {
        $info = self::errorInfo($e);
        return array(
            'sqlstate' => isset($info[0]) ? (string) $info[0] : '',
            'error' => self::errorNumber($e),
            'message' => isset($info[2]) && $info[2] !== '' ? (string) $info[2] : (string) $e->getCode(),
            'statement' => method_exists($e, 'getSql') ? (string) $e->getSql() : '',
        );
    }

    /**
     * True for "table mod_jetpack_requests doesn't exist" (or a column of a worker table
     * missing): any `mod_jetpack_` table.
     *
     * @return bool
     */
    public static function isWorkerTableMissing(\PDOException $e)
    {
        $number = self::errorNumber($e);
        return ($number === self::ER_NO_SUCH_TABLE || $number === self::ER_BAD_FIELD)
            && strpos(self::errorText($e), 'mod_jetpack_') !== false;
    }

    /**
     * True when the statement lost a lock conflict and may simply be run again: a deadlock
     * (1213, also Galera's certification conflict) or a lock-wait timeout (1205).
     *
     * @return bool
     */
    public static function isLockConflict(\PDOException $e)
    {
        $number = self::errorNumber($e);
        return $number === self::ER_LOCK_DEADLOCK || $number === self::ER_LOCK_WAIT_TIMEOUT;
    }

    /**
     * The worker table an error is about, e.g. `mod_jetpack_requests`.
     *
     * @return string
     */
    private static function workerTable(\PDOException $e)
    {
        if (preg_match('/mod_jetpack_[A-Za-z0-9_]+/', self::errorText($e), $m) === 1) {
            return $m[0];
        }
        return 'mod_jetpack_*';
    }

    /**
     * @return int the driver's error number (1213, 1146, …), 0 when unknown
     */
    private static function errorNumber(\PDOException $e)
    {
        $info = self::errorInfo($e);
        return isset($info[1]) ? (int) $info[1] : 0;
    }

    /**
     * The driver's message, then the query (for a missing column, only the query names the
     * table). Never shown: only searched.
     *
     * @return string
     */
    private static function errorText(\PDOException $e)
    {
        $info = self::errorInfo($e);
        return (isset($info[2]) ? (string) $info[2] : $e->getMessage())
            . ' ' . (method_exists($e, 'getSql') ? (string) $e->getSql() : '');
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
