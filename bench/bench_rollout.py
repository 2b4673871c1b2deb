"""Benchmark: ``patchd rollout`` locally, over SSH, and the controller's peak memory.

(a) local rollout over a generated fleet of ``--installations`` installations (default
    10,000, all WordPress-shaped so that the bundle's CMS is everywhere; ``--families all``
    for the mixed fleet) on ``/dev/shm``, against a bash loop of GNU ``patch --dry-run``
    then ``patch`` per installation on an identical copy of the fleet. Verdicts per
    installation (patchd ``patched`` = GNU applied, any other outcome = GNU did not) and
    the resulting security files must be the same. Each side runs ``--runs`` times on a
    fresh copy; medians and the ratio are reported (target: >= 5x).
(b) rollout over 4 loopback sshd hosts with ``--ssh-accounts`` accounts each (default
    1,000; target: under 60 s).
(c) peak resident memory of the controller process alone (``VmHWM`` of its pid, sampled
    until it exits; the agents are other processes) for a dry-run rollout with a fresh
    scan over a thin fleet (only the files detectors and bundles read; same scan results)
    of ``--mem-installations`` installations (default 50,000; target: under 300 MB).

The bundle is ``patches/wp-2026-001`` (built by ``patchd build`` from the fixture
releases). The GNU loop is given, per installation, its folder, the variant diff of its
version and its mode from the fleet's ground truth (``patch --dry-run`` only for accounts
whose policy is not ``auto`` and for PHP older than the bundle's minimum, which patchd
dry-runs without writing): it scans and matches nothing. With ``--prescan`` patchd is
timed on a stored scan (``rollout --scan ID``, the scan untimed) the same way; without it,
the rollout's own fresh scan is timed too. GNU patch runs with ``-F0`` (no fuzz), as
patchd never applies a hunk whose context differs: with its default fuzz 2, GNU patch
would apply hunks over customer-modified context lines. The fleet's accounts are owned by
root (``uid: 0``), like the GNU loop running as root: no privilege drop on either side.

Usage: ``python bench/bench_rollout.py [--installations N] [--families wordpress|all]
[--prescan] [--per-host N] [--ssh-accounts N] [--mem-installations N] [--runs 3]
[--parts a,b,c] [--base /dev/shm] [--profile FILE] [--agent-profile DIR]``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from patchd.bundle.manifest import load_bundle  # noqa: E402
from patchd_fixtures.fleet import generate_fleet  # noqa: E402
from tests.e2e import kit  # noqa: E402

BUNDLE = ROOT / "patches" / "wp-2026-001"
TARGET_RATIO = 5.0
TARGET_SSH_SECONDS = 60.0
TARGET_MB = 300.0


def _rollout_argv(fleet: Path, *extra: str) -> list[str]:
    backups = fleet / "backups"
    backups.mkdir(mode=0o700, exist_ok=True)
    return kit.patchd_argv(
        fleet / "ledger.db",
        "rollout", str(BUNDLE), "--accounts", str(fleet / "accounts.yaml"),
        "--backup-dir", str(backups), "--yes", "--json", *extra,
    )  # fmt: skip


def _run_patchd(
    fleet: Path, *extra: str, agent_profile: Path | None = None
) -> tuple[float, dict, float]:
    """(wall seconds, JSON output, controller peak MB). ``agent_profile``: a folder where
    every agent writes its cProfile (``PATCHD_AGENT_PROFILE``)."""
    env = dict(os.environ)
    if agent_profile is not None:
        agent_profile.mkdir(parents=True, exist_ok=True)
        env["PATCHD_AGENT_PROFILE"] = str(agent_profile)
    # NOTE: output goes to files: a full pipe would block patchd while we sample its memory.
    out_path, err_path = fleet / "rollout.out", fleet / "rollout.err"
    with out_path.open("w") as out_fh, err_path.open("w") as err_fh:
        start = time.perf_counter()
        proc = subprocess.Popen(_rollout_argv(fleet, *extra), stdout=out_fh, stderr=err_fh, env=env)
        peak = _watch_hwm(proc)
        proc.wait()
        wall = time.perf_counter() - start
    out, err = out_path.read_text(), err_path.read_text()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"patchd failed ({proc.returncode}): {err}")
    return wall, json.loads(out), peak


def _watch_hwm(proc: subprocess.Popen[bytes]) -> float:
    """Sample the process's VmHWM (peak RSS, this process only) until it exits; MB."""
    peak = 0
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            break
        time.sleep(0.05)
    return peak / 1024


