"""Ship the agent: an in-memory zip of the stdlib-only modules plus a bootstrap program.

The controller runs ``python3 -I -c BOOTSTRAP`` on a host (over SSH, or locally through the
same path) and writes :func:`frame` of :func:`build_package` to its stdin. The bootstrap
reads the 8-byte big-endian length and the zip, stores the zip in a private temporary file
(``mkstemp``: mode 0600, ``O_EXCL``), puts it first on ``sys.path``, and serves the agent on
the rest of stdin.

NOTE: on Linux the file is unlinked at once and imported through ``/proc/self/fd/N`` (the
descriptor stays open), so an agent killed with SIGKILL leaves nothing behind in /tmp;
elsewhere the file is removed when the agent ends. The agent reports the zip's sha256 in
``ping``, so the controller knows the host runs exactly the code it sent.

NOTE: this module runs on the controller only (it is not shipped) and may use Python 3.11.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import io
import json
import marshal
import struct
import sys
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

from patchd.errors import PatchdError

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
"""The folder of the ``patchd`` package whose modules are shipped."""

SHIPPED: tuple[str, ...] = (
    "__init__.py",
    "errors.py",
    "versions.py",
    "outcomes.py",
    "safefs.py",
    "engine/__init__.py",
    "engine/model.py",
    "engine/apply.py",
    "engine/paths.py",
    "cms/*.py",
    "patcher/*.py",
    "agent/*.py",
)
"""Files (globs, relative to the ``patchd`` folder) that make up the agent's zip."""

NOT_SHIPPED: frozenset[str] = frozenset({"agent/package.py"})
"""Controller-only files that match :data:`SHIPPED` but must stay behind."""

STUB_IF_IMPORTING_OTHERS: frozenset[str] = frozenset({"engine/__init__.py"})
"""Package ``__init__`` files replaced by a stub if they import beyond the shipped set.

NOTE: ``patchd/engine/__init__.py`` may re-export controller-side modules (parse, render);
the agent needs the package only as a namespace for model/apply/paths."""

FORBIDDEN_IMPORTS: frozenset[str] = frozenset(
    {"pydantic", "click", "rich", "unidiff", "yaml", "paramiko", "fabric", "jinja2", "git"}
)
"""Top-level packages that must never be imported by shipped code (not on the hosts)."""

_BOOTSTRAP_SOURCE = """\
import hashlib, os, struct, sys, tempfile
if sys.version_info < (3, 11):
    v = sys.version.split()[0]
    sys.stderr.write("patchd agent: python %s on this host is too old; needs 3.11+\\n" % v)
    sys.exit(4)
r = sys.stdin.buffer
h = r.read(8)
n = struct.unpack(">Q", h)[0] if len(h) == 8 else -1
z = r.read(n) if n >= 0 else b""
if n < 0 or len(z) < n:
    sys.stderr.write("patchd agent bootstrap: short read of the agent zip\\n")
    sys.exit(3)
fd, p = tempfile.mkstemp(prefix="patchd-agent-", suffix=".zip")
w = 0
while w < n:
    w += os.write(fd, z[w:])
q = "/proc/self/fd/%d" % fd
if os.path.exists(q):
    os.unlink(p)
    p = None
sys.path.insert(0, q if p is None else p)
try:
    from patchd.agent.server import main
    code = main(r, hashlib.sha256(z).hexdigest())
finally:
    if p is not None:
        os.unlink(p)
sys.exit(code)
"""

BOOTSTRAP: str = "exec(" + json.dumps(_BOOTSTRAP_SOURCE) + ")"
"""The program given to ``python3 -I -c``: one line, no single quotes, no ``!``.

NOTE: one line so that any login shell (even csh) passes it through a single-quoted word
unchanged; the real code is a JSON-escaped string literal that is ``exec``'d."""


class AgentPackageError(PatchdError):
    """The agent cannot be packaged (a shipped module imports something hosts lack)."""


@dataclass(frozen=True)
class AgentPackage:
    """The agent's zip and its digest."""

    data: bytes
    sha256: str
    members: tuple[str, ...]

    def frame(self) -> bytes:
        """The bytes written to the bootstrap's stdin: 8-byte length, then the zip."""
        return struct.pack(">Q", len(self.data)) + self.data


def bootstrap_argv(python: str) -> list[str]:
    """The argv that starts the agent with ``python`` (``-I``: see the note inside).

    NOTE: ``-I`` (isolated mode) keeps ``PYTHON*`` variables, the user site folder and the
    current folder off ``sys.path``; a ``json.py`` planted in a customer folder we happen to
    start in must not be imported by an agent running as root.
    """
    return [python, "-I", "-c", BOOTSTRAP]


_BUILD_LOCK = threading.Lock()


def build_package() -> AgentPackage:
    """Build the agent's zip once per process (deterministic: same sources, same sha256).

    NOTE: host threads open sessions at the same time; parsing the sources with ``ast``
    from several threads at once failed on Python 3.11 (scan over three hosts), so the
    first build runs under a lock and later calls get the cached package.
    """
    with _BUILD_LOCK:
        return _build_package()


