#!/usr/bin/env bash
# A real single-machine SLURM (Debian's slurm-wlm 22.05) for trying and testing cluster/train.sbatch:
# slurmctld + slurmd with their configuration, state and logs in one directory, started and stopped
# by pid. auth/none (no munge daemon), one node named after this host with all its cores.
#   cluster/slurm-local.sh start [DIR]     prints the `export SLURM_CONF=…` line to use
#   cluster/slurm-local.sh stop [DIR]
set -euo pipefail
action=${1:?start or stop}
dir=${2:-/tmp/disttrain-slurm}
if ! command -v slurmctld >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq slurm-wlm >/dev/null
fi
export SLURM_CONF="$dir/slurm.conf"

# Daemons an earlier run of this script left behind (their SLURM_CONF names a disttrain cluster)
# would hold the ports; a SLURM that belongs to the machine is left alone.
ours() {
  for pid in $(pgrep -x slurmctld) $(pgrep -x slurmd); do
    conf=$( (tr '\0' '\n' < /proc/$pid/environ) 2>/dev/null | sed -n 's/^SLURM_CONF=//p')
    [ -n "$conf" ] && grep -q '^ClusterName=disttrain$' "$conf" 2>/dev/null && echo "$pid"
  done
  return 0
}
stop_stale() {
  local pids; pids=$(ours)
  [ -z "$pids" ] && return 0
  kill $pids 2>/dev/null || true
  for _ in $(seq 50); do [ -z "$(ours)" ] && return 0; sleep 0.1; done
  kill -9 $(ours) 2>/dev/null || true   # slurmd can take long to leave on SIGTERM
  sleep 0.2
}

case "$action" in
start)
  stop_stale
  mkdir -p "$dir/state" "$dir/spool"
  host=$(hostname -s); cpus=$(nproc)
  cat > "$SLURM_CONF" <<CONF
ClusterName=disttrain
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
JobRequeue=1
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus Sockets=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  slurmctld && slurmd
  for _ in $(seq 100); do srun -n1 true 2>/dev/null && break; sleep 0.2; done
  srun -n1 true || { echo "slurm did not come up; see $dir/*.log" >&2; exit 1; }
  echo "export SLURM_CONF=$SLURM_CONF"
  ;;
stop)
  stop_stale
  ;;
*) echo "usage: $0 start|stop [DIR]" >&2; exit 2 ;;
esac
