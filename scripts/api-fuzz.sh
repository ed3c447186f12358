#!/usr/bin/env bash
# The API contract against an independent fuzzer: starts `bitten up --demo` (with an API token) on free ports and
# runs schemathesis with every check against the /openapi.yaml it serves (settings in schemathesis.toml). Any
# failure fails the run; the report is kept under .build/test-output/. `api-fuzz.sh N` sets the examples per
# operation (default 10).
set -uo pipefail
cd "$(dirname "$0")/.."
out=.build/test-output
mkdir -p "$out"
find_st() {
  command -v st 2>/dev/null && return
  for dir in "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null)" "$HOME/.local/bin"; do
    [ -x "$dir/st" ] && { echo "$dir/st"; return; }
  done
}
st=$(find_st)
if [ -z "$st" ]; then
  scripts/install-deps.sh --fuzzer || true
  hash -r
  st=$(find_st)
fi
if [ -z "$st" ]; then
  echo "API fuzz FAILED: schemathesis could not be installed (pip install schemathesis==4.32.5)"
  exit 1
fi
bin=.build/debug/bitten
data=$(mktemp -d /tmp/bitten-fuzz-XXXXXX)
ports=($(python3 - <<'PY'
import socket
socks = []
for _ in range(9):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
))
token=fuzz-$RANDOM$RANDOM
export BITTEN_DATA_DIR=$data BITTEN_BIND_HOST=127.0.0.1 BITTEN_HTTP_PORT=${ports[0]} BITTEN_COMMAND_PORT=${ports[1]} \
  BITTEN_MARKET_PORT=${ports[2]} BITTEN_SIGNAL_PORT=${ports[3]} BITTEN_CONFIRM_PORT=${ports[4]} BITTEN_SIGNAL_IN_PORT=${ports[5]} \
  BITTEN_RELAY_PORT=${ports[6]} BITTEN_ALERT_PORT=${ports[7]} BITTEN_QUERY_PORT=${ports[8]} BITTEN_API_TOKEN=$token \
  SWIFT_BACKTRACE=enable=no
"$bin" up --demo > "$out/api-fuzz-server.log" 2>&1 &
pid=$!
cleanup() { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$data"; }
trap cleanup EXIT
base=http://127.0.0.1:${ports[0]}
for _ in $(seq 200); do
  python3 -c "import urllib.request; urllib.request.urlopen('$base/health', timeout=1)" 2>/dev/null && break
  sleep 0.2
done
"$st" --no-color --config-file schemathesis.toml run "$base/openapi.yaml" --url "$base" --checks all \
  --max-examples "${1:-10}" --seed 20261205 -H "Authorization: Bearer $token" > "$out/api-fuzz.txt" 2>&1
status=$?
sed -n '/SUMMARY/,$p' "$out/api-fuzz.txt"
if [ $status -ne 0 ]; then
  echo "--- failures (whole report: $out/api-fuzz.txt) ---"
  sed -n '/FAILURES/,/WARNINGS\|SUMMARY/p' "$out/api-fuzz.txt" | head -80
  echo "--- server log tail ---"; tail -20 "$out/api-fuzz-server.log"
fi
exit $status
