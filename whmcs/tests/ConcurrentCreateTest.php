<?php

namespace JetpackTests;

use JetpackTests\Support\DatabaseTestCase;
use WHMCS\Module\Server\Jetpack\Messages;

/**
 * The promise of the request inbox: a Create or a Terminate never fails on a deadlock or a
 * lock-wait timeout, however many arrive at once. Separate PHP processes (Support/
 * concurrent_call.php, each with its own connection, as WHMCS's web requests have) are
 * released at the same instant: several calls for the same service, Creates and Terminates
 * mixed, and many services of the same product whose details rows are inserted into the same
 * index gap. Every call must return 'success' and leave exactly one request row.
 */
final class ConcurrentCreateTest extends DatabaseTestCase
{
    /** Seconds between the last process being ready and the calls. */
    const LEAD = 0.3;

    public function isolationLevels(): array
    {
        return array(
            'REPEATABLE READ (the default)' => array('REPEATABLE READ'),
            'READ COMMITTED' => array('READ COMMITTED'),
        );
    }

    /**
     * @dataProvider isolationLevels
     */
    public function testConcurrentCreatesAndTerminatesAllSucceedWithOneRequestEach(string $isolation): void
    {
        $product = $this->product();
        $other = $this->product(array('name' => 'Jetpack Backup'));
        $s = array();
        for ($i = 0; $i < 8; $i++) {
            $s[$i] = $this->service($product);
        }
        $q = array($this->service($other), $this->service($other));
        // A service that already has its details row (the UPDATE path), and two bystanders of
        // the same product whose rows sit around the gap the others insert into.
        $oldRow = $this->setValue($s[4], 'jetpack_provisioning_details', 'JETPACK MODULE: Service ID: 1 - old failure');
        $bystanders = array($this->service($product), $this->service($product));
        foreach ($bystanders as $b) {
            $this->setValue($b, 'jetpack_provisioning_details', 'URL to Activate Jetpack: https://bystander.example/' . $b);
        }

        $calls = array();
        $add = function ($service, $function, $times = 1) use (&$calls) {
            for ($i = 0; $i < $times; $i++) {
                $calls[] = array($function, $service);
            }
        };
        $add($s[0], 'CreateAccount', 4);
        $add($s[0], 'TerminateAccount');
        $add($s[1], 'CreateAccount', 2);
        $add($s[1], 'TerminateAccount', 2);
        $add($s[2], 'TerminateAccount', 2);
        $add($s[3], 'CreateAccount', 2);
        $add($s[3], 'TerminateAccount');
        $add($s[4], 'CreateAccount');
        $add($s[5], 'CreateAccount', 2);
        $add($s[6], 'CreateAccount');
        $add($s[7], 'CreateAccount');
        $add($q[0], 'CreateAccount', 2);
        $add($q[0], 'TerminateAccount');
        $add($q[1], 'CreateAccount');
        $add($q[1], 'TerminateAccount');
        shuffle($calls);
        $this->assertGreaterThanOrEqual(16, count($calls));

        $outputs = $this->runAtOnce($calls, $isolation);

        // Every process returned 'success' (today's enqueue deadlocked here).
        $failures = array();
        foreach ($outputs as $i => $out) {
            if ($out['result'] !== 'success') {
                $failures[] = $calls[$i][0] . ' ' . $calls[$i][1] . ': ' . $out['result'];
            }
        }
        $this->assertSame(array(), $failures, count($failures) . ' of ' . count($calls) . ' calls failed');
        $this->assertSame(array(), array_keys(array_filter(array_column($outputs, 'late'))), 'every process made the barrier');
        $starts = array_column($outputs, 'started_at');
        $this->assertLessThan(0.25, max($starts) - min($starts), 'the calls started together');

        // Exactly one request row per call, with the right action and service, and the id each
        // process logged is its own.
        $rows = array();
        foreach ($this->requests() as $row) {
            $rows[(int) $row->id] = $row;
        }
        $this->assertCount(count($calls), $rows);
        $seen = array();
        foreach ($outputs as $i => $out) {
            list($function, $service) = $calls[$i];
            $action = $function === 'CreateAccount' ? 'provision' : 'terminate';
            $this->assertCount(1, $out['activity']);
            $pattern = '/^JETPACK MODULE: Service ID: ' . $service . ' - ' . $action
                . ' requested for jetpack-worker \(request #(\d+)\)$/';
            $this->assertMatchesRegularExpression($pattern, $out['activity'][0]);
            preg_match($pattern, $out['activity'][0], $m);
            $id = (int) $m[1];
            $this->assertArrayHasKey($id, $rows);
            $this->assertArrayNotHasKey($id, $seen, 'one request per call');
            $seen[$id] = true;
            $this->assertEquals($service, $rows[$id]->service_id);
            $this->assertSame($action, $rows[$id]->action);
            $this->assertSame('module', $rows[$id]->requested_by);
            $this->assertNull($rows[$id]->applied_at);
            $this->assertNull($rows[$id]->job_id);
            $this->assertNull($rows[$id]->decision);
        }
        $this->assertSame(0, (int) $this->scalar('SELECT COUNT(*) FROM mod_jetpack_jobs'), 'the module writes no job');

        // Each called service has one details row (racing inserts took theirs back), saying
        // queued; nobody else's changed.
        $queued = array(Messages::queued('provision'), Messages::queued('terminate'));
        foreach (array_unique(array_column($calls, 1)) as $service) {
            $details = $this->detailsRows($service);
            $this->assertCount(1, $details, "service $service");
            $this->assertContains(reset($details), $queued, "service $service");
        }
        $this->assertSame($oldRow, array_keys($this->detailsRows($s[4]))[0], 'the existing row was updated');
        $this->assertCount(1, $this->detailsRows($s[4]));
        foreach ($bystanders as $b) {
            $this->assertSame(
                array('URL to Activate Jetpack: https://bystander.example/' . $b),
                array_values($this->detailsRows($b))
            );
        }
    }

