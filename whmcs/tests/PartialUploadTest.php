<?php

namespace JetpackTests;

use PHPUnit\Framework\TestCase;

/**
 * A partial upload never takes WHMCS down. WHMCS loads the server module's hooks.php on every
 * page once the module is in its hook cache, its jetpack.php for every module call and the
 * Module Settings, and the queue addon's main file to list the addon modules: a missing lib
 * file there was a fatal error in the client area, the admin area and the cron. Each test loads
 * a copy of the modules directory with one file removed, in a PHP process of its own, the way
 * WHMCS loads it (Support/load_modules.php): the process ends normally, and the admin sees one
 * clear `JETPACK MODULE: … reinstall …` message naming the file, where they look.
 */
final class PartialUploadTest extends TestCase
{
    /** @var string */
    private $copy;

    protected function setUp(): void
    {
        $this->copy = sys_get_temp_dir() . '/jetpack-modules-' . bin2hex(random_bytes(6));
        $this->copyTree(dirname(__DIR__) . '/modules', $this->copy);
    }

    protected function tearDown(): void
    {
        $this->removeTree($this->copy);
    }

    /**
     * Every PHP file the entry files load, one at a time.
     */
    public function libFiles(): array
    {
        $root = dirname(__DIR__) . '/modules';
        $cases = array();
        foreach (array_merge(glob($root . '/servers/jetpack/lib/*.php'), glob($root . '/addons/jetpack_queue/lib/*.php')) as $file) {
            $relative = substr($file, strlen($root) + 1);
            $cases[$relative] = array($relative);
        }
        return $cases;
    }

    /**
     * @dataProvider libFiles
     */
    public function testAMissingFileIsOneClearMessageNeverAFatalError(string $relative): void
    {
        unlink($this->copy . '/' . $relative);

        $out = $this->load();

        $name = basename($relative);
        $messages = array_filter(array_merge(
            $out['admin_header'],
            $out['activity'],
            array((string) $out['missing'], (string) $out['addon_description'])
        ), function ($text) use ($name) {
            return strpos($text, $name) !== false;
        });
        $this->assertNotEmpty($messages, "nothing says $relative is missing: " . json_encode($out));
        foreach ($messages as $message) {
            $this->assertStringContainsString('JETPACK MODULE: ', $message);
            $this->assertStringContainsString('reinstall', $message);
        }
        $this->assertLessThanOrEqual(1, count($out['admin_header']), 'one banner');
        $this->assertLessThanOrEqual(1, count($out['activity']), 'one activity line a day');
    }

    public function testHooksPhpWithAFileMissingRegistersOnlyItsMessage(): void
    {
        unlink($this->copy . '/servers/jetpack/lib/Email.php');

        $out = $this->load();

        $this->assertSame(array('AdminAreaHeaderOutput', 'DailyCronJob'), $out['hooks']);
        $this->assertCount(1, $out['admin_header']);
        $this->assertStringContainsString('missing: lib/Email.php', $out['admin_header'][0]);
        $this->assertCount(1, $out['activity']);
        $this->assertStringStartsWith('JETPACK MODULE: ', $out['activity'][0]);
        // The module's functions answer WHMCS with the message; the client sees the waiting text.
        $this->assertSame($out['missing'], $out['create']);
        $this->assertStringStartsWith('JETPACK MODULE: ', $out['create']);
        $this->assertStringStartsWith('JETPACK MODULE: ', $out['tab']['Jetpack Job']);
        $this->assertStringNotContainsString('JETPACK', $out['client_area']);
        // Module Settings keep their order and show each value as stored: nothing is lost when
        // an admin saves the product meanwhile.
        $this->assertSame('Jetpack Partner Client ID', $out['settings'][0]);
        $this->assertSame(array('text', 'password'), array_slice($out['settings_types'], 0, 2));
        $this->assertNotContains('dropdown', $out['settings_types']);
        $this->assertNotContains('yesno', $out['settings_types']);
        $this->assertStringContainsString('reinstall', $out['settings_note']);
    }

    public function testTheAddonWithAFileMissingSaysSoInTheAddonList(): void
    {
        unlink($this->copy . '/addons/jetpack_queue/lib/Page.php');

        $out = $this->load();

        $this->assertStringContainsString('modules/addons/jetpack_queue/lib/Page.php', $out['addon_description']);
        $this->assertSame('error', $out['addon_activate']['status']);
        $this->assertStringContainsString('reinstall', $out['addon_page']);
        $this->assertNull($out['missing'], 'the server module is whole');
        $this->assertContains('AfterCronJob', $out['hooks']);
    }

    public function testAWholeCopySaysNothing(): void
    {
        $out = $this->load();

        $this->assertNull($out['missing']);
        $this->assertSame(array(), $out['admin_header']);
        $this->assertSame(array(), $out['activity']);
        $this->assertContains('AcceptOrder', $out['hooks']);
        $this->assertContains('ServiceEdit', $out['hooks']);
        $this->assertStringNotContainsString('JETPACK MODULE', $out['addon_description']);
        $this->assertContains('dropdown', $out['settings_types']);
    }

    /**
     * Runs Support/load_modules.php on the copy: it must exit 0 with nothing on stderr (no
     * warning, no fatal error).
     *
     * @return array its JSON output
     */
    private function load()
    {
        $process = proc_open(
            array(PHP_BINARY, __DIR__ . '/Support/load_modules.php', $this->copy),
            array(1 => array('pipe', 'w'), 2 => array('pipe', 'w')),
            $pipes
        );
        $this->assertIsResource($process);
        $stdout = stream_get_contents($pipes[1]);
        $stderr = stream_get_contents($pipes[2]);
        fclose($pipes[1]);
        fclose($pipes[2]);
        $exit = proc_close($process);
        $this->assertSame(0, $exit, "stdout:\n$stdout\nstderr:\n$stderr");
        $this->assertSame('', $stderr);
        $out = json_decode($stdout, true);
        $this->assertIsArray($out, $stdout);
        return $out;
    }

    private function copyTree($from, $to)
    {
        mkdir($to, 0700, true);
        foreach (scandir($from) as $entry) {
            if ($entry === '.' || $entry === '..') {
                continue;
            }
            if (is_dir($from . '/' . $entry)) {
                $this->copyTree($from . '/' . $entry, $to . '/' . $entry);
            } else {
                copy($from . '/' . $entry, $to . '/' . $entry);
            }
        }
    }

    private function removeTree($dir)
    {
        if (!is_dir($dir)) {
            return;
        }
        foreach (scandir($dir) as $entry) {
            if ($entry === '.' || $entry === '..') {
                continue;
            }
            $path = $dir . '/' . $entry;
            is_dir($path) ? $this->removeTree($path) : unlink($path);
        }
        rmdir($dir);
    }
}
