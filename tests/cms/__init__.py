"""Tests of the CMS detectors, the installation search and PHP hints."""
