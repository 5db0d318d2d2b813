#!/usr/bin/env bash
# The fuzzing campaign: builds the sanitizer preset and runs every libFuzzer target for a
# configurable time, keeping what each run learns (the grown corpus) between runs.
#
#   tests/fuzz/run-long.sh [SECONDS_PER_TARGET] [REGEX]     default 600 s, all targets
#
# Crashes land in fuzz-artifacts/<target>-crash-*; turn each into a regression test (a file in
# tests/fuzz/corpus/<target>/ plus a unit test with the exact expected error) before fixing it.
# The grown corpus stays in build-asan/fuzz-corpus/<target>/; copy interesting inputs back into
# tests/fuzz/corpus/ by hand (keep the checked-in seeds small).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-600}
regex=${2:-.}
cmake --preset asan >/dev/null
cmake --build --preset asan -j"${PSA_JOBS:-2}"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
mkdir -p fuzz-artifacts
failed=()
for src in tests/fuzz/fuzz_*.cpp; do
  name=$(basename "$src" .cpp)
  [[ $name =~ $regex ]] || continue
  corpus=build-asan/fuzz-corpus/$name
  mkdir -p "$corpus"
  cp -rn "tests/fuzz/corpus/$name"/. "$corpus"/ 2>/dev/null || true
  echo "=== $name: ${seconds}s ($(find "$corpus" -type f | wc -l) inputs)"
  if ! build-asan/bin/"$name" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
      -print_final_stats=1 -artifact_prefix="fuzz-artifacts/$name-" "$corpus"; then
    failed+=("$name")
  fi
done
if ((${#failed[@]})); then
  echo "FAILED: ${failed[*]} (see fuzz-artifacts/)"
  exit 1
fi
echo "all fuzzers ran ${seconds}s without a finding"
