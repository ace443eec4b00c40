#!/usr/bin/env bash
# Open MPI's launch agent (plm_rsh_agent) for the test cluster of tests/cluster/cluster.bash:
# called as ssh would be, `agent.sh [ssh options] HOST COMMAND...`, it runs COMMAND on HOST,
# that is inside HOST's network namespace with HOST as its host name and the cluster's
# /etc/hosts. nsenter --net (rather than `ip netns exec`) keeps /sys as it is, which slurmd
# reads. RINGTRAIN_CLUSTER_DIR and RINGTRAIN_CLUSTER_PREFIX come from cluster.bash.
set -euo pipefail
: "${RINGTRAIN_CLUSTER_DIR:?agent.sh runs under tests/cluster/cluster.bash}"
while [ $# -gt 0 ]; do
  case "$1" in
    -o | -l | -p | -i) shift 2 ;;  # ssh options with a value
    -*) shift ;;
    *) break ;;
  esac
done
host=$1
shift
ns="${RINGTRAIN_CLUSTER_PREFIX}${host}"
[ -e "/run/netns/$ns" ] || { echo "agent.sh: no host '$host' in this cluster" >&2; exit 255; }
exec nsenter --net="/run/netns/$ns" unshare --mount --uts sh -c \
  'hostname "$0"; mount --bind "$RINGTRAIN_CLUSTER_DIR/hosts" /etc/hosts; eval "$*"' "$host" "$@"
