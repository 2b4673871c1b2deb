"""patchd.bundle."""
