#!/usr/bin/env bash
# Stop the one-node Slurm cluster that scripts/slurm-up.sh started: cancel its jobs, stop
# slurmd and slurmctld, then munged (each by its pid file). Packages, configuration and the
# state under /var/spool stay; slurm-up.sh starts it again.
#   bash scripts/slurm-down.sh
set -euo pipefail
[ $# -eq 0 ] || { echo "usage: slurm-down.sh (no arguments)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "slurm-down: stopping the cluster needs root" >&2; exit 1; }
if [ -f /etc/slurm/slurm.conf ] && ! grep -qxF "# written by repro-kit scripts/slurm-up.sh" /etc/slurm/slurm.conf; then
  echo "slurm-down: /etc/slurm/slurm.conf was not written by slurm-up.sh; not touching this cluster" >&2
  exit 1
fi

stop() {  # stop NAME PIDFILE: TERM, then wait (bounded)
  local pid
  pid=$(cat "$2" 2>/dev/null || true)
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
    echo "slurm-down: $1 not running"
    return 0
  fi
  kill "$pid"
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || { echo "slurm-down: $1 stopped"; return 0; }; sleep 0.25; done
  echo "slurm-down: $1 (pid $pid) did not stop within 10 s" >&2
  return 1
}

if command -v scancel >/dev/null && scontrol ping 2>/dev/null | grep -q UP; then
  squeue -h -o %A | sort -u | xargs -r scancel || true
fi
rc=0
stop slurmd /run/slurmd.pid || rc=1
stop slurmctld /run/slurmctld.pid || rc=1
stop munged /run/munge/munged.pid || rc=1
exit $rc
