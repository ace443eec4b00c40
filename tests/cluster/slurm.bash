# A SLURM cluster on the hosts of cluster.bash (sourced after it): munged, slurmctld on rt-h1
# and one slurmd per host, all started directly (no systemd) with their state, spool, logs
# and key under the test's folder, and stopped with the hosts. Client commands (sbatch,
# srun, salloc, squeue) run on rt-h1 through slurm_on.
#
#   slurm_up          after cluster_up N: the daemons, every node idle
#   slurm_on CMD...   CMD on rt-h1 with SLURM_CONF set
command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null ||
  cluster_skip "SLURM is not installed (slurm-wlm, munge: launch/setup.sh installs them)"
SLURM_DIR="$RINGTRAIN_CLUSTER_DIR/slurm"
# Each host reads its own copy of slurm.conf, beside an mpi.conf of its own: the hosts share
# /tmp, where PMIx would put every host's client directory under one name.
slurm_conf() { echo "$SLURM_DIR/conf-$1/slurm.conf"; }

slurm_on() {
  cluster_on rt-h1 env SLURM_CONF="$(slurm_conf rt-h1)" "$@"
}

slurm_up() {
  local host i n=${#CLUSTER_HOSTS[@]}
  mkdir -p "$SLURM_DIR/state" "$SLURM_DIR/munge"
  chmod 700 "$SLURM_DIR/munge"
  dd if=/dev/urandom of="$SLURM_DIR/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$SLURM_DIR/munge/munge.key"
  # One munged serves every host: its socket is a file, which every namespace sees.
  cluster_on rt-h1 munged --force --key-file="$SLURM_DIR/munge/munge.key" \
    --socket="$SLURM_DIR/munge/munge.socket" --pid-file="$SLURM_DIR/munge/munged.pid" \
    --log-file="$SLURM_DIR/munge/munged.log" --seed-file="$SLURM_DIR/munge/munged.seed" ||
    fail "munged did not start: $(tail -n 3 "$SLURM_DIR/munge/munged.log" 2>/dev/null)"
  {
    echo "ClusterName=ringtrain-test"
    echo "SlurmctldHost=rt-h1(10.77.0.11)"
    echo "AuthType=auth/munge"
    echo "CredType=cred/munge"
    echo "AuthInfo=socket=$SLURM_DIR/munge/munge.socket"
    echo "SlurmUser=root"
    echo "SlurmdUser=root"
    echo "StateSaveLocation=$SLURM_DIR/state"
    echo "SlurmdSpoolDir=$SLURM_DIR/spool-%n"
    echo "SlurmctldPidFile=$SLURM_DIR/slurmctld.pid"
    echo "SlurmdPidFile=$SLURM_DIR/slurmd-%n.pid"
    echo "SlurmctldLogFile=$SLURM_DIR/slurmctld.log"
    echo "SlurmdLogFile=$SLURM_DIR/slurmd-%n.log"
    echo "ProctrackType=proctrack/linuxproc"
    echo "TaskPlugin=task/none"
    echo "SwitchType=switch/none"
    echo "MpiDefault=none"
    echo "SchedulerType=sched/builtin"
    echo "SelectType=select/cons_tres"
    echo "SelectTypeParameters=CR_CPU"
    echo "ReturnToService=2"
    echo "SlurmdParameters=config_overrides"
    echo "JobAcctGatherType=jobacct_gather/none"
    echo "AccountingStorageType=accounting_storage/none"
    echo "MailProg=/bin/true"
    echo "KillWait=10"
    for ((i = 1; i <= n; i++)); do echo "NodeName=rt-h$i NodeAddr=10.77.0.1$i CPUs=2 State=UNKNOWN"; done
    echo "PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
  } >"$SLURM_DIR/slurm.conf"
  for host in "${CLUSTER_HOSTS[@]}"; do
    mkdir -p "$SLURM_DIR/conf-$host" "$SLURM_DIR/spool-$host" "$SLURM_DIR/pmix-$host"
    cp "$SLURM_DIR/slurm.conf" "$(slurm_conf "$host")"
    echo "PMIxCliTmpDirBase=$SLURM_DIR/pmix-$host" >"$SLURM_DIR/conf-$host/mpi.conf"
  done
  slurm_on slurmctld ||
    fail "slurmctld did not start: $(tail -n 5 "$SLURM_DIR/slurmctld.log" 2>/dev/null)"
  for host in "${CLUSTER_HOSTS[@]}"; do
    cluster_on "$host" env SLURM_CONF="$(slurm_conf "$host")" slurmd -N "$host" ||
      fail "slurmd did not start on $host: $(tail -n 5 "$SLURM_DIR/slurmd-$host.log" 2>/dev/null)"
  done
  local _
  for _ in $(seq 60); do
    [ "$(slurm_on sinfo -h -t idle -o %D 2>/dev/null)" = "$n" ] && break
    sleep 0.5
  done
  [ "$(slurm_on sinfo -h -t idle -o %D 2>/dev/null)" = "$n" ] ||
    fail "the SLURM nodes did not come up idle: $(slurm_on sinfo 2>&1 | tail -n 3)"
  echo "slurm: slurmctld on rt-h1, slurmd on ${CLUSTER_HOSTS[*]}"
}
