#!/usr/bin/env bash
# Runs the whole test suite (Swift Testing) against real redis-server processes and real sockets.
set -euo pipefail
cd "$(dirname "$0")/.."
export SWIFT_BACKTRACE=${SWIFT_BACKTRACE:-enable=no}
swift test --skip-build "$@"
# The dashboard in headless Chromium (part of the test command; see scripts/dashboard-check.sh).
if [ $# -eq 0 ]; then
  scripts/dashboard-check.sh
fi
