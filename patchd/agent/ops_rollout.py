"""Agent ops of a rollout: ``rollout`` (dry-run/apply), ``recover`` and ``rollback``.

The controller sends a host all its matched installations of a run in one request; the
host does the file work (through :mod:`patchd.patcher`) and streams one item per
installation back, so a rollout costs one round trip per batch, not one per file.

NOTE: stdlib-only; runs on the hosts inside the agent.
"""

from __future__ import annotations

import functools
import os
import traceback
from typing import Any, Dict, Iterator, List, Optional, Tuple  # noqa: UP035

from patchd.agent.ops import op
from patchd.errors import PatchdError

JSONDict = Dict[str, Any]  # noqa: UP006


#: Parsed variants by the controller's ``variants_key`` (one agent serves one session).
_VARIANTS: Dict[str, Dict[str, List[Any]]] = {}  # noqa: UP006


def _file_patches(args: JSONDict) -> Dict[str, List[Any]]:  # noqa: UP006
    """The request's variants: each is sent once per session (with the first batch that
    needs it; a streamed rollout learns of new versions as the scan goes on) and parsed
    once, then named by ``variants_key`` only."""
    from patchd.engine.model import FilePatch

    key = args.get("variants_key")
    parsed = {
        name: [FilePatch.from_json(fp) for fp in fps]
        for name, fps in (args.get("variants") or {}).items()
    }
    if not key:
        return parsed
    if key not in _VARIANTS and "variants" not in args:
        raise PatchdError(f"unknown variants_key {key!r}: send the variants first")
    known = _VARIANTS.setdefault(key, {})
    known.update(parsed)
    return known


@op("rollout")
def rollout(args: JSONDict) -> Iterator[JSONDict]:
    """Dry-run (and where ``apply`` is set, apply) a bundle on installations.

    ``args``: ``{"run_id", "dry_run", "resumed", "backup_dir", "min_php", "max_file_size",
    "variants": {name: [FilePatch json]} (or only "variants_key" after the first batch of
    a session, see :func:`_file_patches`), "installations": [{"account", "root", "path",
    "variant", "candidates", "uid", "gid", "php", "php_binary", "apply"}]}``. ``variant`` is None
    for an installation whose version is unreadable: then every variant named in
    ``candidates`` is dry-run and the one that fits is used (see :func:`_pick_variant`).
    Items: ``{"account", "path", "outcome", "reason", "detail", "journal", "files",
    "applied", "traceback", "variant"}`` where ``applied`` says whether apply was attempted
    (policy auto and not a dry run) and ``variant`` names the variant used.
    """
    from patchd.patcher import batch, privdrop

    patches = _file_patches(args)
    items = args.get("installations") or []
    queued: List[Any] = []  # noqa: UP006  (item fields, store server) per job
    jobs: List[Any] = []  # noqa: UP006
    # NOTE: the store is checked once per batch here, not once per apply by a message
    # from the worker (see ProxyStore.check).
    checked = None if args.get("dry_run") else privdrop.store_checked(args.get("backup_dir"))
    for inst in items:
        out, job, server = _prepare(args, patches, inst, checked)
        if job is None:
            yield out
        else:
            queued.append((out, server))
            jobs.append(job)
    # NOTE: one worker for the batch's installations that run as an account (each as its
    # account, see patchd.patcher.batch); items stream back as each one is done.
    timeout = float(args.get("worker_timeout") or privdrop.DEFAULT_WORKER_TIMEOUT)
    for index, res in batch.run_batch(jobs, timeout=timeout):
        out, server = queued[index]
        if isinstance(res, privdrop.WorkerError):
            out.update(_error_fields(res))
            out["detail"] += _recover_now(args, server)
        else:
            out.update(res)
        yield out
    return {"installations": len(items)}


