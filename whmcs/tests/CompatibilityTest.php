<?php

namespace JetpackTests;

use PhpParser\Lexer\Emulative;
use PhpParser\Node;
use PhpParser\NodeTraverser;
use PhpParser\NodeVisitor\ParentConnectingVisitor;
use PhpParser\NodeVisitorAbstract;
use PhpParser\ParserFactory;
use PHPUnit\Framework\TestCase;

/**
 * The module runs on every PHP WHMCS 8 supports (7.2 for WHMCS 8.0 up to 8.3): every file
 * passes `php -l`, and the module's code parses as PHP 7.2 and uses no later syntax or
 * function (checked on the syntax tree with nikic/php-parser, which phpunit depends on).
 */
final class CompatibilityTest extends TestCase
{
    /** Functions added after PHP 7.2. */
    const NEWER_FUNCTIONS = array(
        'array_key_first', 'array_key_last', 'is_countable', 'hrtime', 'mb_str_split',
        'str_contains', 'str_starts_with', 'str_ends_with', 'get_debug_type', 'fdiv',
        'get_resource_id', 'preg_last_error_msg', 'array_is_list', 'enum_exists',
        'mb_str_pad', 'json_validate', 'str_increment', 'str_decrement',
    );

    /**
     * @return string[] the module's PHP files
     */
    private static function moduleFiles()
    {
        $files = array();
        $iterator = new \RecursiveIteratorIterator(new \RecursiveDirectoryIterator(JETPACK_MODULE_DIR));
        foreach ($iterator as $file) {
            if ($file->isFile() && $file->getExtension() === 'php') {
                $files[] = $file->getPathname();
            }
        }
        sort($files);
        return $files;
    }

    public function testEveryPhpFilePassesLint(): void
    {
        $files = self::moduleFiles();
        foreach (glob(dirname(__DIR__) . '/tests/{,Support/}*.php', GLOB_BRACE) as $test) {
            $files[] = $test;
        }
        $this->assertGreaterThanOrEqual(6, count(self::moduleFiles()), 'the module and its lib/');
        foreach ($files as $file) {
            exec(escapeshellarg(PHP_BINARY) . ' -l ' . escapeshellarg($file) . ' 2>&1', $output, $exit);
            $this->assertSame(0, $exit, implode("\n", $output));
        }
    }

    public function testTheModuleUsesNoSyntaxOrFunctionNewerThanPhp72(): void
    {
        foreach (self::moduleFiles() as $file) {
            $this->assertSame(array(), self::newerFeatures(file_get_contents($file)), $file);
        }
    }

    /**
     * The checker itself: each newer feature in a snippet is reported.
     */
    public function newerSnippets(): array
    {
        return array(
            'match' => array('$x = match ($a) { 1 => 2, default => 3 };'),
            'nullsafe method' => array('$x = $a?->b();'),
            'nullsafe property' => array('$x = $a?->b;'),
            'named argument' => array('f(a: 1);'),
            'constructor promotion' => array('class A { public function __construct(private $a) {} }'),
            'readonly property' => array('class A { public readonly int $a; }'),
            'typed property' => array('class A { private int $a = 0; }'),
            'enum' => array('enum E { case A; }'),
            'arrow function' => array('$f = fn($x) => $x;'),
            'union type' => array('function f(int|string $a) {}'),
            'mixed type' => array('function f(mixed $a) {}'),
            'static return type' => array('class A { public function f(): static { return $this; } }'),
            'catch without a variable' => array('try { f(); } catch (Exception) {}'),
            'throw expression' => array('$x = $a ?? throw new Exception();'),
            'attribute' => array('#[Attr] function f() {}'),
            'null coalescing assignment' => array('$a ??= 1;'),
            'array spread' => array('$a = [...$b];'),
            'trailing comma in parameters' => array("function f(\$a,\n) {}"),
            'trailing comma in a call' => array("f(1,\n);"),
            'first-class callable' => array('$f = strlen(...);'),
            'class constant on an object' => array('$c = $a::class;'),
            'new in an initializer' => array('function f($a = new A()) {}'),
            'str_contains' => array('$x = str_contains($a, "b");'),
            'numeric separator' => array('$x = 1_000;'),
        );
    }

    /**
     * @dataProvider newerSnippets
     */
    public function testTheCheckerFindsNewerFeatures(string $snippet): void
    {
        $this->assertNotEmpty(self::newerFeatures("<?php\n" . $snippet . "\n"));
    }

    public function testTheCheckerAcceptsPhp72Code(): void
    {
        $code = "<?php\nclass A { const B = array(1, 2,); private \$c = null;\n"
            . "public function f(?int \$a, array \$b = array()): ?string { \$x = \$a ?? 1; "
            . "\$g = function () use (\$x) { return \$x; }; throw new \\Exception('x'); } }\n";

        $this->assertSame(array(), self::newerFeatures($code));
    }

    /**
     * @param string $code PHP source
     *
     * @return string[] what is newer than PHP 7.2, with line numbers
     */
    private static function newerFeatures($code)
    {
        $lexer = new Emulative(array(
            'phpVersion' => '7.2',
            'usedAttributes' => array('startLine', 'startTokenPos', 'endTokenPos'),
        ));
        $parser = (new ParserFactory())->create(ParserFactory::ONLY_PHP7, $lexer);
        try {
            $ast = $parser->parse($code);
        } catch (\PhpParser\Error $e) {
            return array('does not parse as PHP 7.2: ' . $e->getMessage());
        }
        $visitor = new NewerFeatures($lexer->getTokens(), self::NEWER_FUNCTIONS);
        $traverser = new NodeTraverser();
        $traverser->addVisitor(new ParentConnectingVisitor());
        $traverser->addVisitor($visitor);
        $traverser->traverse($ast);
        return $visitor->found;
    }
}

