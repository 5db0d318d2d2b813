#!/usr/bin/env bash
# Builds the benchmarks (default preset) and runs each with modest sizes, one after the other,
# then prints ONE table: every figure, this machine's own limit measured in the same run, the
# ratio to it, and the target from the issue that set it. Asserts nothing (exit 0 unless the
# build or a benchmark program fails to run).
#
#   tests/bench/run-all.sh [--no-build] [--keep-logs DIR]
#
# Machine limits (measured here, in this run):
#   durable commit   fsync'd SQLite commits/s (WAL, synchronous=FULL) in the benchmark's state dir
#   loopback RTT     TCP round trip on 127.0.0.1 (1 KiB -> 200 B)
#   broker alone     raw libmosquitto QoS 1 over mutual TLS to the same local mosquitto, no store
# Each benchmark's full output goes to a log (printed path); the table is built from the
# `figure<TAB>value<TAB>unit` lines the programs print with --summary. Takes ~3-4 minutes of
# benchmarks on the 2-core dev VM, plus the build. Run it on a quiet machine: `uptime` is
# printed before each benchmark.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

build=1
logs=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-build) build=0 ;;
    --keep-logs) logs="$2"; shift ;;
    *) echo "usage: tests/bench/run-all.sh [--no-build] [--keep-logs DIR]" >&2; exit 2 ;;
  esac
  shift
done
if [[ -z "$logs" ]]; then
  logs="$(mktemp -d /tmp/psa-bench-XXXXXX)"
fi
mkdir -p "$logs"

benches=(store_bench hl7_parse_bench mllp_bench cloudlink_bench e2e_bench filedrop_bench api_bench)
if [[ $build -eq 1 ]]; then
  cmake --preset default >/dev/null
  cmake --build build -j2 --target "${benches[@]}" pms-agent pms-cloud-sim >&2
fi

started=$(date +%s)
declare -A val unit
run() {
  local name="$1"; shift
  local t0=$(date +%s)
  echo "== $name $* ($(uptime | sed 's/.*load average/load average/'))" >&2
  local rc=0
  "build/bin/$name" "$@" --summary >"$logs/$name.log" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "   $name FAILED (exit $rc); see $logs/$name.log" >&2
  fi
  while IFS=$'\t' read -r fig v u; do
    val[$fig]="$v"
    unit[$fig]="$u"
  done < <(grep -P '^[a-z0-9_.]+\t[-0-9.e+]+\t' "$logs/$name.log" || true)
  echo "   $(( $(date +%s) - t0 )) s" >&2
}

run store_bench --quick --depth 200000
run hl7_parse_bench 0.5
run mllp_bench --seconds 2
run cloudlink_bench --records 30000 --idle-seconds 10
run e2e_bench --seconds 5
run filedrop_bench 20 5000 10000
run api_bench --resources 20000

