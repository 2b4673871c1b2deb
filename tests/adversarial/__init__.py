"""Adversarial suite: hostile account trees, archives, diffs and faults (issue 8)."""
