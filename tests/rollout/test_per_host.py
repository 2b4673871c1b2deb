"""``--per-host N``: several agent sessions per host give the same results as one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e import kit


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kit.build_bundle(tmp_path_factory.mktemp("bundle") / "b", bundle_id="wp-per-host")


def _fleet(base: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "patchd_fixtures.fleet", "--accounts", "30", "--out", str(base),
         "--hosts", "web01,web02", "--seed", "11"],
        check=True, capture_output=True,
    )  # fmt: skip
    return base


@pytest.mark.parametrize("per_host", [1, 3])
def test_sessions_per_host_patch_every_installation_once(
    per_host: int, bundle: Path, tmp_path: Path
) -> None:
    fleet = _fleet(tmp_path / "fleet")
    backups = tmp_path / "backups"
    backups.mkdir(mode=0o700)
    res = kit.patchd(
        tmp_path / "ledger.db", "rollout", str(bundle), "--accounts",
        str(fleet / "accounts.yaml"), "--backup-dir", str(backups), "--yes", "--json",
        "--batch", "2", "--per-host", str(per_host),
    )  # fmt: skip
    assert res.code in (0, 1), res.err
    got = kit.verdicts(res.json["results"])
    expected = kit.expected_verdicts(fleet / "expected.json")
    assert {k: v for k, v in got.items() if k in expected} == expected
    for (acct, path), (outcome, _reason) in got.items():
        if outcome == "patched":
            assert kit.wp_state(fleet / "accounts" / acct / path) == "post"
    # every patched installation has exactly one finished journal
    journals = list(backups.glob("*/*/journal.json"))
    assert len(journals) == sum(1 for v in got.values() if v[0] == "patched")
