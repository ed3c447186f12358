#!/usr/bin/env bash
# Installs the Debian packages Bitten needs when they are missing (libzmq, hiredis, redis-server).
# With --browser, also Chromium and python3 for the dashboard's browser check (tests only); with --fuzzer,
# schemathesis from PyPI for the API contract check (tests only).
set -euo pipefail
need=()
if [ "${1:-}" = "--fuzzer" ]; then
  if ! command -v st >/dev/null 2>&1; then
    command -v python3 >/dev/null 2>&1 || "$0" --browser
    echo "installing: schemathesis (PyPI)"
    python3 -m pip install -q schemathesis==4.32.5 || python3 -m pip install -q --break-system-packages schemathesis==4.32.5
  fi
  exit 0
fi
if [ "${1:-}" = "--browser" ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v python3 >/dev/null 2>&1 || need+=(python3)
fi
dpkg -s libzmq3-dev >/dev/null 2>&1 || need+=(libzmq3-dev)
dpkg -s libhiredis-dev >/dev/null 2>&1 || need+=(libhiredis-dev)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-benchmark >/dev/null 2>&1 || need+=(redis-tools)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
if ((${#need[@]})); then
  echo "installing: ${need[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian starts a system redis-server on 6379 when it installs the package; Bitten runs its own.
  if command -v systemctl >/dev/null 2>&1; then $sudo systemctl disable --now redis-server >/dev/null 2>&1 || true; fi
  $sudo service redis-server stop >/dev/null 2>&1 || true
fi
