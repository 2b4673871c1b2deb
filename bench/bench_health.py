"""Benchmark: what the post-apply health check costs a rollout (issue 14).

``--sites`` WordPress installations (default 1,000), each with a front page that really
runs (``tests/e2e/sites.py``), are served by ``--servers`` ``php -S`` processes (default
8; each a router serving its share of the sites by the Host header, opcache on with the
production defaults) and spread over ``--hosts`` local inventory hosts (default 4) with
``resolve: 127.0.0.1``. All sites stay healthy, so every check ends ``patched``.

Measured, ``--runs`` times each (default 3), alternating, medians:

- ``rollout --no-health-check`` (the baseline);
- ``rollout`` with the check and ``--health-settle 0`` (the cost of the fetches alone:
  a baseline and one fetch after per site);
- ``rollout`` with the check at its defaults (``--health-settle 3``: opcache's window,
  see docs/operator.md).

Between runs the fleet is put back with ``patchd rollback`` (not timed), so every run
applies to all sites. Also: fetching every site once through
:class:`patchd.health.checker.HealthChecker` (``--health-per-host`` requests per host),
cold and warm: wall time and time per fetch at that concurrency.

Usage: ``python bench/bench_health.py [--sites 1000] [--servers 8] [--hosts 4]
[--runs 3] [--per-host 4] [--base /dev/shm] [--keep]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from patchd.health.checker import HealthChecker, SiteURL  # noqa: E402
from tests.e2e import kit, sites  # noqa: E402
from tests.support.phpserver import PHPServer, PHPServers  # noqa: E402

CONFIGS: dict[str, tuple[str, ...]] = {
    "no check": ("--no-health-check",),
    "check, settle 0": ("--health-settle", "0"),
    "check, default (settle 3)": (),
}


def _fleet(base: Path, n_sites: int, n_servers: int, n_hosts: int) -> tuple[Path, list]:
    """Write the sites and the inventory; start the servers. (inventory, servers)"""
    srv = base / "srv"
    names = [f"s{i:05d}" for i in range(n_sites)]
    docroots = {name: sites.install_site(srv / name, name) for name in names}
    servers = PHPServers(base / "php")
    started: list[PHPServer] = []
    for k in range(n_servers):
        share = {name: docroots[name] for name in names[k::n_servers]}
        started.append(servers(share))
    url_of = {name: s.url(name) for s in started for name in s.sites}
    hosts = {f"web{h}": {"transport": "local", "resolve": "127.0.0.1"} for h in range(n_hosts)}
    accounts = [
        kit.account(
            name,
            f"web{i % n_hosts}",
            srv / name,
            docroots=["html"],
            sites=[{"path": "html", "url": url_of[name]}],
        )
        for i, name in enumerate(names)
    ]
    inventory = kit.write_inventory(base / "accounts.yaml", hosts, accounts)
    return inventory, [servers]


def _rollout(base: Path, inventory: Path, bundle: Path, extra: tuple[str, ...]) -> float:
    ledger = base / "ledger.db"
    backups = base / "backups"
    backups.mkdir(mode=0o700, exist_ok=True)
    argv = kit.patchd_argv(
        ledger, "rollout", str(bundle), "--accounts", str(inventory),
        "--backup-dir", str(backups), "--yes", "--json", "--scan", str(_scan_id(base)),
        *extra,
    )  # fmt: skip
    start = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    took = time.monotonic() - start
    data = json.loads(done.stdout)
    if data["summary"] != {"patched": len(inventory_sites(inventory))}:
        raise SystemExit(f"unexpected outcomes {data['summary']}: {done.stderr[-2000:]}")
    back = subprocess.run(
        kit.patchd_argv(ledger, "rollback", str(data["run"]), "--accounts", str(inventory),
                        "--yes", "--json"),
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if back.returncode != 0:
        raise SystemExit(f"rollback failed: {back.stderr[-2000:]}")
    return took


_SCAN: dict[Path, int] = {}


def _scan_id(base: Path) -> int:
    return _SCAN[base]


def inventory_sites(inventory: Path) -> list[str]:
    import yaml

    return [a["id"] for a in yaml.safe_load(inventory.read_text())["accounts"]]


def _scan(base: Path, inventory: Path) -> None:
    done = subprocess.run(
        kit.patchd_argv(base / "ledger.db", "scan", "--accounts", str(inventory), "--json"),
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    _SCAN[base] = json.loads(done.stdout)["scan"]


def _fetch_latency(inventory: Path, per_host: int) -> dict[str, float]:
    """Fetching every site once, cold (opcache empty) then warm: the wall time and the
    time per fetch at this concurrency (``--health-per-host`` per inventory host)."""
    import yaml

    data = yaml.safe_load(inventory.read_text())
    out: dict[str, float] = {"fetches": len(data["accounts"])}
    with HealthChecker(per_host=per_host, timeout=10, settle=0) as checker:
        for label in ("cold", "warm"):
            wall = time.monotonic()
            futures: list[Future] = [
                checker.baseline(a["host"], SiteURL(a["sites"][0]["url"], "127.0.0.1"))
                for a in data["accounts"]
            ]
            pages = [f.result() for f in futures]
            wall = time.monotonic() - wall
            if any(p.status != 200 for p in pages):
                raise SystemExit("a site did not answer 200")
            out[f"{label}_wall_s"] = round(wall, 3)
            out[f"{label}_ms_per_fetch"] = round(1000 * wall / len(pages), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument("--servers", type=int, default=8)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--per-host", type=int, default=4)
    parser.add_argument("--base", type=Path, default=Path("/dev/shm"))
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="patchd-bench-health-", dir=args.base))
    servers: list[PHPServers] = []
    try:
        t0 = time.monotonic()
        inventory, servers = _fleet(base, args.sites, args.servers, args.hosts)
        bundle = sites.build_bundle(base / "bundle")
        _scan(base, inventory)
        setup = time.monotonic() - t0
        latency = _fetch_latency(inventory, args.per_host)
        times: dict[str, list[float]] = {name: [] for name in CONFIGS}
        for _ in range(args.runs):
            for name, extra in CONFIGS.items():
                per_host = ("--health-per-host", str(args.per_host))
                took = _rollout(base, inventory, bundle, (*extra, *per_host))
                times[name].append(round(took, 3))
        medians = {name: round(statistics.median(ts), 3) for name, ts in times.items()}
        none = medians["no check"]
        result = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.platform()}; nproc {_nproc()}",
            "php": subprocess.run(["php", "-v"], capture_output=True, text=True).stdout.split("\n")[
                0
            ],
            "sites": args.sites,
            "servers": args.servers,
            "hosts": args.hosts,
            "health_per_host": args.per_host,
            "setup_s": round(setup, 1),
            "fetch": latency,
            "runs_s": times,
            "median_s": medians,
            "added_per_site_ms": {
                name: round(1000 * (m - none) / args.sites, 2)
                for name, m in medians.items()
                if name != "no check"
            },
        }
        print(json.dumps(result, indent=2))
    finally:
        for s in servers:
            s.stop_all()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


def _nproc() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()
