# A cluster of hosts on this machine, for the multi-host tests (sourced by tests/cluster/*.sh
# after tests/e2e/common.bash). Each host is a network namespace with its own host name,
# joined by a veth pair to a bridge in a switch namespace; the addresses (10.77.0.0/24) exist
# only on that bridge, never in this machine's own namespace. Everything made is removed when
# the test ends, also when it fails.
#
#   cluster_up N              hosts rt-h1 .. rt-hN
#   cluster_exec HOST CMD...  CMD on HOST
#   cluster_mpirun ARGS...    mpirun started on rt-h1, ranks on the hosts that ARGS name
#                             (--host rt-h1:2,rt-h2:2), TCP between hosts
#   cluster_shape HOST RATE DELAY   tc netem on HOST's link (e.g. 10gbit 0.1ms); tbf, rate
#                                   only (burst 0.5 ms), where the kernel has no netem
#   cluster_link HOST up|down       HOST's link
#   cluster_kill_host HOST          SIGKILL every process on HOST
#
# As root only; where namespaces cannot be made the test is skipped with one line (exit 77,
# which ctest reports as skipped, never as passed).
CLUSTER_AGENT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/agent.sh"
export RINGTRAIN_CLUSTER_PREFIX="rt$$-"
export RINGTRAIN_CLUSTER_DIR="$WORK/cluster"
CLUSTER_HOSTS=()
CLUSTER_SWITCH="${RINGTRAIN_CLUSTER_PREFIX}switch"

cluster_skip() {
  echo "SKIP: $* (the multi-host tests need root and network namespaces: ip netns add)"
  exit 77
}

cluster_down() {
  local host ns
  for host in "${CLUSTER_HOSTS[@]}"; do
    ns="${RINGTRAIN_CLUSTER_PREFIX}$host"
    # Processes left on a host (a rank of a failed run) would keep its namespace alive.
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  ip netns del "$CLUSTER_SWITCH" 2>/dev/null || true
  CLUSTER_HOSTS=()
}
trap 'cluster_down; [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"' EXIT

cluster_up() {
  local n=$1 i host ns
  [ "$(id -u)" -eq 0 ] || cluster_skip "not root"
  command -v ip >/dev/null && command -v nsenter >/dev/null || cluster_skip "no ip or nsenter"
  ip netns add "$CLUSTER_SWITCH" 2>/dev/null || cluster_skip "cannot create a network namespace"
  mkdir -p "$RINGTRAIN_CLUSTER_DIR"
  ip -n "$CLUSTER_SWITCH" link add br0 type bridge
  ip -n "$CLUSTER_SWITCH" link set br0 up
  {
    echo "127.0.0.1 localhost"
    for ((i = 1; i <= n; i++)); do echo "10.77.0.1$i rt-h$i"; done
  } >"$RINGTRAIN_CLUSTER_DIR/hosts"
  for ((i = 1; i <= n; i++)); do
    host="rt-h$i"
    ns="${RINGTRAIN_CLUSTER_PREFIX}$host"
    ip netns add "$ns"
    CLUSTER_HOSTS+=("$host")
    ip link add "rt$$v$i" type veth peer name "rt$$p$i"
    ip link set "rt$$v$i" netns "$ns"
    ip link set "rt$$p$i" netns "$CLUSTER_SWITCH"
    ip -n "$ns" link set "rt$$v$i" name mpi0
    ip -n "$CLUSTER_SWITCH" link set "rt$$p$i" master br0 up
    ip -n "$ns" addr add "10.77.0.1$i/24" dev mpi0
    ip -n "$ns" link set mpi0 up
    ip -n "$ns" link set lo up
  done
  echo "cluster: ${n} hosts (${CLUSTER_HOSTS[*]}) on 10.77.0.0/24"
}

cluster_exec() {
  "$CLUSTER_AGENT" "$@"
}

# mpirun's options on the cluster: ranks started through agent.sh, TCP between hosts (vader
# inside one, self for a rank to itself), only over the cluster's interfaces.
CLUSTER_MPI_ARGS=(--bind-to none --mca plm_rsh_agent "$CLUSTER_AGENT" --mca btl tcp,vader,self
  --mca pml ob1 --mca btl_tcp_if_include mpi0 --mca oob_tcp_if_include mpi0
  -x RINGTRAIN_CLUSTER_DIR -x RINGTRAIN_CLUSTER_PREFIX)

# cluster_on HOST CMD...: CMD with its arguments kept as they are (cluster_exec evaluates
# one command line).
cluster_on() {
  local host=$1
  shift
  cluster_exec "$host" "$(printf '%q ' "$@")"
}

# mpirun from rt-h1 under a hard wall-clock limit: a hang is a failure.
CLUSTER_MPI_LIMIT=${CLUSTER_MPI_LIMIT:-300}
cluster_mpirun() {
  cluster_on rt-h1 timeout --kill-after=10 "$CLUSTER_MPI_LIMIT" mpirun "${CLUSTER_MPI_ARGS[@]}" "$@"
}

# netem where the kernel has it; else tbf (a kernel without sch_netem, as some VMs' are:
# "Specified qdisc kind is unknown"), which limits the rate but adds no delay. The first
# call says which.
CLUSTER_SHAPER=""
cluster_shape() {
  local host=$1 rate=$2 delay=$3
  ip -n "${RINGTRAIN_CLUSTER_PREFIX}$host" link set mpi0 up
  if [ -z "$CLUSTER_SHAPER" ]; then
    if cluster_exec "$host" tc qdisc replace dev mpi0 root netem rate "$rate" delay "$delay" \
      2>/dev/null; then
      CLUSTER_SHAPER=netem
      echo "cluster: links shaped by netem (rate and delay)"
      return
    fi
    CLUSTER_SHAPER=tbf
    echo "cluster: links shaped by tbf (rate only: this kernel has no netem, so no delay is added)"
  fi
  if [ "$CLUSTER_SHAPER" = netem ]; then
    cluster_exec "$host" tc qdisc replace dev mpi0 root netem rate "$rate" delay "$delay"
  else
    # Burst: 0.5 ms at the rate, at least 128 KiB (a veth's segments are up to 64 KiB). A
    # larger one lets a training step's gradients through at memory speed after its compute
    # (10 ms at 1 Gbit/s passed 1.25 MB of fashion_cnn's 1.69 MB free), and the link would
    # not be the link it claims to be.
    local bytes_per_s burst
    bytes_per_s=$(echo "$rate" | awk '{ n = $0 + 0; u = tolower($0); sub(/^[0-9.]+/, "", u)
      m = (u == "gbit") ? 1e9 : (u == "mbit") ? 1e6 : (u == "kbit") ? 1e3 : 1
      printf "%d", n * m / 8 }')
    burst=$((bytes_per_s / 2000 > 131072 ? bytes_per_s / 2000 : 131072))
    cluster_exec "$host" tc qdisc replace dev mpi0 root tbf rate "$rate" burst "$burst" latency "${CLUSTER_TBF_LATENCY:-50ms}"
  fi
}

cluster_link() {
  ip -n "${RINGTRAIN_CLUSTER_PREFIX}$1" link set mpi0 "$2"
}

cluster_kill_host() {
  ip netns pids "${RINGTRAIN_CLUSTER_PREFIX}$1" | xargs -r kill -9
}
