"""``patchd demo`` runs the whole pipeline and shows a realistic mix of outcomes."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from patchd.cli.main import cli
from patchd.demo import run_demo


def test_demo_shows_every_kind_of_outcome(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "demo")
    for outcome in ("patched", "already-patched", "not-affected", "skipped", "dry-run-failed"):
        assert result.outcomes[outcome] > 0, (outcome, result.outcomes)
    assert result.reasons["modified"] > 0, result.reasons
    assert result.reasons["php-incompatible"] > 0, result.reasons
    # the bundles were built in the demo folder, not taken from the repository
    assert sorted(p.name for p in (tmp_path / "demo" / "demo" / "patches").iterdir()) == [
        "rc-2026-001", "typo3-2026-001", "wp-2026-001",
    ]  # fmt: skip
    # the rerun of the first bundle patched nothing new
    assert len(result.runs) == 4


def test_demo_command_cleans_up_its_temporary_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    out = CliRunner().invoke(cli, ["demo", "--accounts", "20"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "outcomes over all runs" in out.output
    assert list(tmp_path.iterdir()) == []
