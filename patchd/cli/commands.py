"""Every subcommand of ``patchd``, in the order ``--help`` lists them."""

from __future__ import annotations

import click

from patchd.cli.apply_cmd import apply_command
from patchd.cli.build_cmd import build_command
from patchd.cli.notify_cmd import notify_command
from patchd.cli.pending import pending
from patchd.cli.report_cmd import report_command
from patchd.cli.rollout_cmd import rollback_command, rollout_command
from patchd.cli.scan_cmd import releases_group, scan_command, scans_group
from patchd.cli.show_cmd import show_command
from patchd.cli.test_cmd import test_command

ALL: list[click.Command] = [
    build_command,
    show_command,
    test_command,
    scan_command,
    scans_group,
    releases_group,
    rollout_command,
    rollback_command,
    report_command,
    notify_command,
    pending("demo", "The whole pipeline on the bundled fixture fleet.", "issue 5"),
    apply_command,
]
