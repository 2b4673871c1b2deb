"""Size and shape limits for extracting an untrusted release archive."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True)
class ArchiveLimits:
    """Upper bounds an archive must stay within; exceeding any of them refuses the archive.

    The defaults are generous for CMS releases (a TYPO3 or Drupal release with vendor code
    has 20-60k files and 100-300 MiB unpacked) and far below what hurts the machine.
    """

    max_members: int = 200_000  # entries of any kind, directories included
    max_member_size: int = 128 * MiB  # bytes of one file, declared and actually read
    max_total_size: int = 512 * MiB  # bytes of all files together
    max_ratio: float = 100.0  # unpacked bytes per compressed byte (checked while streaming)
    max_path_length: int = 1024  # bytes of a member name (and of a link target)
    max_depth: int = 64  # path components of a member name

    def __post_init__(self) -> None:
        for name in ("max_members", "max_member_size", "max_total_size", "max_path_length"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ArchiveLimits.{name} must be positive")
        if self.max_ratio <= 1 or self.max_depth <= 0:
            raise ValueError("ArchiveLimits.max_ratio must be > 1 and max_depth positive")


DEFAULT_LIMITS = ArchiveLimits()

# NOTE: the ratio is only judged once this many unpacked bytes were produced: a tiny member
# of zeros compresses 1000:1 and is no bomb; a bomb has to produce much more than this.
RATIO_GRACE_BYTES = 4 * MiB

# NAME_MAX of Linux file systems: a longer component could never be created anyway.
NAME_MAX = 255