def _prepare(
    args: JSONDict,
    patches: JSONDict,
    inst: JSONDict,
    checked: Optional[JSONDict] = None,  # noqa: UP045
) -> Tuple[JSONDict, Any, Any]:  # noqa: UP006
    """(item fields, job, store server) of one installation: the job (None when the work
    was done here: root-owned or non-root agent, finished on resume, or failed) runs as
    the account in the batch's worker."""
    from patchd.patcher import batch, journal, privdrop

    out: JSONDict = {
        "account": inst.get("account"),
        "path": inst.get("path", ""),
        "outcome": None,
        "reason": None,
        "detail": "",
        "journal": None,
        "files": [],
        "applied": False,
        "traceback": None,
        "variant": inst.get("variant"),
    }
    try:
        name = inst.get("variant")
        files = patches[name] if name else {c: patches[c] for c in inst.get("candidates") or ()}
        who = privdrop.identity(inst["root"], inst.get("uid"), inst.get("gid"))
        do_apply = bool(inst.get("apply")) and not args.get("dry_run")
        if do_apply and args.get("resumed", True):
            done = _done_journal(journal, args, inst)
            if done is not None:
                # NOTE: resume after the controller died between the host finishing this
                # installation and the ledger recording it: report what really happened.
                out.update(
                    outcome="patched",
                    detail="patched (found finished on resume)",
                    journal=done,
                    applied=True,
                )
                return out, None, None
        if who.account is None:
            out.update(_work(args, files, inst, who.expected_uid, do_apply, None))
            return out, None, None
        # NOTE: the file work runs as the account; only the backup store stays with us.
        server = privdrop.StoreServer(
            args.get("backup_dir") if do_apply else None,
            root=inst["root"],
            inst=inst.get("path", ""),
            run_id=str(args.get("run_id")),
        )
        # NOTE: a partial of a module-level function with JSON-like arguments (only what
        # _work reads of ``args``): it can be pickled to the session's worker.
        work_args = {key: args[key] for key in _WORK_ARGS if key in args}
        work_args["store_checked"] = checked
        job = batch.Job(
            who.account,
            inst["root"],
            functools.partial(_work, work_args, files, inst, who.expected_uid, do_apply),
            serve=server,
        )
        return out, job, server
    except Exception as exc:
        out.update(_error_fields(exc))
        return out, None, None


def _recover_now(args: JSONDict, server: Any) -> str:
    """Put back, at once, an apply whose worker died (killed, crashed, timed out); the text
    added to the item's detail.

    NOTE: without this the installation would stay half-patched until the next run's
    ``recover``; the store server knows exactly which entry the dead worker made.
    """
    from patchd.patcher import journal

    notes = []
    for entry in server.created:
        try:
            jour = journal.load_journal(entry)
        except (OSError, PatchdError, ValueError):
            continue  # NOTE: no journal yet: nothing was replaced
        if jour.state in journal.FINAL_STATES:
            continue
        res = _recover_one(args, args["backup_dir"], entry, jour)
        notes.append(("recovered: " if res.get("ok") else "recovery failed: ") + res["detail"])
    return "".join(f"; {n}" for n in notes)


def _error_fields(exc: Exception) -> JSONDict:
    """The item fields of an installation whose work raised ``exc``."""
    from patchd.patcher.privdrop import WorkerError

    fields: JSONDict = {"outcome": "error", "detail": f"{type(exc).__name__}: {exc}"}
    if isinstance(exc, WorkerError):
        fields["traceback"] = exc.details or None
    elif isinstance(exc, (PatchdError, OSError)):
        fields["traceback"] = None
    else:
        fields["traceback"] = traceback.format_exc()
    return fields


#: The keys of the rollout's ``args`` that :func:`_work` reads.
_WORK_ARGS = ("min_php", "max_file_size", "backup_dir", "run_id")


def _work(
    args: JSONDict,
    files: Any,
    inst: JSONDict,
    expected_uid: Optional[int],  # noqa: UP045
    do_apply: bool,
    channel: Any,
) -> JSONDict:
    """Dry-run or apply one installation; the item fields. ``channel`` is the worker's
    pipe to the root parent (None: in this process, with the store used directly).
    ``files`` is the variant's file patches, or {variant name: file patches} of the
    candidates when the installation's version is unreadable."""
    from patchd.patcher.safewrite import MAX_FILE_SIZE

    common = {
        "expected_uid": expected_uid,
        "min_php": args.get("min_php"),
        "account_php": inst.get("php"),
        "php_binary": inst.get("php_binary"),
        "max_file_size": int(args.get("max_file_size") or MAX_FILE_SIZE),
    }
    if not isinstance(files, dict):
        return _work_variant(args, files, inst, do_apply, channel, common)
    try:
        picked = _pick_variant(files, inst, common)
    except Exception as exc:
        return _error_fields(exc)
    if isinstance(picked, dict):
        return picked
    name, chosen = picked
    out = _work_variant(args, chosen, inst, do_apply, channel, common)
    note = f"version unreadable; the only variant that fits is {name}"
    out["detail"] = f"{note}: {out.get('detail') or ''}".rstrip(": ")
    out["variant"] = name
    return out


