"""Releases: registration, idempotence, conflicting checksums."""

from __future__ import annotations

import pytest

from patchd.errors import LedgerError
from patchd.ledger import Ledger
from patchd.ledger.releases import (
    get_release,
    list_releases,
    register_release,
    release_checksums,
)

FILES = [
    ("wp-includes/version.php", "a" * 64, 1200),
    ("wp-login.php", "B" * 64, 5300),
    (b"odd/\xff.php".decode("utf-8", "surrogateescape"), "c" * 64, 10),
]


def test_register_and_read_checksums(ledger: Ledger) -> None:
    release_id = register_release(ledger, "wordpress", "6.4.1", "wordpress-6.4.1.tar.gz", FILES)
    assert release_checksums(ledger, "wordpress", "6.4.1") == {
        "wp-includes/version.php": "a" * 64,
        "wp-login.php": "b" * 64,  # stored lower-case
        FILES[2][0]: "c" * 64,
    }
    release = get_release(ledger, "wordpress", "6.4.1")
    assert release is not None and release.id == release_id
    assert release.source == "wordpress-6.4.1.tar.gz"
    assert release_checksums(ledger, "wordpress", "6.4.2") is None
    assert get_release(ledger, "typo3", "6.4.1") is None


def test_reregistering_same_files_is_a_no_op(ledger: Ledger) -> None:
    first = register_release(ledger, "wordpress", "6.4.1", "a.tar.gz", FILES)
    again = register_release(ledger, "wordpress", "6.4.1", "b.zip", list(reversed(FILES)))
    assert first == again
    assert len(list_releases(ledger)) == 1


def test_reregistering_with_other_checksums_is_refused(ledger: Ledger) -> None:
    register_release(ledger, "wordpress", "6.4.1", "a.tar.gz", FILES)
    tampered = [*FILES[:1], ("wp-login.php", "d" * 64, 5300), FILES[2]]
    with pytest.raises(LedgerError, match=r"different files .*wp-login\.php"):
        register_release(ledger, "wordpress", "6.4.1", "evil.tar.gz", tampered)
    with pytest.raises(LedgerError, match="different files"):
        register_release(ledger, "wordpress", "6.4.1", "fewer.tar.gz", FILES[:2])
    assert release_checksums(ledger, "wordpress", "6.4.1")["wp-login.php"] == "b" * 64


def test_duplicate_path_refused(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="listed twice"):
        register_release(ledger, "typo3", "12.4.3", "t.tgz", [FILES[0], FILES[0]])
    assert get_release(ledger, "typo3", "12.4.3") is None


def test_list_releases(ledger: Ledger) -> None:
    register_release(ledger, "wordpress", "6.4.1", "a", FILES[:1])
    register_release(ledger, "typo3", "12.4.3", "b", FILES[:1])
    register_release(ledger, "wordpress", "6.4.2", "c", FILES[:1])
    assert [(r.cms, r.version) for r in list_releases(ledger)] == [
        ("typo3", "12.4.3"),
        ("wordpress", "6.4.1"),
        ("wordpress", "6.4.2"),
    ]
    assert [r.version for r in list_releases(ledger, "wordpress")] == ["6.4.1", "6.4.2"]
