"""patchd test suite."""
