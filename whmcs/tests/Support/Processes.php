<?php

namespace JetpackTests\Support;

/**
 * The Rust binaries for the end-to-end tests: the sandbox partner API (one per test, on a
 * free loopback port) and `jetpack-worker` commands against a test database. Paths come from
 * JETPACK_SANDBOX_BIN / JETPACK_WORKER_BIN, by default target/debug/ of the repo
 * (`cargo build --bins`).
 */
final class Processes
{
    /** @var resource|null */
    private $sandbox;

    /** @var array */
    private $sandboxPipes = array();

    /** @var string|null http://127.0.0.1:PORT */
    private $baseUrl;

    /**
     * @param string $name jetpack-worker or jetpack-sandbox
     *
     * @return string the binary's path
     */
    public static function binary($name)
    {
        $env = $name === 'jetpack-worker' ? 'JETPACK_WORKER_BIN' : 'JETPACK_SANDBOX_BIN';
        $path = getenv($env);
        if ($path === false || $path === '') {
            $path = JETPACK_REPO_ROOT . '/target/debug/' . $name;
        }
        if (!is_file($path) || !is_executable($path)) {
            throw new \RuntimeException("$path is missing: run `cargo build --bins` (or set $env)");
        }
        return $path;
    }

    /**
     * Starts the sandbox on 127.0.0.1:0 and reads the port from its first line.
     *
     * @return string the base URL
     */
    public function startSandbox()
    {
        $this->sandbox = proc_open(
            array(self::binary('jetpack-sandbox'), '--listen', '127.0.0.1:0'),
            array(0 => array('pipe', 'r'), 1 => array('pipe', 'w'), 2 => array('file', '/dev/null', 'w')),
            $this->sandboxPipes,
            null,
            array('PATH' => (string) getenv('PATH'), 'RUST_LOG' => 'warn')
        );
        if (!is_resource($this->sandbox)) {
            throw new \RuntimeException('could not start jetpack-sandbox');
        }
        fclose($this->sandboxPipes[0]);
        $stdout = $this->sandboxPipes[1];
        $deadline = microtime(true) + 20;
        $line = '';
        while (strpos($line, "\n") === false && microtime(true) < $deadline) {
            $read = array($stdout);
            $write = null;
            $except = null;
            if (stream_select($read, $write, $except, 0, 200000) > 0) {
                $chunk = fread($stdout, 512);
                if ($chunk === '' || $chunk === false) {
                    break; // exited
                }
                $line .= $chunk;
            }
        }
        if (!preg_match('~jetpack-sandbox listening on (http://127\.0\.0\.1:\d+)~', $line, $m)) {
            $this->stopSandbox();
            throw new \RuntimeException('jetpack-sandbox did not say where it listens: ' . var_export($line, true));
        }
        $this->baseUrl = $m[1];
        return $this->baseUrl;
    }

    /**
     * GET /_sandbox/calls: per-site counts of the calls the sandbox received.
     *
     * @return array decoded JSON
     */
    public function sandboxCalls()
    {
        $body = file_get_contents($this->baseUrl . '/_sandbox/calls');
        if ($body === false) {
            throw new \RuntimeException('GET /_sandbox/calls failed');
        }
        return json_decode($body, true);
    }

    /**
     * GET /_sandbox/plans: the plan the sandbox holds per site key ({slug, pending}).
     *
     * @return array decoded JSON
     */
    public function sandboxPlans()
    {
        $body = file_get_contents($this->baseUrl . '/_sandbox/plans');
        if ($body === false) {
            throw new \RuntimeException('GET /_sandbox/plans failed');
        }
        return json_decode($body, true);
    }

    /**
     * GET /_sandbox/licences: every licence the sandbox's Licensing API issued (key, product,
     * the index of the token that issued it, site, revoked), and the count per token.
     *
     * @return array decoded JSON
     */
    public function sandboxLicences()
    {
        $body = file_get_contents($this->baseUrl . '/_sandbox/licences');
        if ($body === false) {
            throw new \RuntimeException('GET /_sandbox/licences failed');
        }
        return json_decode($body, true);
    }

    /**
     * Stops the sandbox (SIGTERM, then SIGKILL) if it runs.
     */
    public function stopSandbox()
    {
        if (!is_resource($this->sandbox)) {
            return;
        }
        proc_terminate($this->sandbox, 15);
        $deadline = microtime(true) + 5;
        while (proc_get_status($this->sandbox)['running'] && microtime(true) < $deadline) {
            usleep(20000);
        }
        if (proc_get_status($this->sandbox)['running']) {
            proc_terminate($this->sandbox, 9);
        }
        foreach ($this->sandboxPipes as $pipe) {
            if (is_resource($pipe)) {
                fclose($pipe);
            }
        }
        proc_close($this->sandbox);
        $this->sandbox = null;
    }

    /**
     * Runs a jetpack-worker command against a test database and the sandbox.
     *
     * @param string $database test database name
     * @param array  $args     e.g. array('run', '--once')
     * @param int    $timeout  seconds before the worker is killed
     *
     * @return array exit, stdout, stderr
     */
    public function worker($database, array $args, $timeout = 120)
    {
        $env = array(
            'PATH' => (string) getenv('PATH'),
            'DATABASE_URL' => Db::urlFor($database),
            'JETPACK_LOG_FORMAT' => 'text',
            'RUST_LOG' => 'info',
        );
        if ($this->baseUrl !== null) {
            $env['JETPACK_API_BASE'] = $this->baseUrl;
        }
        $process = proc_open(
            array_merge(array(self::binary('jetpack-worker')), $args),
            array(0 => array('file', '/dev/null', 'r'), 1 => array('pipe', 'w'), 2 => array('pipe', 'w')),
            $pipes,
            null,
            $env
        );
        if (!is_resource($process)) {
            throw new \RuntimeException('could not start jetpack-worker');
        }
        stream_set_blocking($pipes[1], false);
        stream_set_blocking($pipes[2], false);
        $out = array(1 => '', 2 => '');
        $deadline = microtime(true) + $timeout;
        $open = array(1 => $pipes[1], 2 => $pipes[2]);
        while (count($open) > 0 && microtime(true) < $deadline) {
            $read = array_values($open);
            $write = null;
            $except = null;
            if (stream_select($read, $write, $except, 0, 200000) === 0) {
                continue;
            }
            foreach ($open as $fd => $pipe) {
                $chunk = fread($pipe, 65536);
                if ($chunk !== false && $chunk !== '') {
                    $out[$fd] .= $chunk;
                } elseif (feof($pipe)) {
                    fclose($pipe);
                    unset($open[$fd]);
                }
            }
        }
        if (count($open) > 0) {
            proc_terminate($process, 9);
            foreach ($open as $pipe) {
                fclose($pipe);
            }
            proc_close($process);
            throw new \RuntimeException(
                'jetpack-worker ' . implode(' ', $args) . " did not finish in {$timeout}s:\n" . $out[2]
            );
        }
        $exit = proc_close($process);
        return array('exit' => $exit, 'stdout' => $out[1], 'stderr' => $out[2]);
    }
}
