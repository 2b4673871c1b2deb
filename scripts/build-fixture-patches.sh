#!/usr/bin/env bash
# Rebuild the repository's patches/ bundles from the fixture releases (see
# scripts/build_fixture_patches.py). Reproducible: the bundles' created_at is fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python scripts/build_fixture_patches.py "$@"
