#!/usr/bin/env bash
# Builds everything and runs every test suite. This is what CI (.ci/run) runs.
#
#   tests/run.sh            default build: unit, integration, crash tests, then the short
#                           chaos profile (tests/chaos/); then the Windows cross build and its
#                           tests under Wine (tests/windows/run.sh); then the ASan+UBSan build:
#                           unit tests and a bounded run of every fuzzer
#   tests/run.sh --quick    default build only
#   tests/run.sh -R REGEX   only tests matching REGEX (default build)
#
# Environment: PSA_JOBS (default 2), PSA_FUZZ_SECONDS (default 30 per fuzzer).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
regex=""
while (($#)); do
  case $1 in
    --quick) quick=1 ;;
    -R) regex=$2; shift ;;
    *) echo "usage: tests/run.sh [--quick] [-R REGEX]" >&2; exit 2 ;;
  esac
  shift
done

jobs=${PSA_JOBS:-2}
packaging/install-deps.sh
# install-deps.sh installed ejabberd: its cluster tests must run, not skip.
export PSA_REQUIRE_EJABBERD=1

start=$(date +%s)
step() { echo; echo "=== $* ($(($(date +%s) - start)) s)"; }

step "configure + build (default preset)"
cmake --preset default >/dev/null
cmake --build --preset default -j"$jobs"

step "tests (default build)"
if [[ -n $regex ]]; then
  ctest --preset default -R "$regex"
  exit 0
fi
ctest --preset default -j"$jobs" -LE "fuzz|chaos"

if ((quick)); then
  exit 0
fi

step "whole-system chaos harness, short profile (tests/chaos/)"
ctest --preset default -L chaos

step "Windows: cross build, unit tests under Wine, the MSI as a service (tests/windows/run.sh)"
tests/windows/run.sh

step "configure + build (asan preset: ASan + UBSan, libFuzzer targets)"
cmake --preset asan >/dev/null
cmake --build --preset asan -j"$jobs"

step "unit tests and fuzzers under ASan + UBSan"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --preset asan -j"$jobs" -L "unit|fuzz"

step "all tests passed"
