"""The agent's zip: what it holds, that hosts can run it, and the bootstrap program."""

from __future__ import annotations

import ast
import io
import subprocess
import sys
import zipfile
from pathlib import Path

from patchd.agent import package
from patchd.agent.package import BOOTSTRAP, _build_package, build_package, imported_modules

FORBIDDEN = {"pydantic", "click", "rich", "unidiff", "yaml", "paramiko"}


def test_zip_holds_the_stdlib_only_modules_and_not_the_packager() -> None:
    members = set(zipfile.ZipFile(io.BytesIO(build_package().data)).namelist())
    for name in (
        "patchd/__init__.py",
        "patchd/errors.py",
        "patchd/versions.py",
        "patchd/safefs.py",
        "patchd/engine/__init__.py",
        "patchd/engine/model.py",
        "patchd/cms/__init__.py",
        "patchd/cms/search.py",
        "patchd/agent/server.py",
        "patchd/agent/ops.py",
        "patchd/agent/protocol.py",
    ):
        assert name in members
    assert "patchd/agent/package.py" not in members
    assert not any(m.startswith(("patchd/transport/", "patchd/cli/")) for m in members)


def test_no_shipped_module_imports_a_controller_dependency() -> None:
    archive = zipfile.ZipFile(io.BytesIO(build_package().data))
    for name in archive.namelist():
        if name.endswith(".pyc"):
            continue
        tree = ast.parse(archive.read(name), filename=name)
        tops = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                tops |= {alias.name.partition(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops.add(node.module.partition(".")[0])
        assert not tops & FORBIDDEN, f"{name} imports {tops & FORBIDDEN}"


def test_package_is_deterministic_and_its_digest_matches() -> None:
    built = build_package()
    _build_package.cache_clear()
    again = build_package()
    assert again.data == built.data and again.sha256 == built.sha256
    assert again.frame()[:8] == len(again.data).to_bytes(8, "big")


def test_foreign_imports_are_found_including_relative_and_lazy_ones() -> None:
    source = (
        b"from __future__ import annotations\n"
        b"import os.path\n"
        b"from typing import TYPE_CHECKING\n"
        b"from . import interface\n"
        b"from ..errors import PatchdError\n"
        b"from patchd.cms import DETECTORS\n"
        b"if TYPE_CHECKING:\n"
        b"    import pydantic\n"
        b"def f():\n"
        b"    import yaml\n"
        b"    from patchd.engine import parse\n"
    )
    shipped = frozenset(
        {"patchd", "patchd.errors", "patchd.engine", "patchd.cms", "patchd.cms.interface"}
    )
    assert "patchd.errors.PatchdError" in imported_modules("patchd/cms/x.py", source)
    foreign = package._foreign_imports("patchd/cms/x.py", source, shipped)
    assert foreign == ["patchd.engine.parse", "yaml"]


def test_engine_init_importing_controller_code_is_replaced_by_a_stub() -> None:
    heavy = b"from patchd.engine.parse import parse_diff\n"
    shipped = package._shipped_modules({"patchd/engine/__init__.py": heavy})
    assert package._foreign_imports("patchd/engine/__init__.py", heavy, shipped)


def test_bootstrap_is_one_shell_safe_line() -> None:
    assert "\n" not in BOOTSTRAP and "'" not in BOOTSTRAP and "!" not in BOOTSTRAP
    compile(BOOTSTRAP, "<bootstrap>", "exec")


def test_bootstrap_refuses_a_short_zip_and_leaves_no_file() -> None:
    done = subprocess.run(
        package.bootstrap_argv(sys.executable),
        input=(1000).to_bytes(8, "big") + b"PK",
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 3
    assert b"short read" in done.stderr
    assert done.stdout == b""


def test_hosts_with_this_python_import_the_compiled_modules(tmp_path: Path) -> None:
    """Every shipped module has a pyc beside it, which zipimport takes instead of compiling
    the source (the code's file name is the one it was compiled with, not the zip's path);
    a pyc of another Python (other magic number) is passed over for the source."""
    import zipimport

    built = build_package()
    members = set(zipfile.ZipFile(io.BytesIO(built.data)).namelist())
    sources = {m for m in members if m.endswith(".py")}
    assert {m + "c" for m in sources} == members - sources
    path = tmp_path / "agent.zip"
    path.write_bytes(built.data)
    code = zipimport.zipimporter(f"{path}/patchd/agent").get_code("patchd.agent.server")
    assert code.co_filename == "patchd/agent/server.py"
    stale = tmp_path / "stale.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(stale, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, b"\0\0\r\n" + data[4:] if name.endswith(".pyc") else data)
    code = zipimport.zipimporter(f"{stale}/patchd/agent").get_code("patchd.agent.server")
    assert code.co_filename == f"{stale}/patchd/agent/server.py"
