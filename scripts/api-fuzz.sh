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
# The server needs the token for its writes; schemathesis gets it below.
token=fuzz-$RANDOM$RANDOM
export BITTEN_API_TOKEN=$token
. scripts/lib/demo-server.sh
start_demo_server api-fuzz
"$st" --no-color --config-file schemathesis.toml run "$base/openapi.yaml" --url "$base" --checks all \
  --max-examples "${1:-10}" --seed 20261205 -H "Authorization: Bearer $token" > "$out/api-fuzz.txt" 2>&1
status=$?
sed -n '/SUMMARY/,$p' "$out/api-fuzz.txt"
if [ $status -ne 0 ]; then
  echo "--- failures (whole report: $out/api-fuzz.txt) ---"
  sed -n '/FAILURES/,/WARNINGS\|SUMMARY/p' "$out/api-fuzz.txt" | head -80
  echo "--- server log tail ---"; tail -20 "$server_log"
fi
exit $status
