<?php
// patchd: the PHP symbols a file defines and references, read with PHP's own tokenizer.
//
// Input (stdin): a JSON object {"files": {KEY: base64 of a PHP file's bytes, ...},
//                               "refs": [KEY, ...]} (the files whose references are wanted;
//                               the others get their definitions only).
// Output (stdout): a JSON object {KEY: {"defs": [[kind, name, line, parent], ...],
//                                       "refs": [[kind, name, line, alt], ...],
//                                       "error": null | text}}.
// Kinds: function, class, method, classconst, property, const. Names are resolved against
// the namespace and the use imports: "A\B" (class, function, const), "A\B::m" (method),
// "A\B::C" (class constant), "A\B::$p" (property). A method or property whose class is
// unknown ($obj->m()) has the class "*". alt is the global fallback of an unqualified
// function or constant name in a namespace (PHP tries N\f first, then f), else null;
// a class definition's parent is the class it extends (null: none).
//
// The file is only tokenized: nothing in it is executed or included.
// Written for PHP 7.1 and newer (no typed properties, arrow functions or ??=).

function patchd_tokens(string $code): array
{
    // The significant tokens as [kind, text, line]: kind is the token name (T_STRING ...)
    // or the character itself; whitespace, comments, open tags and inline HTML are left out.
    static $names = [];
    static $skip = PATCHD_SKIP;
    $out = [];
    // PATCHD_PHP_SYMBOLS_LEGACY=1 takes the PHP 7 path on PHP 8 too (for the tests).
    if (class_exists('PhpToken') && getenv('PATCHD_PHP_SYMBOLS_LEGACY') !== '1') {
        foreach (PhpToken::tokenize($code) as $t) {
            $id = $t->id;
            if ($id < 256) {
                $out[] = [$t->text, $t->text, $t->line];
                continue;
            }
            if (!isset($names[$id])) {
                $names[$id] = token_name($id);
            }
            $name = $names[$id];
            if (!isset($skip[$name])) {
                $out[] = [$name, $t->text, $t->line];
            }
        }
        return $out;
    }
    // PHP 7: names come as T_STRING / T_NS_SEPARATOR runs; merge them like PHP 8 does.
    $line = 1;
    foreach (token_get_all($code) as $t) {
        if (is_string($t)) {
            $out[] = [$t, $t, $line];
            $line += substr_count($t, "\n");
            continue;
        }
        $out[] = [token_name($t[0]), $t[1], $t[2]];
        $line = $t[2] + substr_count($t[1], "\n");
    }
    $merged = [];
    $n = count($out);
    // a separator belongs to a name only when a T_STRING follows it ("Foo\{" of a group
    // use keeps its separator, as PHP 8 does)
    $sepThenString = static function (int $k) use ($out, $n): bool {
        return $k + 1 < $n && $out[$k][0] === 'T_NS_SEPARATOR' && $out[$k + 1][0] === 'T_STRING';
    };
    for ($i = 0; $i < $n; $i++) {
        $t = $out[$i];
        $starts = $t[0] === 'T_STRING' || $sepThenString($i)
            || ($t[0] === 'T_NAMESPACE' && $sepThenString($i + 1));
        if (!$starts) {
            $merged[] = $t;
            continue;
        }
        $text = $t[1];
        $j = $i + 1;
        while ($j < $n && ($out[$j][0] === 'T_STRING' || $sepThenString($j))) {
            $text .= $out[$j][1];
            $j++;
        }
        $kind = 'T_STRING';
        if (strncasecmp($text, 'namespace\\', 10) === 0) {
            $kind = 'T_NAME_RELATIVE';
        } elseif ($text[0] === '\\') {
            $kind = 'T_NAME_FULLY_QUALIFIED';
        } elseif (strpos($text, '\\') !== false) {
            $kind = 'T_NAME_QUALIFIED';
        }
        $merged[] = [$kind, $text, $t[2]];
        $i = $j - 1;
    }
    $significant = [];
    foreach ($merged as $t) {
        if (!isset($skip[$t[0]])) {
            $significant[] = $t;
        }
    }
    return $significant;
}

