"""``patchd reseal BUNDLE``: re-seal a bundle written by an older patchd after review."""

from __future__ import annotations

from pathlib import Path

import click

from patchd.bundle.manifest import DIGEST_COVERS, reseal_bundle
from patchd.cli.confirm import confirm_writes


@click.command(name="reseal")
@click.argument(
    "bundle", metavar="BUNDLE", type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def reseal_command(bundle: Path, yes: bool) -> None:
    """Give BUNDLE, sealed by an older patchd (digest over the diffs only), a digest that
    also covers its manifest. Review manifest.yaml first: from now on its fields are
    sealed as they are. Refused when a diff no longer matches the old digest."""
    confirm_writes(
        f"Re-seal {bundle}? Its manifest.yaml as it is now (affected, min_php, variants, "
        "severity, ...) becomes part of the sealed bundle; review it first.",
        yes,
    )
    old, new = reseal_bundle(bundle)
    click.echo(f"re-sealed {bundle}: digest {old[:12]} -> {new[:12]} (covers {DIGEST_COVERS})")
