"""``patchd build``: from two releases to a validated, minimal patch bundle.

Steps (each its own function, so tests and the bench can time or reuse them):

1. open OLD and NEW (archives extracted safely into a work folder) and detect their CMS
   and version (:func:`patchd.releases.detect_release`);
2. the full release diff (:func:`patchd.release.tree.diff_trees`);
3. the classifier chain (rules > noise > git > siblings > heuristics; the sibling release
   pairs are opened with OLD and NEW and diffed, :mod:`patchd.bundle.siblings`), then the
   interactive review of the undecided hunks when a reviewer is given;
4. minimise: a hunk kept by a rules-file ``line`` matcher keeps only the runs of changed
   lines that match (the same way a review "split" is recorded); classifier splits (git
   attribution of mixed hunks) are used as they come;
5. assemble the minimal patch (hunks against OLD, renumbered per file) and validate it
   (:mod:`patchd.bundle.validate`): a build that would ship nothing, or a patch that fails
   a check, stops here and nothing is written;
6. backports (:mod:`patchd.bundle.backport`), the manifest (touched files with pre- and
   post-image sha256 per variant) and ``build-report.json``, written into a fresh folder
   that is renamed to ``<out>/<id>`` only when complete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from patchd import __version__
from patchd.bundle.backport import (
    HunkIds,
    Newer,
    Ported,
    failed_checks,
    port_patch,
    withheld,
)
from patchd.bundle.branches import BranchVariant, same_branch, sibling_variant
from patchd.bundle.classifiers import (
    DEFAULT_SECURITY_PATTERN,
    DEFAULT_THRESHOLD,
    RulesClassifier,
    add_siblings,
    default_chain,
)
from patchd.bundle.closure import VariantPatch, check_all, refusal_message, variant_problem
from patchd.bundle.interface import (
    ClassifiedHunk,
    Classifier,
    ReleaseHunkLike,
    Verdict,
    run_chain,
)
from patchd.bundle.manifest import BUILD_REPORT, MAIN_DIFF, Manifest, write_bundle
from patchd.bundle.report import (
    BuildReport,
    CheckEntry,
    ClosureEntry,
    HunkEntry,
    LinkEntry,
    ManualHunk,
    ReleaseInfo,
    SiblingsInfo,
    Suggestion,
)
from patchd.bundle.rules import (
    ConflictKey,
    Resolution,
    append_resolution,
    conflict_digest,
    load_resolutions,
)
from patchd.bundle.siblings import SiblingSources, check_min_siblings, sibling_classifier
from patchd.bundle.split import change_runs, renumber, split_hunk
from patchd.bundle.validate import (
    ReadFile,
    Validated,
    ValidationError,
    find_php,
    validate_patch,
)
from patchd.cms import DETECTORS
from patchd.cms.interface import Installation
from patchd.cms.names import default_summary, default_title
from patchd.engine.model import FilePatch, Hunk
from patchd.engine.render import render_patch
from patchd.errors import PatchdError, UsageError
from patchd.progress import Progress, SilentProgress
from patchd.release.archive import open_release_links
from patchd.release.tree import FileChange, ReleaseDiff, diff_trees
from patchd.releases import detect_release
from patchd.versions import Version, VersionSet, branch_start, releases_in

#: The interactive review: undecided hunks in, replacement verdicts by hunk id out.
Reviewer = Callable[[Sequence[ClassifiedHunk]], dict[str, Verdict]]
#: The review of a backport conflict: (version, conflict) in, the resolved lines out
#: (None: leave it for later, the version stays without a variant).
ConflictResolver = Callable[[str, ManualHunk], str | None]

SEVERITIES = ("low", "medium", "high", "critical")


class BuildError(PatchdError):
    """The build cannot produce a bundle (empty patch, binary change kept, bad inputs)."""


class UndecidedError(BuildError):
    """Hunks nobody decided: the build stops rather than drop (or ship) them silently."""

    exit_code = 1

    def __init__(self, hunks: Sequence[ClassifiedHunk]) -> None:
        listing = "".join(_undecided_listing(ch) for ch in hunks)
        super().__init__(
            f"{len(hunks)} hunk(s) undecided: a build never drops or ships a hunk nobody "
            "decided. Decide each with a rule (--rules FILE: include/exclude by hunk id), "
            "interactively (--review), or all at once with --undecided keep|drop (recorded "
            f"in the manifest):{listing}"
        )
        self.hunks = tuple(hunks)


# --- dependency closure check (issue 12, item 4) ---------------------------------------
class ClosureError(BuildError):
    """Kept hunks use symbols NEW defines only in dropped hunks (patchd.bundle.closure)."""

    exit_code = 1

    def __init__(self, result: ClosureEntry) -> None:
        super().__init__(refusal_message(result))
        self.result = result


def closure_check(
    diff: ReleaseDiff,
    minimal: MinimalPatch,
    patched: dict[str, bytes | None],
    old: OpenedRelease,
    new: OpenedRelease,
    opts: BuildOptions,
    php: str | None,
    ported: list[tuple[OpenedRelease, Ported]],
) -> tuple[ClosureEntry, list[tuple[OpenedRelease, Ported]]]:
    """The closure check of the main patch and every stored variant, in one ``php``
    process: :class:`ClosureError` when the main patch fails it; a variant that fails it
    is not stored (its problems are listed as manual work, like a failed validation).

    NOTE: it only tokenizes (never runs release code), so with --no-lint it still runs
    when the machine has PHP; without PHP it is skipped and the manifest says so.
    """
    tool = php or shutil.which(opts.php or "php")
    if tool is None:
        return ClosureEntry("skipped", note="built with --no-lint on a machine without PHP"), ported
    variants = [
        VariantPatch(
            p.version, p.patches, _variant_ids(p.patches, minimal.ids), p.patched, r.read, r.root
        )
        for r, p in ported
        if p.patches is not None
    ]
    result, problems = check_all(
        diff,
        minimal.patches,
        minimal.ids,
        patched,
        old.read,
        new.read,
        php=tool,
        variants=variants,
        old_root=old.root,
    )
    if result.problems:
        raise ClosureError(result)
    out = []
    for rel, p in ported:
        found = problems.get(p.version)
        if found:
            p = withheld(
                p, [ManualHunk(c.used_in, c.path, variant_problem(c, p.version)) for c in found]
            )
        out.append((rel, p))
    return result, out


def _variant_ids(patches: Sequence[FilePatch], ids: HunkIds) -> dict[str, list[str]]:
    """A variant's hunk ids: the main patch's where a file has as many hunks, else #N."""
    out: dict[str, list[str]] = {}
    for fp in patches:
        known = ids.get(fp.path, [])
        n = len(fp.hunks)
        out[fp.path] = known if len(known) == n else [f"{fp.path}#{i}" for i in range(1, n + 1)]
    return out


