"""patchd.ledger: the SQLite record of scans, runs, results, touched files and emails.

Open it with :func:`open_ledger`; the query functions live in one module per subject
(:mod:`.scans`, :mod:`.releases`, :mod:`.runs`, :mod:`.emails`, :mod:`.locks`) and take the
:class:`Ledger` as their first argument.
"""

from patchd.ledger.db import Ledger, default_ledger_path, open_ledger

__all__ = ["Ledger", "default_ledger_path", "open_ledger"]
