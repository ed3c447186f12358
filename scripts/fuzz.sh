#!/usr/bin/env bash
# Fuzzes every decoder with libFuzzer: `scripts/fuzz.sh [SECONDS] [TARGET…]` (default 60 s each, all
# targets). Corpora start from ../shared/fixtures and live in .build/fuzz/TARGET/corpus; a crash
# leaves its input in .build/fuzz/TARGET/ and fails the run (turn it into a regression test).
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(ea_message command signal citadel_query http_json config)
fixtures=../shared/fixtures
export SWIFT_BACKTRACE=enable=no
core=$(find Sources/BittenCore -name '*.swift' | sort)
failed=0
for target in "${targets[@]}"; do
  dir=.build/fuzz/$target
  mkdir -p "$dir/corpus"
  flag=FUZZ_$(echo "$target" | tr a-z A-Z)
  extra=""
  [ "$target" = config ] && extra="Sources/Redis/RedisURL.swift Sources/Redis/RedisError.swift"
  if ! swiftc -O -sanitize=fuzzer,address -parse-as-library -D "$flag" -module-name BittenCore \
       $core $extra Fuzz/FuzzTargets.swift -o "$dir/fuzz-$target" 2> "$dir/build.log"; then
    echo "fuzz $target: build failed (see $dir/build.log)"; failed=1; continue
  fi
  case $target in
    ea_message|http_json) cp $fixtures/ea/*.json $fixtures/ea/malformed/* "$dir/corpus/" 2>/dev/null
       head -200 $fixtures/market/ticks_2025-09-15.jsonl | split -l 1 - "$dir/corpus/tick-" ;;
    command) cp $fixtures/ea/command_*.json "$dir/corpus/" ;;
    signal) cp $fixtures/ea/signal*.json "$dir/corpus/" ;;
    citadel_query) printf '{"type":"protection_query","symbol":"EURUSD","direction":"BUY","entry":1.1,"sl":1.09}' > "$dir/corpus/q1"
       printf '{"symbol":"EURUSD","entry_price":1.17450}' > "$dir/corpus/q2"; printf '{"type":"zones","symbol":"XAUUSD"}' > "$dir/corpus/q3" ;;
    config) printf 'redis://user:pw@127.0.0.1:6380/2' > "$dir/corpus/u1"; printf '2026.11.24 14:03:11' > "$dir/corpus/t1"; printf '1.08525' > "$dir/corpus/n1" ;;
  esac
  log=$dir/run.log
  (cd "$dir" && ./fuzz-$target -max_total_time="$seconds" -max_len=20000 -print_final_stats=1 corpus > run.log 2>&1)
  status=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  if [ $status -eq 0 ]; then
    echo "fuzz $target: ${runs:-?} executions in ${seconds} s, ${cov:-cov ?}, no crash"
  else
    echo "fuzz $target: FAILED (exit $status) after ${runs:-?} executions; see $log and the crash-* file in $dir"; failed=1
  fi
done
exit $failed
