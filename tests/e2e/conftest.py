"""Fixtures for the end-to-end rollout tests: a hand-made world (sshd: tests/conftest.py).

The world is a set of accounts, each built to produce one outcome of DESIGN.md, on one
local host; tests copy it (``fresh_world``) when they write into it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from tests.e2e import kit

COMMENT_TEMPLATE = "wp-includes/comment-template.php"
LIST_TABLE = "wp-admin/includes/class-wp-comments-list-table.php"

#: account id -> the (outcome, reason) its single installation (in ``html``) must get.
WORLD_EXPECTED: dict[str, kit.Verdict] = {
    "a-patch": ("patched", None),
    "a-patch0": ("patched", None),
    "a-already": ("already-patched", None),
    "a-newer": ("not-affected", None),
    "a-notify": ("skipped", None),
    "a-skip": ("skipped", None),
    "a-mod": ("dry-run-failed", "modified"),
    "a-missing": ("dry-run-failed", "missing-file"),
    "a-link": ("dry-run-failed", "unsafe-path"),
    "a-oldphp": ("dry-run-failed", "php-incompatible"),
}


@dataclass(frozen=True)
class World:
    """Accounts under ``base/srv``, inventory, bundle, ledger path and backup store."""

    base: Path
    inventory: Path
    bundle: Path
    ledger: Path
    backups: Path

    def root(self, account_id: str) -> Path:
        return self.base / "srv" / account_id

    def inst(self, account_id: str) -> Path:
        return self.root(account_id) / "html"

    def snapshot(self) -> dict[str, str]:
        return kit.snapshot(self.base / "srv")

    def rollout(self, *args: str, env: dict[str, str] | None = None) -> kit.CliResult:
        return kit.patchd(
            self.ledger,
            "rollout",
            str(self.bundle),
            "--accounts",
            str(self.inventory),
            "--backup-dir",
            str(self.backups),
            "--yes",
            "--json",
            *args,
            env=env,
        )


def _build_world(base: Path) -> World:
    srv = base / "srv"
    versions = {"a-patch0": "6.4.0", "a-newer": "6.4.3", "a-oldphp": "6.4.1"}
    accounts = []
    for acct_id in WORLD_EXPECTED:
        inst = kit.install_wordpress(srv / acct_id, versions.get(acct_id, "6.4.2"))
        policy = {"a-notify": "notify-only", "a-skip": "skip"}.get(acct_id, "auto")
        php = "7.2" if acct_id == "a-oldphp" else "8.2"
        customer = "cust-shared" if acct_id in ("a-patch", "a-mod") else None
        accounts.append(
            kit.account(
                acct_id,
                "web01",
                srv / acct_id,
                policy=policy,
                php=php,
                customer=customer,
                docroots=["html"],
            )
        )
        if acct_id == "a-already":
            for rel in kit.WP_FILES:
                (inst / rel).write_bytes(kit.post_image(rel))
        elif acct_id == "a-mod":
            path = inst / COMMENT_TEMPLATE
            text = path.read_bytes()
            old = b"\t$result  = get_permalink();\n"
            assert text.count(old) == 1
            path.write_bytes(text.replace(old, b"\t$result  = get_permalink( 0 ); // mine\n"))
        elif acct_id == "a-missing":
            (inst / LIST_TABLE).unlink()
        elif acct_id == "a-link":
            outside = base / "outside-comment-template.php"
            outside.write_bytes((inst / COMMENT_TEMPLATE).read_bytes())
            (inst / COMMENT_TEMPLATE).unlink()
            (inst / COMMENT_TEMPLATE).symlink_to(outside)
    inventory = kit.write_inventory(
        base / "accounts.yaml", {"web01": {"transport": "local"}}, accounts
    )
    bundle = kit.build_bundle(base / "bundle")
    backups = base / "backups"
    backups.mkdir(mode=0o700)
    return World(base, inventory, bundle, base / "ledger.db", backups)


@pytest.fixture(scope="session")
def world_template(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The world, built once per session (never written to: copy it with fresh_world)."""
    return _build_world(tmp_path_factory.mktemp("world-template"))


@pytest.fixture
def fresh_world(world_template: World, tmp_path: Path) -> World:
    """A private copy of the world (symlinks kept, inventory paths rewritten)."""
    base = tmp_path / "world"
    shutil.copytree(world_template.base, base, symlinks=True)
    inv = base / "accounts.yaml"
    text = inv.read_text().replace(str(world_template.base), str(base))
    inv.write_text(text)
    link = base / "srv" / "a-link" / "html" / COMMENT_TEMPLATE
    link.unlink()
    link.symlink_to(base / "outside-comment-template.php")
    (base / "backups").chmod(0o700)
    return replace(
        world_template,
        base=base,
        inventory=inv,
        bundle=base / "bundle",
        ledger=base / "ledger.db",
        backups=base / "backups",
    )
