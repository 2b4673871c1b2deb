"""Git attribution against a small TYPO3-shaped repository built in the test."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from patchd.bundle.builder import read_release_file
from patchd.bundle.classifiers import default_chain
from patchd.bundle.classifiers.git import GitAttribution
from patchd.bundle.classifiers.heuristics import HeuristicsClassifier
from patchd.bundle.classifiers.noise import NoiseClassifier
from patchd.bundle.interface import ClassifiedHunk, Verdict, run_chain
from patchd.engine.apply import apply_file
from patchd.engine.model import FilePatch, Hunk
from patchd.errors import UsageError
from patchd.release.tree import ReleaseDiff, diff_trees

PREFIX = "typo3/sysext/core/"
ICON = "Resources/Public/Icons/Extension.png"
ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.org",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.org",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, env=ENV, check=True, capture_output=True, text=True
    ).stdout


def _php(n: int, changes: dict[int, list[str]]) -> str:
    """A PHP file of ``n`` numbered statements; ``changes`` replaces line i by some lines."""
    out = ["<?php", "class PathUtility", "{"]
    for i in range(1, n + 1):
        out.extend(changes.get(i, [f"    $step{i} = compute({i});"]))
    out.append("}")
    return "\n".join(out) + "\n"


def _commit(repo: Path, files: dict[str, str | bytes], message: str) -> str:
    for rel, content in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            (repo / rel).write_bytes(content)
        else:
            (repo / rel).write_text(content)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD").strip()


@dataclass(frozen=True)
class World:
    """The repository, the release diff and the commit shas."""

    repo: Path
    diff: ReleaseDiff
    old: Path
    new: Path
    sha: dict[str, str]


def _attr(world: World, *, prefix: str = PREFIX, **kw: object) -> GitAttribution:
    """GitAttribution of the world's range, bound to its release trees."""
    g = GitAttribution(world.repo, "v12.4.9..v12.4.10", prefix=prefix, **kw)  # type: ignore[arg-type]
    g.bind_releases(
        lambda p: read_release_file(world.old, p), lambda p: read_release_file(world.new, p)
    )
    return g


SEC_MSG = (
    "[SECURITY] Prevent path traversal in PathUtility\n\n"
    "Resolves: #101010\nReleases: main, 12.4\nCVE-2024-55555\n"
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    base = tmp_path_factory.mktemp("git")
    repo = base / "core"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    util, other, legacy = (
        "Classes/Utility/PathUtility.php",
        "Classes/Other.php",
        "Classes/Legacy.php",
    )
    sha: dict[str, str] = {}
    state: dict[int, list[str]] = {}
    legacy_state = {5: ["    $data = unserialize($input);"]}
    _commit(
        repo,
        {
            util: _php(80, state),
            other: _php(20, {}),
            legacy: _php(10, legacy_state),
            ICON: b"\x89PNG\r\n\x1a\n\x00old",
        },
        "[TASK] Initial import",
    )
    _git(repo, "tag", "v12.4.9")
    # unrelated change, far from the security fix (separate hunk)
    state[45] = ["    $step45 = computeFaster(45);"]
    sha["task"] = _commit(
        repo,
        {util: _php(80, state), ICON: b"\x89PNG\r\n\x1a\n\x00new"},
        "[TASK] Speed up step 45\n\nReleases: main",
    )
    # the security fix: adds a check block with a common closing brace
    state[10] = [
        "    if (str_contains($path, '..')) {",
        "        throw new \\InvalidArgumentException('bad path');",
        "    }",
        "    $step10 = compute(10);",
    ]
    test_file = "Tests/Unit/Utility/PathUtilityTest.php"
    sha["sec"] = _commit(
        repo, {util: _php(80, state), test_file: "<?php\nclass PathUtilityTest {}\n"}, SEC_MSG
    )
    # a mixed region: security and unrelated changes two lines apart (one release hunk)
    state[25] = ["    $step25 = compute(25) + 1;"]
    sha["task2"] = _commit(repo, {util: _php(80, state)}, "[BUGFIX] Off by one in step 25")
    state[28] = ["    $step28 = htmlspecialchars(compute(28));"]
    sha["cve"] = _commit(repo, {util: _php(80, state)}, "Escape step 28 output (CVE-2024-66666)")
    # adjacent, interleaved: cannot be split
    state[55] = ["    $step55 = compute(55, true);"]
    sha["task3"] = _commit(repo, {util: _php(80, state)}, "[TASK] Flag for step 55")
    state[56] = ["    $step56 = escape(compute(56));"]
    sha["sec2"] = _commit(repo, {util: _php(80, state)}, "[SECURITY] Escape step 56")
    # removing a dangerous call in a security commit
    legacy_state[5] = ["    $data = json_decode($input, true);"]
    sha["sec3"] = _commit(repo, {legacy: _php(10, legacy_state)}, "Fix XSS via legacy data")
    # a later unrelated commit adding a common line ("    }") elsewhere: blame, not text
    # matching, must attribute the security fix's closing brace
    state[70] = ["    if ($wrap) {", "        $step70 = compute(70);", "    }"]
    sha["wrap"] = _commit(repo, {util: _php(80, state)}, "[TASK] Wrap step 70")
    _git(repo, "tag", "v12.4.10")

    trees = {}
    for tag in ("v12.4.9", "v12.4.10"):
        root = base / tag
        (root / PREFIX).mkdir(parents=True)
        archive = subprocess.run(
            ["git", "archive", tag], cwd=repo, env=ENV, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(root / PREFIX)], input=archive, check=True)
        # a file outside the prefix that changes between the releases
        (root / "index.php").write_text(f"<?php\nrun('{tag}');\n")
        # the release's Legacy.php differs from git (a generated header line), so blame
        # line numbers do not fit and attribution falls back to matching the text
        legacy_path = root / PREFIX / legacy
        legacy_path.write_text("<?php // generated\n" + legacy_path.read_text())
        trees[tag] = root
    return World(
        repo,
        diff_trees(trees["v12.4.9"], trees["v12.4.10"]),
        trees["v12.4.9"],
        trees["v12.4.10"],
        sha,
    )


