"""Fixture sites for the health check tests: WordPress installations with a front page
that really runs (the fixture releases' own ``index.php`` needs a whole WordPress), and
a bundle whose fix adds a function, as security fixes often do.

The front page loads the customer's plugin ``wp-content/plugins/author-tools.php`` when
there is one, then ``wp-includes/comment-template.php`` (a file the fix changes), then
prints a page with a title. A plugin that declares the function the fix adds makes every
request die with "Cannot redeclare" once the fix is in.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from patchd.bundle.manifest import write_bundle
from patchd.engine.render import render_patch
from patchd.release.tree import diff_trees
from tests.e2e import kit

COMMENT_TEMPLATE = "wp-includes/comment-template.php"
PLUGIN = "wp-content/plugins/author-tools.php"
#: The function the fix adds to comment-template.php.
ADDED = (
    b"\n/**\n * Escapes a comment author's name for output (added by the security fix).\n"
    b" */\nfunction wp_escape_comment_author( $author ) {\n"
    b"\treturn htmlspecialchars( (string) $author, ENT_QUOTES );\n}\n"
)
TITLE = "Shop of {name}"

FRONT_PAGE = """<?php
// A customer's front page (test fixture): plugins, then core, then the page.
if ( getenv( 'SHOW_ERRORS' ) || file_exists( __DIR__ . '/.show-errors' ) ) {
    ini_set( 'display_errors', '1' );
}
if ( file_exists( __DIR__ . '/.down' ) ) {
    http_response_code( 500 );
    echo "<html><body>Database connection failed</body></html>";
    return;
}
if ( file_exists( __DIR__ . '/{plugin}' ) ) {
    require_once __DIR__ . '/{plugin}';
}
require_once __DIR__ . '/{core}';
echo "<!DOCTYPE html><html><head><title>{title}</title></head><body>\\n";
for ( $i = 0; $i < 40; $i++ ) {
    echo "<p>Welcome to our shop. We sell fine things, article $i.</p>\\n";
}
echo "</body></html>\\n";
"""

PLUGIN_CODE = b"""<?php
/*
 * Plugin Name: Author tools (a customer's own plugin)
 */
function wp_escape_comment_author( $author ) {
\treturn strip_tags( $author );
}
"""


def post_image(rel: str) -> bytes:
    """The fixed file of this bundle (6.4.3's, plus the added function)."""
    data = kit.post_image(rel)
    return data + ADDED if rel == COMMENT_TEMPLATE else data


def build_bundle(dest: Path, *, bundle_id: str = "wp-2024-author-escape") -> Path:
    """A WordPress bundle for 6.4.0-6.4.2 whose fix also adds ``wp_escape_comment_author``."""
    base = Path(tempfile.mkdtemp(prefix="patchd-health-bundle-"))
    for rel in kit.WP_FILES:
        for side, data in (("old", kit.release_file("6.4.2", rel)), ("new", post_image(rel))):
            path = base / side / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    changes = diff_trees(base / "old", base / "new")
    diff = render_patch([fc.to_file_patch() for fc in changes.files])
    fields = {
        "id": bundle_id,
        "title": "Comment author XSS, with a new escaping function (fixture)",
        "advisories": ["CVE-2099-0002"],
        "cms": "wordpress",
        "affected": kit.AFFECTED,
        "fixed_in": "6.4.3",
        "min_php": "7.4",
        "summary": {"de": "Schließt eine XSS-Lücke.", "en": "Closes an XSS hole."},
        "variants": [{"versions": kit.AFFECTED, "file": "patch.diff"}],
    }
    write_bundle(dest, fields, {"patch.diff": diff})
    return dest


def install_site(
    root: Path, name: str, *, plugin: bool = False, down: bool = False, show_errors: bool = False
) -> Path:
    """WordPress 6.4.2 in ``root/html`` with a running front page; return that folder.

    ``plugin``: the customer's plugin declaring the function the fix adds; ``down``: the
    site answers 500 already; ``show_errors``: PHP errors are shown in the page
    (``display_errors``), else they give a bare 500.
    """
    inst = kit.install_wordpress(root, "6.4.2")
    page = FRONT_PAGE.replace("{plugin}", PLUGIN).replace("{core}", COMMENT_TEMPLATE)
    (inst / "index.php").write_text(page.replace("{title}", TITLE.format(name=name)))
    if plugin:
        (inst / PLUGIN).write_bytes(PLUGIN_CODE)
    if down:
        (inst / ".down").write_text("")
    if show_errors:
        (inst / ".show-errors").write_text("")
    return inst
