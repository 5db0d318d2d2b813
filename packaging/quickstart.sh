#!/usr/bin/env bash
# Quickstart: install what is missing, build, and run the agent's main job end to end on
# this machine. Everything runs on loopback from a temporary directory, removed at the end
# (set KEEP=1 to keep it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

packaging/install-deps.sh --runtime
cmake --preset default >/dev/null
cmake --build --preset default -j"${PSA_JOBS:-2}" --target pms-agent

work=$(mktemp -d /tmp/pms-agent-quickstart.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ ${KEEP:-0} == 1 ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

bin=$root/build/bin
state=$work/state
mkdir -p "$state"
cat > "$work/agent.json" <<JSON
{
  "agent": { "id": "quickstart-0001", "tenant": "demo-practice", "state_dir": "$state", "log_level": "info" },
  "control": { "socket": "$state/control.sock" }
}
JSON

echo "== config"
"$bin/pms-agent" config validate "$work/agent.json"

echo "== starting the agent"
"$bin/pms-agent" run --config "$work/agent.json" > "$work/agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "event=ready" "$work/agent.log" && break; sleep 0.1; done
grep "event=" "$work/agent.log" | sed 's/^/  /'

echo "== stopping (SIGTERM)"
kill -TERM "${pids[0]}"
wait "${pids[0]}" && echo "agent exited cleanly"
pids=()