    /**
     * The race the concurrent test above met only now and then, played in its worst order:
     * auto-increment ids are handed out before commit, so a writer with a LOWER id can commit
     * AFTER one with a higher id has already looked and seen only its own row. Here the other
     * writer holds an uncommitted insert (the lower id) while the module writes (the higher
     * id, committed, alone in view); then the other commits and looks last. Whichever writer
     * looks last must leave one row, whatever the order of the commits (before the fix, both
     * rows stayed: each writer saw itself as the lowest).
     */
    public function testRacingDetailsInsertsConvergeWhenTheLowerIdCommitsLast(): void
    {
        $service = $this->service($this->product());
        $fieldId = $this->fieldId($service, 'jetpack_provisioning_details');
        $this->exec('DELETE FROM tblcustomfieldsvalues WHERE fieldid = ? AND relid = ?', array($fieldId, $service));
        $u = \JetpackTests\Support\Db::url();
        $other = new \PDO(
            sprintf('mysql:host=%s;port=%d;dbname=%s', $u['host'], $u['port'], $this->database),
            $u['user'],
            $u['pass'],
            array(\PDO::ATTR_ERRMODE => \PDO::ERRMODE_EXCEPTION)
        );
        $other->beginTransaction();
        $other->prepare('INSERT INTO tblcustomfieldsvalues (fieldid, relid, value) VALUES (?, ?, ?)')
            ->execute(array($fieldId, $service, Messages::queued('terminate')));
        $lowerId = (int) $other->lastInsertId();

        $written = \WHMCS\Module\Server\Jetpack\Requests::writeDetails($service, $fieldId, Messages::queued('provision'));
        $this->assertGreaterThan($lowerId, $written['id'], 'the module got the higher id');
        $this->assertTrue($written['inserted']);

        $other->commit();
        // The other writer now looks, as writeDetails does right after its own insert.
        $check = new \ReflectionMethod(\WHMCS\Module\Server\Jetpack\Requests::class, 'removeRacingInserts');
        $check->setAccessible(true);
        $keptOwn = $check->invoke(null, $service, $fieldId, $lowerId);

        $this->assertTrue($keptOwn, 'the lowest row is the one WHMCS and the worker read');
        $this->assertSame(array($lowerId => Messages::queued('terminate')), $this->detailsRows($service));
    }

