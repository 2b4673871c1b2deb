"""patchd.cli."""
