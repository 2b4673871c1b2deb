"""patchd.transport."""