#: Dry-run failure reasons that mean the variant's hunks matched the files (the
#: installation is of that variant's version; something else stops the patch).
_FITS_BUT = ("php-incompatible", "lint-failed")


def _pick_variant(
    candidates: Dict[str, List[Any]],  # noqa: UP006
    inst: JSONDict,
    common: JSONDict,
) -> Any:
    """(name, file patches) of the one candidate variant that fits an installation whose
    version is unreadable, or the item fields of its failure.

    A variant fits when its dry run applies exactly, finds the fix present (every hunk
    reverse-applies), or applies but fails only for PHP reasons. Variants that fit with the
    same effect (same files, same pre- and post-images, or all already patched) count as
    one. None fitting, or several with different effects: ``dry-run-failed`` with reason
    ``version-unknown``; when every candidate failed on an unsafe file, that failure.
    """
    from patchd.patcher import installation

    fits: Dict[Any, List[str]] = {}  # noqa: UP006
    first: Dict[str, str] = {}  # noqa: UP006
    unsafe = None
    for name in sorted(candidates):
        dr = installation.dry_run(inst["root"], inst["path"], candidates[name], **common)
        reason = None if dr.reason is None else str(dr.reason)
        if dr.status == "already-patched":
            effect: Any = "already-patched"
        elif dr.status == "applicable" or reason in _FITS_BUT:
            effect = tuple((f.rel, f.pre_sha256, f.post_sha256) for f in dr.files) or name
        else:
            if reason == "unsafe-path" and unsafe is None:
                unsafe = dr
            first.setdefault(name, dr.detail)
            continue
        fits.setdefault(effect, []).append(name)
    if len(fits) == 1:
        names = next(iter(fits.values()))
        return names[0], candidates[names[0]]
    if not fits and unsafe is not None and len(first) == len(candidates):
        return {"outcome": "dry-run-failed", "reason": "unsafe-path", "detail": unsafe.detail}
    if fits:
        why = "variants with different changes fit: " + ", ".join(
            names[0] for names in fits.values()
        )
    else:
        why = f"none of the {len(candidates)} variants fits" + "".join(
            f"; {name}: {detail}" for name, detail in list(first.items())[:3]
        )
    return {"outcome": "dry-run-failed", "reason": "version-unknown", "detail": why}


def _work_variant(
    args: JSONDict,
    files: List[Any],  # noqa: UP006
    inst: JSONDict,
    do_apply: bool,
    channel: Any,
    common: JSONDict,
) -> JSONDict:
    """Dry-run or apply one variant on one installation (see :func:`_work`)."""
    from patchd.patcher import installation
    from patchd.patcher.privdrop import ProxyStore

    try:
        if do_apply:
            res = installation.apply(
                inst["root"],
                inst["path"],
                files,
                backup_dir=args["backup_dir"],
                run_id=str(args["run_id"]),
                store=None if channel is None else ProxyStore(channel, args.get("store_checked")),
                **common,
            )
            return {
                "outcome": str(res.outcome),
                "detail": res.detail,
                "journal": res.journal,
                "reason": None if res.reason is None else str(res.reason),
                "applied": True,
                "files": [f.to_json() for f in res.files],
            }
        dr = installation.dry_run(inst["root"], inst["path"], files, **common)
        return {
            "outcome": None if dr.outcome is None else str(dr.outcome),
            "reason": None if dr.reason is None else str(dr.reason),
            "detail": dr.detail,
            "files": [f.to_json() for f in dr.files],
            "status": dr.status,
        }
    except Exception as exc:
        return _error_fields(exc)


def _done_journal(journal: Any, args: JSONDict, inst: JSONDict) -> str | None:
    from patchd.patcher.installation import holds_post_image

    backup_dir = args.get("backup_dir")
    if not backup_dir or not os.path.isdir(backup_dir):
        return None
    for entry in journal.entries_for(backup_dir, str(args["run_id"]), inst["root"], inst["path"]):
        # NOTE: check the files too: run ids are per ledger, so a store used with another
        # (or a recreated) ledger holds "done" journals of runs that were not this one.
        if journal.load_journal(entry).state == "done" and holds_post_image(entry):
            return entry
    return None


