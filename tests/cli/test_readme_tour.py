"""README.md's tour, verbatim, in the folder ``patchd demo --keep`` prints (issue 17).

The lines are read from README.md itself, so the README cannot drift from what runs.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def tour_lines(text: str) -> list[str]:
    """The commands of the ``## A tour`` section's sh block, continuations joined,
    comments kept out."""
    section = text.split("## A tour", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README.md's tour has no sh block"
    lines: list[str] = []
    pending = ""
    for raw in block[1].splitlines():
        line = pending + raw.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        command = " ".join(shlex.split(line, comments=True))
        if command:
            lines.append(line)
    return lines


def test_tour_lines_are_read() -> None:
    lines = tour_lines(README.read_text(encoding="utf-8"))
    assert lines[0].startswith("patchd build ") and "--backport wordpress-6.4.0" in lines[0]
    assert [shlex.split(x)[1] for x in lines] == [
        "build", "show", "test", "scan", "rollout", "rollout", "rollout", "report", "notify",
        "rollback",
    ]  # fmt: skip


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PATCHD_LEDGER", None)
    env.pop("PATCHD_MAIL_FROM", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "80"
    env["TMPDIR"] = str(tmp_path)
    return env


# NOTE: in CI (CI=true) php-cli is installed by scripts/test.sh, so the tour never skips there.
@pytest.mark.skipif(
    shutil.which("php") is None and not os.environ.get("CI"),
    reason="the tour's build lints with php -l",
)
def test_the_readme_tour_runs_verbatim(tmp_path: Path) -> None:
    env = _env(tmp_path)
    demo = subprocess.run(
        ["patchd", "demo", "--keep", "--accounts", "10"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout + demo.stderr
    folder = Path(
        demo.stdout.split(
            "cd ",
        )[-1].split()[0]
    )
    assert folder.is_dir() and folder.parent == tmp_path
    outputs: list[subprocess.CompletedProcess[str]] = []
    for line in tour_lines(README.read_text(encoding="utf-8")):
        done = subprocess.run(
            ["bash", "-c", line], cwd=folder, env=env, capture_output=True, text=True,
            timeout=600, check=False,
        )  # fmt: skip
        command = shlex.split(line)[1]
        # a dry run and a rollout exit 1 when some installation failed (modified files)
        allowed = (0, 1) if command == "rollout" else (0,)
        assert done.returncode in allowed, f"$ {line}\n{done.stdout}\n{done.stderr}"
        outputs.append(done)
    build, _show, _test, scan, dry, canary, rest, _report, notify, rollback = outputs
    # every affected version has a variant: nothing is left outside silently
    assert "no variant covers" not in build.stderr
    assert "variants: 6.4.2, 6.4.0, 6.4.1" in build.stdout
    flat = [" ".join(o.stdout.split()) for o in outputs]
    assert "scan 1" in flat[3]
    assert "summary of run 1 (dry run, nothing written: " in flat[4]
    assert "success rate" not in dry.stdout
    assert "summary of run 2 (" in flat[5] and "summary of run 3 (" in flat[6]
    backups = folder / ".patchd" / "backups"
    assert f"backups go to {backups} on web01" in canary.stderr
    assert backups.is_dir() and not (folder / "patches" / "wp-2026-001" / "backups").exists()
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert "wp-2026-001" in html and 'id="success-rate"' in html
    mails = sorted((folder / "mails").glob("*.eml"))
    assert mails, notify.stdout
    subjects = [
        line for m in mails for line in m.read_text().splitlines() if line.startswith("Subject:")
    ]
    assert subjects and not any("wordpress 6.4.3" in s for s in subjects), subjects
    assert "restored" in rollback.stdout and "p10004" in rollback.stdout
    assert "run 3" in rollback.stdout
    assert scan.returncode == 0 and rest.returncode in (0, 1)
    shutil.rmtree(folder)
