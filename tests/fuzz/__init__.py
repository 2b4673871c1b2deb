"""Fuzzing of the untrusted-input readers (issue 8)."""
