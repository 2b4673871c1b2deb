"""One bundle across branches (issue 13, item 4): each ``--sibling`` pair yields its own
branch's variant, complete or not at all, and backports of that branch port from it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from patchd.bundle.manifest import load_bundle
from patchd.bundle.report import load_report
from patchd.cli.main import cli
from patchd.engine.apply import apply_file
from patchd.engine.parse import parse_diff
from patchd.ledger.db import open_ledger
from patchd_fixtures.siblings import (
    AJAX_ACTIONS,
    COMMENT_TEMPLATE,
    ESCAPE_NEW,
    FILE_PHP,
    HELPER_NEW,
    NONCE_NEW,
    ONE_SIBLING_NEW,
    PATH_CHECK_NEW,
    REFACTOR_NEW,
    SIBLINGS,
    SPLIT_OTHER_NEW,
    VERSION,
    write_family,
)
from tests.e2e import kit
from tests.support.sshd import SSHDFactory

FIXES = (ESCAPE_NEW, NONCE_NEW, PATH_CHECK_NEW, HELPER_NEW)
OTHERS = (SPLIT_OTHER_NEW, REFACTOR_NEW, ONE_SIBLING_NEW)


def _build(rel: dict[str, Path], out: Path, *extra: str) -> tuple[int, str]:
    args = ["build", str(rel["6.4.2"]), str(rel["6.4.3"]), "--id", "wp-branches",
            "--out", str(out), *extra]  # fmt: skip
    for old2, new2 in SIBLINGS:
        args += ["--sibling", str(rel[old2]), str(rel[new2])]
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_family(tmp_path_factory.mktemp("branches") / "rel", archive=False)


@pytest.fixture(scope="module")
def built(family: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out")
    code, output = _build(family, out)
    assert code == 0, output
    return out / "wp-branches"


def test_every_sibling_branch_gets_its_own_variant(built: Path) -> None:
    manifest = load_bundle(built).manifest
    assert manifest.affected == "6.4.0-6.4.2,6.3.0-6.3.2,6.2.0-6.2.3,6.1.0-6.1.4"
    assert [(v.versions, v.file, v.method) for v in manifest.variants] == [
        ("6.4.2", "patch.diff", "exact"),
        ("6.1.4", "variants/6.1.4.diff", "sibling"),
        ("6.2.3", "variants/6.2.3.diff", "sibling"),
        ("6.3.2", "variants/6.3.2.diff", "sibling"),
    ]
    report = load_report(built / "build-report.json")
    assert {v.version: (v.status, v.method) for v in report.variants} == {
        "6.1.4": ("ok", "sibling"),
        "6.2.3": ("ok", "sibling"),
        "6.3.2": ("ok", "sibling"),
    }


@pytest.mark.parametrize("old2", [old for old, _new in SIBLINGS])
def test_a_sibling_variant_is_the_siblings_own_fix_and_nothing_else(
    built: Path, family: dict[str, Path], old2: str
) -> None:
    patches = {fp.path: fp for fp in parse_diff((built / f"variants/{old2}.diff").read_bytes())}
    assert set(patches) == {AJAX_ACTIONS, FILE_PHP, COMMENT_TEMPLATE}
    patched_text = ""
    for path, fp in patches.items():
        out = apply_file(fp, (family[old2] / path).read_bytes(), fuzz=0)
        assert out.ok and out.content is not None
        assert all(h.offset == 0 and h.fuzz == 0 for h in out.hunks)
        patched_text += out.content.decode()
    for fix in FIXES:
        assert fix in patched_text, (old2, fix)
    for other in OTHERS:
        assert other not in patched_text, (old2, other)


def test_show_groups_variants_by_branch(built: Path) -> None:
    out = CliRunner().invoke(cli, ["show", str(built)]).output
    assert "  branch 6.4:\n    variant patch.diff: versions 6.4.2, 3 files, exact\n" in out
    assert "  branch 6.1:\n    variant variants/6.1.4.diff: versions 6.1.4, 3 files, sibling\n" in (
        out
    )


def test_a_sibling_without_part_of_the_fix_gets_no_variant(
    family: dict[str, Path], tmp_path: Path
) -> None:
    rel = dict(family)
    broken = tmp_path / "wordpress-6.2.4"
    shutil.copytree(family["6.2.4"], broken)
    target = broken / AJAX_ACTIONS
    target.write_text(target.read_text().replace(NONCE_NEW + "\n", ""))
    rel["6.2.4"] = broken
    code, output = _build(rel, tmp_path / "out")
    assert code == 0, output
    bundle = tmp_path / "out" / "wp-branches"
    versions = [v.versions for v in load_bundle(bundle).manifest.variants]
    assert "6.2.3" not in versions and "6.3.2" in versions and "6.1.4" in versions
    report = load_report(bundle / "build-report.json")
    (v623,) = [v for v in report.variants if v.version == "6.2.3"]
    assert v623.status == "manual"
    (m,) = v623.manual
    assert m.path == AJAX_ACTIONS
    assert m.reason.startswith("sibling 6.2.4 does not make this change of the fix: + check_ajax")
    assert "6.2.3" in report.uncovered  # its installations: no-variant, update needed


def test_a_backport_of_a_sibling_branch_is_ported_from_the_sibling(
    family: dict[str, Path], tmp_path: Path
) -> None:
    older = tmp_path / "wordpress-6.3.1"
    shutil.copytree(family["6.3.2"], older)
    version = older / VERSION
    version.write_text(version.read_text().replace("6.3.2", "6.3.1"))
    code, output = _build(family, tmp_path / "out", "--backport", str(older))
    assert code == 0, output
    bundle = tmp_path / "out" / "wp-branches"
    v631 = (bundle / "variants/6.3.1.diff").read_bytes()
    assert v631 == (bundle / "variants/6.3.2.diff").read_bytes()  # same code as 6.3.2
    methods = {v.versions: v.method for v in load_bundle(bundle).manifest.variants}
    assert methods["6.3.1"] == "exact"


# -- rolled out on a fleet with every branch -------------------------------------------


def _fleet(base: Path, family: dict[str, Path], host_entry: dict, host: str) -> Path:
    accounts = []
    for version in ("6.4.2", "6.3.2", "6.2.3", "6.1.4"):
        acct = f"br-{version.replace('.', '')}"
        shutil.copytree(family[version], base / "srv" / acct / "html")
        accounts.append(kit.account(acct, host, base / "srv" / acct, docroots=["html"]))
    (base / "backups").mkdir(mode=0o700)
    return kit.write_inventory(base / "accounts.yaml", {host: host_entry}, accounts)


def _rollout_and_check(base: Path, inv: Path, built: Path, family: dict[str, Path]) -> None:
    res = kit.patchd(
        base / "ledger.db", "rollout", str(built), "--accounts", str(inv),
        "--backup-dir", str(base / "backups"), "--yes", "--json",
    )  # fmt: skip
    assert res.code == 0, res.err
    outcomes = {r["account"]: r["outcome"] for r in res.json["results"]}
    with open_ledger(base / "ledger.db") as ledger:
        rows = ledger.query("SELECT account, variant FROM results")
    got = {r["account"]: (outcomes[r["account"]], r["variant"]) for r in rows}
    assert got == {
        "br-642": ("patched", "patch.diff"),
        "br-632": ("patched", "variants/6.3.2.diff"),
        "br-623": ("patched", "variants/6.2.3.diff"),
        "br-614": ("patched", "variants/6.1.4.diff"),
    }
    for version in ("6.3.2", "6.2.3", "6.1.4"):
        acct = f"br-{version.replace('.', '')}"
        for fp in parse_diff((built / f"variants/{version}.diff").read_bytes()):
            expected = apply_file(fp, (family[version] / fp.path).read_bytes(), fuzz=0).content
            assert (base / "srv" / acct / "html" / fp.path).read_bytes() == expected


def test_every_branch_patched_on_a_fleet_locally(
    built: Path, family: dict[str, Path], tmp_path: Path
) -> None:
    inv = _fleet(tmp_path, family, {"transport": "local"}, "web01")
    _rollout_and_check(tmp_path, inv, built, family)


def test_every_branch_patched_on_a_fleet_over_ssh(
    built: Path, family: dict[str, Path], tmp_path: Path, sshd_factory: SSHDFactory
) -> None:
    (host,) = sshd_factory(1)
    inv = _fleet(tmp_path, family, kit.ssh_host_entry(host), "ssh1")
    _rollout_and_check(tmp_path, inv, built, family)
