"""Fixtures for the transport tests: the real-sshd harness (until the top conftest loads it)."""

from tests.support.sshd import sshd_factory, sshd_hosts  # noqa: F401
