#!/usr/bin/env bash
# Builds the Debian package from this checkout and prints its path: what a technician copies to
# the practice's server and installs with `apt-get install ./pms-agent_<version>_amd64.deb`
# (README "Install on a Linux server").
#
#   packaging/build-deb.sh [BUILD_DIR]   default: build-deb, a Release build of its own; an
#                                        existing build tree (e.g. build) is used as it is
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-deb}
packaging/install-deps.sh >&2
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPSA_BUILD_TESTS=OFF \
    -DPSA_BUILD_BENCH=OFF -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >&2
fi
cmake --build "$build" --target pms-agent -j"${PSA_JOBS:-2}" >&2
rm -f "$build"/pms-agent_*.deb
(cd "$build" && cpack -G DEB >&2)
ls "$(cd "$build" && pwd)"/pms-agent_*.deb
