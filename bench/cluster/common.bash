# The start of both bench/cluster scripts: BUILD_DIR and --rates/--delay off the command line
# (the rest stays in "$@" for the benchmark), the MPI environment, and the test cluster's
# functions (tests/cluster/cluster.bash). Sourced with the caller's arguments and
# $default_rates set.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build=$(cd "${1:-build}" && pwd)
[[ $# -gt 0 ]] && shift
rates=$default_rates
delay=0.05ms
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rates) rates=$2; shift 2 ;;
    --delay) delay=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1
WORK="$(mktemp -d)"
source "$root/tests/cluster/cluster.bash"