/**
 * Collects the syntax tree nodes that need PHP 7.3 or later.
 */
final class NewerFeatures extends NodeVisitorAbstract
{
    /** @var string[] */
    public $found = array();

    /** @var array */
    private $tokens;

    /** @var string[] */
    private $functions;

    public function __construct(array $tokens, array $functions)
    {
        $this->tokens = $tokens;
        $this->functions = $functions;
    }

    public function enterNode(Node $node)
    {
        $why = $this->why($node);
        if ($why !== null) {
            $this->found[] = 'line ' . $node->getStartLine() . ': ' . $why;
        }
        return null;
    }

    private function why(Node $node)
    {
        if ($node instanceof Node\Expr\Match_) {
            return 'match (8.0)';
        }
        if ($node instanceof Node\Expr\NullsafeMethodCall || $node instanceof Node\Expr\NullsafePropertyFetch) {
            return 'nullsafe operator (8.0)';
        }
        if ($node instanceof Node\Arg && $node->name !== null) {
            return 'named argument (8.0)';
        }
        if ($node instanceof Node\Param && $node->flags !== 0) {
            return 'constructor promotion (8.0)';
        }
        if ($node instanceof Node\Stmt\Property && $node->type !== null) {
            return 'typed property (7.4)';
        }
        if ($node instanceof Node\Stmt\Property && ($node->flags & Node\Stmt\Class_::MODIFIER_READONLY)) {
            return 'readonly (8.1)';
        }
        if ($node instanceof Node\Stmt\Class_ && ($node->flags & Node\Stmt\Class_::MODIFIER_READONLY)) {
            return 'readonly class (8.2)';
        }
        if ($node instanceof Node\Stmt\Enum_) {
            return 'enum (8.1)';
        }
        if ($node instanceof Node\Expr\ArrowFunction) {
            return 'arrow function (7.4)';
        }
        if ($node instanceof Node\UnionType || $node instanceof Node\IntersectionType) {
            return 'union/intersection type (8.0/8.1)';
        }
        if ($node instanceof Node\Param || $node instanceof Node\FunctionLike) {
            $type = $node instanceof Node\Param ? $node->type : $node->getReturnType();
            if ($type instanceof Node\NullableType) {
                $type = $type->type;
            }
            $name = $type instanceof Node\Identifier || $type instanceof Node\Name ? strtolower($type->toString()) : '';
            if (in_array($name, array('mixed', 'never', 'static', 'false', 'null', 'true'), true)) {
                return 'type ' . $name . ' (8.0+)';
            }
        }
        if ($node instanceof Node\Stmt\Catch_ && $node->var === null) {
            return 'catch without a variable (8.0)';
        }
        if ($node instanceof Node\Expr\Throw_ && !($node->getAttribute('parent') instanceof Node\Stmt\Expression)) {
            return 'throw expression (8.0)';
        }
        if ($node instanceof Node\AttributeGroup) {
            return 'attribute (8.0)';
        }
        if ($node instanceof Node\Expr\AssignOp\Coalesce) {
            return '??= (7.4)';
        }
        if ($node instanceof Node\Expr\ArrayItem && $node->unpack) {
            return 'spread in an array (7.4)';
        }
        if ($node instanceof Node\Expr\ClassConstFetch && $node->class instanceof Node\Expr) {
            return '::class on an object (8.0)';
        }
        if ($node instanceof Node\Param && $node->default instanceof Node\Expr\New_) {
            return 'new in an initializer (8.1)';
        }
        if ($node instanceof Node\Expr\CallLike && $node->isFirstClassCallable()) {
            return 'first-class callable (8.1)';
        }
        if ($node instanceof Node\Expr\FuncCall && $node->name instanceof Node\Name
            && in_array(strtolower($node->name->toString()), $this->functions, true)
        ) {
            return $node->name->toString() . '() (newer than 7.2)';
        }
        if ($node instanceof Node\Scalar\LNumber || $node instanceof Node\Scalar\DNumber) {
            $text = $this->tokenText($node->getAttribute('startTokenPos'));
            if (strpos($text, '_') !== false) {
                return 'numeric literal separator (7.4)';
            }
        }
        if ($node instanceof Node\FunctionLike && count($node->getParams()) > 0) {
            $params = $node->getParams();
            if ($this->nextTokenIsComma(end($params))) {
                return 'trailing comma in a parameter list (8.0)';
            }
        }
        if ($node instanceof Node\Expr\CallLike && !$node->isFirstClassCallable() && count($node->getArgs()) > 0) {
            $args = $node->getArgs();
            if ($this->nextTokenIsComma(end($args))) {
                return 'trailing comma in a call (7.3)';
            }
        }
        return null;
    }

    private function tokenText($pos)
    {
        if ($pos === null || !isset($this->tokens[$pos])) {
            return '';
        }
        $token = $this->tokens[$pos];
        return is_array($token) ? $token[1] : $token;
    }

    private function nextTokenIsComma(Node $node)
    {
        $pos = $node->getAttribute('endTokenPos');
        if ($pos === null) {
            return false;
        }
        for ($i = $pos + 1; isset($this->tokens[$i]); $i++) {
            $token = $this->tokens[$i];
            if (is_array($token) && in_array($token[0], array(T_WHITESPACE, T_COMMENT, T_DOC_COMMENT), true)) {
                continue;
            }
            return $token === ',';
        }
        return false;
    }
}
