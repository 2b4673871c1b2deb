"""patchd: minimal security patches for customer CMS installations across a hosting fleet."""

__version__ = "0.1.0"
