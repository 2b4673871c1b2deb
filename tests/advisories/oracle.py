"""composer/semver itself (Debian's php-composer-semver) as the oracle of the constraint tests."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from patchd.advisories.constraints import parse_constraint

AUTOLOAD = Path("/usr/share/php/Composer/Semver/autoload.php")
SCRIPT = Path(__file__).with_name("composer_oracle.php")


def available() -> bool:
    """Whether php and composer/semver are installed (scripts/test.sh installs both)."""
    return shutil.which("php") is not None and AUTOLOAD.is_file()


class Composer:
    """One php process answering (constraint, version) pairs, a line each way."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            ["php", str(SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def answer(self, constraint: str, version: str) -> str:
        """'1', '0', 'C' (bad constraint) or 'V' (bad version), as composer says."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps([constraint, version]) + "\n")
        self._proc.stdin.flush()
        return self._proc.stdout.readline().strip()

    def answers(self, pairs: list[tuple[str, str]]) -> list[str]:
        return [self.answer(c, v) for c, v in pairs]

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait(timeout=30)


def python_answer(constraint: str, version: str) -> str:
    """patchd's verdict in the oracle's words."""
    try:
        c = parse_constraint(constraint)
    except ValueError:
        return "C"
    try:
        return "1" if c.matches(version) else "0"
    except ValueError:
        return "V"