def _gnu_jobs(fleet: Path) -> list[tuple[str, str, str, str, str]]:
    """What the GNU loop does per installation of the fleet: ``(account, path, folder,
    diff, mode)``; ``mode`` is ``apply`` (``patch --dry-run``, then ``patch`` if that
    succeeded) or ``dry`` (``patch --dry-run`` only).

    The loop gets for free what patchd works out itself: the variant diff of the
    installed version (``patch.diff`` for versions outside the bundle) and the mode the
    inventory implies: ``dry`` for accounts whose policy is not ``auto`` and for PHP
    older than the bundle's minimum (patchd dry-runs those and writes nothing).
    """
    bundle = load_bundle(BUNDLE)
    expected = kit.expected_verdicts(fleet / "expected.json", min_php=bundle.manifest.min_php)
    data = json.loads((fleet / "expected.json").read_text())
    jobs = []
    for acct, info in sorted(data["accounts"].items()):
        for inst in info["installations"]:
            variant = bundle.variant_for(inst["version"]) if inst["cms"] == "wordpress" else None
            diff = BUNDLE / (variant.file if variant is not None else "patch.diff")
            verdict = expected[(acct, inst["path"])]
            skip = verdict[0] == "skipped" or verdict == ("dry-run-failed", "php-incompatible")
            folder = str(Path(info["root"]) / inst["path"])
            jobs.append((acct, inst["path"], folder, str(diff), "dry" if skip else "apply"))
    return jobs


def _gnu_loop(fleet: Path) -> tuple[float, dict[tuple[str, str], str], dict[str, int]]:
    """Time a bash loop of ``patch --dry-run`` then ``patch`` per installation.

    Returns (wall seconds, (account, path) -> "patched"/"failed", counts).
    """
    jobs = _gnu_jobs(fleet)
    listing = fleet / "gnu-list.tsv"
    listing.write_text("".join(f"{f}\t{d}\t{m}\t{a}\t{p}\n" for a, p, f, d, m in jobs))
    script = (
        "while IFS=$'\\t' read -r dir diff mode acct path; do "
        'if patch -p1 -s -f -F0 --dry-run -d "$dir" -i "$diff" >/dev/null 2>&1; then '
        'if [ "$mode" = apply ]; then '
        'patch -p1 -s -f -F0 -d "$dir" -i "$diff" >/dev/null 2>&1 && echo "$acct $path patched"; '
        'else echo "$acct $path dry-ok"; fi; '
        'else echo "$acct $path failed"; fi; '
        f'done < "{listing}"'
    )
    start = time.perf_counter()
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    verdicts: dict[tuple[str, str], str] = {}
    counts = {"patched": 0, "dry-ok": 0, "failed": 0}
    for line in done.stdout.splitlines():
        acct, path, verdict = line.split(" ")
        verdicts[(acct, path)] = "patched" if verdict == "patched" else "failed"
        counts[verdict] += 1
    if len(verdicts) != len(jobs):
        raise SystemExit(f"GNU loop reported {len(verdicts)} of {len(jobs)} installations")
    counts["installations"] = len(jobs)
    counts["patch_runs"] = len(jobs) + counts["patched"]
    return wall, verdicts, counts


def _security_state(fleet: Path) -> dict[str, str]:
    """sha256 of every security file of every WordPress installation (relative names)."""
    out = {}
    for acct, path, folder, _diff, _mode in _gnu_jobs(fleet):
        for rel in kit.WP_FILES:
            file = Path(folder) / rel
            if file.exists():
                out[f"{acct}/{path}/{rel}"] = kit.sha(file.read_bytes())
    return out


def _accounts_for(installations: int, families: tuple[str, ...] | None) -> int:
    """The fewest accounts whose fleet (seed 1) holds at least ``installations``."""
    from patchd_fixtures.fleet_plan import plan_fleet

    total = 0
    for n, acc in enumerate(plan_fleet(installations, families=families), 1):
        total += len(acc.installs)
        if total >= installations:
            return n
    return installations


