"""patchd.rollout."""