const PATCHD_SKIP = ['T_WHITESPACE' => 1, 'T_COMMENT' => 1, 'T_DOC_COMMENT' => 1,
    'T_OPEN_TAG' => 1, 'T_INLINE_HTML' => 1];
const PATCHD_NAMES = ['T_STRING' => 1, 'T_NAME_QUALIFIED' => 1,
    'T_NAME_FULLY_QUALIFIED' => 1, 'T_NAME_RELATIVE' => 1];
const PATCHD_BUILTIN_TYPES = ['int' => 1, 'integer' => 1, 'float' => 1, 'double' => 1,
    'string' => 1, 'bool' => 1, 'boolean' => 1, 'array' => 1, 'callable' => 1,
    'iterable' => 1, 'object' => 1, 'mixed' => 1, 'void' => 1, 'never' => 1, 'null' => 1,
    'false' => 1, 'true' => 1, 'self' => 1, 'static' => 1, 'parent' => 1];
const PATCHD_NOT_CONSTANTS = ['true' => 1, 'false' => 1, 'null' => 1, 'self' => 1,
    'static' => 1, 'parent' => 1];
const PATCHD_MODIFIERS = ['T_PUBLIC' => 1, 'T_PROTECTED' => 1, 'T_PRIVATE' => 1,
    'T_READONLY' => 1];
// Tokens after which a name is not a constant reference (it is declared or a member).
const PATCHD_NO_CONST_AFTER = ['T_OBJECT_OPERATOR' => 1, 'T_NULLSAFE_OBJECT_OPERATOR' => 1,
    'T_DOUBLE_COLON' => 1, 'T_FUNCTION' => 1, 'T_FN' => 1, 'T_CONST' => 1, 'T_CLASS' => 1,
    'T_INTERFACE' => 1, 'T_TRAIT' => 1, 'T_ENUM' => 1, 'T_EXTENDS' => 1, 'T_IMPLEMENTS' => 1,
    'T_INSTANCEOF' => 1, 'T_USE' => 1, 'T_NAMESPACE' => 1, 'T_GOTO' => 1, 'T_INSTEADOF' => 1,
    'T_AS' => 1, 'T_NEW' => 1, 'T_CASE' => 1, '?' => 1, '|' => 1, '&' => 1, 'T_ATTRIBUTE' => 1];

final class PatchdSymbols
{
    // NOTE: static copies of the constants, so that isset() reads plain arrays.
    private static $NAMES = PATCHD_NAMES;
    private static $BUILTIN_TYPES = PATCHD_BUILTIN_TYPES;
    private static $MODIFIERS = PATCHD_MODIFIERS;
    private static $NO_CONST_AFTER = PATCHD_NO_CONST_AFTER;
    private static $NOT_CONSTANTS = PATCHD_NOT_CONSTANTS;
    private $t;
    private $n;
    private $ns = '';
    private $useClass = [];
    private $useFunction = [];
    private $useConst = [];
    /** @var list<array{name: ?string, parent: ?string, depth: int}> */
    private $classes = [];
    private $pendingClass = null;
    private $depth = 0;
    private $parens = 0;
    public $defs = [];
    public $refs = [];

    private $wantRefs;

    public function __construct(string $code, bool $wantRefs = true)
    {
        $this->wantRefs = $wantRefs;
        $this->t = patchd_tokens($code);
        $this->n = count($this->t);
    }

    private function kind(int $i): string
    {
        return $i >= 0 && $i < $this->n ? $this->t[$i][0] : '';
    }

    private function text(int $i): string
    {
        return $i >= 0 && $i < $this->n ? $this->t[$i][1] : '';
    }

    private function isName(int $i): bool
    {
        return isset(self::$NAMES[$this->kind($i)]);
    }

    private function klass(): ?array
    {
        $c = end($this->classes);
        return $c === false ? null : $c;
    }

