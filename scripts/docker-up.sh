#!/usr/bin/env bash
# Make a Docker daemon available (idempotent), for CI and the docker tests, on hosts without
# systemd: install docker.io and debootstrap if missing, start dockerd in the background if
# `docker info` fails, and wait (bounded) until it answers.
#   bash scripts/docker-up.sh
# Environment:
#   DOCKERD_LOG          dockerd's log file (default /var/log/dockerd.log)
#   DOCKER_UP_TIMEOUT    seconds to wait for the daemon (default 60)
#   DOCKER_UP_ROOT=DIR   start a private daemon instead, all state under DIR (socket DIR/docker.sock,
#                        data-root, exec-root, pidfile, its own bridge); use it with
#                        DOCKER_HOST=unix://DIR/docker.sock. Stop it (and remove its bridge
#                        and mounts): DOCKER_UP_ROOT=DIR bash scripts/docker-up.sh --stop
# The daemon runs with --iptables=false (no NAT): containers that must reach a package index
# run with --network host.
set -euo pipefail
case ${1:-} in
  "") ;;
  --stop) [ -n "${DOCKER_UP_ROOT:-}" ] || { echo "docker-up: --stop is for a DOCKER_UP_ROOT daemon" >&2; exit 2; } ;;
  *) echo "usage: [DOCKER_UP_ROOT=DIR] docker-up.sh [--stop]" >&2; exit 2 ;;
esac
timeout=${DOCKER_UP_TIMEOUT:-60}
t0=$(date +%s)

if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null \
   || ! command -v docker >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "docker-up: installing docker.io needs root" >&2; exit 1; }
  echo "docker-up: apt-get install docker.io debootstrap"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io debootstrap >/dev/null
  echo "docker-up: packages installed in $(( $(date +%s) - t0 )) s"
fi

args=(--iptables=false)
if [ -n "${DOCKER_UP_ROOT:-}" ]; then
  root=$(mkdir -p "$DOCKER_UP_ROOT" && cd "$DOCKER_UP_ROOT" && pwd)
  export DOCKER_HOST=unix://$root/docker.sock
  # A second daemon needs its own bridge: the default docker0 belongs to the main daemon
  # (and --bridge=none would delete it).
  bridge=rk$(echo "$root" | sha256sum | cut -c1-8)
  args+=(-H "$DOCKER_HOST" --data-root "$root/data" --exec-root "$root/exec"
         --pidfile "$root/dockerd.pid" --bridge "$bridge")
  log=${DOCKERD_LOG:-$root/dockerd.log}
  pidfile=$root/dockerd.pid
  if [ "${1:-}" = --stop ]; then
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pid" 2>/dev/null && { echo "docker-up: dockerd $pid did not stop" >&2; exit 1; }
    fi
    for m in $(awk -v r="$root/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do
      umount -l "$m" || true
    done
    ! ip link show "$bridge" >/dev/null 2>&1 || ip link delete "$bridge"
    echo "docker-up: private dockerd under $root stopped (state kept in $root)"
    exit 0
  fi
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add name "$bridge" type bridge
    ip link set "$bridge" up
  fi
else
  log=${DOCKERD_LOG:-/var/log/dockerd.log}
  pidfile=/var/run/docker.pid
fi

if docker info >/dev/null 2>&1; then
  echo "docker-up: daemon already running ($(docker version --format '{{.Server.Version}}'))"
  exit 0
fi

running=$(cat "$pidfile" 2>/dev/null || true)
if [ -z "$running" ] || ! kill -0 "$running" 2>/dev/null; then
  mkdir -p "$(dirname "$log")"
  echo "docker-up: starting dockerd ${args[*]} (log: $log)"
  # setsid: the daemon must outlive this script's session and process group.
  setsid nohup dockerd "${args[@]}" >>"$log" 2>&1 < /dev/null &
  pid=$!
else
  pid=$running
  echo "docker-up: dockerd (pid $pid) is running but not answering yet; waiting"
fi

deadline=$(( $(date +%s) + timeout ))
alive() {  # the started process, or whatever pid the daemon wrote (if setsid had to fork)
  kill -0 "$pid" 2>/dev/null || kill -0 "$(cat "$pidfile" 2>/dev/null || echo x)" 2>/dev/null
}
while ! docker info >/dev/null 2>&1; do
  if ! alive; then
    echo "docker-up: dockerd exited; last lines of $log:" >&2
    tail -n 15 "$log" >&2
    exit 1
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "docker-up: dockerd (pid $pid) did not answer within $timeout s; last lines of $log:" >&2
    tail -n 15 "$log" >&2
    exit 1
  fi
  sleep 0.5
done
echo "docker-up: dockerd ready ($(docker version --format '{{.Server.Version}}')," \
     "pid $pid) in $(( $(date +%s) - t0 )) s"
