"""Nested and mixed layouts: every installation is found exactly once (issue 19).

Accounts are written by the fleet generator's own account builder from explicit plans,
so the trees are the same shape as the benchmark fleet's (links, markers, data folders).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from patchd.cms import DETECTORS
from patchd.cms.interface import Installation, ScanProblem
from patchd.cms.search import find_installations
from patchd.cms.typo3 import COMPOSER_CORE, Typo3Detector
from patchd.safefs import SafeRoot
from patchd_fixtures.families import FAMILIES
from patchd_fixtures.fleet import _build_account, generate_fleet
from patchd_fixtures.fleet_plan import AccountPlan, Customer, InstallPlan
from tests.scan import kit
from tests.scan.conftest import FLEET_HOSTS
from tests.support.sshd import SSHHost


def _plan(family: str, version: str, path: str, layout: str = "classic") -> InstallPlan:
    return InstallPlan(family, version, path, layout, (), None, None, False)


def _account(tmp: Path, *installs: InstallPlan) -> tuple[Path, list[dict]]:
    acc = AccountPlan(
        "p1", "local", "8.2", "auto", Customer("c1", "Kunde", "it@kunde.example", "de"),
        False, installs,
    )  # fmt: skip
    records, _ = _build_account(acc, tmp)
    return tmp / "p1", records


def _found(root: Path) -> dict[str, Installation]:
    with SafeRoot(root) as safe:
        found = [i for i in find_installations(safe) if isinstance(i, Installation)]
    paths = [i.path for i in found]
    assert len(paths) == len(set(paths)), paths  # exactly once
    return {i.path: i for i in found}


@pytest.mark.parametrize("nested", ["typo3", "wordpress"])
def test_installation_below_a_composer_typo3_project(tmp_path: Path, nested: str) -> None:
    """The bench's missed case: a classic TYPO3 (or a WordPress) in ``html/blog`` below a
    composer TYPO3 project in ``html``. Only ``html/public`` is the project's docroot."""
    version = "12.4.9" if nested == "typo3" else "6.4.1"
    root, records = _account(
        tmp_path,
        _plan("typo3", "12.4.10", "html", "composer"),
        _plan(nested, version, "html/blog"),
    )
    found = _found(root)
    assert {r["path"] for r in records} == {"html", "html/blog"}
    assert set(found) == {"html", "html/blog"}
    assert found["html"].cms == "typo3" and found["html"].facts["layout"] == "composer"
    assert found["html/blog"].cms == nested and found["html/blog"].version == version


def test_composer_docroot_is_not_a_second_installation(tmp_path: Path) -> None:
    root, _ = _account(tmp_path, _plan("typo3", "12.4.10", "html", "composer"))
    assert set(_found(root)) == {"html"}  # html/public holds index.php, typo3temp, fileadmin


def test_two_classic_typo3_of_one_version_share_or_suffix_their_source(tmp_path: Path) -> None:
    """The fleet's ``typo3_src-12.4.9-2`` case: two classic TYPO3 12.4.9 in one account
    whose cores differ get source folders ``typo3_src-12.4.9`` and ``typo3_src-12.4.9-2``.
    Those are shared sources reached through the sites' ``typo3_src`` links, not sites:
    the detector was wrong to report the suffixed one (the ground truth was right)."""
    first = _plan("typo3", "12.4.9", "html")
    modified = InstallPlan(
        "typo3", "12.4.9", "cms", "classic", (), _typo3_modification(), None, False
    )
    root, records = _account(tmp_path, first, modified)
    assert (root / "typo3_src-12.4.9-2").is_dir()  # the generator did make a second source
    found = _found(root)
    assert set(found) == {r["path"] for r in records} == {"html", "cms"}
    assert found["cms"].facts.get("typo3_src_target", "").endswith("typo3_src-12.4.9-2")


def _typo3_modification():
    return FAMILIES["typo3"].customer_modifications[0]