@pytest.fixture(scope="module")
def got(world: World) -> dict[str, ClassifiedHunk]:
    """The chain's results keyed by a marker text in their changed lines."""
    chain = [NoiseClassifier(), _attr(world)]
    result = run_chain(world.diff, chain)
    by_marker: dict[str, ClassifiedHunk] = {}
    for c in result:
        if c.hunk is None:
            continue
        text = b"".join(ln.data for ln in c.hunk.hunk.lines if ln.kind != " ").decode()
        for marker in ("..", "step45", "step25", "step55", "json_decode", "run(", "$wrap"):
            if marker in text:
                by_marker[marker] = c
    return by_marker


def test_security_hunk_kept_and_unrelated_hunk_dropped(
    world: World, got: dict[str, ClassifiedHunk]
) -> None:
    sec = got[".."].verdict
    assert sec.decision == "keep" and sec.classifier == "git"
    short = world.sha["sec"][:7]
    assert sec.reason == (
        f"from security commit {short}: [SECURITY] Prevent path traversal in PathUtility "
        "(CVE-2024-55555)"
    )
    task = got["step45"].verdict
    assert task.decision == "drop"
    assert (
        task.reason == f"from non-security commit {world.sha['task'][:7]}: [TASK] Speed up step 45"
    )


def test_common_lines_are_attributed_by_blame(world: World, got: dict[str, ClassifiedHunk]) -> None:
    assert got[".."].verdict.decision == "keep"
    wrap = got["$wrap"].verdict
    assert wrap.decision == "drop" and "[TASK] Wrap step 70" in wrap.reason


def test_replay_tags_every_line_with_its_commit(world: World) -> None:
    gitattr = _attr(world)
    gitattr.prepare(world.diff)
    f = gitattr.files[PREFIX + "Classes/Utility/PathUtility.php"].replayed
    # secure = OLD + security commits only: step45 (a [TASK]) is still OLD's line
    assert f.secure.lines is not None and f.full.lines is not None
    assert b"    $step45 = compute(45);\n" in f.secure.lines
    assert b"    $step45 = computeFaster(45);\n" in f.full.lines
    assert f.full.data == (world.new / PREFIX / "Classes/Utility/PathUtility.php").read_bytes()
    # OLD line 48 (step45) was removed by the [TASK] commit in the full replay
    assert f.full.removed_by[("old", 47)] == world.sha["task"]
    added = {t[0] for t in f.secure.tags if t[0] != "old"}
    assert added == {world.sha["sec"], world.sha["cve"], world.sha["sec2"]}


def test_removed_lines_are_attributed_to_the_removing_commit(
    world: World, got: dict[str, ClassifiedHunk]
) -> None:
    v = got["json_decode"].verdict
    assert v.decision == "keep"
    assert v.reason == f"from security commit {world.sha['sec3'][:7]}: Fix XSS via legacy data"


def test_mixed_hunk_is_split_keeping_the_cve_change_only(
    world: World, got: dict[str, ClassifiedHunk]
) -> None:
    c = got["step25"]
    v = c.verdict
    assert v.decision == "keep" and v.split is not None
    assert "CVE-2024-66666" in v.reason and "Off by one" in v.reason
    assert c.hunk is not None
    old = (world.old / c.path).read_text().splitlines(keepends=True)
    patched = _apply(old, list(v.split))
    assert "    $step28 = htmlspecialchars(compute(28));\n" in patched
    assert "    $step25 = compute(25);\n" in patched  # the unrelated change is left out
    assert len(patched) == len(old)


