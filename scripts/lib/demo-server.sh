# Sourced by the checks that need a running system (dashboard-check.sh, api-fuzz.sh).
#
# start_demo_server NAME [ARG…]: starts `.build/debug/bitten up --demo ARG…` on free loopback ports with a data
# directory of its own, its output in .build/test-output/NAME-server.log, and waits (up to 40 s) for /health.
# Sets `base` (http://127.0.0.1:PORT) and `server_log`; the server is stopped (SIGTERM, waited for) and its data
# directory removed when the script exits. Variables exported before the call (BITTEN_API_TOKEN…) reach it.
start_demo_server() {
  local name=$1
  shift
  local ports
  ports=($(python3 - <<'PY'
import socket
socks = []
for _ in range(9):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
))
  demo_data=$(mktemp -d /tmp/bitten-$name-XXXXXX)
  export BITTEN_DATA_DIR=$demo_data BITTEN_BIND_HOST=127.0.0.1 BITTEN_HTTP_PORT=${ports[0]} \
    BITTEN_COMMAND_PORT=${ports[1]} BITTEN_MARKET_PORT=${ports[2]} BITTEN_SIGNAL_PORT=${ports[3]} \
    BITTEN_CONFIRM_PORT=${ports[4]} BITTEN_SIGNAL_IN_PORT=${ports[5]} BITTEN_RELAY_PORT=${ports[6]} \
    BITTEN_ALERT_PORT=${ports[7]} BITTEN_QUERY_PORT=${ports[8]} SWIFT_BACKTRACE=enable=no
  mkdir -p .build/test-output
  server_log=.build/test-output/$name-server.log
  .build/debug/bitten up --demo "$@" > "$server_log" 2>&1 &
  demo_pid=$!
  trap 'kill -TERM "$demo_pid" 2>/dev/null; wait "$demo_pid" 2>/dev/null; rm -rf "$demo_data"' EXIT
  base=http://127.0.0.1:${ports[0]}
  for _ in $(seq 200); do
    python3 -c "import urllib.request; urllib.request.urlopen('$base/health', timeout=1)" 2>/dev/null && return 0
    sleep 0.2
  done
  return 0
}
