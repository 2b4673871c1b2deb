<?php
// Reads JSON lines [constraint, version] from stdin; prints one line per pair:
// 1 / 0 (Semver::satisfies), C (constraint rejected), V (version rejected).
require '/usr/share/php/Composer/Semver/autoload.php';
use Composer\Semver\VersionParser;
$parser = new VersionParser();
while (($line = fgets(STDIN)) !== false) {
    [$constraint, $version] = json_decode($line, true);
    try {
        $c = $parser->parseConstraints($constraint);
    } catch (\Throwable $e) {
        echo "C\n";
        continue;
    }
    try {
        $v = $parser->normalize($version);
    } catch (\Throwable $e) {
        echo "V\n";
        continue;
    }
    $p = new Composer\Semver\Constraint\Constraint('==', $v);
    echo ($c->matches($p) ? "1" : "0"), "\n";
}
