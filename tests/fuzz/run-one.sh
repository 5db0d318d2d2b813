#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time over its checked-in seed corpus.
# Usage: run-one.sh FUZZER CORPUS_DIR   (PSA_FUZZ_SECONDS, default 30)
set -euo pipefail
fuzzer=$(readlink -f "$1")
corpus=$2
seconds=${PSA_FUZZ_SECONDS:-30}
work=$(mktemp -d)
artifacts=${PSA_FUZZ_ARTIFACTS:-$PWD/fuzz-artifacts}
mkdir -p "$artifacts"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus"
if [[ -d $corpus ]]; then
  cp -r "$corpus"/. "$work/corpus/" 2>/dev/null || true
fi
cd "$work"
"$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
  -print_final_stats=1 -artifact_prefix="$artifacts/$(basename "$fuzzer")-" "$work/corpus"
