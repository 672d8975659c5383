#!/usr/bin/env bash
# Headless Chromium and its WebDriver for the dashboard's browser tests
# (cli/tests/dashboard_browser.rs runs this script itself).
#
#   scripts/chromium.sh        installs Debian's `chromium` and `chromium-driver` if either is
#                              missing, then prints two lines on stdout: the path of the
#                              browser, then the path of chromedriver.
#
# Quiet on success; on failure, says why on stderr and exits non-zero.
set -euo pipefail

die() {
    echo "chromium.sh: $*" >&2
    exit 1
}

find_bins() {
    BROWSER=$(command -v chromium 2>/dev/null || true)
    DRIVER=$(command -v chromedriver 2>/dev/null || true)
}

find_bins
if [ -z "$BROWSER" ] || [ -z "$DRIVER" ]; then
    [ "$(id -u)" = 0 ] || die "chromium and chromium-driver are not installed and installing them needs root: apt-get install chromium chromium-driver"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1; then
        apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed"
        apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 ||
            die "apt-get install chromium chromium-driver failed"
    fi
    find_bins
    [ -n "$BROWSER" ] || die "installed chromium, but found no chromium on PATH"
    [ -n "$DRIVER" ] || die "installed chromium-driver, but found no chromedriver on PATH"
fi
echo "$BROWSER"
echo "$DRIVER"