@pytest.fixture(scope="module")
def big_fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seed 1 at 2,000 accounts holds both cases the SSH benchmark found: a classic TYPO3
    in ``html/blog`` below a composer project (p10783, missed before) and a suffixed
    source folder (p11168 ``typo3_src-12.4.9-2``, reported as a site before)."""
    dest = tmp_path_factory.mktemp("big-fleet") / "fleet"
    return generate_fleet(dest, 2000, seed=1, thin=True, hosts=FLEET_HOSTS)


def _assert_ground_truth(fleet: Path, res: kit.CliResult) -> None:
    assert res.code == 0, res.err
    assert res.json["errors"] == []  # also: no folder with a marker left unrecognised
    doc = kit.truth(fleet / "expected.json")
    want = sorted((acc, i["path"], i["cms"]) for acc, i in kit.truth_installations(doc))
    got = kit.scan_view(res.json)
    assert sorted(got) == want  # every expected installation exactly once, none extra
    assert ("p10783", "html/blog", "typo3") in got
    assert not any(path.startswith("typo3_src") for _acc, path, _cms in got)


def test_a_2000_account_fleet_matches_its_ground_truth_exactly(
    big_fleet: Path, tmp_path: Path
) -> None:
    _assert_ground_truth(big_fleet, kit.scan(tmp_path / "ledger.db", big_fleet / "accounts.yaml"))


def test_the_same_fleet_over_ssh_matches_it_too(
    big_fleet: Path, sshd_hosts: list[SSHHost], tmp_path: Path
) -> None:
    entries = {n: kit.ssh_host_entry(h) for n, h in zip(FLEET_HOSTS, sshd_hosts, strict=False)}
    inventory = kit.rewrite_hosts(big_fleet / "accounts.yaml", tmp_path / "accounts.yaml", entries)
    _assert_ground_truth(big_fleet, kit.scan(tmp_path / "ledger.db", inventory))


def test_copies_and_backups_inside_the_account_are_installations(tmp_path: Path) -> None:
    """Copies are usually as vulnerable as the site and forgotten: each is reported."""
    root, records = _account(
        tmp_path,
        _plan("wordpress", "6.4.2", "html"),
        _plan("wordpress", "6.4.1", "html/old"),
        _plan("wordpress", "6.4.0", "html_backup_2023"),
        _plan("typo3", "12.4.9", "backups/2023/site"),
    )
    found = _found(root)
    assert set(found) == {r["path"] for r in records}
    assert found["html_backup_2023"].version == "6.4.0"
    assert found["backups/2023/site"].cms == "typo3"


def test_an_installation_reached_through_an_in_account_link_is_counted_once(
    tmp_path: Path,
) -> None:
    root, _ = _account(tmp_path, _plan("wordpress", "6.4.2", "html"))
    (root / "www").symlink_to("html")  # a second name for the same docroot
    (root / "html/mirror").symlink_to(root / "html")  # absolute, inside the account
    assert set(_found(root)) == {"html"}  # found once, at its real path


def _found_in(root: Path, docroots: list[str]) -> tuple[dict[str, Installation], list]:
    with SafeRoot(root) as safe:
        found = list(find_installations(safe, docroots=docroots))
    insts = [f for f in found if isinstance(f, Installation)]
    assert len({i.path for i in insts}) == len(insts), [i.path for i in insts]
    return {i.path: i for i in insts}, [f for f in found if isinstance(f, ScanProblem)]


def test_an_installation_only_reachable_through_a_link_from_the_docroot_is_found(
    tmp_path: Path,
) -> None:
    """``html/blog -> ../blog``: with docroots [html] the blog lies outside every
    docroot and is reached only through the link; it is found once, as ``blog`` (its
    real path, where a rollout writes), also when the whole account is searched."""
    root, _ = _account(
        tmp_path, _plan("wordpress", "6.4.2", "html"), _plan("wordpress", "6.4.1", "blog")
    )
    (root / "html/blog").symlink_to("../blog")
    found, problems = _found_in(root, ["html"])
    assert problems == [] and set(found) == {"html", "blog"}
    assert found["blog"].version == "6.4.1"
    assert set(_found(root)) == {"html", "blog"}


def test_a_docroot_that_is_an_in_account_link_is_searched_at_its_target(
    tmp_path: Path,
) -> None:
    root, _ = _account(tmp_path, _plan("typo3", "12.4.9", "sites/main"))
    (root / "html").symlink_to("sites/main")
    (root / "www").symlink_to("html")  # a chain of two links, same folder
    found, problems = _found_in(root, ["html", "www"])
    assert problems == [] and set(found) == {"sites/main"}


def test_links_leaving_the_account_or_into_skipped_folders_are_not_searched(
    tmp_path: Path,
) -> None:
    other, _ = _account(tmp_path / "other", _plan("wordpress", "6.4.0", "html"))
    root, _ = _account(tmp_path / "own", _plan("wordpress", "6.4.2", "html"))
    (root / "html/neighbour").symlink_to(other / "html")  # another account
    (root / "html/up").symlink_to("../..")  # above the account root
    (root / "cache/site").mkdir(parents=True)
    _account(tmp_path / "own/cache", _plan("wordpress", "6.4.1", "site"))
    (root / "html/cached").symlink_to("../cache/p1/site")  # into a skipped folder
    _account(tmp_path / "own/html/wp-content", _plan("wordpress", "6.4.0", "old"))
    (root / "html/old").symlink_to("wp-content/p1/old")  # into the site's own folder
    found, problems = _found_in(root, ["html"])
    assert problems == [] and set(found) == {"html"}


class _GappyTypo3(Typo3Detector):
    """The TYPO3 detector as it was before issue 19: every subfolder of a composer project
    taken for its docroot. The guard must make that gap visible."""

    def detect(self, root: SafeRoot, path: str) -> Installation | None:
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        if path and root.is_dir(f"{parent}/{COMPOSER_CORE}" if parent else COMPOSER_CORE):
            return None
        return super().detect(root, path)


def test_completeness_guard_reports_a_marker_no_detector_recognised(tmp_path: Path) -> None:
    root, _ = _account(
        tmp_path,
        _plan("typo3", "12.4.10", "html", "composer"),
        _plan("typo3", "12.4.9", "html/blog"),
    )
    detectors = [d if d.name != "typo3" else _GappyTypo3() for d in DETECTORS]
    with SafeRoot(root) as safe:
        found = list(find_installations(safe, detectors=detectors))
    problems = [f for f in found if isinstance(f, ScanProblem)]
    assert [p.path for p in problems] == ["html/blog"]
    assert problems[0].message.startswith("unrecognised: typo3 marker typo3_src is here")
    assert {f.path for f in found if isinstance(f, Installation)} == {"html"}


def test_known_non_installations_are_not_unrecognised(tmp_path: Path) -> None:
    """Shared source folders, a composer docroot and a lone wp-config.php are no gaps."""
    root, _ = _account(
        tmp_path,
        _plan("typo3", "12.4.10", "html", "composer"),
        _plan("typo3", "12.4.9", "cms"),
    )
    (root / "subdomains").mkdir()
    (root / "subdomains" / "wp-config.php").write_text("<?php // config one level up\n")
    with SafeRoot(root) as safe:
        found = list(find_installations(safe))
    assert [f for f in found if isinstance(f, ScanProblem)] == []
    assert {f.path for f in found} == {"html", "cms"}


def test_two_cmss_side_by_side_in_one_docroot(tmp_path: Path) -> None:
    """A docroot holding a shop WordPress and a Roundcube webmail next to each other, and
    a TYPO3 in the docroot itself: three installations, each once."""
    root, records = _account(
        tmp_path,
        _plan("typo3", "12.4.9", "html"),
        _plan("wordpress", "6.4.1", "html/shop"),
        _plan("roundcube", "1.6.4", "html/webmail"),
    )
    found = _found(root)
    assert {p: i.cms for p, i in found.items()} == {
        "html": "typo3", "html/shop": "wordpress", "html/webmail": "roundcube"
    }  # fmt: skip
    assert set(found) == {r["path"] for r in records}


def test_a_second_cms_in_an_installation_folder_is_reported_not_dropped(tmp_path: Path) -> None:
    """One folder is one installation; a Roundcube unpacked into a WordPress's folder
    is reported ``unrecognised`` (the scan used to stop at the first detector)."""
    root, _ = _account(tmp_path, _plan("wordpress", "6.4.2", "html"))
    _account(tmp_path / "rc", _plan("roundcube", "1.6.4", "html"))
    for rel in ("program/include/iniset.php", "config/config.inc.php"):
        (root / "html" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "html" / rel).write_bytes((tmp_path / "rc/p1/html" / rel).read_bytes())
    found, problems = _found_in(root, ["html"])
    assert {p: i.cms for p, i in found.items()} == {"html": "wordpress"}
    assert [p.path for p in problems] == ["html"]
    assert problems[0].message.startswith(
        "unrecognised: roundcube marker program/include/iniset.php is here, but the folder "
        "is already reported as the wordpress installation (two CMSs in one folder"
    )