    private function inClassBody(): bool
    {
        $c = $this->klass();
        return $c !== null && $c['depth'] === $this->depth;
    }

    private function qualify(string $name): string
    {
        return $this->ns === '' ? $name : $this->ns . '\\' . $name;
    }

    public function resolveClass(string $name): ?string
    {
        $lower = strtolower($name);
        if ($lower === 'self' || $lower === 'static') {
            $c = $this->klass();
            return $c === null ? null : $c['name'];
        }
        if ($lower === 'parent') {
            $c = $this->klass();
            return $c === null ? null : $c['parent'];
        }
        if ($name[0] === '\\') {
            return substr($name, 1);
        }
        if (strncasecmp($name, 'namespace\\', 10) === 0) {
            return $this->qualify(substr($name, 10));
        }
        $parts = explode('\\', $name, 2);
        $alias = strtolower($parts[0]);
        if (isset($this->useClass[$alias])) {
            return $this->useClass[$alias] . (isset($parts[1]) ? '\\' . $parts[1] : '');
        }
        return $this->qualify($name);
    }

    /** [resolved, global fallback or null] of a function (or constant) name. */
    private function resolveOther(string $name, array $uses, bool $caseSensitive): array
    {
        if ($name[0] === '\\') {
            return [substr($name, 1), null];
        }
        if (strncasecmp($name, 'namespace\\', 10) === 0) {
            return [$this->qualify(substr($name, 10)), null];
        }
        if (strpos($name, '\\') !== false) {
            $parts = explode('\\', $name, 2);
            $alias = strtolower($parts[0]);
            if (isset($this->useClass[$alias])) {
                return [$this->useClass[$alias] . '\\' . $parts[1], null];
            }
            return [$this->qualify($name), null];
        }
        $key = $caseSensitive ? $name : strtolower($name);
        if (isset($uses[$key])) {
            return [$uses[$key], null];
        }
        return $this->ns === '' ? [$name, null] : [$this->qualify($name), $name];
    }

    private function def(string $kind, string $name, int $i): void
    {
        $this->defs[] = [$kind, $name, $this->t[$i][2], null];
    }

    private function ref(string $kind, ?string $name, int $i, ?string $alt = null): void
    {
        if ($this->wantRefs && $name !== null && $name !== '') {
            $this->refs[] = [$kind, $name, $this->t[$i][2], $alt];
        }
    }

    private function classRef(int $i): void
    {
        $name = $this->text($i);
        if (isset(self::$BUILTIN_TYPES[strtolower($name)])) {
            return;
        }
        $this->ref('class', $this->resolveClass($name), $i);
    }

