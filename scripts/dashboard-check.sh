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
bin=.build/debug/bitten
data=$(mktemp -d /tmp/bitten-dashboard-XXXXXX)
ports=($(python3 - <<'PY'
import socket
socks = []
for _ in range(9):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
))
export BITTEN_DATA_DIR=$data BITTEN_BIND_HOST=127.0.0.1 BITTEN_HTTP_PORT=${ports[0]} BITTEN_COMMAND_PORT=${ports[1]} \
  BITTEN_MARKET_PORT=${ports[2]} BITTEN_SIGNAL_PORT=${ports[3]} BITTEN_CONFIRM_PORT=${ports[4]} BITTEN_SIGNAL_IN_PORT=${ports[5]} \
  BITTEN_RELAY_PORT=${ports[6]} BITTEN_ALERT_PORT=${ports[7]} BITTEN_QUERY_PORT=${ports[8]} SWIFT_BACKTRACE=enable=no
# `dashboard-check.sh cluster`: the same on a managed local Redis Cluster, where the page must say so
# (and show the trade statistics: the trade path runs there too).
mode=${1:-single}
name=dashboard
extra=()
if [ "$mode" = cluster ]; then
  name=dashboard-cluster
  extra=(--redis-cluster)
fi
"$bin" up --demo "${extra[@]}" > "$out/$name-server.log" 2>&1 &
pid=$!
cleanup() { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$data"; }
trap cleanup EXIT
for _ in $(seq 200); do
  python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:${ports[0]}/health', timeout=1)" 2>/dev/null && break
  sleep 0.2
done
expect=()
if [ "$mode" = cluster ]; then expect=(--expect-text "cluster, 3 primaries" --expect-text "win rate"); fi
python3 scripts/dashboard_check.py "http://127.0.0.1:${ports[0]}/" "$out/$name.png" --timeout 40 "${expect[@]}"
status=$?
if [ $status -ne 0 ]; then
  echo "--- server log tail ---"; tail -20 "$out/$name-server.log"
fi
exit $status
