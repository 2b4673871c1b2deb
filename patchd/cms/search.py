"""The bounded, symlink-free walk that finds installations in one account.

Breadth-first from the docroots (or the account root), one ``scandir`` per folder. A
detector is called only when the first component of one of its markers is in the
folder's listing, so most folders cost nothing beyond their listing. Data folders are
skipped; an installation's own folders are not searched again once it is found, other
subfolders are (nested installations).

Symlinks are never walked through. A link to a folder *inside the account* (a docroot
``html -> sites/main``, ``html/blog -> ../blog``) is resolved without following it
(:meth:`SafeRoot.resolve_symlink_inside`) and its target is searched under its real
path, once: an installation reached through links is reported once, at its real path
(which is also where a rollout writes). Links leaving the account are never searched.
The TYPO3 detector still sees a site's ``typo3_src`` link in the listing; an
installation's own folders (``typo3_src``, ``typo3``) are not followed either.

NOTE: stdlib-only; the host-side agent runs it on the host.
"""

from __future__ import annotations

import os
import posixpath
from collections import deque
from collections.abc import Iterator, Sequence

from patchd.cms import DETECTORS
from patchd.cms.interface import Detector, Installation, ScanProblem
from patchd.errors import UnsafePathError
from patchd.safefs import SafeRoot, join_rel, listdir_fd, split_relpath

#: Most folder descriptors the walk keeps open at once.
_FD_BUDGET = 256

#: Folder names (or ``a/b`` tails) never searched: data, caches, VCS, dependencies.
#: NOTE (issue 19): ``backup``/``backups`` are searched. A copy or backup of an
#: installation inside the account (``html/old``, ``html_backup_2023``, ``backups/2023``)
#: is usually just as vulnerable and forgotten by its customer: it is an installation
#: like any other (scanned, patched, listed and mailed with its own path).
DEFAULT_SKIP: frozenset[str] = frozenset(
    {
        ".cache",
        ".git",
        ".hg",
        ".svn",
        ".trash",
        ".Trash",
        ".well-known",
        "__pycache__",
        "bower_components",
        "cache",
        "caches",
        "fileadmin",
        "log",
        "logs",
        "node_modules",
        "sessions",
        "temp",
        "tmp",
        "typo3temp",
        "uploads",
        "var",
        "vendor",
        "wp-content/uploads",
    }
)


def find_installations(
    root: SafeRoot,
    *,
    docroots: Sequence[str] | None = None,
    max_depth: int = 4,
    skip_dirs: frozenset[str] = DEFAULT_SKIP,
    detectors: Sequence[Detector] = DETECTORS,
) -> Iterator[Installation | ScanProblem]:
    """Yield every installation below ``docroots`` (default: the root), and problems.

    ``max_depth`` counts folders below each start folder (the start itself is depth 0).
    Unreadable or unsafe folders yield a :class:`ScanProblem` instead of raising.
    """
    plain_skip = frozenset(s for s in skip_dirs if "/" not in s)
    tail_skip = tuple("/" + s.strip("/") for s in skip_dirs if "/" in s)
    firsts = [(d, _first_names(d)) for d in detectors]
    reported: set[str] = set()
    visited: set[str] = set()
    #: The installations found, by folder: their own folders are not searched, not even
    #: through links.
    owners: dict[str, Detector] = {}
    queue: deque[tuple[str, int, int | None]] = deque()

    for docroot in docroots if docroots else [""]:
        try:
            start = "/".join(split_relpath(docroot))
        except UnsafePathError as exc:
            yield ScanProblem(docroot, f"docroot refused: {exc.message}")
            continue
        yield from _probe_project_roots(root, detectors, start, reported)
        queue.append((start, 0, None))

    # NOTE: folders queued with their descriptor (opened from the parent's) are listed
    # without walking from the root again; past the budget they are walked by path.
    open_fds = 0
    try:
        while queue:
            path, depth, fd = queue.popleft()
            if fd is not None:
                open_fds -= 1
            try:
                if path in visited:
                    continue
                visited.add(path)
                try:
                    listing = listdir_fd(fd) if fd is not None else root.listdir(path)
                except UnsafePathError as exc:
                    real = _real_folder(root, path) if depth == 0 and path else None
                    if real is not None and real != path:
                        # NOTE: a docroot that is a link inside the account (html ->
                        # sites/main) is searched at its target; resolved only here, as
                        # almost every docroot is a plain folder.
                        yield from _probe_project_roots(root, detectors, real, reported)
                        queue.appendleft((real, 0, None))
                        continue
                    yield ScanProblem(path, f"folder not searched: {exc.message}")
                    continue
                except OSError as exc:
                    yield ScanProblem(path, f"folder not searched: {exc.strerror or exc}")
                    continue
                names = {entry.name for entry in listing}
                owner: Detector | None = None
                gaps: list[tuple[str, str]] = []
                for detector, first in firsts:
                    if names.isdisjoint(first):
                        continue
                    try:
                        inst = detector.detect(root, path)
                    except (OSError, UnsafePathError) as exc:
                        yield ScanProblem(path, f"{detector.name}: {exc}")
                        continue
                    if inst is None:
                        marker = _unrecognised(root, detector, path) if owner is None else None
                        if marker is not None:
                            gaps.append((detector.name, marker))
                        continue
                    if owner is not None:
                        yield _second_cms(path, inst, owner)
                        continue
                    owner = detector
                    owners[path] = detector
                    if path not in reported:
                        reported.add(path)
                        yield inst
                if owner is None:
                    for name, marker in gaps:
                        yield ScanProblem(
                            path,
                            f"unrecognised: {name} marker {marker} is here, but no "
                            "installation was recognised (a scan gap until shown otherwise: "
                            "check this folder by hand)",
                        )
                if depth >= max_depth:
                    continue
                for entry in listing:
                    if entry.kind not in ("dir", "symlink") or entry.name in plain_skip:
                        continue
                    if owner is not None and entry.name in owner.owned_dirs:
                        continue
                    child = join_rel(path, entry.name)
                    if entry.kind == "symlink":
                        target = _real_folder(root, child)
                        if target is not None and _searchable(
                            target, plain_skip, tail_skip, owners, visited
                        ):
                            queue.append((target, depth + 1, None))
                        continue
                    if tail_skip and ("/" + child).endswith(tail_skip):
                        continue
                    child_fd = None
                    if fd is not None and open_fds < _FD_BUDGET:
                        try:
                            child_fd = root.open_child_dir(fd, entry.name)
                            open_fds += 1
                        except (OSError, UnsafePathError):
                            child_fd = None  # listed by path later, which reports why
                    queue.append((child, depth + 1, child_fd))
            finally:
                if fd is not None:
                    os.close(fd)
    finally:
        for _path, _depth, fd in queue:
            if fd is not None:
                os.close(fd)


