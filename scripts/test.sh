#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine, then runs
# ruff and pytest. README.md's test command and .ci/run both call this script.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: GNU patch/diff (oracles), php-cli (lint), openssh (real sshd hosts),
# git (history fixtures), php-composer-semver (oracle of the composer constraint tests).
DEB_PACKAGES=(patch diffutils git php-cli php-composer-semver openssh-server openssh-client chromium)
missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

python3 -m pip install -q -e '.[test]'
python3 -m ruff check .
python3 -m ruff format --check .
python3 -m pytest -q "$@"
