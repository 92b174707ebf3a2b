#!/usr/bin/env bash
# Bring up a one-node Slurm cluster on this machine (idempotent), for CI and the Slurm tests:
# install Debian's slurm-wlm and munge if missing, write a munge key and a one-node
# slurm.conf, start munged (as the munge user), slurmctld and slurmd, wait (bounded) until the
# node takes jobs, and print `sinfo`. Needs root; no systemd is needed.
#   bash scripts/slurm-up.sh            (stop it: bash scripts/slurm-down.sh)
# Environment:
#   SLURM_UP_TIMEOUT   seconds to wait for the node to become idle (default 60)
#   SLURM_UP_FORCE=1   overwrite an /etc/slurm/slurm.conf this script did not write
# Slurm 22.05 (Debian 12): no cgroups here, so proctrack/linuxproc, task/none and a cgroup.conf
# of cgroup/v1 without automount (22.05 does not know CgroupPlugin=disabled; slurmd then fails).
# Jobs run as the user who submits them; there is no accounting (sacct), use scontrol/squeue.
set -euo pipefail
[ $# -eq 0 ] || { echo "usage: slurm-up.sh (no arguments)" >&2; exit 2; }
timeout=${SLURM_UP_TIMEOUT:-60}
case $timeout in '' | *[!0-9]*) echo "slurm-up: SLURM_UP_TIMEOUT must be seconds, not '$timeout'" >&2; exit 2 ;; esac
t0=$(date +%s)
MARK="# written by repro-kit scripts/slurm-up.sh"
CONF=/etc/slurm/slurm.conf
node=$(hostname -s)

fail() { echo "slurm-up: $*" >&2; exit 1; }
node_state() { sinfo -h -n "$node" -o %T 2>/dev/null | head -n1; }

if command -v sinfo >/dev/null && scontrol ping 2>/dev/null | grep -q UP; then
  case $(node_state) in
    idle | mixed | allocated | completing)
      echo "slurm-up: cluster already up"
      sinfo
      exit 0 ;;
  esac
fi

[ "$(id -u)" = 0 ] || fail "starting a Slurm cluster needs root (this is uid $(id -u))"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
   || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  echo "slurm-up: apt-get install slurm-wlm munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || fail "apt-get update failed"
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null \
    || fail "apt-get install slurm-wlm munge failed"
  echo "slurm-up: packages installed in $(( $(date +%s) - t0 )) s"
fi
getent passwd munge >/dev/null || fail "no 'munge' user (the munge package creates it)"

# munge: a 0400 key owned by munge, munged running as munge.
key=/etc/munge/munge.key
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s "$key" ]; then
  echo "slurm-up: creating $key"
  dd if=/dev/urandom of="$key" bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge "$key" /var/lib/munge /var/log/munge /run/munge
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0755 /run/munge
chmod 0400 "$key"
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  pid=$(cat /run/munge/munged.pid 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    fail "munged (pid $pid) runs but does not answer; see /var/log/munge/munged.log"
  fi
  rm -f /run/munge/munged.pid /run/munge/munge.socket.2*
  runuser -u munge -- munged || fail "munged did not start; see /var/log/munge/munged.log"
  for _ in $(seq 1 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.25; done
  munge -n 2>/dev/null | unmunge >/dev/null 2>&1 || fail "munged does not answer"
  echo "slurm-up: munged started"
fi

# slurm.conf: one node with this machine's CPUs and (a little less than) its memory.
cpus=$(nproc)
mem=$(( $(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo) * 9 / 10 ))
want=$(cat <<EOF
$MARK
ClusterName=repro-kit
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
MinJobAge=600
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=$node CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=main Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
)
if [ -f "$CONF" ] && ! grep -qxF "$MARK" "$CONF" && [ "${SLURM_UP_FORCE:-0}" != 1 ]; then
  fail "$CONF exists and was not written by this script (SLURM_UP_FORCE=1 overwrites it)"
fi
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
changed=0
if [ "$(cat "$CONF" 2>/dev/null)" != "$want" ]; then
  printf '%s\n' "$want" > "$CONF"
  changed=1
fi
printf '%s\n' "$MARK" "CgroupPlugin=cgroup/v1" "CgroupAutomount=no" > /etc/slurm/cgroup.conf

running() { local p; p=$(cat "$1" 2>/dev/null || true); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
if [ "$changed" = 1 ] && running /run/slurmctld.pid; then
  echo "slurm-up: slurm.conf changed; reconfiguring"
  scontrol reconfigure || true
fi
if ! running /run/slurmctld.pid; then
  slurmctld || fail "slurmctld did not start; see /var/log/slurm/slurmctld.log"
  echo "slurm-up: slurmctld started"
fi
if ! running /run/slurmd.pid; then
  slurmd || fail "slurmd did not start; see /var/log/slurm/slurmd.log"
  echo "slurm-up: slurmd started"
fi

deadline=$(( $(date +%s) + timeout ))
while :; do
  state=$(node_state)
  case $state in
    idle | mixed | allocated | completing) break ;;
    down* | drain* | drained*) scontrol update nodename="$node" state=resume 2>/dev/null || true ;;
  esac
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "slurm-up: node $node is '${state:-unknown}' after $timeout s; last log lines:" >&2
    tail -n 8 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
    exit 1
  fi
  running /run/slurmctld.pid || fail "slurmctld exited; see /var/log/slurm/slurmctld.log"
  running /run/slurmd.pid || fail "slurmd exited; see /var/log/slurm/slurmd.log"
  sleep 0.5
done
echo "slurm-up: one-node cluster ready ($(sinfo -V)) in $(( $(date +%s) - t0 )) s"
sinfo
