"""patchd.notify: one email per customer from a run's results (group, render, preview, send)."""