@functools.cache
def _build_package() -> AgentPackage:
    files = _collect()
    _check_imports(files)
    files.update(_compiled(files))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[name])
    data = buffer.getvalue()
    return AgentPackage(
        data=data, sha256=hashlib.sha256(data).hexdigest(), members=tuple(sorted(files))
    )


def _compiled(files: dict[str, bytes]) -> dict[str, bytes]:
    """A ``.pyc`` beside every shipped ``.py``, for this interpreter's version.

    NOTE: zipimport compiled every module from source at each agent start (~0.1 s of a
    session's start). A host whose Python has another magic number ignores these and
    compiles the sources as before. Unchecked hash-based pycs (PEP 552): zipimport takes
    them without comparing times (the zip's are all 1980), and the zip stays deterministic.
    """
    out: dict[str, bytes] = {}
    for name, source in files.items():
        if not name.endswith(".py"):
            continue
        code = compile(source, name, "exec", dont_inherit=True, optimize=0)
        header = importlib.util.MAGIC_NUMBER + struct.pack("<I", 0b01)
        out[name + "c"] = header + importlib.util.source_hash(source) + marshal.dumps(code)
    return out


def _collect() -> dict[str, bytes]:
    """Map each shipped member name (``patchd/...``) to its source bytes."""
    files: dict[str, bytes] = {}
    for pattern in SHIPPED:
        for path in sorted(PACKAGE_ROOT.glob(pattern)):
            rel = path.relative_to(PACKAGE_ROOT).as_posix()
            if rel in NOT_SHIPPED or not path.is_file():
                continue
            files["patchd/" + rel] = path.read_bytes()
    for rel in STUB_IF_IMPORTING_OTHERS:
        name = "patchd/" + rel
        if name in files and _foreign_imports(name, files[name], _shipped_modules(files)):
            files[name] = b'"""Stub of this package for the patchd agent (see package.py)."""\n'
    return files


def _shipped_modules(files: dict[str, bytes]) -> frozenset[str]:
    """Dotted names of the modules and packages in ``files``, plus the declared ones.

    NOTE: declared-but-absent modules (e.g. ``patchd.engine.apply`` before it is written)
    count as shipped; importing them fails on the host with a clear ImportError, which an
    op reports as its error, rather than making every agent unbuildable.
    """
    names = set()
    for name in files:
        dotted = name.removesuffix(".py").replace("/", ".")
        names.add(dotted.removesuffix(".__init__"))
    for pattern in SHIPPED:
        if "*" not in pattern:
            dotted = "patchd." + pattern.removesuffix(".py").replace("/", ".")
            names.add(dotted.removesuffix(".__init__"))
    return frozenset(names)


def _check_imports(files: dict[str, bytes]) -> None:
    """Refuse to build if a shipped module imports something that is not stdlib or shipped."""
    shipped = _shipped_modules(files)
    problems = []
    for name, source in sorted(files.items()):
        problems.extend(f"{name}: imports {mod}" for mod in _foreign_imports(name, source, shipped))
    if problems:
        raise AgentPackageError(
            "the agent would not run on hosts: " + "; ".join(problems), where="agent package"
        )


def imported_modules(name: str, source: bytes) -> list[str]:
    """Absolute dotted names of the modules ``source`` (member ``name``) imports.

    ``from a import b`` gives ``a`` and ``a.b`` (``b`` may be a module or an attribute).
    Imports under ``if TYPE_CHECKING:`` are ignored (they never run).
    """
    tree = ast.parse(source, filename=name)
    dotted = name.removesuffix(".py").replace("/", ".")
    if dotted.endswith(".__init__"):
        package = dotted.removesuffix(".__init__")
    else:
        package = dotted.rpartition(".")[0]
    found: list[str] = []
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_from(package, node.module, node.level)
            found.append(base)
            found.extend(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """All nodes of ``tree`` except those inside ``if TYPE_CHECKING:`` blocks."""
    nodes: list[ast.AST] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        nodes.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return nodes


def _resolve_from(package: str, module: str | None, level: int) -> str:
    """The absolute module of ``from <level dots><module> import ...`` inside ``package``."""
    if level == 0:
        return module or ""
    parts = package.split(".")
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _is_patchd_module(dotted: str) -> bool:
    """Whether ``dotted`` (``patchd.x.y``) names a module or package in the source tree."""
    rel = Path(*dotted.split(".")[1:]) if "." in dotted else Path()
    return (PACKAGE_ROOT / rel).with_suffix(".py").is_file() or (
        PACKAGE_ROOT / rel / "__init__.py"
    ).is_file()


def _foreign_imports(name: str, source: bytes, shipped: frozenset[str]) -> list[str]:
    """The imports of ``source`` that hosts may lack: neither stdlib nor shipped."""
    foreign = []
    for module in imported_modules(name, source):
        top = module.partition(".")[0]
        if top == "patchd":
            # NOTE: ``from patchd.cms import DETECTORS`` also yields "patchd.cms.DETECTORS",
            # an attribute: only names that are real, unshipped modules are foreign.
            if module in shipped or not _is_patchd_module(module):
                continue
            foreign.append(module)
        elif top != "__future__" and (
            top in FORBIDDEN_IMPORTS or top not in sys.stdlib_module_names
        ):
            foreign.append(module)
    return sorted(set(foreign))