@op("recover")
def recover(args: JSONDict) -> Iterator[JSONDict]:
    """Put back every interrupted apply in ``backup_dir`` (run before writing): ``{"backup_dir",
    "runs": [run id, ...], "roots": [account root, ...]}`` (both optional: only journals of
    these runs and of installations in these account roots). Each installation is put back
    as its account (see :mod:`patchd.patcher.privdrop`)."""
    from patchd.patcher import installation

    backup_dir = args["backup_dir"]
    if not os.path.isdir(backup_dir):
        return {"recovered": 0}
    runs, roots = args.get("runs"), args.get("roots")
    pending = installation.pending_journals(
        backup_dir,
        None if runs is None else [str(r) for r in runs],
        None if roots is None else [str(r) for r in roots],
    )
    for entry, jour in pending:
        yield _recover_one(args, backup_dir, entry, jour)
    return {"recovered": len(pending)}


def _recover_one(args: JSONDict, backup_dir: str, entry: str, jour: Any) -> JSONDict:
    from patchd.patcher import installation, journal, privdrop
    from patchd.patcher.results import RecoveryResult

    try:
        who = privdrop.identity(jour.root, jour.expected_uid)
        if who.account is None:
            return installation.recover_entry(entry, journal.DirectStore(backup_dir)).to_json()
        server = privdrop.StoreServer(backup_dir, root=jour.root, inst=jour.inst, entries=[entry])
        return privdrop.run_as(
            who.account,
            jour.root,
            lambda ch: installation.recover_entry(entry, privdrop.ProxyStore(ch)).to_json(),
            serve=server,
            timeout=float(args.get("worker_timeout") or privdrop.DEFAULT_WORKER_TIMEOUT),
        )
    except (OSError, PatchdError) as exc:
        detail = f"{type(exc).__name__}: {exc}"
        return RecoveryResult(entry, jour.root, jour.inst, jour.run_id, False, detail).to_json()


@op("rollback")
def rollback(args: JSONDict) -> Iterator[JSONDict]:
    """Restore installations from their journals: ``{"installations": [{"account", "root",
    "path", "journal", "uid", "gid"}]}`` -> one item per installation. ``uid`` is optional
    (the journal's owner check, else the account root's owner, picks the account to work
    as); so is ``gid`` (see :func:`~patchd.patcher.privdrop.identity`)."""
    items = args.get("installations") or []
    for inst in items:
        try:
            res = _rollback_one(args, inst)
            yield {"account": inst.get("account"), "path": inst.get("path"), **res}
        except Exception as exc:
            yield {
                "account": inst.get("account"),
                "path": inst.get("path"),
                "ok": False,
                "journal": inst.get("journal"),
                "detail": f"{type(exc).__name__}: {exc}",
                "files": [],
            }
    return {"installations": len(items)}


def _rollback_one(args: JSONDict, inst: JSONDict) -> JSONDict:
    from patchd.patcher import installation, journal, privdrop

    entry = journal.entry_of(inst["journal"])
    uid = inst.get("uid")
    if uid is None:
        uid = journal.load_journal(entry).expected_uid
    who = privdrop.identity(inst["root"], uid, inst.get("gid"))
    if who.account is None:
        return installation.rollback(inst["root"], inst["path"], inst["journal"]).to_json()
    server = privdrop.StoreServer(
        os.path.dirname(os.path.dirname(entry)),
        root=inst["root"],
        inst=inst.get("path", ""),
        entries=[entry],
    )
    return privdrop.run_as(
        who.account,
        inst["root"],
        lambda ch: installation.rollback(
            inst["root"], inst["path"], inst["journal"], store=privdrop.ProxyStore(ch)
        ).to_json(),
        serve=server,
        timeout=float(args.get("worker_timeout") or privdrop.DEFAULT_WORKER_TIMEOUT),
    )


@op("prepare_backup_dir")
def prepare_backup_dir(args: JSONDict) -> Iterator[JSONDict]:
    """Create the backup store (0700, owned by the agent's user) if it is missing."""
    path = args["backup_dir"]
    os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.lstat(path)
    yield from ()
    return {"backup_dir": path, "mode": oct(st.st_mode & 0o777), "uid": st.st_uid}
