"""The ledger of a command, by the rule of :mod:`patchd.ledger.locate`."""

from __future__ import annotations

import click

from patchd.ledger.db import Ledger
from patchd.ledger.locate import LedgerLocation, locate_ledger, open_located


def ledger_location(ctx: click.Context) -> LedgerLocation:
    """The ledger the group's ``--ledger`` (or the rule) chose."""
    obj = ctx.find_root().obj or {}
    location = obj.get("ledger")
    return location if isinstance(location, LedgerLocation) else locate_ledger(None)


def reading_ledger(ctx: click.Context) -> Ledger:
    """The existing ledger; exit 2 naming where it was looked for when there is none."""
    return open_located(ledger_location(ctx), write=False)


def writing_ledger(ctx: click.Context) -> Ledger:
    """The ledger, created when missing (in an existing folder when named explicitly)."""
    return open_located(ledger_location(ctx), write=True)


def ledger_is_new(ctx: click.Context) -> bool:
    """Whether the command would create the ledger (so inputs are checked first)."""
    return not ledger_location(ctx).exists()
