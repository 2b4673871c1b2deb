"""Every subcommand of ``patchd``: name -> ``module:attribute``, in ``--help`` order.

Commands are imported only when used (``patchd --help`` imports them all), so running
one command does not pay for loading every other command's libraries.
"""

from __future__ import annotations

COMMANDS: dict[str, str] = {
    "build": "patchd.cli.build_cmd:build_command",
    "show": "patchd.cli.show_cmd:show_command",
    "reseal": "patchd.cli.reseal_cmd:reseal_command",
    "test": "patchd.cli.test_cmd:test_command",
    "scan": "patchd.cli.scan_cmd:scan_command",
    "scans": "patchd.cli.scan_cmd:scans_group",
    "releases": "patchd.cli.scan_cmd:releases_group",
    "rollout": "patchd.cli.rollout_cmd:rollout_command",
    "rollback": "patchd.cli.rollout_cmd:rollback_command",
    "runs": "patchd.cli.runs_cmd:runs_command",
    "report": "patchd.cli.report_cmd:report_command",
    "notify": "patchd.cli.notify_cmd:notify_command",
    "advisories": "patchd.cli.advisories_cmd:advisories_group",
    "exposure": "patchd.cli.exposure_cmd:exposure_command",
    "demo": "patchd.cli.demo_cmd:demo_command",
    "apply": "patchd.cli.apply_cmd:apply_command",
}