    public function run(): void
    {
        for ($i = 0; $i < $this->n; $i++) {
            $k = $this->t[$i][0];
            switch ($k) {
                case 'T_NAMESPACE':
                    if ($this->isName($i + 1) && !in_array($this->kind($i + 1), ['T_NAME_RELATIVE'], true)
                        && $this->kind($i - 1) !== 'T_DOUBLE_COLON') {
                        $this->ns = ltrim($this->text($i + 1), '\\');
                        $this->useClass = $this->useFunction = $this->useConst = [];
                        $i++;
                    } elseif ($this->kind($i + 1) === '{') {
                        $this->ns = '';
                        $this->useClass = $this->useFunction = $this->useConst = [];
                    }
                    break;
                case 'T_USE':
                    $i = $this->useStatement($i);
                    break;
                case 'T_CLASS':
                case 'T_INTERFACE':
                case 'T_TRAIT':
                case 'T_ENUM':
                    $i = $this->classDeclaration($i);
                    break;
                case 'T_FUNCTION':
                    $i = $this->functionDeclaration($i);
                    break;
                case 'T_CONST':
                    $i = $this->constDeclaration($i);
                    break;
                case 'T_CASE':
                    if ($this->inClassBody() && $this->isName($i + 1)) {
                        $c = $this->klass();
                        if ($c['name'] !== null) {
                            $this->def('classconst', $c['name'] . '::' . $this->text($i + 1), $i + 1);
                        }
                        $i++;
                    }
                    break;
                case 'T_VARIABLE':
                    if ($this->inClassBody() && $this->parens === 0) {
                        $c = $this->klass();
                        if ($c['name'] !== null) {
                            $this->def('property', $c['name'] . '::' . $this->text($i), $i);
                        }
                    }
                    break;
                case 'T_NEW':
                    if ($this->isName($i + 1)) {
                        $this->classRef($i + 1);
                        $i++;
                    }
                    break;
                case 'T_EXTENDS':
                case 'T_IMPLEMENTS':
                case 'T_INSTANCEOF':
                    // extends/implements of a declaration are handled there; this is
                    // instanceof (and interface extends lists).
                    for ($j = $i + 1; $this->isName($j) || $this->kind($j) === ','; $j++) {
                        if ($this->isName($j)) {
                            $this->classRef($j);
                        }
                        if ($k === 'T_INSTANCEOF') {
                            break;
                        }
                    }
                    break;
                case 'T_CATCH':
                    for ($j = $i + 2; $this->isName($j) || $this->kind($j) === '|'; $j++) {
                        if ($this->isName($j)) {
                            $this->classRef($j);
                        }
                    }
                    if ($this->kind($i + 1) === '(') {
                        $this->parens++;
                    }
                    $i = $j - 1;
                    break;
                case 'T_OBJECT_OPERATOR':
                case 'T_NULLSAFE_OBJECT_OPERATOR':
                    $this->memberAccess($i);
                    break;
                case 'T_DOUBLE_COLON':
                    $this->staticAccess($i);
                    break;
                case 'T_ATTRIBUTE':
                    $this->parens++; // "#[" ... "]"
                    if ($this->isName($i + 1)) {
                        $this->classRef($i + 1);
                        $i++;
                    }
                    break;
                case '{':
                case 'T_CURLY_OPEN':
                case 'T_DOLLAR_OPEN_CURLY_BRACES':
                    $this->depth++;
                    if ($k === '{' && $this->pendingClass !== null) {
                        $this->pendingClass['depth'] = $this->depth;
                        $this->classes[] = $this->pendingClass;
                        $this->pendingClass = null;
                    }
                    break;
                case '}':
                    $c = $this->klass();
                    if ($c !== null && $c['depth'] === $this->depth) {
                        array_pop($this->classes);
                    }
                    $this->depth--;
                    break;
                case '(':
                case '[':
                    $this->parens++;
                    break;
                case ')':
                case ']':
                    $this->parens--;
                    break;
                default:
                    if (isset(self::$NAMES[$k])) {
                        $this->name($i);
                    }
            }
        }
    }

    private function useStatement(int $i): int
    {
        if ($this->kind($i + 1) === '(') {
            return $i; // closure use ($x)
        }
        if ($this->klass() !== null && $this->inClassBody()) {
            // trait use: use A, B; or use A, B { ... }
            $j = $i + 1;
            for (; $this->isName($j) || $this->kind($j) === ','; $j++) {
                if ($this->isName($j)) {
                    $this->classRef($j);
                }
            }
            return $j - 1;
        }
        $j = $i + 1;
        $type = 'class';
        if ($this->kind($j) === 'T_FUNCTION' || $this->kind($j) === 'T_CONST') {
            $type = $this->kind($j) === 'T_FUNCTION' ? 'function' : 'const';
            $j++;
        }
        $prefix = '';
        $group = false;
        while ($j < $this->n && $this->kind($j) !== ';') {
            $itemType = $type;
            if ($group && ($this->kind($j) === 'T_FUNCTION' || $this->kind($j) === 'T_CONST')) {
                $itemType = $this->kind($j) === 'T_FUNCTION' ? 'function' : 'const';
                $j++;
            }
            if (!$this->isName($j)) {
                $j++;
                continue;
            }
            $name = ltrim($this->text($j), '\\');
            $at = $j;
            if ($this->kind($j + 1) === 'T_NS_SEPARATOR' && $this->kind($j + 2) === '{') {
                $prefix = $name . '\\';
                $group = true;
                $j += 3;
                continue;
            }
            $full = $prefix . $name;
            $parts = explode('\\', $full);
            $alias = end($parts);
            $j++;
            if ($this->kind($j) === 'T_AS' && $this->isName($j + 1)) {
                $alias = $this->text($j + 1);
                $j += 2;
            }
            if ($itemType === 'class') {
                $this->useClass[strtolower($alias)] = $full;
            } elseif ($itemType === 'function') {
                $this->useFunction[strtolower($alias)] = $full;
            } else {
                $this->useConst[$alias] = $full;
            }
            $this->ref($itemType, $full, $at);
            if ($this->kind($j) === '}') {
                $group = false;
                $prefix = '';
                $j++;
            }
        }
        return $j;
    }

