#!/usr/bin/env bash
# Quickstart: install what is missing, build, and run the agent's main job end to end on this
# machine, all on loopback from a temporary directory (removed at the end; KEEP=1 keeps it):
#
#   a throw-away PKI (CA, broker, agent and cloud certificates)  ->  mosquitto with mutual TLS
#   pms-cloud-sim (the Practice Studio cloud)  <-MQTT 5/TLS-  pms-agent  <-  sample PMS data:
#       HL7 v2 messages over MLLP (`pms-agent hl7 send`) and a CSV export dropped in a folder
#
# and shows the records arriving in the cloud, then the agent's own status screen.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

packaging/install-deps.sh --runtime
cmake --preset default >/dev/null
cmake --build --preset default -j"${PSA_JOBS:-2}" --target pms-agent pms-cloud-sim

work=$(mktemp -d /tmp/pms-agent-quickstart.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ ${KEEP:-0} == 1 ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

bin=$root/build/bin
agent_id=quickstart-0001
tenant=demo-practice
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() {  # wait_for SECONDS COMMAND...: poll until COMMAND succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@" 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

echo "== PKI: a CA, the broker (localhost), the agent ($agent_id) and the cloud"
pki=$work/pki
mkdir -p "$pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=Quickstart CA" -keyout "$pki/ca.key" -out "$pki/ca.pem" 2>/dev/null
issue() {  # issue NAME CN [SAN]
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
    -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
  local ext=$pki/$1.ext
  echo "basicConstraints=CA:FALSE" > "$ext"
  [[ -n ${3:-} ]] && echo "subjectAltName=$3" >> "$ext"
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 2 -extfile "$ext" -out "$pki/$1.pem" 2>/dev/null
  chmod 600 "$pki/$1.key"
}
issue broker localhost "DNS:localhost,IP:127.0.0.1"
issue agent "$agent_id"
issue cloud cloud
ls "$pki"/*.pem | sed 's/^/  /'

echo "== mosquitto: mutual TLS on 127.0.0.1, agents confined to their own topics"
mqtt_port=$(free_port)
cat > "$work/acl" <<ACL
pattern readwrite ps/+/%u/#

user cloud
topic readwrite ps/#
ACL
cat > "$work/mosquitto.conf" <<CONF
user root
per_listener_settings false
allow_anonymous false
acl_file $work/acl
log_dest file $work/mosquitto.log
listener $mqtt_port 127.0.0.1
cafile $pki/ca.pem
certfile $pki/broker.pem
keyfile $pki/broker.key
require_certificate true
use_identity_as_username true
tls_version tlsv1.2
CONF
mosquitto -c "$work/mosquitto.conf" &
pids+=($!)
wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$mqtt_port"
echo "  listening on mqtts://localhost:$mqtt_port"

echo "== pms-cloud-sim: the Practice Studio cloud, subscribed to ps/+/+/up/#"
"$bin/pms-cloud-sim" listen --url "mqtts://localhost:$mqtt_port" --ca "$pki/ca.pem" \
  --cert "$pki/cloud.pem" --key "$pki/cloud.key" --out "$work/received.jsonl" --quiet \
  --ready-file "$work/sim.ready" > "$work/sim.log" 2>&1 &
pids+=($!)
wait_for 10 test -e "$work/sim.ready"

echo "== pms-agent: config with an MLLP listener and a CSV drop folder"
state=$work/state
drop=$work/drop
mkdir -p "$state" "$drop"
mllp_port=$(free_port)
http_port=$(free_port)
cat > "$work/agent.json" <<JSON
{
  "agent":   { "id": "$agent_id", "tenant": "$tenant", "state_dir": "$state", "log_level": "info" },
  "store":   { "path": "queue.db", "key_file": "queue.key" },
  "cloud":   { "url": "mqtts://localhost:$mqtt_port", "ca_file": "$pki/ca.pem",
               "cert_file": "$pki/agent.pem", "key_file": "$pki/agent.key" },
  "control": { "socket": "$state/control.sock" },
  "http":    { "listen": "127.0.0.1:$http_port" },
  "adapters": [
    { "name": "cerner-adt", "type": "hl7-mllp", "vendor": "cerner", "listen": "127.0.0.1:$mllp_port" },
    { "name": "ecw-export", "type": "file-drop", "vendor": "eclinicalworks", "path": "$drop",
      "format": "csv", "kind": "appointment" }
  ]
}
JSON
"$bin/pms-agent" config validate "$work/agent.json"
"$bin/pms-agent" run --config "$work/agent.json" > "$work/agent.log" 2>&1 &
agent_pid=$!
pids+=($agent_pid)
if ! wait_for 20 grep -q "event=ready" "$work/agent.log"; then
  echo "the agent did not start:"; cat "$work/agent.log"; exit 1
fi
grep -E "event=(store_opened|adapter_started|cloud_link_started|ready)" "$work/agent.log" | sed 's/^/  /'

echo "== feeding sample data"
echo "  HL7 v2 over MLLP (4 messages: ADT, SIU, ORU, DFT); the ACK comes only after the commit:"
"$bin/pms-agent" hl7 send packaging/samples/sample-messages.hl7 --to "127.0.0.1:$mllp_port" | sed 's/^/    /'
echo "  CSV export dropped into $drop (3 appointment rows):"
cp packaging/samples/sample-appointments.csv "$drop/.appointments.csv.tmp"
mv "$drop/.appointments.csv.tmp" "$drop/appointments-$(date +%Y%m%d).csv"

expected=7
if ! wait_for 60 bash -c "[[ \$(grep -c '\"duplicate\":false' '$work/received.jsonl' 2>/dev/null) -ge $expected ]]"; then
  echo "only $(grep -c '"duplicate":false' "$work/received.jsonl" 2>/dev/null || echo 0) of $expected records arrived; agent log:"
  tail -n 30 "$work/agent.log"
  exit 1
fi

echo "== arrived in the cloud (pms-cloud-sim), one line per record"
python3 - "$work/received.jsonl" <<'PY'
import json, sys
print(f"  {'topic':<48} {'source':<11} {'format':<9} {'sha256':<7} msg-id")
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("duplicate"):
        continue
    print(f"  {m['topic']:<48} {m['source']:<11} {m['format']:<9} {'ok' if m.get('sha256_ok') else 'BAD':<7} {m['msg_id']}")
PY

echo "== pms-agent status"
"$bin/pms-agent" --config "$work/agent.json" status | sed 's/^/  /' || true

echo "== the local status page http://127.0.0.1:$http_port/ and Prometheus metrics (a few of them)"
python3 - "$http_port" <<'PY'
import sys, urllib.request
body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=10).read().decode()
wanted = ("pms_agent_adapter_accepted_records_total", "pms_agent_queue_pending_records",
          "pms_agent_cloud_connected", "pms_agent_cloud_acked_records_total")
for line in body.splitlines():
    if line.startswith(wanted):
        print("  " + line)
PY

echo "== stopping the agent (SIGTERM: pending ACKs sent, commits finished)"
kill -TERM "$agent_pid"
wait "$agent_pid" && echo "  agent exited cleanly"
echo
echo "Done: $expected records went PMS -> agent (encrypted queue) -> MQTT 5/TLS -> cloud."
echo "Keep the files with KEEP=1 packaging/quickstart.sh to look around."