def test_adjacent_interleaved_changes_keep_only_the_security_line(
    world: World, got: dict[str, ClassifiedHunk]
) -> None:
    # a [TASK] changes step 55, then a [SECURITY] commit changes step 56 (adjacent lines,
    # one run of the release diff): the replay applies only the security line
    c = got["step55"]
    v = c.verdict
    assert v.decision == "keep" and v.split is not None
    assert "[SECURITY] Escape step 56" in v.reason and "[TASK] Flag for step 55" in v.reason
    assert v.commits == (world.sha["sec2"][:7],)
    old = (world.old / c.path).read_text().splitlines(keepends=True)
    patched = _apply(old, list(v.split))
    assert "    $step56 = escape(compute(56));\n" in patched
    assert "    $step55 = compute(55);\n" in patched


def test_paths_outside_the_prefix_get_no_opinion(
    world: World, got: dict[str, ClassifiedHunk]
) -> None:
    c = got["run("]
    assert c.path == "index.php"
    assert c.verdict.classifier == "default" and c.verdict.decision == "undecided"


def test_without_prefix_nothing_maps(world: World) -> None:
    chain = [_attr(world, prefix="")]
    result = run_chain(world.diff, chain)
    assert {c.verdict.classifier for c in result} == {"default"}


def test_custom_security_pattern(world: World) -> None:
    gitattr = _attr(world, security_pattern=re.compile("step 45"))
    c = {
        c.verdict.reason: c.verdict.decision
        for c in run_chain(world.diff, [gitattr])
        if c.verdict.classifier == "git" and c.hunk is not None
    }
    assert c[f"from security commit {world.sha['task'][:7]}: [TASK] Speed up step 45"] == "keep"
    assert c[f"from non-security commit {world.sha['sec3'][:7]}: Fix XSS via legacy data"] == (
        "drop"
    )


def test_chain_order_noise_then_git_then_heuristics(world: World) -> None:
    chain = default_chain(
        git_repo=world.repo,
        git_range="v12.4.9..v12.4.10",
        git_prefix=PREFIX,
        security_pattern=re.compile(r"(?!x)x"),  # nothing is a security commit
        auto=True,
        threshold=1.0,
    )
    for c in chain:
        c.bind_releases(
            lambda p: read_release_file(world.old, p), lambda p: read_release_file(world.new, p)
        )
    result = {c.path: c for c in run_chain(world.diff, chain) if c.path.endswith("Test.php")}
    # noise before git: the security commit's test file is still not shipped
    [test_file] = result.values()
    assert (test_file.verdict.classifier, test_file.verdict.reason) == ("noise", "test suite")
    # git before heuristics: the '..' check would score 1.0 >= 1.0, but git decides first
    [dots] = [
        c
        for c in run_chain(world.diff, chain)
        if c.hunk is not None and any(b"'..'" in ln.data for ln in c.hunk.hunk.lines)
    ]
    assert dots.verdict.classifier == "git" and dots.verdict.decision == "drop"
    assert HeuristicsClassifier(auto=True, threshold=1.0).classify(dots.hunk, dots.change) == (
        Verdict(
            "keep",
            "heuristic score 1.0 >= 1.0: adds '..' path check",
            classifier="heuristics",
            score=1.0,
        )
    )


def test_binary_file_is_judged_by_the_commits_that_touched_it(world: World) -> None:
    gitattr = _attr(world)
    [icon] = [c for c in run_chain(world.diff, [gitattr]) if c.path == PREFIX + ICON]
    assert icon.hunk is None and icon.id == PREFIX + ICON + "@binary"
    assert (icon.verdict.decision, icon.verdict.reason) == (
        "drop",
        f"file changed by non-security commit {world.sha['task'][:7]}: [TASK] Speed up step 45",
    )


def test_bad_range_is_a_usage_error(world: World) -> None:
    with pytest.raises(UsageError):
        GitAttribution(world.repo, "v12.4.10")


def _apply(old: list[str], hunks: list[Hunk]) -> list[str]:
    out: list[str] = []
    pos = 0
    for h in sorted(hunks, key=lambda h: h.old_start):
        first = h.old_start - 1 if h.old_len else h.old_start
        out.extend(old[pos:first])
        assert [ln.encode() for ln in old[first : first + h.old_len]] == h.old_lines
        out.extend(ln.decode() for ln in h.new_lines)
        pos = first + h.old_len
    out.extend(old[pos:])
    return out


def test_split_result_applies_with_the_engine_at_exact_positions(
    world: World, got: dict[str, ClassifiedHunk]
) -> None:
    c = got["step25"]
    assert c.verdict.split is not None
    old = (world.old / c.path).read_bytes()
    fp = FilePatch(old_path=c.path, new_path=c.path, hunks=c.verdict.split)
    outcome = apply_file(fp, old, fuzz=0)
    assert outcome.error is None and outcome.content is not None
    assert [h.status.value for h in outcome.hunks] == ["applied"] * len(outcome.hunks)
    assert all(h.offset == 0 and h.fuzz == 0 for h in outcome.hunks)
    new_lines = outcome.content.decode().splitlines()
    assert "    $step28 = htmlspecialchars(compute(28));" in new_lines
    assert "    $step25 = compute(25);" in new_lines