# ---------------------------------------------------------------------------------------


def _undecided_listing(ch: ClassifiedHunk) -> str:
    out = f"\n  {ch.id} ({ch.path}): {ch.verdict.reason}"
    if ch.hunk is not None:
        changed = [ln for ln in ch.hunk.hunk.lines if ln.kind != " "][:3]
        for ln in changed:
            text = ln.data.decode("utf-8", "replace").rstrip("\r\n")
            out += f"\n      {ln.kind} {text[:100]}"
    for sug in ch.suggestions[:3]:
        score = f" (score {sug.score:.2f})" if sug.score is not None else ""
        out += f"\n      suggestion: {sug.classifier}: {sug.reason}{score}"
    return out


def decide_undecided(
    classified: Sequence[ClassifiedHunk], policy: Literal["refuse", "keep", "drop"]
) -> tuple[list[ClassifiedHunk], tuple[str, ...]]:
    """Apply ``--undecided``: the hunks with their final verdicts and the ids it decided.

    :class:`UndecidedError` (exit 1) lists every undecided hunk when ``policy`` is refuse.
    """
    undecided = [c for c in classified if c.verdict.decision == "undecided"]
    if not undecided:
        return list(classified), ()
    if policy == "refuse":
        raise UndecidedError(undecided)
    word = "kept" if policy == "keep" else "dropped"
    decided = [
        dataclasses.replace(
            c,
            verdict=Verdict(
                policy,
                f"undecided ({c.verdict.reason}); {word} by --undecided {policy}",
                "undecided-option",
                c.verdict.score,
            ),
        )
        if c.verdict.decision == "undecided"
        else c
        for c in classified
    ]
    return decided, tuple(c.id for c in undecided)


@dataclass(frozen=True)
class BuildOptions:
    """Everything ``patchd build`` takes (the CLI maps its options one to one)."""

    old: Path
    new: Path
    out: Path = Path("patches")
    git_repo: Path | None = None
    git_range: str | None = None
    git_prefix: str = ""
    security_pattern: re.Pattern[str] = DEFAULT_SECURITY_PATTERN
    rules: Path | None = None
    auto: bool = False
    threshold: float = DEFAULT_THRESHOLD
    backports: tuple[Path, ...] = ()
    fuzz: int = 0
    id: str | None = None
    title: str | None = None
    cms: str | None = None
    component: str = "core"
    affected: str | None = None
    fixed_in: str | None = None
    advisories: tuple[str, ...] = ()
    severity: str = "high"
    min_php: str | None = None
    summary_de: str | None = None
    summary_en: str | None = None
    created_at: str | None = None
    php: str | None = None
    lint: bool = True
    workdir: Path | None = None
    # What happens to hunks no classifier (and no review) decided: "refuse" stops the
    # build listing them; "keep"/"drop" decide them all and the manifest records it.
    undecided: Literal["refuse", "keep", "drop"] = "refuse"
    # Sibling release pairs (OLD2, NEW2) of other branches, and how many must share a
    # change (None: a majority), issue 12.
    siblings: tuple[SiblingSources, ...] = ()
    min_siblings: int | None = None