def _fresh(
    base: Path,
    name: str,
    accounts: int,
    hosts: list[str],
    families: tuple[str, ...] | None = None,
) -> Path:
    """A freshly generated fleet at ``base/name`` (same seed: identical every time).

    NOTE: generated, not copied: a 10,000-account fleet is ~800,000 inodes and tmpfs has
    room for about two at a time next to other users.
    """
    dest = base / name
    shutil.rmtree(dest, ignore_errors=True)
    generate_fleet(dest, accounts, hosts=hosts, families=families)
    return dest


def _prescan(fleet: Path) -> list[str]:
    """Scan ``fleet`` (untimed) and return the rollout options that reuse that scan.

    NOTE: the GNU loop is handed its list of installations; with ``--prescan`` patchd
    gets a stored scan the same way (``rollout --scan ID``), so only the rollout is timed.
    """
    subprocess.run(
        kit.patchd_argv(fleet / "ledger.db", "scan", "--accounts", str(fleet / "accounts.yaml"),
                        "--format", "csv"),
        check=True, capture_output=True,
    )  # fmt: skip
    return ["--scan", "1"]


def part_a(
    base: Path,
    installations: int,
    runs: int,
    profile: Path | None,
    prescan: bool = False,
    per_host: int = 1,
    families: tuple[str, ...] | None = ("wordpress",),
    agent_profile: Path | None = None,
) -> dict[str, object]:
    accounts = _accounts_for(installations, families)
    mode = "stored scan (rollout --scan ID)" if prescan else "fresh scan"
    print(
        f"(a) local rollout, {mode}, {installations} installations of "
        f"{','.join(families or ('all',))} in {accounts} accounts, per-host {per_host}, "
        f"{runs} runs",
        flush=True,
    )
    p_times, g_times, peaks = [], [], []
    for n in range(runs):
        mine = _fresh(base, "a-patchd", accounts, ["web01", "web02"], families)
        extra = [*(_prescan(mine) if prescan else []), "--per-host", str(per_host)]
        if profile and n == 0:
            wall, data, peak = _profiled(mine, profile, *extra)
        else:
            wall, data, peak = _run_patchd(mine, *extra, agent_profile=agent_profile)
        ours_all = {
            (r["account"], r["path"]): ("patched" if r["outcome"] == "patched" else "failed")
            for r in data["results"]
        }
        state_mine = _security_state(mine)
        shutil.rmtree(mine)
        theirs = _fresh(base, "a-gnu", accounts, ["web01", "web02"], families)
        gwall, gnu, counts = _gnu_loop(theirs)
        state_theirs = _security_state(theirs)
        shutil.rmtree(theirs)
        p_times.append(wall)
        g_times.append(gwall)
        peaks.append(peak)
        if ours_all != gnu:
            keys = sorted(set(ours_all) | set(gnu))
            diff = [(k, ours_all.get(k), gnu.get(k)) for k in keys if ours_all.get(k) != gnu.get(k)]
            raise SystemExit(f"verdicts differ from GNU patch (ours, GNU): {diff[:10]}")
        if state_mine != state_theirs:
            raise SystemExit("patched files differ from GNU patch's")
        print(
            f"  run {n + 1}: patchd {wall:.2f} s ({data['summary']}), GNU loop {gwall:.2f} s "
            f"({counts}); same verdicts and files",
            flush=True,
        )
    p, g = statistics.median(p_times), statistics.median(g_times)
    return {
        "mode": mode,
        "families": list(families or ()),
        "accounts": accounts,
        "installations": counts["installations"],
        "gnu_counts": counts,
        "per_host": per_host,
        "patchd_s": [round(t, 2) for t in p_times],
        "gnu_s": [round(t, 2) for t in g_times],
        "patchd_median_s": round(p, 2),
        "gnu_median_s": round(g, 2),
        "ratio": round(g / p, 2),
        "controller_peak_mb": round(max(peaks), 1),
        "summary": data["summary"],
        "target_met": g / p >= TARGET_RATIO,
    }


def _profiled(fleet: Path, profile: Path, *extra: str) -> tuple[float, dict, float]:
    """Run the controller in-process under cProfile (agents still are subprocesses)."""
    import contextlib
    import io

    from patchd.cli.main import cli

    argv = _rollout_argv(fleet, *extra)[3:]
    out = fleet / "profile-out.json"
    start = time.perf_counter()
    prof = cProfile.Profile()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
        prof.runcall(cli.main, args=argv, prog_name="patchd")
    wall = time.perf_counter() - start
    prof.dump_stats(str(profile))
    out.write_text(buf.getvalue())
    return wall, json.loads(buf.getvalue()), 0.0


