"""Suite-wide fixtures. Harnesses live in ``tests/support`` and are registered here."""

pytest_plugins = ["tests.support.sshd", "tests.support.phpserver"]
