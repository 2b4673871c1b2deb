"""The ledger's cache of validated inventories, keyed by the sha256 of the file's bytes.

:func:`patchd.inventory.load_inventory` asks it before parsing YAML: a scan and the
rollouts after it read the same ``accounts.yaml``, and parsing 50,000 accounts of YAML
costs seconds where reading back the validated JSON costs a fraction. The stored bytes
are :mod:`patchd.inventory`'s (compressed JSON lines). Only the newest inventory is kept;
a changed file has another hash and is parsed (and stored) again.
"""

from __future__ import annotations

from patchd.ledger.db import Ledger, utc_now


class LedgerInventoryCache:
    """:class:`patchd.inventory.InventoryCache` on a ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def get(self, sha256: str) -> bytes | None:
        """What was stored for the file with this hash, or None."""
        row = self.ledger.query_one(
            "SELECT inventory FROM inventory_cache WHERE sha256 = ?", (sha256,)
        )
        if row is None:
            return None
        value = row["inventory"]
        # NOTE: the ledger hands stored bytes back as surrogate-escaped text (lossless);
        # an entry an older patchd stored as text comes back as its UTF-8 (and is refused
        # by the inventory loader).
        return value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")

    def put(self, sha256: str, data: bytes) -> None:
        """Store the inventory of the file with this hash (replacing any other)."""
        with self.ledger.transaction():
            self.ledger.execute("DELETE FROM inventory_cache WHERE sha256 != ?", (sha256,))
            self.ledger.execute(
                "INSERT OR REPLACE INTO inventory_cache (sha256, stored_at, inventory) "
                "VALUES (?, ?, ?)",
                (sha256, utc_now(), data),
            )