def part_b(base: Path, per_host: int) -> dict[str, object]:
    from tests.support.sshd import SSHDFactory

    print(f"(b) SSH rollout, 4 hosts x {per_host} accounts", flush=True)
    names = ["ssh1", "ssh2", "ssh3", "ssh4"]
    fleet = _fresh(base, "b-ssh", per_host * 4, names)
    factory = SSHDFactory(Path(tempfile.mkdtemp(prefix="bench-sshd-", dir=base)))
    try:
        hosts = factory(4)
        import yaml

        inv = yaml.safe_load((fleet / "accounts.yaml").read_text())
        inv["hosts"] = {n: kit.ssh_host_entry(h) for n, h in zip(names, hosts, strict=True)}
        (fleet / "accounts.yaml").write_text(yaml.safe_dump(inv, sort_keys=False))
        wall, data, peak = _run_patchd(fleet)
    finally:
        factory.stop_all()
    print(f"  {wall:.2f} s, {data['summary']}", flush=True)
    return {
        "hosts": 4,
        "accounts_per_host": per_host,
        "seconds": round(wall, 2),
        "controller_peak_mb": round(peak, 1),
        "summary": data["summary"],
        "target_met": wall < TARGET_SSH_SECONDS,
    }


def part_c(base: Path, installations: int) -> dict[str, object]:
    """Controller peak memory over a thin fleet of ``installations`` (default mix of CMSs)."""
    accounts = _accounts_for(installations, None)
    print(
        f"(c) controller peak memory, {installations} installations in {accounts} accounts "
        "(thin fleet, fresh scan, dry run)",
        flush=True,
    )
    fleet = base / "c-mem"
    shutil.rmtree(fleet, ignore_errors=True)
    generate_fleet(fleet, accounts, hosts=["web01", "web02"], thin=True)
    wall, data, peak = _run_patchd(fleet, "--dry-run")
    found = sum(data["summary"].values())
    shutil.rmtree(fleet)
    print(f"  {found} installations, {wall:.1f} s, controller peak {peak:.0f} MB")
    return {
        "accounts": accounts,
        "installations": found,
        "seconds": round(wall, 1),
        "controller_peak_mb": round(peak, 1),
        "summary": data["summary"],
        "target_met": peak < TARGET_MB,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--installations", type=int, default=10_000, help="(a): installations in the fleet"
    )
    ap.add_argument(
        "--families",
        default="wordpress",
        help="(a): CMSs of the fleet, comma-separated, or 'all' (the default mix)",
    )
    ap.add_argument(
        "--agent-profile", type=Path, default=None, help="(a): folder for the agents' cProfiles"
    )
    ap.add_argument("--ssh-accounts", type=int, default=1_000, help="accounts per SSH host")
    ap.add_argument(
        "--mem-installations", type=int, default=50_000, help="(c): installations (thin fleet)"
    )
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--parts", default="a,b,c")
    ap.add_argument("--base", default="/dev/shm")
    ap.add_argument("--keep", action="store_true", help="keep the generated fleets")
    ap.add_argument("--profile", type=Path, default=None, help="cProfile the first run of (a)")
    ap.add_argument(
        "--prescan",
        action="store_true",
        help="(a): time the rollout against a stored scan, like the GNU list",
    )
    ap.add_argument("--per-host", type=int, default=1, help="(a): agent sessions per host")
    args = ap.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="patchd-bench-rollout-", dir=args.base))
    results: dict[str, object] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.uname()._asdict(),
        "nproc": os.cpu_count(),
    }
    try:
        parts = set(args.parts.split(","))
        if "a" in parts:
            families = None if args.families == "all" else tuple(args.families.split(","))
            results["a"] = part_a(
                base,
                args.installations,
                args.runs,
                args.profile,
                args.prescan,
                args.per_host,
                families,
                args.agent_profile,
            )
        if "b" in parts:
            results["b"] = part_b(base, args.ssh_accounts)
        if "c" in parts:
            results["c"] = part_c(base, args.mem_installations)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
