#!/usr/bin/env bash
# The peer: Slurm from Debian (slurmctld + slurmd on this host, started here) running N
# `sbatch --wrap true` jobs to completion. Prints `slurm_jobs_per_s=X` on stdout.
# Needs root (it writes /etc/slurm and starts daemons); installs slurm-wlm when missing.
#
#   bench/slurm.sh [N]      (default 10000)
set -euo pipefail
jobs=${1:-10000}
if ! command -v slurmctld >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm >/dev/null
fi
host=$(hostname -s)
state=$(mktemp -d /tmp/slurm-bench.XXXX)
mkdir -p "$state/ctld" "$state/d" /etc/slurm /run/munge /var/log/munge
cat >/etc/slurm/slurm.conf <<CONF
ClusterName=bench
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SchedulerParameters=sched_min_interval=0,batch_sched_delay=0,default_queue_depth=10000
CompleteWait=0
KillWait=0
InactiveLimit=0
MinJobAge=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
MaxJobCount=200000
ReturnToService=2
SlurmdParameters=config_overrides
# `true` jobs barely use a core: let 64 run at once, as our simulated nodes do.
NodeName=$host CPUs=64 State=UNKNOWN
PartitionName=bench Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
[ -f /etc/munge/munge.key ] || (command -v mungekey >/dev/null && mungekey -c -f >/dev/null 2>&1) || true
pgrep -x munged >/dev/null || munged --force 2>/dev/null || munged
pkill -x slurmctld 2>/dev/null || true
pkill -x slurmd 2>/dev/null || true
sleep 0.5
slurmctld -c -i
slurmd -c
cleanup() { pkill -x slurmctld || true; pkill -x slurmd || true; rm -rf "$state" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 100); do sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed)' && break; sleep 0.2; done
cd "$state"
start=$(date +%s.%N)
submit_start=$(date +%s.%N)
for _ in $(seq "$jobs"); do sbatch -Q --output=/dev/null --wrap true; done
echo "submitted in $(echo "$(date +%s.%N) - $submit_start" | bc -l) s" >&2
while [ "$(squeue -h | wc -l)" -gt 0 ]; do sleep 0.05; done
end=$(date +%s.%N)
echo "slurm_jobs_per_s=$(echo "scale=1; $jobs / ($end - $start)" | bc -l)"
