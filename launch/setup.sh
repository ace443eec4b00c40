#!/usr/bin/env bash
# Installs ringtrain's build and run dependencies from Debian's packages. Idempotent: it
# installs only what is missing, so a second run is quick and needs no network.
set -euo pipefail

packages=(
  build-essential cmake git
  libtorch-dev            # LibTorch 1.13 (CPU)
  libopenmpi-dev openmpi-bin
  libyaml-cpp-dev libcxxopts-dev libgtest-dev zlib1g-dev
  libgloo-dev             # headers for the Gloo column of bench/allreduce (LibTorch c10d)
  libopenblas0-pthread    # a fast libblas.so.3 for LibTorch's matrix products (see bench/RESULTS.md)
  dataset-fashion-mnist   # IDX files under /usr/share/datasets/fashion-mnist
  fortunes                # text under /usr/share/games/fortunes (configs/lm_fortunes.yaml)
  python3-torch           # the Python client for interop tests and the PyTorch DDP comparison
  clang-format            # the format check among the tests (.clang-format)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
