"""patchd.agent."""