@dataclass(frozen=True)
class OpenedRelease:
    """An input release: its root folder and what was detected there."""

    source: Path
    root: Path
    installation: Installation
    #: An archive's symlink members (path -> target), recorded but never created.
    links: dict[str, str] = field(default_factory=dict)

    @property
    def version(self) -> str:
        """The detected version (detect_release guarantees one)."""
        assert self.installation.version is not None
        return self.installation.version

    @property
    def info(self) -> ReleaseInfo:
        """The report's view: source file name, CMS, version."""
        return ReleaseInfo(self.source.name, self.installation.cms, self.version)

    def read(self, path: str) -> bytes | None:
        """A release file's bytes, None when absent (links and non-files count as absent)."""
        return read_release_file(self.root, path)


@dataclass(frozen=True)
class MinimalPatch:
    """The assembled patch: file patches against OLD and the report id of every hunk."""

    patches: tuple[FilePatch, ...]
    ids: HunkIds


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build_bundle` wrote."""

    path: Path
    manifest: Manifest
    report: BuildReport
    diffs: dict[str, bytes] = field(repr=False)


def read_release_file(root: Path, path: str) -> bytes | None:
    """Bytes of ``root/path`` when it is a regular file (never through a symlink)."""
    full = os.path.join(root, path)
    try:
        fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise PatchdError(f"cannot read release file: {exc.strerror}", where=full) from None
    with open(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return None
        return fh.read()


@contextmanager
def _workdir(given: Path | None) -> Iterator[Path]:
    """A fresh folder (inside ``given`` when set) for extractions, removed afterwards."""
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="patchd-build-", dir=given))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def split_links(diff: ReleaseDiff) -> tuple[ReleaseDiff, tuple[LinkEntry, ...]]:
    """Take symlinks the release added, changed or removed out of the diff.

    NOTE (issue 12): a unified diff cannot carry a link, and patchd never creates one on a
    customer's installation; the report names each for manual handling instead.
    Unchanged links never reach the diff.
    """
    entries = tuple(
        LinkEntry(c.path, c.old_link, c.new_link, _link_note(c)) for c in diff.files if c.is_link
    )
    if not entries:
        return diff, ()
    kept = [c for c in diff.files if not c.is_link]
    return ReleaseDiff(kept, diff.dirs_added, diff.dirs_removed), entries


def _link_note(c: FileChange) -> str:
    if c.old_link is None and c.old_sha256 is None:
        return f"link added (-> {c.new_link}): not in patch.diff, create it by hand if needed"
    if c.new_link is None and c.new_sha256 is None:
        return f"link removed (was -> {c.old_link}): not in patch.diff, handle by hand"
    if c.old_link is not None and c.new_link is not None:
        return (
            f"link changed (-> {c.old_link} became -> {c.new_link}): not in patch.diff, "
            "handle by hand"
        )
    return "a file became a link or a link a file: not in patch.diff, handle by hand"


def open_input(source: Path, workdir: Path, *, what: str) -> OpenedRelease:
    """Open one release (archive or folder) and detect its CMS and version."""
    root, links = open_release_links(source, workdir)
    root = root.resolve()
    try:
        installation = detect_release(root)
    except PatchdError as exc:
        raise BuildError(
            f"{what} is no CMS release patchd knows: {exc.message}", where=str(source)
        ) from None
    return OpenedRelease(Path(source), root, installation, links)


#: Every file a detector reads to tell a release's CMS and version.
DETECTION_FILES = frozenset(
    path for detector in DETECTORS for path in (*detector.markers, *detector.release_files)
)


def open_backport(source: Path, workdir: Path, touched: frozenset[str], cms: str) -> OpenedRelease:
    """A backport release with only ``touched`` and :data:`DETECTION_FILES` written; the
    whole archive when that is not enough to tell it is a ``cms`` release."""
    wanted = touched | DETECTION_FILES
    root, links = open_release_links(source, workdir, wanted=wanted.__contains__)
    try:
        installation = detect_release(root.resolve())
    except PatchdError:
        installation = None
    if installation is None or installation.cms != cms:
        # NOTE: never remove ``root`` here: for a folder it is the user's own tree. The
        # partial extraction goes with the work folder.
        return open_input(source, workdir, what="backport release")
    return OpenedRelease(Path(source), root.resolve(), installation, links)


def classify(
    diff: ReleaseDiff, chain: Sequence[Classifier], review: Reviewer | None = None
) -> list[ClassifiedHunk]:
    """Run the chain, let ``review`` decide the undecided hunks, minimise rule keeps."""
    classified = run_chain(diff, chain)
    if review is not None:
        undecided = [c for c in classified if c.verdict.decision == "undecided"]
        if undecided:
            decided = review(undecided)
            classified = [
                dataclasses.replace(c, verdict=decided[c.id]) if c.id in decided else c
                for c in classified
            ]
    rules = next((c for c in chain if isinstance(c, RulesClassifier)), None)
    return [_minimise(c, rules) for c in classified]


def _minimise(ch: ClassifiedHunk, rules: RulesClassifier | None) -> ClassifiedHunk:
    """Split a hunk kept by a rule's ``line`` regex down to the runs that match it."""
    v = ch.verdict
    if v.decision != "keep" or v.split is not None or v.rule is None or ch.hunk is None:
        return ch
    line_re = None
    for rule in rules.rules if rules is not None else ():
        if rule.label == v.rule:
            line_re = rule.line_re
            break
    if line_re is None:
        return ch
    split = split_by_regex(ch.hunk.hunk, ch.hunk, line_re)
    if split is None:
        return ch
    reason = f"{v.reason} (split: only the changed lines matching /{line_re.pattern}/)"
    return dataclasses.replace(ch, verdict=dataclasses.replace(v, split=split, reason=reason))


def split_by_regex(
    hunk: Hunk, rh: ReleaseHunkLike, line_re: re.Pattern[str]
) -> tuple[Hunk, ...] | None:
    """The runs of ``hunk`` with a changed line matching ``line_re``; None when all match."""
    lines = hunk.lines
    runs = change_runs(lines)
    keep_index: set[int] = set()
    for start, end in runs:
        texts = (
            lines[k].data.decode("utf-8", "surrogateescape").rstrip("\r\n")
            for k in range(start, end)
        )
        if any(line_re.search(t) for t in texts):
            keep_index.update(range(start, end))
    changed = sum(end - start for start, end in runs)
    if not keep_index or len(keep_index) == changed:
        return None
    parts = split_hunk(rh, lambda k, _ln: k in keep_index)
    if parts is None or not parts[0]:
        return None
    return tuple(parts[0])


def assemble(diff: ReleaseDiff, classified: Sequence[ClassifiedHunk]) -> MinimalPatch:
    """The file patches of every kept hunk (split parts where given), against OLD."""
    by_path: dict[str, list[ClassifiedHunk]] = {}
    for ch in classified:
        if ch.verdict.decision == "keep":
            by_path.setdefault(ch.path, []).append(ch)
    patches: list[FilePatch] = []
    ids: HunkIds = {}
    for change in diff.files:
        kept = by_path.get(change.path)
        if not kept:
            continue
        if change.kind == "binary":
            raise BuildError(
                "a binary change was kept, but a text patch cannot carry it; drop it with a "
                f"rule (exclude hunk {change.path}@binary) and ship the file another way",
                where=change.path,
            )
        pieces: list[tuple[Hunk, str]] = []
        for ch in kept:
            assert ch.hunk is not None
            if ch.verdict.split is not None:
                pieces.extend((h, ch.id) for h in ch.verdict.split)
            else:
                pieces.append((ch.hunk.hunk, ch.id))
        pieces.sort(key=lambda p: p[0].old_start)
        hunks = renumber([h for h, _ in pieces])
        patches.append(_file_patch(change, tuple(hunks), len(kept) == len(change.hunks)))
        ids[change.path] = [hid for _, hid in pieces]
    return MinimalPatch(tuple(patches), ids)


def _file_patch(change: FileChange, hunks: tuple[Hunk, ...], whole: bool) -> FilePatch:
    if change.kind == "modified" or not whole:
        if change.kind != "modified":
            raise BuildError(
                f"only part of an {change.kind} file was kept; keep all of it or none",
                where=change.path,
            )
        return FilePatch(change.path, change.path, hunks)
    if change.kind == "added":
        return FilePatch(None, change.path, hunks)
    return FilePatch(change.path, None, hunks)


def hunk_text(hunk: Hunk) -> str:
    """The hunk as unified diff text (header and lines), for reports and review."""

    def rng(start: int, length: int) -> str:
        return str(start) if length == 1 else f"{start},{length}"

    head = f"@@ -{rng(hunk.old_start, hunk.old_len)} +{rng(hunk.new_start, hunk.new_len)} @@"
    if hunk.section:
        head += " " + hunk.section.decode("utf-8", "replace").rstrip("\r\n")
    out = [head + "\n"]
    for ln in hunk.lines:
        text = ln.data.decode("utf-8", "replace")
        out.append(ln.kind + text)
        if not text.endswith("\n"):
            out.append("\n\\ No newline at end of file\n")
    return "".join(out)


def report_entries(classified: Sequence[ClassifiedHunk]) -> tuple[HunkEntry, ...]:
    """One report entry per hunk of the full release diff."""
    entries = []
    for ch in classified:
        v = ch.verdict
        entries.append(
            HunkEntry(
                id=ch.id,
                path=ch.path,
                file_kind=ch.change.kind,
                decision="kept" if v.decision == "keep" else "dropped",
                verdict=v.decision,
                classifier=v.classifier,
                reason=v.reason,
                score=v.score,
                rule=v.rule,
                split=v.split is not None and v.decision == "keep",
                commits=v.commits,
                suggestions=tuple(
                    Suggestion(s.classifier, s.reason, s.score) for s in ch.suggestions
                ),
                text=hunk_text(ch.hunk.hunk) if ch.hunk is not None else "",
                siblings=next(
                    (s.siblings for s in (v, *ch.suggestions) if s.siblings is not None), None
                ),
            )
        )
    return tuple(entries)


def created_at(given: str | None) -> str:
    """``--created-at``, else SOURCE_DATE_EPOCH (reproducible builds), else now (UTC)."""
    if given:
        try:
            return datetime.fromisoformat(given).isoformat()
        except ValueError:
            raise UsageError(f"--created-at: not an ISO 8601 time: {given!r}") from None
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            return datetime.fromtimestamp(int(epoch), UTC).isoformat()
        except ValueError:
            raise UsageError(f"SOURCE_DATE_EPOCH is not a number: {epoch!r}") from None
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def _sha(data: bytes | None) -> str | None:
    return hashlib.sha256(data).hexdigest() if data is not None else None


def touched_files(
    patches: Sequence[FilePatch], read: ReadFile, patched: dict[str, bytes | None]
) -> list[dict[str, str | None]]:
    """Manifest ``files`` of a variant: path, pre- and post-image sha256."""
    return [
        {"path": fp.path, "pre_sha256": _sha(read(fp.path)), "post_sha256": _sha(patched[fp.path])}
        for fp in patches
    ]


def _check_options(opts: BuildOptions) -> None:
    if opts.severity not in SEVERITIES:
        raise UsageError(f"--severity must be one of {', '.join(SEVERITIES)}")
    if opts.fuzz < 0:
        raise UsageError("--fuzz must be 0 or more")
    if (opts.git_repo is None) != (opts.git_range is None):
        raise UsageError("--git and --range go together (--git REPO --range OLDREF..NEWREF)")
    check_min_siblings(len(opts.siblings), opts.min_siblings)
    for name, value in (("--affected", opts.affected),):
        if value is not None:
            try:
                VersionSet.parse(value)
            except ValueError as exc:
                raise UsageError(f"{name}: {exc}") from None
    for name, value in (("--fixed-in", opts.fixed_in), ("--min-php", opts.min_php)):
        if value is not None:
            try:
                Version.parse(value)
            except ValueError as exc:
                raise UsageError(f"{name}: {exc}") from None


def build_bundle(
    opts: BuildOptions,
    *,
    review: Reviewer | None = None,
    resolve: ConflictResolver | None = None,
    progress: Progress | None = None,
) -> BuildResult:
    """Build, validate and write the bundle ``<opts.out>/<id>`` (see the module docstring)."""
    progress = progress or SilentProgress()
    _check_options(opts)
    # NOTE: without --no-lint a missing PHP is an error, never a silently skipped check;
    # with it the manifest says which check did not run (issue 17).
    php = find_php(opts.php) if opts.lint else None
    stamp = created_at(opts.created_at)
    chain = default_chain(
        rules_file=opts.rules,
        git_repo=opts.git_repo,
        git_range=opts.git_range,
        git_prefix=opts.git_prefix,
        security_pattern=opts.security_pattern,
        auto=opts.auto,
        threshold=opts.threshold,
    )
    with _workdir(opts.workdir) as work:
        progress.start(5 + len(opts.backports) + bool(opts.siblings), "build")
        # NOTE: the archives are extracted at once: decompression and file writes
        # release the GIL, and extraction is most of a build's time.
        with ThreadPoolExecutor(max_workers=min(4, 2 + 2 * len(opts.siblings))) as pool:
            old_job = pool.submit(open_input, opts.old, work, what="OLD")
            new_job = pool.submit(open_input, opts.new, work, what="NEW")
            sibling_jobs = [
                (
                    pool.submit(open_input, o, work, what="--sibling OLD2"),
                    pool.submit(open_input, n, work, what="--sibling NEW2"),
                )
                for o, n in opts.siblings
            ]
            old, new = old_job.result(), new_job.result()
            pairs = [(o.result(), n.result()) for o, n in sibling_jobs]
        _check_pair(old, new, opts)
        progress.advance(label="opened")
        siblings: SiblingsInfo | None = None
        sibling_diffs: list[ReleaseDiff] = []
        if pairs:
            classifier, siblings, sibling_diffs = sibling_classifier(
                old, new, pairs, opts.siblings, opts.min_siblings
            )
            chain = add_siblings(chain, classifier)
            progress.advance(label="siblings diffed")
        diff, links = split_links(
            diff_trees(old.root, new.root, old_links=old.links, new_links=new.links)
        )
        progress.advance(label="diffed")
        for classifier in chain:
            classifier.bind_releases(old.read, new.read)
        classified, forced = decide_undecided(classify(diff, chain, review), opts.undecided)
        progress.advance(label="classified")
        minimal = assemble(diff, classified)
        entries = report_entries(classified)
        if not minimal.patches:
            raise BuildError(_empty_message(entries), where=str(opts.new))
        bundle_id = opts.id or f"{old.installation.cms}-{new.version}"
        target = Path(opts.out) / bundle_id
        if target.exists():
            raise BuildError(
                "a bundle with this id exists already (bundles are immutable; pick another --id)",
                where=str(target),
            )
        main = validate_patch(
            minimal.patches, old.read, variant=MAIN_DIFF, php=php, read_new=new.read
        )
        if not main.ok:
            raise ValidationError("the minimal patch failed validation", main.checks)
        progress.advance(label="validated")
        # NOTE (issue 13): each sibling branch's own variant, cut from the diffs the
        # sibling classifier made.
        branches = [
            _branch_variant(pair, diff, minimal, php)
            for pair, diff in zip(pairs, sibling_diffs, strict=True)
        ]
        ported = _backports(work, old, minimal, opts, php, progress, resolve, branches)
        ported += [(o2, bv.ported) for (o2, _n2), bv in zip(pairs, branches, strict=True)]
        closure, ported = closure_check(diff, minimal, main.patched, old, new, opts, php, ported)
        result = _write(
            opts, bundle_id, stamp, old, new, chain, entries, minimal, main, ported, forced, links,
            closure, siblings=siblings,
        )  # fmt: skip
        progress.advance(label="written")
        progress.finish()
        return result


def _check_pair(old: OpenedRelease, new: OpenedRelease, opts: BuildOptions) -> None:
    cms_old, cms_new = old.installation.cms, new.installation.cms
    if cms_old != cms_new:
        raise BuildError(f"OLD is {cms_old} {old.version} but NEW is {cms_new} {new.version}")
    if opts.cms is not None and opts.cms != cms_old:
        raise BuildError(f"--cms {opts.cms} given, but OLD is a {cms_old} release")
    if not Version.parse(old.version) < Version.parse(new.version):
        raise BuildError(f"OLD ({old.version}) must be older than NEW ({new.version})")


def _empty_message(entries: Sequence[HunkEntry]) -> str:
    forced = sum(1 for e in entries if e.classifier == "undecided-option")
    return (
        f"the patch would be empty: no hunk of the {len(entries)} in the release diff was "
        f"kept ({forced} dropped by --undecided drop). Keep hunks with --rules, --git, --auto "
        "or --review"
    )


def _backports(
    work: Path,
    old: OpenedRelease,
    minimal: MinimalPatch,
    opts: BuildOptions,
    php: str | None,
    progress: Progress,
    resolve: ConflictResolver | None = None,
    branches: Sequence[BranchVariant] = (),
) -> list[tuple[OpenedRelease, Ported]]:
    """Port to every ``--backport`` release, newest first (an older one may merge from a
    newer one's result); returned in the order given. Conflicts are resolved as the rules
    file records; with ``resolve`` (``--review``) a person resolves the others, and each
    answer is recorded there at once. A release of a sibling's branch is ported from that
    sibling's variant (``branches``), the others from the minimal patch."""
    recorded = load_resolutions(opts.rules) if opts.rules is not None else []
    main_base = PortBase(old.version, minimal.patches, minimal.ids, old.read)
    bases = [main_base] + [
        PortBase(b.version, b.ported.patches, b.ids, b.read)
        for b in branches
        if b.ported.patches is not None
    ]
    releases = []
    touched = frozenset(fp.path for fp in minimal.patches)
    # NOTE: only the files the patch touches (and the version files) are written: a
    # backport costs a read of its archive, not an extraction (issue 13: 10 backports
    # within 3x of a build without). Two at once: decompression releases the GIL.
    with ThreadPoolExecutor(max_workers=2) as pool:
        opened = list(
            pool.map(
                lambda source: open_backport(source, work, touched, old.installation.cms),
                opts.backports,
            )
        )
    for source, rel in zip(opts.backports, opened, strict=True):
        if rel.installation.cms != old.installation.cms:
            raise BuildError(
                f"backport release is {rel.installation.cms}, not {old.installation.cms}",
                where=str(source),
            )
        if Version.parse(rel.version) == Version.parse(old.version):
            raise BuildError(f"backport release is OLD's version {old.version}", where=str(source))
        releases.append(rel)
    done: dict[int, tuple[OpenedRelease, Ported]] = {}
    newer: dict[str, list[Newer]] = {b.version: [] for b in bases}
    order = sorted(range(len(releases)), key=lambda i: Version.parse(releases[i].version).key)
    for i in reversed(order):
        rel = releases[i]
        base = next((b for b in bases[1:] if same_branch(b.version, rel.version)), main_base)
        chain = newer[base.version]
        ported = _backport(rel, base, opts, php, chain, _for(recorded, rel.version))
        conflicts = [m for m in ported.entry.manual if m.ours or m.theirs]
        if resolve is not None and opts.rules is not None and conflicts:
            answered = _ask_conflicts(resolve, rel.version, conflicts, opts.rules)
            if answered:
                recorded = load_resolutions(opts.rules)
                ported = _backport(rel, base, opts, php, chain, _for(recorded, rel.version))
        done[i] = (rel, ported)
        if ported.patches is not None:
            chain.insert(0, Newer(rel.version, rel.read, ported.patched))
        progress.advance(label="backported")
    return [done[i] for i in range(len(releases))]


def _for(resolutions: Sequence[Resolution], version: str) -> dict[str, Resolution]:
    return {r.resolve.hunk: r for r in resolutions if r.resolve.version == version}


def _ask_conflicts(
    resolve: ConflictResolver, version: str, conflicts: Sequence[ManualHunk], rules: Path
) -> int:
    """Ask for each conflict; record every answer in the rules file; the number answered."""
    answered = 0
    for c in conflicts:
        text = resolve(version, c)
        if text is None:
            continue
        key = ConflictKey(version=version, hunk=c.hunk, conflict=conflict_digest(c.ours, c.theirs))
        append_resolution(
            rules,
            Resolution(
                resolve=key, result=text, comment=f"review: resolved backport conflict in {c.path}"
            ),
        )
        answered += 1
    return answered


@dataclass(frozen=True)
class PortBase:
    """What backports of one branch are ported from: the minimal patch against OLD, or a
    sibling branch's variant against its OLD2."""

    version: str
    patches: tuple[FilePatch, ...]
    ids: HunkIds
    read: ReadFile


def _branch_variant(
    pair: tuple[OpenedRelease, OpenedRelease],
    diff: ReleaseDiff,
    minimal: MinimalPatch,
    php: str | None,
) -> BranchVariant:
    old2, new2 = pair
    return sibling_variant(
        old2.version, diff, old2.read, new2.read, minimal.patches, php=php, label=new2.version
    )


def _backport(
    rel: OpenedRelease,
    base: PortBase,
    opts: BuildOptions,
    php: str | None,
    newer: Sequence[Newer],
    resolutions: dict[str, Resolution] | None = None,
) -> Ported:
    ported = port_patch(
        base.patches,
        base.ids,
        rel.read,
        version=rel.version,
        fuzz=opts.fuzz,
        php=php,
        read_base=base.read,
        newer=newer,
        resolutions=resolutions,
    )
    failed = failed_checks(ported.checks)
    # NOTE: a variant that does not validate is not shipped; its problems go to the
    # report as manual work, like hunks that do not port.
    return withheld(ported, failed) if failed else ported


def default_affected(old: str, backports: Sequence[str], siblings: Sequence[str] = ()) -> str:
    """``--affected`` when not given: OLD's branch from its first release up to OLD
    (``12.4.0-12.4.10``), each sibling branch the same way up to its OLD2, plus every
    backport release outside them.

    NOTE (issue 13): not just the versions that got a variant; an affected version without
    one is reported ``no-variant`` (update needed), never ``not-affected``.
    """
    ranges = [f"{branch_start(v)}-{v}" for v in (old, *siblings)]
    covered = VersionSet.parse(",".join(ranges))
    extra = sorted({Version.parse(b) for b in backports if b not in covered}, key=lambda v: v.key)
    return ",".join([*ranges, *(str(v) for v in extra)])


def uncovered_versions(affected: str, variant_sets: Sequence[str]) -> list[str]:
    """The versions of ``affected`` no variant covers (for the build report); a range whose
    releases cannot be counted is listed whole when one of its ends is uncovered."""
    sets = [VersionSet.parse(v) for v in variant_sets]

    def covered(v: Version) -> bool:
        return any(v in s for s in sets)

    out: list[str] = []
    for r in VersionSet.parse(affected).ranges:
        releases = releases_in(r)
        if releases is None:
            if not (covered(r.low) and covered(r.high)):
                out.append(str(r))
            continue
        out.extend(str(v) for v in releases if not covered(v))
    return out


def _write(
    opts: BuildOptions,
    bundle_id: str,
    stamp: str,
    old: OpenedRelease,
    new: OpenedRelease,
    chain: Sequence[Classifier],
    entries: tuple[HunkEntry, ...],
    minimal: MinimalPatch,
    main: Validated,
    ported: list[tuple[OpenedRelease, Ported]],
    forced: tuple[str, ...] = (),
    links: tuple[LinkEntry, ...] = (),
    closure: ClosureEntry | None = None,
    *,
    siblings: SiblingsInfo | None = None,
) -> BuildResult:
    diffs = {MAIN_DIFF: render_patch(minimal.patches)}
    variants = [
        {
            "versions": old.version,
            "file": MAIN_DIFF,
            "files": touched_files(minimal.patches, old.read, main.patched),
            "method": "exact",
        }
    ]
    stored = sorted(
        ((rel, p) for rel, p in ported if p.patches is not None),
        key=lambda rp: Version.parse(rp[1].version),
    )
    for rel, p in stored:
        assert p.patches is not None and p.entry.file is not None
        diffs[p.entry.file] = render_patch(p.patches)
        variants.append(
            {
                "versions": p.version,
                "file": p.entry.file,
                "files": touched_files(p.patches, rel.read, p.patched),
                "method": p.entry.method,
            }
        )
    sibling_olds = [p.version for _, p in ported if p.entry.method == "sibling"]
    affected = opts.affected or default_affected(
        old.version, [p.version for _, p in ported if p.entry.method != "sibling"], sibling_olds
    )
    cms = old.installation.cms
    fixed_in = opts.fixed_in or new.version
    fields = {
        "id": bundle_id,
        "title": opts.title or default_title(cms, fixed_in),
        "advisories": list(opts.advisories),
        "severity": opts.severity,
        "cms": cms,
        "component": opts.component,
        "affected": affected,
        "fixed_in": fixed_in,
        "min_php": opts.min_php or old.installation.facts.get("required_php"),
        "summary": {
            "de": opts.summary_de or default_summary(cms, fixed_in, "de"),
            "en": opts.summary_en or default_summary(cms, fixed_in, "en"),
        },
        "variants": variants,
        "created_at": stamp,
        "patchd_version": __version__,
        "skipped_checks": ([] if opts.lint else ["php-lint"])
        + (["closure"] if closure is not None and closure.status == "skipped" else []),
        "undecided": opts.undecided if forced else None,
        "undecided_hunks": list(forced),
    }
    checks: list[CheckEntry] = list(main.checks)
    for _, p in sorted(ported, key=lambda rp: Version.parse(rp[1].version)):
        checks.extend(p.checks)
    report = BuildReport(
        bundle=bundle_id,
        old=old.info,
        new=new.info,
        chain=tuple(c.name for c in chain),
        hunks=entries,
        variants=tuple(
            p.entry for _, p in sorted(ported, key=lambda rp: Version.parse(rp[1].version))
        ),
        validation=tuple(checks),
        uncovered=tuple(uncovered_versions(affected, [v["versions"] for v in variants])),
        links=links,
        siblings=siblings,
        closure=closure,
    )
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{bundle_id}.building-", dir=out))
    try:
        manifest = write_bundle(staging, fields, diffs)
        (staging / BUILD_REPORT).write_text(report.dumps(), encoding="utf-8")
        os.chmod(staging, 0o755)
        target = out / bundle_id
        if target.exists():
            raise BuildError("a bundle with this id appeared meanwhile", where=str(target))
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BuildResult(target, manifest, report, diffs)
