#!/usr/bin/env bash
# Starts and stops a private Docker Engine for the deployment tests, on its own socket and
# data root under .run/docker, touching neither the host network nor any registry beyond
# loopback. Prints the socket on start.
#   scripts/dockerd.sh start | stop
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/.run/docker"
sock="$dir/docker.sock"

start() {
  mkdir -p "$dir"
  if [ -S "$sock" ] && docker -H "unix://$sock" version >/dev/null 2>&1; then
    echo "unix://$sock"
    return 0
  fi
  # dockerd must never reach out: pulls through a dead proxy fail at once, except loopback.
  HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost \
    nohup dockerd --host "unix://$sock" --data-root "$dir/data" --exec-root "$dir/exec" \
      --pidfile "$dir/dockerd.pid" --iptables=false --ip6tables=false --bridge=none \
      >"$dir/dockerd.log" 2>&1 &
  for _ in $(seq 1 100); do
    if docker -H "unix://$sock" version >/dev/null 2>&1; then
      echo "unix://$sock"
      return 0
    fi
    sleep 0.2
  done
  echo "gantry: dockerd did not start; its log follows" >&2
  tail -20 "$dir/dockerd.log" >&2
  return 1
}

stop() {
  local pid
  pid="$(cat "$dir/dockerd.pid" 2>/dev/null || true)"
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$dir/dockerd.pid"
  fi
  # dockerd mounts its network namespace and its data root; neither outlives it.
  umount -l "$dir/exec/netns/default" 2>/dev/null || true
  umount -l "$dir/data" 2>/dev/null || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