    private function classDeclaration(int $i): int
    {
        $prev = $this->kind($i - 1);
        if ($prev === 'T_DOUBLE_COLON') {
            return $i; // X::class
        }
        $name = null;
        $j = $i + 1;
        $anonymous = $this->kind($j) !== 'T_STRING';
        if (!$anonymous) {
            $name = $this->qualify($this->text($j));
            $this->def('class', $name, $j);
            $defIndex = count($this->defs) - 1;
            $j++;
        } elseif ($this->t[$i][0] !== 'T_CLASS') {
            return $i;
        }
        $parent = null;
        // skip an anonymous class's constructor arguments
        if ($anonymous && $this->kind($j) === '(') {
            $open = 0;
            for (; $j < $this->n; $j++) {
                if ($this->kind($j) === '(') {
                    $open++;
                } elseif ($this->kind($j) === ')' && --$open === 0) {
                    $j++;
                    break;
                }
            }
        }
        for (; $j < $this->n && $this->kind($j) !== '{'; $j++) {
            $k = $this->kind($j);
            if ($this->isName($j)) {
                $this->classRef($j);
                if ($this->kind($j - 1) === 'T_EXTENDS' && $parent === null && $this->t[$i][0] === 'T_CLASS') {
                    $parent = $this->resolveClass($this->text($j));
                }
            } elseif ($k === ';') {
                return $j;
            }
        }
        if ($parent !== null && isset($defIndex)) {
            $this->defs[$defIndex][3] = $parent; // a class def's alt: the class it extends
        }
        $this->pendingClass = ['name' => $name, 'parent' => $parent, 'depth' => -1];
        return $j - 1;
    }

