"""PHP checks of a dry run: the account's PHP version, and ``php -l`` on the patched files.

Linting never touches the account: each patched file is written to a private temp folder
outside it and ``php -n -l`` (no php.ini, lint only: nothing is executed) runs there with a
timeout, an empty environment and no stdin. A ``php_binary`` inside the account root is
refused: running a customer-controlled binary as root would hand out the machine.

NOTE: stdlib-only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

from patchd.patcher.names import show
from patchd.versions import Version

#: File name endings that are linted.
PHP_SUFFIXES = (".php", ".phtml", ".inc")
LINT_TIMEOUT = 30.0


def php_version_problem(min_php: str | None, account_php: str | None) -> str | None:
    """None when the account's PHP is new enough (or either side is unknown), else a detail
    like ``bundle needs PHP >= 8.1, account has 7.4``.
    """
    if not min_php or not account_php:
        return None
    try:
        need, have = Version.parse(min_php), Version.parse(account_php)
    except ValueError as exc:
        return f"cannot compare PHP versions ({exc})"
    if have < need:
        return f"bundle needs PHP >= {min_php}, account has {account_php}"
    return None


def _inside(path: str, root: str) -> bool:
    real, base = os.path.realpath(path), os.path.realpath(root).rstrip("/") + "/"
    return real == base.rstrip("/") or real.startswith(base)


def binary_version(php_binary: str, root_path: str, *, timeout: float = 10.0) -> str | None:
    """The ``major.minor`` version of the hoster's ``php_binary`` (None if it cannot tell).

    NOTE: a binary inside the account is the customer's and is never run.
    """
    if _inside(php_binary, root_path) or not os.path.isabs(php_binary):
        return None
    try:
        done = subprocess.run(
            [php_binary, "-n", "-r", "echo PHP_MAJOR_VERSION, '.', PHP_MINOR_VERSION;"],
            capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = done.stdout.decode("ascii", "replace").strip()
    return text if done.returncode == 0 and re.fullmatch(r"\d+\.\d+", text) else None


def lint_files(
    php_binary: str,
    root_path: str,
    files: list[tuple[str, bytes]],
    *,
    timeout: float = LINT_TIMEOUT,
) -> str | None:
    """Lint each ``(display rel, content)`` with ``php_binary -n -l``; the first problem as
    ``<rel>: <first error line>``, or None when all pass. Only PHP-named files are linted.
    """
    todo = [(rel, data) for rel, data in files if rel.lower().endswith(PHP_SUFFIXES)]
    if not todo:
        return None
    if _inside(php_binary, root_path):
        return f"PHP binary {show(php_binary)} lies inside the account; not running it"
    tmp = tempfile.mkdtemp(prefix="patchd-lint-")
    try:
        if _inside(tmp, root_path):
            return "temporary folder for linting lies inside the account; not linting there"
        for n, (rel, data) in enumerate(todo):
            name = f"{n:04d}.php"
            path = os.path.join(tmp, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            problem = _lint_one(php_binary, tmp, name, timeout)
            if problem is not None:
                return f"{show(rel)}: {problem.replace(path, show(rel)).replace(name, show(rel))}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return None


def _lint_one(php_binary: str, folder: str, name: str, timeout: float) -> str | None:
    """Run the linter on ``folder/name``; its first error line, or None when clean."""
    try:
        proc = subprocess.run(
            [php_binary, "-n", "-d", "display_errors=1", "-l", name],
            cwd=folder,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"php -l did not finish within {timeout:g} s"
    except OSError as exc:
        return f"cannot run {show(php_binary)}: {exc.strerror}"
    if proc.returncode == 0:
        return None
    text = (proc.stdout + b"\n" + proc.stderr).decode("utf-8", "backslashreplace")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith("Errors parsing")]
    first = (useful or lines or [f"php -l exited with {proc.returncode}"])[0]
    return first if first.startswith("PHP ") else f"PHP {first}"
