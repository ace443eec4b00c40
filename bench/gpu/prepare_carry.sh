#!/usr/bin/env bash
# Run on the development machine (Debian 12) before a session with a GPU machine: fills
# build-gpucarry/ (ignored by git through /build*/) with what that machine may lack and cannot
# download, since nothing outside it can be reached:
#   build-gpucarry/fashion-mnist/   the four IDX .gz files (30 MB)
#   build-gpucarry/debs/            Debian packages of OpenMPI, yaml-cpp, cxxopts, GoogleTest
#                                   and zlib headers (about 10 MB); run_gpu_checks.sh unpacks
#                                   them under /tmp only when the machine lacks its own.
# Then: device run(command="bash bench/gpu/run_gpu_checks.sh", carry=["build-gpucarry"]).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dest="$root/build-gpucarry"
data="${RINGTRAIN_DATA:-/usr/share/datasets/fashion-mnist}"

mkdir -p "$dest/fashion-mnist" "$dest/debs"
cp "$data"/*-ubyte.gz "$dest/fashion-mnist/"

# OpenMPI 4.1 with the run-time libraries it loads, and the header-only or static build deps.
packages=(
  libopenmpi-dev libopenmpi3 openmpi-bin openmpi-common
  libevent-core-2.1-7 libevent-pthreads-2.1-7 libfabric1 libhwloc15 libibverbs1
  ibverbs-providers libnl-3-200 libnl-route-3-200 libpmix2 libpsm-infinipath1 libpsm2-2
  libucx0 librdmacm1 libnuma1 libmunge2 libltdl7 libpciaccess0
  libyaml-cpp-dev libyaml-cpp0.7 libcxxopts-dev libgtest-dev googletest zlib1g-dev
)
(cd "$dest/debs" && apt-get download "${packages[@]}" >/dev/null)
echo "prepare_carry: $(find "$dest/debs" -name "*.deb" | wc -l) packages, $(du -sh "$dest" | cut -f1) in $dest"