    private function functionDeclaration(int $i): int
    {
        $j = $i + 1;
        if ($this->kind($j) === '&' || $this->kind($j) === 'T_AMPERSAND_NOT_FOLLOWED_BY_VAR_OR_VARARG') {
            $j++;
        }
        $isMethod = $this->inClassBody();
        $name = null;
        if ($this->kind($j) !== '(') {
            // a method may be named like a keyword (list, print): any token but "("
            $name = $this->text($j);
            $c = $this->klass();
            if ($isMethod) {
                if ($c['name'] !== null) {
                    $this->def('method', $c['name'] . '::' . $name, $j);
                }
            } else {
                $this->def('function', $this->qualify($name), $j);
            }
            $j++;
        }
        if ($this->kind($j) !== '(') {
            return $j - 1;
        }
        // parameters: type hints, promoted constructor properties
        $open = 0;
        $promoted = false;
        $c = $this->klass();
        for (; $j < $this->n; $j++) {
            $k = $this->kind($j);
            if ($k === '(' || $k === '[') {
                $open++;
                continue;
            }
            if ($k === ')' || $k === ']') {
                if (--$open === 0) {
                    break;
                }
                continue;
            }
            if ($open === 1 && $k === ',') {
                $promoted = false;
            } elseif (isset(self::$MODIFIERS[$k])) {
                $promoted = true;
            } elseif ($k === 'T_VARIABLE') {
                if ($promoted && $isMethod && $c['name'] !== null && $name !== null
                    && strtolower($name) === '__construct') {
                    $this->def('property', $c['name'] . '::' . $this->text($j), $j);
                }
            } elseif ($this->isName($j)) {
                if ($open === 1 && $this->isTypeContext($j)) {
                    $this->classRef($j);
                } else {
                    $this->name($j);
                }
            } elseif ($k === 'T_NEW' && $this->isName($j + 1)) {
                $this->classRef($j + 1);
                $j++;
            } elseif ($k === 'T_DOUBLE_COLON') {
                $this->staticAccess($j);
            }
        }
        // return type
        $j++;
        if ($this->kind($j) === ':') {
            for ($j++; $j < $this->n; $j++) {
                $k = $this->kind($j);
                if ($this->isName($j)) {
                    $this->classRef($j);
                } elseif (!in_array($k, ['?', '|', '&', '(', ')', 'T_STATIC', 'T_ARRAY', 'T_CALLABLE',
                    'T_AMPERSAND_NOT_FOLLOWED_BY_VAR_OR_VARARG'], true)) {
                    break;
                }
            }
        }
        return $j - 1;
    }

    private function isTypeContext(int $j): bool
    {
        // a name inside a parameter list followed by a variable, "...", "&", "|" or
        // preceded by "?", "|", "(" or "," (when followed by one of those) is a type
        $next = $this->kind($j + 1);
        return in_array($next, ['T_VARIABLE', 'T_ELLIPSIS', '|', '&',
            'T_AMPERSAND_NOT_FOLLOWED_BY_VAR_OR_VARARG', 'T_AMPERSAND_FOLLOWED_BY_VAR_OR_VARARG'], true);
    }

    private function constDeclaration(int $i): int
    {
        $c = $this->klass();
        $inClass = $this->inClassBody();
        $open = 0;
        $value = false;
        for ($j = $i + 1; $j < $this->n && $this->kind($j) !== ';'; $j++) {
            $k = $this->kind($j);
            if ($k === '(' || $k === '[') {
                $open++;
            } elseif ($k === ')' || $k === ']') {
                $open--;
            } elseif ($open === 0 && ($k === '=' || $k === ',')) {
                $value = $k === '=';
            } elseif (!$value && $this->kind($j + 1) === '=') {
                $name = $this->text($j);
                if ($inClass) {
                    if ($c['name'] !== null) {
                        $this->def('classconst', $c['name'] . '::' . $name, $j);
                    }
                } else {
                    $this->def('const', $this->qualify($name), $j);
                }
            } elseif ($value) {
                if ($this->isName($j)) {
                    $this->name($j);
                } elseif ($k === 'T_DOUBLE_COLON') {
                    $this->staticAccess($j);
                }
            }
        }
        return $j;
    }

    private function memberAccess(int $i): void
    {
        $m = $i + 1;
        if ($this->kind($m) !== 'T_STRING') {
            return; // $obj->$name, $obj->{...}
        }
        $class = '*';
        if ($this->kind($i - 1) === 'T_VARIABLE' && $this->text($i - 1) === '$this'
            && !in_array($this->kind($i - 2), ['T_OBJECT_OPERATOR', 'T_NULLSAFE_OBJECT_OPERATOR',
                'T_DOUBLE_COLON', '$'], true)) {
            $c = $this->klass();
            $class = $c !== null && $c['name'] !== null ? $c['name'] : null;
        }
        if ($class === null) {
            return;
        }
        if ($this->kind($m + 1) === '(') {
            $this->ref('method', $class . '::' . $this->text($m), $m);
        } else {
            $this->ref('property', $class . '::$' . $this->text($m), $m);
        }
    }

