"""Tests of patchd.release: safe release input and the full release diff."""
