#!/usr/bin/env bash
# Runs the whole test suite (Swift Testing) against real redis-server processes and real sockets.
set -euo pipefail
cd "$(dirname "$0")/.."
export SWIFT_BACKTRACE=${SWIFT_BACKTRACE:-enable=no}
if [ $# -gt 0 ]; then
  swift test --skip-build "$@"
  exit
fi
# The load-heavy fault tests (2 000 EAs reconnecting for two minutes, a 100 000-message flood, a
# million messages into a stuck subscriber) would starve the timing-sensitive tests beside them, so
# they run afterwards, one at a time.
heavy='ChurnTests|FloodTests|StuckSubscriberTests'
# One style (.swift-format: 4 spaces, 120 columns): any lint warning fails the run (`make fmt` fixes most).
make --no-print-directory fmt-lint
swift test --skip-build --skip "$heavy"
swift test --skip-build --no-parallel --filter "$heavy"
# The dashboard in headless Chromium (see scripts/dashboard-check.sh), on one Redis and on a local cluster.
scripts/dashboard-check.sh
scripts/dashboard-check.sh cluster
# The API contract: schemathesis against the served /openapi.yaml (see scripts/api-fuzz.sh).
scripts/api-fuzz.sh
