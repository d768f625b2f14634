#!/usr/bin/env bash
# Installs, starts and stops the embedded AWS emulator (MiniStack, pinned in
# requirements.txt) on 127.0.0.1:4566, and runs the init/ready.d hooks against it.
#   localstack/ministack.sh install | start | stop | status
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
run="$root/.run"
port="${GANTRY_EMULATOR_PORT:-4566}"
endpoint="http://127.0.0.1:$port"
requirements="$root/localstack/requirements.txt"

export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-$AWS_REGION}"
export AWS_EC2_METADATA_DISABLED=true
export AWS_ENDPOINT_URL="$endpoint"

install() {
  local stamp="$venv/.requirements"
  if [ -f "$stamp" ] && cmp -s "$stamp" "$requirements"; then
    return 0
  fi
  echo "gantry: installing the local stack's Python tools into .venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$stamp"
}

healthy() {
  python3 - "$endpoint" <<'PY' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/_ministack/health", timeout=1).read()
PY
}

hooks() {
  for hook in "$root"/localstack/init/ready.d/*.sh; do
    PATH="$venv/bin:$PATH" bash "$hook"
  done
}

start() {
  install
  if healthy; then
    echo "gantry: emulator already running on $endpoint"
    hooks
    return 0
  fi
  mkdir -p "$run"
  echo "gantry: starting MiniStack on $endpoint"
  # Lambda functions inherit the emulator's environment: keep Gantry's settings out of it,
  # so a function has exactly the settings its template gives it.
  local unset=()
  for name in $(compgen -e | grep '^GANTRY_' || true); do unset+=(-u "$name"); done
  env "${unset[@]}" BIND_HOST=127.0.0.1 GATEWAY_PORT="$port" \
    nohup "$venv/bin/ministack" >"$run/ministack.log" 2>&1 &
  echo $! >"$run/ministack.pid"
  for _ in $(seq 1 100); do
    if healthy; then
      hooks
      return 0
    fi
    if ! kill -0 "$(cat "$run/ministack.pid")" 2>/dev/null; then
      echo "gantry: MiniStack exited; its log follows" >&2
      cat "$run/ministack.log" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "gantry: MiniStack did not become healthy in 20 s" >&2
  return 1
}

stop() {
  local pidfile="$run/ministack.pid"
  if [ -f "$pidfile" ]; then
    local pid
    pid="$(cat "$pidfile")"
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      echo "gantry: emulator stopped"
    fi
    rm -f "$pidfile"
  fi
  # Deployed functions run as the emulator's child processes and outlive it.
  pkill -f "ministack-provided-code-$port/" 2>/dev/null || true
}

status() {
  if healthy; then echo "gantry: emulator running on $endpoint"; else echo "gantry: emulator not running"; return 1; fi
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
