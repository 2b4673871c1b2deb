"""Benchmark: what running an installation's work as its account costs, per candidate.

Jobs whose work is trivial (the account's ids read back), so only the privilege drop is
measured, for ``--accounts`` accounts owned by their own uids (created here as folders
below ``--base``, uids from 24001; no passwd entries needed):

* ``per-installation``: :func:`patchd.patcher.privdrop.run_as`, one forked worker per
  installation (the code before issue 18);
* ``fork``: :func:`patchd.patcher.batch.run_batch` mode ``fork``, one worker per batch and
  one forked grandchild per account of the batch;
* ``thread``: ``run_batch`` mode ``thread``, one worker per batch, each job in a thread
  that drops its own credentials with the raw system calls.

Each candidate runs ``--installations-per-account`` jobs per account (1 is the fixture
fleet's shape: 10,000 installations in 9,660 accounts), in batches of ``--batch`` jobs
(the rollout's default 25), ``--runs`` times, alternating; medians per job are printed.
Needs root.

Usage: ``python bench/bench_privdrop.py [--accounts 500] [--installations-per-account 1]
[--batch 25] [--runs 5] [--base /dev/shm]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from patchd.patcher import batch, privdrop  # noqa: E402

FIRST_UID = 24001


def _work(_ch: privdrop.Channel) -> dict[str, Any]:
    return {"uid": os.geteuid()}


def _accounts(base: Path, n: int) -> list[tuple[privdrop.Account, str]]:
    out = []
    for i in range(n):
        root = base / f"acct{i}"
        root.mkdir()
        uid = FIRST_UID + i
        os.chown(root, uid, uid)
        root.chmod(0o711)
        out.append((privdrop.Account(uid, uid), str(root)))
    return out


def _time(candidate: str, jobs: list[batch.Job], size: int) -> float:
    start = time.perf_counter()
    if candidate == "per-installation":
        for job in jobs:
            assert privdrop.run_as(job.account, job.root_path, job.work)["uid"] == job.account.uid
    else:
        for n in range(0, len(jobs), size):
            chunk = jobs[n : n + size]
            for index, res in batch.run_batch(chunk, mode=candidate):
                assert isinstance(res, dict) and res["uid"] == chunk[index].account.uid, res
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=500)
    ap.add_argument("--installations-per-account", type=int, default=1)
    ap.add_argument("--batch", type=int, default=25)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--base", default="/dev/shm")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("bench_privdrop.py needs root (it drops to per-account uids)")
    base = Path(tempfile.mkdtemp(prefix="patchd-bench-privdrop-", dir=args.base))
    base.chmod(0o711)
    candidates = ["per-installation", "fork", "thread"]
    times: dict[str, list[float]] = {c: [] for c in candidates}
    try:
        accounts = _accounts(base, args.accounts)
        jobs = [
            batch.Job(account, root, _work)
            for account, root in accounts
            for _ in range(args.installations_per_account)
        ]
        for _ in range(args.runs):
            for c in candidates:
                times[c].append(_time(c, jobs, args.batch))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    per_job = {c: statistics.median(t) / len(jobs) * 1e3 for c, t in times.items()}
    print(
        json.dumps(
            {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": platform.uname()._asdict(),
                "load": os.getloadavg(),
                "accounts": args.accounts,
                "jobs": len(jobs),
                "batch": args.batch,
                "runs": {c: [round(x, 3) for x in t] for c, t in times.items()},
                "ms_per_job_median": {c: round(v, 3) for c, v in per_job.items()},
                "speedup_vs_per_installation": {
                    c: round(per_job["per-installation"] / v, 1) for c, v in per_job.items()
                },
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
