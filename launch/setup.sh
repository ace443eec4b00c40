#!/usr/bin/env bash
# Installs ringtrain's build and run dependencies. Idempotent: it installs only what is
# missing, so a second run is quick and needs no network.
#   - Debian packages (apt-get);
#   - LibTorch 2.x: PyPI's torch, pinned in launch/requirements.txt, in the project's virtual
#     environment ($RINGTRAIN_VENV, default .venv); launch/build.sh builds against it.
# RINGTRAIN_LIBTORCH=debian also installs Debian's libtorch-dev 1.13, the second supported
# configuration (RINGTRAIN_LIBTORCH=debian launch/build.sh builds against it).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${RINGTRAIN_VENV:-$root/.venv}"

packages=(
  build-essential cmake git
  libopenmpi-dev openmpi-bin
  libyaml-cpp-dev libcxxopts-dev libgtest-dev zlib1g-dev
  libgloo-dev             # headers for the Gloo column of bench/allreduce (LibTorch c10d)
  libopenblas0-pthread    # a fast libblas.so.3 for Debian's LibTorch (see bench/RESULTS.md)
  dataset-fashion-mnist   # IDX files under /usr/share/datasets/fashion-mnist
  fortunes                # text under /usr/share/games/fortunes (configs/lm_fortunes.yaml)
  iproute2 util-linux     # ip netns, nsenter, unshare: the multi-host tests (tests/cluster)
  slurm-wlm munge         # the SLURM cluster of tests/cluster/slurm_launch.sh
  clang-format            # the format check among the tests (.clang-format)
  nlohmann-json3-dev      # the JSON reader of `ringtrain report` and `ringtrain timeline`
  chromium-headless-shell # renders the report and the timeline in tests (screenshots)
)
[ "${RINGTRAIN_LIBTORCH:-venv}" = debian ] && packages+=(libtorch-dev)  # LibTorch 1.13 (CPU)

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_install() {
  echo "setup: installing $*"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@"
}
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]} == 0)) || apt_install "${missing[@]}"

# The venv is current when it was made from this very requirements file.
stamp="$venv/.ringtrain-requirements"
if ! cmp -s "$root/launch/requirements.txt" "$stamp" 2>/dev/null; then
  python="$(command -v python3)"
  if ! "$python" -m venv --help >/dev/null 2>&1; then
    apt_install python3-venv
    python=/usr/bin/python3
  fi
  echo "setup: installing $(grep -v '^#' "$root/launch/requirements.txt" | xargs) into $venv"
  start=$SECONDS
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/launch/requirements.txt"
  cp "$root/launch/requirements.txt" "$stamp"
  echo "setup: $venv ready in $((SECONDS - start)) s ($(du -sh "$venv" | cut -f1))"
fi
