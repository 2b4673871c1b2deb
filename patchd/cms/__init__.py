"""patchd.cms."""
