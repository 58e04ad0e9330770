<?php

namespace JetpackTests;

use PHPUnit\Framework\TestCase;

/**
 * WHMCS loads each of the module's entry points on its own: jetpack.php when it calls the
 * module, hooks.php on every page (without jetpack.php), the dashboard's jetpack_queue.php on
 * its page. There is no autoloader: each entry point requires the lib files it needs. Each is
 * loaded alone in a fresh PHP, and every lib class named (`Name::`, `new Name`) in the code it
 * loaded must be loaded too, so a class split out of another (lib/Order.php became Rules,
 * Target, OrderChecks, CustomFields and SiteUrl) is never missing where its callers run.
 */
final class LibLoadingTest extends TestCase
{
    public function entryPoints(): array
    {
        return array(
            'the module' => array(JETPACK_MODULE_DIR . '/jetpack.php'),
            'its hooks' => array(JETPACK_MODULE_DIR . '/hooks.php'),
            'the dashboard' => array(dirname(__DIR__) . '/modules/addons/jetpack_queue/jetpack_queue.php'),
        );
    }

    /**
     * @dataProvider entryPoints
     */
    public function testEachEntryPointLoadsEveryLibClassItsCodeNames(string $entry): void
    {
        $loaded = self::loadAlone($entry);
        $this->assertArrayHasKey('Escape', $loaded, 'every entry point loads Escape');

        $missing = array();
        $files = array_unique(array_merge(array($entry), array_values($loaded)));
        foreach ($files as $file) {
            foreach (self::libClassesNamedIn($file) as $name) {
                if (!isset($loaded[$name])) {
                    $missing[] = basename($file) . ' names ' . $name;
                }
            }
        }
        $this->assertSame(array(), array_values(array_unique($missing)), basename($entry) . ' alone');
    }

    /**
     * The checker itself: a lib class named but not loaded is found.
     */
    public function testTheCheckerFindsANamedLibClass(): void
    {
        $file = tempnam(sys_get_temp_dir(), 'jp-lib-');
        file_put_contents($file, "<?php\n\$a = OrderChecks::check(1);\n\$b = new Target();\n\$c = self::x(Nope::y());\n");
        try {
            $this->assertSame(array('OrderChecks', 'Target'), self::libClassesNamedIn($file));
        } finally {
            unlink($file);
        }
    }

    /**
     * Loads an entry point in a fresh PHP, as WHMCS does (the `WHMCS` constant, an add_hook()
     * stand-in).
     *
     * @param string $entry
     *
     * @return array the module's and dashboard's classes it loaded: short name => file
     */
    private static function loadAlone(string $entry): array
    {
        $code = 'define("WHMCS", true); function add_hook() {} require ' . var_export($entry, true) . ';'
            . ' $out = array();'
            . ' foreach (get_declared_classes() as $c) {'
            . '   if (strpos($c, "WHMCS\\\\Module\\\\") === 0) {'
            . '     $out[substr(strrchr("\\\\" . $c, "\\\\"), 1)] = (new ReflectionClass($c))->getFileName();'
            . '   }'
            . ' }'
            . ' echo json_encode($out);';
        exec(escapeshellarg(PHP_BINARY) . ' -r ' . escapeshellarg($code) . ' 2>&1', $output, $exit);
        $text = implode("\n", $output);
        self::assertSame(0, $exit, $text);
        $loaded = json_decode($text, true);
        self::assertIsArray($loaded, $text);
        return $loaded;
    }

    /**
     * The lib classes (a file of that name in the module's or the dashboard's lib/) a PHP
     * file names as `Name::` or `new Name`.
     *
     * @param string $file
     *
     * @return string[] short names, sorted
     */
    private static function libClassesNamedIn(string $file): array
    {
        $tokens = array_values(array_filter(token_get_all(file_get_contents($file)), function ($t) {
            return !is_array($t) || !in_array($t[0], array(T_WHITESPACE, T_COMMENT, T_DOC_COMMENT), true);
        }));
        $names = array();
        foreach ($tokens as $i => $token) {
            if (!is_array($token) || !in_array($token[0], self::nameTokens(), true)) {
                continue;
            }
            $next = $tokens[$i + 1] ?? null;
            $previous = $tokens[$i - 1] ?? null;
            $static = is_array($next) && $next[0] === T_DOUBLE_COLON;
            $created = is_array($previous) && $previous[0] === T_NEW;
            $name = substr(strrchr('\\' . $token[1], '\\'), 1);
            if (($static || $created) && self::isLibClass($name)) {
                $names[$name] = true;
            }
        }
        $names = array_keys($names);
        sort($names);
        return $names;
    }

    /**
     * @return int[] the tokens a class name comes as
     */
    private static function nameTokens(): array
    {
        $tokens = array(T_STRING);
        foreach (array('T_NAME_QUALIFIED', 'T_NAME_FULLY_QUALIFIED') as $name) {
            if (defined($name)) {
                $tokens[] = constant($name);
            }
        }
        return $tokens;
    }

    private static function isLibClass(string $name): bool
    {
        return is_file(JETPACK_MODULE_DIR . '/lib/' . $name . '.php')
            || is_file(dirname(__DIR__) . '/modules/addons/jetpack_queue/lib/' . $name . '.php');
    }
}
