"""Real PHP web servers for tests: ``php_servers`` starts ``php -S`` processes.

Each server is ``/usr/bin/php -S 127.0.0.1:PORT`` with a router script that serves
several sites by the name in the request's Host header (``http://NAME.test:PORT/``, with
``resolve: 127.0.0.1`` in the inventory), like a web server with virtual hosts: the
router runs the site's ``index.php`` (or the file asked for) from the site's docroot.

PHP's opcache is on in the built-in server (``cli-server``) with the production defaults
``validate_timestamps=1``, ``revalidate_freq=2``: right after a file is replaced, the old
code may still be served for up to three seconds (revalidate_freq counts whole
seconds), as on a real host.

Register with ``pytest_plugins = ["tests.support.phpserver"]`` in the top-level conftest.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.sshd import _die_with_parent, _free_port, stop_process

PHP = "/usr/bin/php"
START_TIMEOUT = 10.0

ROUTER = r"""<?php
// patchd test router: the site is the first label of the Host header.
$map = json_decode(file_get_contents(__DIR__ . '/sites.json'), true);
$name = strtolower(explode('.', explode(':', $_SERVER['HTTP_HOST'] ?? '')[0])[0]);
if (!isset($map[$name])) {
    http_response_code(404);
    echo "no site $name here";
    return true;
}
$root = $map[$name];
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH) ?: '/';
$file = realpath($root . $path);
if ($file === false || is_dir($file) || strpos($file, $root) !== 0) {
    $file = $root . '/index.php';
}
chdir(dirname($file));
require $file;
return true;
"""


@dataclass
class PHPServer:
    """One running ``php -S`` serving ``sites`` (name -> docroot)."""

    port: int
    sites: dict[str, Path]
    process: subprocess.Popen[bytes]
    log: Path

    def url(self, name: str) -> str:
        """The URL of site ``name`` (reach it with ``resolve: 127.0.0.1``)."""
        return f"http://{name}.test:{self.port}/"

    def stop(self) -> None:
        stop_process(self.process)


@dataclass
class PHPServers:
    """Starts servers under ``base``; stops them all at the end of the test."""

    base: Path
    servers: list[PHPServer] = field(default_factory=list)

    def __call__(
        self, sites: Mapping[str, Path], *, ini: Mapping[str, str] | None = None
    ) -> PHPServer:
        """Start a server for ``sites`` (name -> docroot); ``ini`` adds ``-d`` settings."""
        n = len(self.servers) + 1
        folder = self.base / f"php-{n}"
        folder.mkdir(parents=True)
        (folder / "router.php").write_text(ROUTER)
        resolved = {k.lower(): str(Path(v).resolve()) for k, v in sites.items()}
        (folder / "sites.json").write_text(json.dumps(resolved))
        port = _free_port()
        settings = {"display_errors": "0", "log_errors": "1", **(ini or {})}
        argv = [PHP, *(f"-d{k}={v}" for k, v in settings.items())]
        argv += ["-S", f"127.0.0.1:{port}", str(folder / "router.php")]
        log = folder / "server.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                argv,
                cwd=folder,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        server = PHPServer(port, {k: Path(v) for k, v in resolved.items()}, process, log)
        self.servers.append(server)
        _wait_listening(server)
        return server

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()


def _wait_listening(server: PHPServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.02)
    server.stop()
    raise RuntimeError(f"php -S on port {server.port} did not start: {server.log.read_text()}")


def get(url: str, *, resolve: str = "127.0.0.1", timeout: float = 10.0) -> tuple[int, str]:
    """(status, body) of a GET of ``url``, connecting to ``resolve`` (test helper)."""
    import httpx

    parsed = httpx.URL(url)
    target = parsed.copy_with(host=resolve)
    res = httpx.get(target, headers={"Host": parsed.netloc.decode()}, timeout=timeout)
    return res.status_code, res.text


@pytest.fixture
def php_servers(tmp_path: Path) -> Iterator[PHPServers]:
    """A factory of ``php -S`` servers, all stopped when the test ends."""
    servers = PHPServers(tmp_path / "php-servers")
    try:
        yield servers
    finally:
        servers.stop_all()
