#!/usr/bin/env bash
# The Windows tests, run on Debian under Wine (tests/run.sh calls this; CI runs it):
#   1. the cross build (packaging/windows/build.sh: dependencies cached outside the checkout,
#      then the agent, the unit tests and two MSIs, the second one a higher version);
#   2. the cross-built unit tests (store, adapters, cloud-link, agent) under Wine;
#   3. tests/windows/wine_e2e.py: the MSI installed in a fresh WINEPREFIX runs the main job as a
#      service (see that file), against a Linux mosquitto and pms-cloud-sim from build/bin.
# What Wine cannot do that Windows does, and how each gap is covered: tests/windows/README.md.
#
#   tests/windows/run.sh [--no-build]      (--no-build: reuse build-windows/ and build/)
# Environment: PSA_JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/../.."

build=1
[[ ${1:-} == --no-build ]] && build=0

start=$(date +%s)
step() { echo; echo "=== windows: $* ($(($(date +%s) - start)) s)"; }

if ! command -v wine >/dev/null; then
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends wine wine64
fi

version=$(sed -n 's/^project(pms_agent VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
IFS=. read -r major minor patch <<<"$version"
upgrade_version="$major.$minor.$((patch + 1))"
if ((build)); then
  step "cross build (packaging/windows/build.sh)"
  packaging/windows/build.sh --msi-version "$upgrade_version"
fi
if [[ ! -x build/bin/pms-cloud-sim ]]; then
  step "Linux build of the cloud simulator"
  cmake --preset default >/dev/null
  cmake --build --preset default -j"${PSA_JOBS:-2}" --target pms-cloud-sim
fi

step "unit tests under Wine"
prefix=$(mktemp -d /tmp/psa-wine-unit-XXXXXX)
export WINEPREFIX=$prefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
cleanup() { wineserver -k 2>/dev/null || true; rm -rf "$prefix"; }
trap cleanup EXIT
wineserver -p </dev/null >/dev/null 2>&1
wine wineboot -i </dev/null >/dev/null 2>&1
failed=0
for t in unit_store unit_adapters unit_cloudlink unit_agent; do
  echo "--- $t"
  log="$prefix/$t.log"
  # No TMPDIR: wineserver would take it for its own socket; the tests use the prefix's %TEMP%.
  rc=0
  env -u TMPDIR wine "build-windows/bin/$t.exe" --gtest_brief=1 </dev/null >"$log" 2>&1 || rc=$?
  # A crash under Wine ends in its debugger, whose exit code may be 0: trust the summary line.
  if ((rc != 0)) || ! grep -q '^\[  PASSED  \]' "$log" || grep -q '^\[  FAILED  \]\|Unhandled' "$log"; then
    grep -v 'level=' "$log" | tail -60
    failed=1
  fi
  grep -E '^\[  (PASSED|SKIPPED|FAILED) ' "$log" || true
done
wineserver -k 2>/dev/null || true
((failed == 0)) || { echo "windows unit tests FAILED" >&2; exit 1; }

step "the MSI under Wine: service end to end (tests/windows/wine_e2e.py)"
python3 tests/windows/wine_e2e.py --msi "build-windows/pms-agent-$version-x64.msi" \
  --upgrade-msi "build-windows/pms-agent-$upgrade_version-x64.msi" --linux-bin build/bin

step "windows tests passed"