    /**
     * Starts one process per call, waits until all are ready, releases them at the same
     * instant, and collects what each printed.
     *
     * @param array  $calls     list of [function, service id]
     * @param string $isolation the session's isolation level
     *
     * @return array per call: result, late, started_at, activity
     */
    private function runAtOnce(array $calls, $isolation)
    {
        $script = __DIR__ . '/Support/concurrent_call.php';
        $processes = array();
        foreach ($calls as $i => $call) {
            $stderr = tmpfile();
            $process = proc_open(
                array(PHP_BINARY, $script, $this->database, $call[0], (string) $call[1], $isolation),
                array(0 => array('pipe', 'r'), 1 => array('pipe', 'w'), 2 => $stderr),
                $pipes
            );
            $this->assertIsResource($process, 'could not start php');
            $processes[$i] = array('process' => $process, 'pipes' => $pipes, 'stderr' => $stderr, 'out' => '');
        }
        try {
            $this->readUntil($processes, function ($out) {
                return strpos($out, "ready\n") !== false;
            }, 60, 'ready');
            $startAt = sprintf('%.6F', microtime(true) + self::LEAD);
            foreach ($processes as $p) {
                fwrite($p['pipes'][0], $startAt . "\n");
                fflush($p['pipes'][0]);
            }
            $this->readUntil($processes, function ($out) {
                return substr_count($out, "\n") >= 2;
            }, 180, 'its result');
        } finally {
            foreach ($processes as $i => $p) {
                foreach ($p['pipes'] as $pipe) {
                    if (is_resource($pipe)) {
                        fclose($pipe);
                    }
                }
                if (proc_get_status($p['process'])['running']) {
                    proc_terminate($p['process'], 9);
                }
                proc_close($p['process']);
            }
        }
        $outputs = array();
        foreach ($processes as $i => $p) {
            $lines = explode("\n", trim($p['out']));
            $decoded = json_decode((string) end($lines), true);
            if (!is_array($decoded)) {
                rewind($p['stderr']);
                $this->fail('process ' . $i . ' printed ' . var_export($p['out'], true) . ', stderr: '
                    . stream_get_contents($p['stderr']));
            }
            $outputs[$i] = $decoded;
        }
        return $outputs;
    }

    /**
     * Reads every process's stdout until $done says it has what is needed.
     *
     * @param array    $processes as built by runAtOnce (out is appended to)
     * @param callable $done      stdout so far => bool
     * @param int      $timeout   seconds
     * @param string   $what      for the failure message
     */
    private function readUntil(array &$processes, callable $done, $timeout, $what)
    {
        $deadline = microtime(true) + $timeout;
        foreach ($processes as $i => $p) {
            stream_set_blocking($p['pipes'][1], false);
        }
        while (true) {
            $waiting = array();
            foreach ($processes as $i => $p) {
                if (!$done($p['out'])) {
                    $waiting[$i] = $p['pipes'][1];
                }
            }
            if (count($waiting) === 0) {
                return;
            }
            if (microtime(true) > $deadline) {
                $i = array_keys($waiting)[0];
                rewind($processes[$i]['stderr']);
                $this->fail(count($waiting) . ' processes did not print ' . $what . " in {$timeout}s; process $i: "
                    . var_export($processes[$i]['out'], true) . ' ' . stream_get_contents($processes[$i]['stderr']));
            }
            $read = array_values($waiting);
            $write = null;
            $except = null;
            if (stream_select($read, $write, $except, 0, 100000) === 0) {
                continue;
            }
            foreach ($waiting as $i => $pipe) {
                $chunk = fread($pipe, 65536);
                if ($chunk !== false && $chunk !== '') {
                    $processes[$i]['out'] .= $chunk;
                } elseif (feof($pipe)) {
                    rewind($processes[$i]['stderr']);
                    $this->fail("process $i exited before it printed $what: " . var_export($processes[$i]['out'], true)
                        . ' ' . stream_get_contents($processes[$i]['stderr']));
                }
            }
        }
    }
}
