"""Tests of the classifier chain (patchd.bundle)."""
