#!/usr/bin/env bash
# Fleet simulation (not part of CI): N real pms-agent processes, each with its own state dir,
# client certificate and MLLP feed, against a two-node ejabberd cluster on loopback; measures
# idle cost per agent and of the broker, the connection storm after a whole-cluster restart,
# failover when a node is SIGKILLed under traffic, and that no record is lost. See fleet.py.
#
#   cmake --preset default && cmake --build --preset default --target pms-agent pms-cloud-sim
#   tests/fleet/run.sh [--agents N] [--messages M] [--outage stop|kill] [--outage-s S]
#                      [--idle-s S] [--keep] ...        (tests/fleet/run.sh --help)
#
# Needs Debian's ejabberd (packaging/install-deps.sh), openssl and python3. Everything it
# starts is killed on exit, Ctrl-C included; the temp dir is removed unless --keep or a check
# failed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# Each agent holds a few fds (store, log, listener, TLS socket), each broker connection one
# port in beam: raise the fd limit as far as the hard limit allows.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

pid_file=""
cleanup() {
  # Normally fleet.py has cleaned up already; this catches a fleet.py that was killed hard.
  if [[ -n $pid_file && -f $pid_file ]]; then
    # "pid<TAB>text its command line contains": a pid reused by another process is left alone.
    while IFS=$'\t' read -r pid mark; do
      [[ -n $pid && -n $mark && -r /proc/$pid/cmdline ]] || continue
      if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$mark"; then
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done <"$pid_file"
  fi
}

dir=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [[ ${args[i]} == --dir ]] && dir=${args[i + 1]:-}
done
if [[ -z $dir ]]; then
  dir=$(mktemp -d /tmp/psa-fleet-XXXXXX)
  args+=(--dir "$dir")
fi
pid_file=$dir/pids
trap cleanup EXIT
trap 'exit 130' INT TERM

python3 -u "$here/fleet.py" "${args[@]}"
