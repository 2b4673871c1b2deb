"""patchd.release."""
