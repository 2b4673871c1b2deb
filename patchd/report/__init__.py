"""patchd.report."""