def _second_cms(path: str, inst: Installation, owner: Detector) -> ScanProblem:
    """A second CMS in a folder already reported as ``owner``'s installation.

    NOTE (issue 19): one folder is one installation (results, backups and the ledger are
    keyed by account and folder), so the second CMS cannot be reported as well; it is
    an ``unrecognised`` error instead, so that it is never passed over silently.
    """
    return ScanProblem(
        path,
        f"unrecognised: {inst.cms} marker {inst.marker} is here, but the folder is "
        f"already reported as the {owner.name} installation (two CMSs in one folder: "
        f"the {inst.cms} one is neither listed nor patched; check this folder by hand)",
    )


def _first_names(detector: Detector) -> frozenset[str]:
    """The names that make the search ask ``detector`` about a folder: the first
    component of each of its markers and of the completeness guard's (a guard-only
    marker must reach :meth:`Detector.unrecognised`)."""
    markers = (*detector.markers, *(detector.guard_markers or ()))
    return frozenset(m.split("/", 1)[0] for m in markers)


def _real_folder(root: SafeRoot, rel: str) -> str | None:
    """The real folder (inside the account) that ``rel`` names through symlinks, or None
    when a link leaves the account, the chain is too long, or the target is no folder."""
    try:
        real = root.resolve_symlink_inside(rel)
        if real is None or not root.is_dir(real):
            return None
    except (OSError, UnsafePathError):
        return None
    return real


def _searchable(
    path: str,
    plain_skip: frozenset[str],
    tail_skip: tuple[str, ...],
    owners: dict[str, Detector],
    visited: set[str],
) -> bool:
    """Whether a link target ``path`` is searched: not yet, and not in a skipped folder
    or an installation's own folder (where the plain walk would not go either)."""
    if path in visited:
        return False
    parts = path.split("/") if path else []
    if any(p in plain_skip for p in parts):
        return False
    if tail_skip and any(
        ("/" + "/".join(parts[: i + 1])).endswith(tail_skip) for i in range(len(parts))
    ):
        return False
    for i, name in enumerate(parts):
        owner = owners.get("/".join(parts[:i]))
        if owner is not None and name in owner.owned_dirs:
            return False
    return True


def _unrecognised(root: SafeRoot, detector: Detector, path: str) -> str | None:
    try:
        return detector.unrecognised(root, path)
    except (OSError, UnsafePathError):
        return None  # NOTE: detect() just read this folder; a race is reported there


def _probe_project_roots(
    root: SafeRoot, detectors: Sequence[Detector], start: str, reported: set[str]
) -> Iterator[Installation | ScanProblem]:
    """The installations above the start folder ``start`` (composer layouts keep the
    installation one level above the docroot), each once, and the problems on the way."""
    for detector in detectors:
        problem, inst = _probe_project_root(root, detector, start)
        if problem is not None:
            yield problem
        if inst is not None and inst.path not in reported:
            reported.add(inst.path)
            yield inst


def _probe_project_root(
    root: SafeRoot, detector: Detector, docroot: str
) -> tuple[ScanProblem | None, Installation | None]:
    """Ask ``detector`` for an installation above ``docroot`` (``(problem, found)``)."""
    try:
        project = detector.project_root_for_docroot(root, docroot)
        if project is None or project == docroot:
            return None, None
        project = posixpath.normpath(project) if project else ""
        return None, detector.detect(root, "" if project == "." else project)
    except (OSError, UnsafePathError) as exc:
        return ScanProblem(docroot, f"{detector.name}: {exc}"), None
