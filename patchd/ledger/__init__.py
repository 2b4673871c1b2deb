"""patchd.ledger."""
