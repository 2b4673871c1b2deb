"""patchd.engine."""
