"""patchd.engine: unified diffs as data (model), parsed, applied in memory and rendered.

Public API: :func:`patchd.engine.parse.parse_diff`, :func:`patchd.engine.apply.apply_file`,
:func:`patchd.engine.apply.apply_patch`, :func:`patchd.engine.render.render_patch`,
:func:`patchd.engine.paths.safe_relpath`.

NOTE: this package file stays stdlib-only: the host-side agent imports
``patchd.engine.model`` and ``patchd.engine.apply``, which runs this file first. So it
re-exports the stdlib-only parts only; import ``parse_diff`` (needs unidiff) from
``patchd.engine.parse``.
"""

from patchd.engine.apply import FileOutcome, HunkOutcome, HunkStatus, apply_file, apply_patch
from patchd.engine.model import FilePatch, Hunk, HunkLine
from patchd.engine.paths import safe_relpath
from patchd.engine.render import render_patch

__all__ = [
    "FileOutcome",
    "FilePatch",
    "Hunk",
    "HunkLine",
    "HunkOutcome",
    "HunkStatus",
    "apply_file",
    "apply_patch",
    "render_patch",
    "safe_relpath",
]
