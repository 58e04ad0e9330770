<?php

namespace JetpackTests\Support;

/**
 * The test database server, from DATABASE_URL (mysql://user:pass@host:port/db, as the Rust
 * tests use it; `source scripts/lib/mariadb.sh && ensure_mariadb` exports it). The user must
 * be allowed to CREATE and DROP databases: every test gets its own.
 */
final class Db
{
    /** @var array|null */
    private static $url;

    /** @var \PDO|null */
    private static $server;

    /**
     * host, port, user, pass parsed from DATABASE_URL.
     *
     * @return array
     */
    public static function url()
    {
        if (self::$url === null) {
            $raw = getenv('DATABASE_URL');
            if ($raw === false || $raw === '') {
                throw new \RuntimeException(
                    'DATABASE_URL is not set: run `source scripts/lib/mariadb.sh && ensure_mariadb` first'
                );
            }
            $parts = parse_url($raw);
            if ($parts === false || !isset($parts['scheme'], $parts['host'])
                || !in_array($parts['scheme'], array('mysql', 'mariadb'), true)
            ) {
                throw new \RuntimeException('DATABASE_URL must look like mysql://user:pass@host:3306/db');
            }
            self::$url = array(
                'host' => $parts['host'],
                'port' => isset($parts['port']) ? (int) $parts['port'] : 3306,
                'user' => isset($parts['user']) ? rawurldecode($parts['user']) : 'root',
                'pass' => isset($parts['pass']) ? rawurldecode($parts['pass']) : '',
            );
        }
        return self::$url;
    }

    /**
     * The URL of one of the test databases, for the worker.
     *
     * @param string $database
     *
     * @return string
     */
    public static function urlFor($database)
    {
        $u = self::url();
        return 'mysql://' . rawurlencode($u['user']) . ':' . rawurlencode($u['pass'])
            . '@' . $u['host'] . ':' . $u['port'] . '/' . $database;
    }

    /**
     * Capsule connection settings as WHMCS uses them: utf8, and an empty sql_mode.
     *
     * @param string|null $database
     *
     * @return array
     */
    public static function connectionConfig($database)
    {
        $u = self::url();
        return array(
            'driver' => 'mysql',
            'host' => $u['host'],
            'port' => $u['port'],
            'database' => $database === null ? '' : $database,
            'username' => $u['user'],
            'password' => $u['pass'],
            'charset' => 'utf8',
            'collation' => 'utf8_unicode_ci',
            'prefix' => '',
            'modes' => array(), // WHMCS: set session sql_mode=''
        );
    }

    /**
     * A connection to the server without a database, to create and drop test databases.
     *
     * @return \PDO
     */
    public static function server()
    {
        if (self::$server === null) {
            $u = self::url();
            self::$server = new \PDO(
                'mysql:host=' . $u['host'] . ';port=' . $u['port'],
                $u['user'],
                $u['pass'],
                array(\PDO::ATTR_ERRMODE => \PDO::ERRMODE_EXCEPTION)
            );
        }
        return self::$server;
    }

    /**
     * Runs a SQL file statement by statement (statements end with ";" at the end of a line;
     * comment lines are dropped), as the Rust tests load the same fixtures.
     *
     * @param \PDO   $pdo
     * @param string $path
     */
    public static function runFile(\PDO $pdo, $path)
    {
        $sql = file_get_contents($path);
        if ($sql === false) {
            throw new \RuntimeException("cannot read $path");
        }
        foreach (explode(";\n", str_replace("\r\n", "\n", $sql)) as $statement) {
            $lines = array_filter(explode("\n", $statement), function ($line) {
                return strpos(ltrim($line), '--') !== 0;
            });
            $code = trim(implode("\n", $lines));
            if ($code !== '') {
                $pdo->exec($code);
            }
        }
    }
}