# figure | what | limit figure | target | check (ge N, le N, ratio_ge N, -) | issue
spec=$(cat <<'EOF'
limits.durable_commit|durable commit (SQLite WAL FULL, fsync)|-|machine limit|-|-
limits.loopback_rtt|loopback TCP round trip|-|machine limit|-|-
limits.mosquitto_tls_qos1_w100|mosquitto alone, TLS QoS1, window 100|-|machine limit|-|-
store.append_1p|store: appends/s, 1 producer|limits.durable_commit|-|-|#2
store.append_16p|store: appends/s, 16 producers|limits.durable_commit|-|-|#2
store.append_16p_over_1p|store: 16 producers / 1 producer|-|>= 8x|ge 8|#2
store.append_16p.deep|store: appends/s, 16 producers, depth 200k|limits.durable_commit|-|-|#2
store.drain_4w|store: lease+ack drain (4 x 100)|-|-|-|#2
hl7.parse_adt1k|hl7: parse, 1 KiB ADT, 1 core (best round)|-|>= 1M msg/s|ge 1000000|#3
hl7.parse_oru64k|hl7: parse, 64 KiB ORU, 1 core (best round)|-|-|-|#3
hl7.codec_adt1k|hl7: parse+validate+classify+id+ACK, 1 KiB|-|-|-|#3
mllp.conn1|mllp: 1 connection, commit before ACK|limits.one_conn|>= 80% of 1/(rtt+commit)|ratio_ge 0.8|#3
mllp.conn1_p99|mllp: 1 connection, p99 ACK latency|-|< 1000 us|le 1000|#3
mllp.conn16|mllp: 16 connections (in-process listener)|limits.durable_commit|>= 35k msg/s|ge 35000|#3
mllp.conn64|mllp: 64 connections (in-process listener)|limits.durable_commit|-|-|#3
mllp.agent_conn16|mllp: 16 connections to pms-agent|limits.durable_commit|-|-|#3
mllp.agent_rss_peak|mllp: pms-agent peak RSS|-|<= 25 MB|le 25|#3
cloudlink.drain_w1|cloud link drain, max_inflight 1|limits.mosquitto_tls_qos1_w1|-|-|#4
cloudlink.drain_w20|cloud link drain, max_inflight 20|limits.mosquitto_tls_qos1_w20|-|-|#4
cloudlink.drain_w100|cloud link drain, max_inflight 100|limits.mosquitto_tls_qos1_w100|>= 40k records/s|ge 40000|#4
cloudlink.drain_w100_rss|cloud link drain process peak RSS|-|-|-|#4
cloudlink.cpu_broker_down|cloud link CPU, broker down|-|~0|le 1|#4
e2e.throughput|end to end MLLP -> agent -> TLS -> sim|limits.mosquitto_tls_qos1_w100|>= 25k msg/s|ge 25000|#4
e2e.ingest|end to end: MLLP ingest rate|limits.durable_commit|-|-|#4
e2e.backlog_drain|end to end: backlog drain after outage|limits.mosquitto_tls_qos1_w100|-|-|#4
e2e.rss_idle|pms-agent RSS idle (connected)|-|<= 10 MB|le 10|#4
e2e.rss_idle_anon|  of which anonymous (heap, stacks)|-|-|-|#4
e2e.rss_load|pms-agent RSS under load|-|<= 25 MB|le 25|#4
e2e.rss_at_depth|pms-agent RSS, outage backlog + drain|-|<= 25 MB, flat|le 25|#4
e2e.rss_at_depth_anon|  of which anonymous (heap, stacks)|-|-|-|#4
e2e.queue_depth|  backlog built during the outage|-|-|-|#4
e2e.cpu_broker_down|pms-agent CPU, broker down|-|~0|le 1|#4
filedrop.csv|file drop: CSV rows into the store|-|-|-|#7
filedrop.x12|file drop: X12 837 sets|-|-|-|#7
filedrop.hl7_batch|file drop: HL7 batch messages|-|-|-|#7
filedrop.csv_rss|file drop: peak RSS (CSV)|-|-|-|#7
api.bulk|api: FHIR bulk NDJSON initial load|-|-|-|#8
api.search|api: FHIR paged search initial load|-|-|-|#8
api.bulk_rss|api: peak RSS (bulk)|-|-|-|#8
EOF
)

fmt() {  # number -> short human form
  awk -v v="$1" 'BEGIN { a = v < 0 ? -v : v;
    if (a >= 100000) printf "%.0fk", v / 1000; else if (a >= 10000) printf "%.1fk", v / 1000;
    else if (a >= 100) printf "%.0f", v; else if (a >= 10) printf "%.1f", v; else printf "%.2f", v }'
}

echo
echo "Benchmarks ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(( $(date +%s) - started )) s; logs in $logs)"
printf '| %-44s | %17s | %14s | %6s | %-26s | %-4s | %-5s |\n' "figure" "value" "machine limit" "ratio" "target" "met" "issue"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..46})" "$(printf -- '-%.0s' {1..19})" "$(printf -- '-%.0s' {1..16})" "$(printf -- '-%.0s' {1..8})" "$(printf -- '-%.0s' {1..28})" "$(printf -- '-%.0s' {1..6})" "$(printf -- '-%.0s' {1..7})"
while IFS='|' read -r fig what lim target check issue; do
  [[ -z "$fig" ]] && continue
  v="${val[$fig]:-}"
  if [[ -z "$v" ]]; then
    printf '| %-44s | %17s | %14s | %6s | %-26s | %-4s | %-5s |\n' "$what" "n/a" "" "" "$target" "" "$issue"
    continue
  fi
  shown="$(fmt "$v") ${unit[$fig]}"
  limit_shown=""
  ratio=""
  if [[ "$lim" != "-" && -n "${val[$lim]:-}" ]]; then
    limit_shown="$(fmt "${val[$lim]}") ${unit[$lim]}"
    ratio=$(awk -v a="$v" -v b="${val[$lim]}" 'BEGIN { if (b > 0) printf "%.2f", a / b }')
  fi
  met=""
  read -r op n <<<"$check"
  case "$op" in
    ge) met=$(awk -v a="$v" -v b="$n" 'BEGIN { print (a >= b) ? "yes" : "NO" }') ;;
    le) met=$(awk -v a="$v" -v b="$n" 'BEGIN { print (a <= b) ? "yes" : "NO" }') ;;
    ratio_ge) [[ -n "$ratio" ]] && met=$(awk -v a="$ratio" -v b="$n" 'BEGIN { print (a >= b) ? "yes" : "NO" }') ;;
  esac
  printf '| %-44s | %17s | %14s | %6s | %-26s | %-4s | %-5s |\n' "$what" "$shown" "$limit_shown" "$ratio" "$target" "$met" "$issue"
done <<<"$spec"
