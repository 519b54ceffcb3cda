#!/usr/bin/env bash
# Starts a real single-node Slurm on this machine (Debian/Ubuntu, as root): installs slurm-wlm
# and munge with apt-get if missing, writes a minimal slurm.conf for localhost, starts munged,
# slurmctld and slurmd, and waits until the node accepts jobs. Idempotent: daemons already
# running are left alone. Used by .ci/run before the Slurm test (cli/tests/slurm.rs); also a
# quick way to try examples/slurm/ without a cluster.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "start-local-slurm.sh: run as root (it installs packages and starts daemons)" >&2
  exit 1
fi

if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null
fi

host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))

# munge: a key, its directories, the daemon (as the munge user).
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
if ! munge -n </dev/null >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 50); do munge -n </dev/null >/dev/null 2>&1 && break; sleep 0.1; done
fi

conf_dir=/etc/slurm
install -d "$conf_dir" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat >"$conf_dir/slurm.conf" <<CONF
# Written by examples/slurm/start-local-slurm.sh: one node, this machine.
ClusterName=home-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
KillWait=5
DefMemPerCPU=2048
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

if ! scontrol ping 2>/dev/null | grep -q UP; then
  slurmctld
fi
# slurmd initialises a cgroup plugin even with proctrack/linuxproc and task/none. Autodetection
# (no cgroup.conf) works on most machines; where it does not (containers, mixed hierarchies),
# try the v1 and v2 plugins explicitly. A cgroup.conf not written by this script is left alone.
marker="# written by start-local-slurm.sh"
start_slurmd() {
  if [ -f "$conf_dir/cgroup.conf" ] && ! grep -q "$marker" "$conf_dir/cgroup.conf"; then
    slurmd
    return
  fi
  for plugin in "" cgroup/v1 cgroup/v2; do
    if [ -z "$plugin" ]; then
      rm -f "$conf_dir/cgroup.conf"
    else
      printf '%s\nCgroupPlugin=%s\n' "$marker" "$plugin" >"$conf_dir/cgroup.conf"
    fi
    if slurmd; then
      return 0
    fi
    echo "start-local-slurm.sh: slurmd did not start with cgroup plugin '${plugin:-autodetect}'" >&2
  done
  return 1
}
if ! pgrep -x slurmd >/dev/null; then
  start_slurmd
fi

# Ready = slurmd alive and the controller sees the node responding ("idle", not "idle*").
for _ in $(seq 150); do
  if ! pgrep -x slurmd >/dev/null; then
    start_slurmd
  fi
  state=$(sinfo -h -n "$host" -o %t 2>/dev/null || true)
  case "$state" in
    *'*') ;;
    idle|mix|alloc) echo "slurm: node $host $state ($cpus CPUs, ${mem_mb} MB)"; exit 0 ;;
    down|drain|drng|fail) scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
  esac
  sleep 0.2
done
echo "start-local-slurm.sh: node $host did not become ready; logs:" >&2
tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1
