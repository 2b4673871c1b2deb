"""Tests of patchd.ledger."""
