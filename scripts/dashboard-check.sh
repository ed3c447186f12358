#!/usr/bin/env bash
# The dashboard in a real browser: starts `bitten up --demo` on free ports, opens the page in headless
# Chromium (DevTools protocol), waits for live data, saves a screenshot under .build/test-output/ and
# checks the health score, the nodes table and the JavaScript console. Skips (with the reason) only
# when Chromium cannot be installed.
set -uo pipefail
cd "$(dirname "$0")/.."
out=.build/test-output
mkdir -p "$out"
if ! command -v chromium >/dev/null 2>&1; then
  scripts/install-deps.sh --browser || true
fi
if ! command -v chromium >/dev/null 2>&1; then
  echo "dashboard browser check SKIPPED: Chromium could not be installed (apt-get install chromium failed)"
  exit 0
fi
# `dashboard-check.sh cluster`: the same on a managed local Redis Cluster, where the page must say so
# (and show the trade statistics: the trade path runs there too).
mode=${1:-single}
name=dashboard
extra=()
if [ "$mode" = cluster ]; then
  name=dashboard-cluster
  extra=(--redis-cluster)
fi
. scripts/lib/demo-server.sh
start_demo_server "$name" "${extra[@]}"
expect=()
if [ "$mode" = cluster ]; then expect=(--expect-text "cluster, 3 primaries" --expect-text "win rate"); fi
python3 scripts/dashboard_check.py "$base/" "$out/$name.png" --timeout 40 "${expect[@]}"
status=$?
if [ $status -eq 0 ] && [ "$mode" = single ]; then
  # The trading-state banner: halt the system through the API; the page must say so, with who and why.
  python3 - "$base" <<'PY'
import json, sys, urllib.request
body = json.dumps({"reason": "dashboard check", "by": "ci"}).encode()
request = urllib.request.Request(sys.argv[1] + "/control/halt", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
print("halt:", urllib.request.urlopen(request, timeout=10).status)
PY
  python3 scripts/dashboard_check.py "$base/" "$out/$name-halted.png" --timeout 40 \
    --expect-text "TRADING HALTED" --expect-text "dashboard check" --expect-text "by ci"
  status=$?
fi
if [ $status -ne 0 ]; then
  echo "--- server log tail ---"; tail -20 "$server_log"
fi
exit $status