    private function staticAccess(int $i): void
    {
        $recv = $i - 1;
        $class = '*';
        if ($this->isName($recv) || $this->kind($recv) === 'T_STATIC') {
            $class = $this->resolveClass($this->text($recv));
            if ($class === null) {
                return;
            }
        }
        $m = $i + 1;
        $k = $this->kind($m);
        if ($k === 'T_CLASS') {
            return;
        }
        if ($k === 'T_VARIABLE') {
            $this->ref('property', $class . '::' . $this->text($m), $m);
        } elseif ($k === 'T_STRING' || (preg_match('/^[A-Za-z_\x80-\xff]/', $this->text($m)) && $k !== 'T_VARIABLE')) {
            if ($this->kind($m + 1) === '(') {
                $this->ref('method', $class . '::' . $this->text($m), $m);
            } else {
                $this->ref('classconst', $class . '::' . $this->text($m), $m);
            }
        }
    }

    private function name(int $i): void
    {
        $prev = $this->kind($i - 1);
        $next = $this->kind($i + 1);
        $text = $this->text($i);
        if ($prev === 'T_OBJECT_OPERATOR' || $prev === 'T_NULLSAFE_OBJECT_OPERATOR'
            || $prev === 'T_DOUBLE_COLON' || $prev === 'T_FUNCTION' || $prev === 'T_NEW'
            || $prev === 'T_CONST') {
            return;
        }
        if ($next === 'T_DOUBLE_COLON') {
            $this->classRef($i);
            return;
        }
        if ($next === '(') {
            if (strtolower($text) === 'define' && $this->kind($i + 2) === 'T_CONSTANT_ENCAPSED_STRING'
                && in_array($this->kind($i + 3), [',', ')'], true)) {
                $this->def('const', ltrim(stripcslashes(substr($this->text($i + 2), 1, -1)), '\\'), $i + 2);
                return;
            }
            [$name, $alt] = $this->resolveOther($text, $this->useFunction, false);
            $this->ref('function', $name, $i, $alt);
            return;
        }
        if ($next === 'T_VARIABLE' || $next === 'T_ELLIPSIS') {
            $this->classRef($i); // a type (typed property, catch, closure parameter)
            return;
        }
        if (isset(self::$NO_CONST_AFTER[$prev]) || isset(self::$NOT_CONSTANTS[strtolower($text)])) {
            return;
        }
        if ($next === ':' && in_array($prev, ['(', ',', ';', '{', '}', ''], true)) {
            return; // named argument or goto label
        }
        [$name, $alt] = $this->resolveOther($text, $this->useConst, true);
        $this->ref('const', $name, $i, $alt);
    }
}

if (!function_exists('token_get_all')) {
    fwrite(STDERR, "patchd php_symbols: PHP's tokenizer extension is not loaded\n");
    exit(3);
}
$input = json_decode(stream_get_contents(STDIN), true);
if (!is_array($input) || !is_array($input['files'] ?? null) || !is_array($input['refs'] ?? null)) {
    fwrite(STDERR, "patchd php_symbols: input is not {\"files\": {...}, \"refs\": [...]}\n");
    exit(2);
}
$wanted = array_flip($input['refs']);
$result = [];
foreach ($input['files'] as $key => $b64) {
    $code = base64_decode($b64, true);
    try {
        $s = new PatchdSymbols($code === false ? '' : $code, isset($wanted[$key]));
        $s->run();
        $result[$key] = ['defs' => $s->defs, 'refs' => $s->refs, 'error' => null];
    } catch (Throwable $e) {
        $result[$key] = ['defs' => [], 'refs' => [], 'error' => get_class($e) . ': ' . $e->getMessage()];
    }
}
// NOTE: JSON_INVALID_UTF8_SUBSTITUTE is PHP 7.2+; names in non-UTF-8 files stay readable.
$flags = JSON_UNESCAPED_SLASHES | (defined('JSON_INVALID_UTF8_SUBSTITUTE') ? JSON_INVALID_UTF8_SUBSTITUTE : 0);
echo json_encode((object) $result, $flags);
