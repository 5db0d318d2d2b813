#!/usr/bin/env python3
"""Whole-system chaos harness for pms-agent (issue 9). Python 3 standard library only.

Runs the real build/bin/pms-agent with every adapter type at once (16 MLLP senders, a file-drop
folder receiving CSV/HL7/X12 files, the FHIR (epic) and vendor (nextgen) simulators) against a
real mosquitto with mutual TLS and `pms-cloud-sim listen --receipts` (end-to-end receipts),
injects faults at random from a seeded RNG (every fault logged with its time in faults.jsonl),
lets the system drain, then checks the invariants and prints them as a table. Exit 1 on any FAIL.

    tests/chaos/chaos.py [--seed N] [--long] [--minutes M] [--rate R] [--keep]

See tests/chaos/README.md.
"""
import argparse
import base64
import collections
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
AGENT_ID = "chaos-0001"
TENANT = "chaos-tenant"

T0 = time.monotonic()
_print_lock = threading.Lock()
_log_file = None


def now():
    return time.monotonic() - T0


def log(msg):
    line = "[%7.1fs] %s" % (now(), msg)
    with _print_lock:
        print(line, flush=True)
        if _log_file:
            _log_file.write(line + "\n")
            _log_file.flush()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_for(pred, timeout, step=0.2):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if pred():
                return True
        except Exception:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


def run(argv, timeout=60, check=False, **kw):
    """Runs a command, returns (rc, combined output). rc None on timeout."""
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, **kw)
        out = p.stdout.decode("utf-8", "replace")
        if check and p.returncode != 0:
            raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), p.returncode, out))
        return p.returncode, out
    except subprocess.TimeoutExpired as e:
        return None, (e.stdout or b"").decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------
# Child processes: every child is tracked and killed at exit (also on failure and Ctrl-C).

CHILDREN = []
_children_lock = threading.Lock()


class Child:
    def __init__(self, name, argv, out_path, cwd=None):
        self.name = name
        self.argv = argv
        self.out_path = out_path
        self.cwd = cwd
        self.proc = None

    def start(self):
        out = open(self.out_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.cwd,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        with _children_lock:
            CHILDREN.append(self)
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self):
        if self.proc is None:
            return None
        if self.alive():
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGKILL)
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=15):
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        if self.proc is None:
            return None
        if self.alive():
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        return self.kill()


def kill_all_children():
    with _children_lock:
        kids = list(CHILDREN)
    for c in kids:
        try:
            c.kill()
        except Exception:
            pass


# ---------------------------------------------------------------------------------------------
# PKI (openssl CLI)

def make_pki(d):
    os.makedirs(d, exist_ok=True)

    def ossl(*args):
        run(["openssl"] + list(args), check=True)

    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
         "-subj", "/CN=Chaos CA", "-keyout", d + "/ca.key", "-out", d + "/ca.pem")

    def issue(name, cn, san=None):
        ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=" + cn,
             "-keyout", "%s/%s.key" % (d, name), "-out", "%s/%s.csr" % (d, name))
        ext = "%s/%s.ext" % (d, name)
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n")
            if san:
                f.write("subjectAltName=%s\n" % san)
        ossl("x509", "-req", "-in", "%s/%s.csr" % (d, name), "-CA", d + "/ca.pem", "-CAkey", d + "/ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", "%s/%s.pem" % (d, name))
        os.chmod("%s/%s.key" % (d, name), 0o600)

    issue("broker", "localhost", "DNS:localhost,IP:127.0.0.1")
    issue("pmssim", "localhost", "DNS:localhost,IP:127.0.0.1")
    issue("agent", AGENT_ID)
    issue("cloud", "cloud")
    ossl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", d + "/epic-client.key")
    os.chmod(d + "/epic-client.key", 0o600)
    ossl("pkey", "-in", d + "/epic-client.key", "-pubout", "-out", d + "/epic-client.pub.pem")


# ---------------------------------------------------------------------------------------------
# TCP proxy under the harness's control: stall (stop forwarding, keep the connections), cut
# (RST every connection), half-open (current connections silently swallow everything and never
# close; new connections work).

class Proxy:
    def __init__(self, name, target_port):
        self.name = name
        self.target_port = target_port
        self.port = free_port()
        self.flowing = threading.Event()
        self.flowing.set()
        self.lock = threading.Lock()
        self.conns = []
        self.accepted = 0
        self.closed = False
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", self.port))
        self.ls.listen(128)
        threading.Thread(target=self._accept, daemon=True, name="proxy-" + name).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                u.settimeout(None)
            except OSError:
                self._rst(c)
                continue
            conn = {"a": c, "b": u, "blackhole": False, "dead": False}
            with self.lock:
                self.conns.append(conn)
                self.accepted += 1
            threading.Thread(target=self._pipe, args=(conn, c, u), daemon=True).start()
            threading.Thread(target=self._pipe, args=(conn, u, c), daemon=True).start()

    @staticmethod
    def _rst(s):
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
        try:
            s.close()
        except OSError:
            pass

    def _pipe(self, conn, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if conn["blackhole"]:
                    continue
                while not self.flowing.wait(0.5):
                    if conn["dead"]:
                        return
                if conn["blackhole"]:
                    continue
                dst.sendall(data)
        except OSError:
            pass
        self._close(conn)

    def _close(self, conn, rst=False):
        with self.lock:
            if conn["dead"]:
                return
            conn["dead"] = True
            if conn in self.conns:
                self.conns.remove(conn)
        for s in (conn["a"], conn["b"]):
            if rst:
                self._rst(s)
            else:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                try:
                    s.close()
                except OSError:
                    pass

    def live(self):
        with self.lock:
            return [c for c in self.conns if not c["blackhole"]]

    def stall(self):
        self.flowing.clear()

    def resume(self):
        self.flowing.set()

    def cut(self):
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            self._close(c, rst=True)
        return len(conns)

    def half_open(self):
        conns = self.live()
        for c in conns:
            c["blackhole"] = True
        return len(conns)

    def shutdown(self):
        self.closed = True
        self.flowing.set()
        try:
            self.ls.close()
        except OSError:
            pass
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            self._close(c)


# ---------------------------------------------------------------------------------------------
# HTTP helpers for the simulators' admin API (plain http)

def http_json(method, url, body=None, timeout=20):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read().decode())


# ---------------------------------------------------------------------------------------------
# Sources

def frame(msg):
    return b"\x0b" + msg.encode() + b"\x1c\x0d"


class MllpSender(threading.Thread):
    """Sends HL7 ADT messages one at a time (wait for the ACK), each with a unique control id and
    the PHI marker in PID-5. A lost connection or ACK timeout means: reconnect and resend the same
    message (same control id), as real senders do."""

    def __init__(self, h, idx):
        super().__init__(daemon=True, name="mllp-%d" % idx)
        self.h = h
        self.idx = idx
        self.rng = random.Random(h.seed * 1000 + idx)
        self.sock = None
        self.buf = b""

    def build(self, ctl, bad):
        ts = time.strftime("%Y%m%d%H%M%S", time.gmtime())
        version = "9.9" if bad else "2.5.1"
        return ("MSH|^~\\&|CHAOS|SENDER%02d|PSAGENT|PRACTICE|%s||ADT^A04^ADT_A01|%s|P|%s\r"
                "EVN|A04|%s\r"
                "PID|1||MRN%s^^^CHAOS^MR||%s^ALEX^J||19850212|U\r"
                "PV1|1|O|CLINIC1\r" % (self.idx, ts, ctl, version, ts, ctl, self.h.marker))

    def close(self):
        if self.sock:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.buf = b""

    def exchange(self, data):
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.h.mllp_proxy.port), timeout=3)
        self.sock.settimeout(self.h.ack_timeout)
        self.sock.sendall(data)
        while b"\x1c\x0d" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("connection closed")
            self.buf += chunk
        end = self.buf.index(b"\x1c\x0d")
        ack = self.buf[:end].lstrip(b"\x0b").decode("utf-8", "replace")
        self.buf = self.buf[end + 2:]
        for seg in re.split(r"[\r\n]+", ack):
            f = seg.split("|")
            if f[0] == "MSA" and len(f) > 2:
                return f[1], f[2]
        return "??", ""

    def deliver(self, ctl, msg, bad):
        data = frame(msg)
        attempts = 0
        while not self.h.hard_stop.is_set():
            attempts += 1
            try:
                code, ack_ctl = self.exchange(data)
            except (OSError, socket.timeout):
                self.close()
                self.h.count("mllp_retries")
                time.sleep(0.2 + self.rng.random() * 0.3)
                continue
            if ack_ctl != ctl:
                self.close()  # stale ACK of an earlier attempt: start clean
                continue
            if code in ("AA", "CA"):
                return code
            if code in ("AR", "CR") and not bad and attempts < 1000:
                self.h.count("mllp_backpressure_" + code)
                time.sleep(0.3)
                continue
            return code
        return None

    def run(self):
        n = 0
        interval = 16.0 / self.h.rate
        next_t = time.monotonic() + self.rng.random() * interval
        while not self.h.load_stop.is_set():
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_t = max(next_t + interval, time.monotonic() - 1.0)
            n += 1
            bad = self.rng.random() < 0.004
            ctl = "M%02d-%07d" % (self.idx, n)
            key = "hl7:" + ctl
            self.h.offer(key, "mllp")
            code = self.deliver(ctl, self.build(ctl, bad), bad)
            self.h.mllp_result(key, code, bad)
        self.close()


class FileDropper(threading.Thread):
    """Drops CSV, HL7 and X12 files (written under a temp name, then renamed) with unique ids."""

    def __init__(self, h):
        super().__init__(daemon=True, name="filedrop")
        self.h = h
        self.n = 0

    def write(self, name, text, keys):
        tmp = os.path.join(self.h.inbox, "." + name + ".tmp")
        with open(tmp, "w", newline="") as f:
            f.write(text)
        self.h.files[name] = keys
        for k in keys:
            self.h.offer(k, "file")
        os.rename(tmp, os.path.join(self.h.inbox, name))

    def csv(self, n):
        rows = ["ChaosId,PatientName,StartDateTime,Status"]
        keys = []
        for r in range(self.h.csv_rows):
            cid = "F%05dR%04d" % (n, r)
            rows.append("%s,%s ALEX,2026-11-27T09:%02d:00,Scheduled" % (cid, self.h.marker, r % 60))
            keys.append("csv:" + cid)
        self.write("appt-%05d.csv" % n, "\r\n".join(rows) + "\r\n", keys)

    def hl7(self, n):
        msgs, keys = [], []
        for m in range(5):
            ctl = "F%05dH%02d" % (n, m)
            msgs.append("MSH|^~\\&|FILEEXP|CHAOS|PSAGENT|PRACTICE|20261126083000||ADT^A08^ADT_A01|%s|P|2.5.1\r"
                        "EVN|A08|20261126083000\r"
                        "PID|1||MRN%s^^^CHAOS^MR||%s^JORDAN^K||19790101|F\r" % (ctl, ctl, self.h.marker))
            keys.append("hl7:" + ctl)
        self.write("adt-%05d.hl7" % n, "".join(msgs), keys)

    def x12(self, n):
        segs, keys = [], []
        isa13 = "%09d" % n
        segs.append("ISA*00*          *00*          *ZZ*SUBMITTER01    *ZZ*RECEIVER01     *240102*1200*^*00501*%s*0*P*:" % isa13)
        segs.append("GS*HC*SUBMITTERID*RECEIVERID*20240102*1200*%d*X*005010X222A1" % n)
        count = 3
        for t in range(1, count + 1):
            tid = "X%05dT%d" % (n, t)
            st = "%04d" % t
            body = ["ST*837*%s*005010X222A1" % st,
                    "BHT*0019*00*%s*20240102*1200*CH" % tid,
                    "NM1*41*2*ACME FAMILY PRACTICE*****46*SUB12345",
                    "PER*IC*BILLING OFFICE*TE*2175550100",
                    "NM1*40*2*EXAMPLE PAYER*****46*PAYERID",
                    "HL*1**20*1",
                    "PRV*BI*PXC*207Q00000X",
                    "NM1*85*2*ACME FAMILY PRACTICE*****XX*1234567893",
                    "N3*100 MEDICAL PLAZA",
                    "N4*SPRINGFIELD*IL*627010000",
                    "REF*EI*371234567",
                    "HL*2*1*22*0",
                    "SBR*P*18*GRP1001******CI",
                    "NM1*IL*1*%s*JANE****MI*XYZ123456789" % self.h.marker,
                    "N3*123 MAIN ST",
                    "N4*SPRINGFIELD*IL*62701",
                    "DMG*D8*19800314*F",
                    "NM1*PR*2*EXAMPLE PAYER*****PI*PAYERID",
                    "CLM*%s*125***11:B:1*Y*A*Y*Y" % tid,
                    "HI*ABK:E119*ABF:I10",
                    "LX*1",
                    "SV1*HC:99213*125*UN*1***1:2",
                    "DTP*472*D8*20240102"]
            body.append("SE*%d*%s" % (len(body) + 1, st))
            segs.extend(body)
            keys.append("x12:" + tid)
        segs.append("GE*%d*%d" % (count, n))
        segs.append("IEA*1*%s" % isa13)
        self.write("claims-%05d.x12" % n, "~\n".join(segs) + "~\n", keys)

    def run(self):
        kinds = [self.csv, self.hl7, self.x12]
        while not self.h.load_stop.wait(self.h.file_interval):
            self.n += 1
            try:
                kinds[self.n % 3](self.n)
            except OSError as e:
                log("file drop %d failed: %s" % (self.n, e))


# ---------------------------------------------------------------------------------------------
# What the cloud received (pms-cloud-sim --out, read incrementally)

class CloudView:
    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.lines = 0
        self.dup_lines = 0
        self.sha_bad = []
        self.ids_by_key = collections.defaultdict(set)
        self.key_by_id = {}
        self.unparsed = []

    @staticmethod
    def key_of(m, payload):
        fmt = m.get("format")
        text = payload.decode("utf-8", "replace")
        if fmt == "hl7v2":
            f = text.split("\r", 1)[0].split("\n", 1)[0].split("|")
            return "hl7:" + (f[9] if len(f) > 9 else "?")
        if fmt == "csv+json":
            return "csv:" + str(json.loads(text).get("ChaosId"))
        if fmt == "x12":
            mm = re.search(r"BHT\*0019\*00\*([A-Z0-9]+)", text)
            return "x12:" + (mm.group(1) if mm else "?")
        if fmt == "fhir+json":
            doc = json.loads(text)
            if doc.get("resourceType"):
                return "fhir:%s/%s/%s" % (doc["resourceType"], doc.get("id"), (doc.get("meta") or {}).get("versionId"))
            req = doc.get("request") or {}
            return "fhir-del:%s@%s" % (req.get("url"), (doc.get("response") or {}).get("etag"))
        if fmt in ("vendor+json",):
            raw = json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            return "vendor:" + hashlib.sha1(raw.encode("utf-8")).hexdigest()[:16]
        return "other:" + hashlib.sha256(payload).hexdigest()

    def refresh(self):
        while self._refresh_chunk(64 << 20):
            pass

    def _refresh_chunk(self, limit):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(limit)
        except FileNotFoundError:
            return False
        end = data.rfind(b"\n")
        if end < 0:
            return False
        self.offset += end + 1
        more = len(data) == limit
        for line in data[:end].split(b"\n"):
            if not line.strip():
                continue
            m = json.loads(line)
            self.lines += 1
            if m.get("duplicate"):
                self.dup_lines += 1
            mid = m.get("msg_id")
            if not m.get("sha256_ok", False):
                self.sha_bad.append(mid)
            if mid in self.key_by_id:
                continue
            try:
                payload = base64.b64decode(m.get("payload_base64", ""))
                key = self.key_of(m, payload)
            except Exception as e:
                self.unparsed.append("%s: %s" % (mid, e))
                key = "unparsed:" + str(mid)
            self.key_by_id[mid] = key
            self.ids_by_key[key].add(mid)
        return more


# ---------------------------------------------------------------------------------------------
# The harness

class Harness:
    def __init__(self, args):
        self.args = args
        self.seed = args.seed
        self.rng = random.Random(args.seed)
        self.long = args.long
        self.rate = args.rate or (2000 if args.long else 120)
        self.minutes = args.minutes
        self.ack_timeout = 8.0
        self.csv_rows = 40
        self.file_interval = 1.5 if not args.long else 0.5
        self.marker = "ZZPHI%s" % os.urandom(4).hex().upper()
        self.bin = args.bin_dir or os.path.join(ROOT, "build", "bin")
        self.work = tempfile.mkdtemp(prefix="psa-chaos-")
        self.state = os.path.join(self.work, "state")
        self.inbox = os.path.join(self.work, "inbox")
        self.pki = os.path.join(self.work, "pki")
        self.cfg_path = os.path.join(self.work, "agent.json")
        self.agent_log = os.path.join(self.work, "agent.log")
        self.fault_log = os.path.join(self.work, "faults.jsonl")
        self.out_file = os.path.join(self.work, "received.jsonl")
        self.reports_file = os.path.join(self.work, "reports.jsonl")
        os.makedirs(self.inbox)
        os.makedirs(self.state)
        self.load_stop = threading.Event()
        self.hard_stop = threading.Event()
        self.stop_all = threading.Event()
        self.lock = threading.Lock()
        self.agent_lock = threading.RLock()
        self.counters = collections.Counter()
        self.offered = {}            # key -> source kind
        self.mllp = {}               # key -> final ACK code (None: never answered)
        self.mllp_bad = set()
        self.files = {}              # file name -> [keys]
        self.fault_results = collections.defaultdict(list)  # kind -> [(ok, detail)]
        self.unexpected_exits = []
        self.watchdog_kills = []
        self.samples = []            # (t, pid, rss_kb, fds)
        self.agent = None
        self.agent_down = False      # the harness took the agent down on purpose
        self.mounted = False
        self.broker = None
        self.children_ready = False

    # -- bookkeeping
    def count(self, name, n=1):
        with self.lock:
            self.counters[name] += n

    def offer(self, key, source):
        with self.lock:
            self.offered[key] = source

    def mllp_result(self, key, code, bad):
        with self.lock:
            self.mllp[key] = code
            if bad:
                self.mllp_bad.add(key)
            self.counters["mllp_" + str(code)] += 1

    def fault(self, kind, ok, detail):
        rec = {"t": round(now(), 2), "kind": kind, "ok": bool(ok), "detail": detail}
        with open(self.fault_log, "a") as f:
            f.write(json.dumps(rec) + "\n")
        self.fault_results[kind].append((bool(ok), detail))
        log("FAULT %-22s %s %s" % (kind, "ok " if ok else "BAD", detail))

    # -- parts
    def start_broker(self):
        conf = os.path.join(self.work, "mosquitto.conf")
        if not os.path.exists(conf):
            self.broker_port = free_port()
            with open(os.path.join(self.work, "acl"), "w") as f:
                f.write("pattern readwrite ps/+/%u/#\n\nuser cloud\ntopic readwrite ps/#\n")
            os.chmod(os.path.join(self.work, "acl"), 0o600)
            with open(conf, "w") as f:
                if os.geteuid() == 0:
                    f.write("user root\n")
                f.write("per_listener_settings false\nallow_anonymous false\n"
                        "acl_file %s/acl\nlog_dest file %s/mosquitto.log\n"
                        "max_queued_messages 0\nmax_inflight_messages 0\n"
                        "listener %d 127.0.0.1\ncafile %s/ca.pem\ncertfile %s/broker.pem\n"
                        "keyfile %s/broker.key\nrequire_certificate true\nuse_identity_as_username true\n"
                        "tls_version tlsv1.2\n" % (self.work, self.work, self.broker_port, self.pki,
                                                  self.pki, self.pki))
        self.broker = Child("mosquitto", ["mosquitto", "-c", conf], os.path.join(self.work, "mosquitto.out")).start()

        def up():
            socket.create_connection(("127.0.0.1", self.broker_port), timeout=1).close()
            return True
        if not wait_for(up, 15):
            raise RuntimeError("mosquitto did not start")

    def start_cloud_sim(self):
        ready = os.path.join(self.work, "sim.ready")
        self.cloud = Child("cloud-sim", [
            os.path.join(self.bin, "pms-cloud-sim"), "listen", "--url", "mqtts://localhost:%d" % self.broker_port,
            "--ca", self.pki + "/ca.pem", "--cert", self.pki + "/cloud.pem", "--key", self.pki + "/cloud.key",
            "--client-id", "chaos-cloud", "--receipts", "--payloads", "--out", self.out_file,
            "--reports-out", self.reports_file, "--ready-file", ready, "--quiet"],
            os.path.join(self.work, "cloud-sim.log")).start()
        if not wait_for(lambda: os.path.exists(ready), 20):
            raise RuntimeError("pms-cloud-sim did not start")

    def start_pms_sim(self, vendor, extra):
        ready = os.path.join(self.work, vendor + ".ready.json")
        Child(vendor, [PY, os.path.join(ROOT, "tests/sim/pms_sim.py"), "--vendor", vendor,
                       "--cert", self.pki + "/pmssim.pem", "--key", self.pki + "/pmssim.key", "--plain",
                       "--ready-file", ready, "--seed", str(self.seed), "--marker", self.marker] + extra,
              os.path.join(self.work, vendor + ".log")).start()
        if not wait_for(lambda: os.path.exists(ready), 120):
            raise RuntimeError("%s simulator did not start" % vendor)
        with open(ready) as f:
            return json.load(f)

    def adapters(self, mllp_port):
        epic, ng = self.epic, self.nextgen
        return [
            {"name": "mllp", "type": "hl7-mllp", "vendor": "cerner", "listen": "127.0.0.1:%d" % mllp_port},
            {"name": "drop", "type": "file-drop", "vendor": "generic", "path": self.inbox, "format": "csv",
             "kind": "appointment", "stable_ms": 200, "poll_interval_ms": 200,
             "patterns": [{"match": "*.hl7", "format": "hl7"}, {"match": "*.x12", "format": "x12"},
                          {"match": "*.csv", "format": "csv", "kind": "appointment"}]},
            {"name": "epic", "type": "fhir-poll", "vendor": "epic", "base_url": epic["fhir_base"],
             "ca_file": self.pki + "/ca.pem",
             "auth": {"type": "smart-backend", "client_id": "agent", "alg": "RS384",
                      "private_key_file": self.pki + "/epic-client.key", "token_url": epic["token_url"]},
             "resources": ["Patient", "Appointment", "Encounter", "Observation"], "interval_s": 1},
            {"name": "nextgen", "type": "rest-poll", "vendor": "nextgen",
             "base_url": ng["endpoints"]["https"]["base"], "ca_file": self.pki + "/ca.pem",
             "auth": {"type": "nextgen", "client_id": "agent", "client_secret": "ng-secret",
                      "token_url": ng["token_url"], "site_id": ng["site_id"],
                      "enterprise_id": ng["enterprise_id"], "practice_id": ng["practice_id"]},
             "interval_s": 1},
        ]

    def config(self):
        return {
            "agent": {"id": AGENT_ID, "tenant": TENANT, "state_dir": self.state, "log_level": "info"},
            "store": {"path": "queue.db", "key_file": "queue.key"},
            "cloud": {"url": "mqtts://localhost:%d" % self.mqtt_proxy.port, "ca_file": self.pki + "/ca.pem",
                      "cert_file": self.pki + "/agent.pem", "key_file": self.pki + "/agent.key",
                      "max_inflight": 100, "confirm": "receipt", "keepalive_s": 5, "receipt_timeout_s": 10,
                      "puback_timeout_s": 5, "config_signing_key": self.pki + "/signing.pub.pem"},
            "control": {"socket": os.path.join(self.state, "control.sock")},
            "adapters": self.adapters(self.mllp_port),
        }

    def cli(self, *args, timeout=20, cfg=None):
        return run([os.path.join(self.bin, "pms-agent"), "--config", cfg or self.cfg_path] + list(args),
                   timeout=timeout)

    # -- the agent
    def start_agent(self, expect_ready=True, timeout=45):
        """Starts `pms-agent run`; returns (ok, text of this run's log)."""
        start_off = os.path.getsize(self.agent_log) if os.path.exists(self.agent_log) else 0
        with open(self.agent_log, "a") as f:
            f.write("==== [harness %.1fs] start ====\n" % now())
        start_off = os.path.getsize(self.agent_log)
        self.agent = Child("pms-agent", [os.path.join(self.bin, "pms-agent"), "run", "--config", self.cfg_path],
                           self.agent_log).start()

        def text():
            with open(self.agent_log, "rb") as f:
                f.seek(start_off)
                return f.read().decode("utf-8", "replace")
        ok = wait_for(lambda: "event=ready" in text() or not self.agent.alive(), timeout)
        ok = ok and self.agent.alive() and "event=ready" in text()
        return ok, text()

    def restart_agent(self, why, attempts=20):
        with self.agent_lock:
            if self.agent:
                self.agent.kill()
            for i in range(attempts):
                ok, text = self.start_agent()
                if ok:
                    if i:
                        log("agent up after %d attempts (%s)" % (i + 1, why))
                    return True
                self.agent.kill()
                tail = " | ".join(l for l in text.strip().splitlines()[-3:])
                log("agent start failed (%s), attempt %d: %s" % (why, i + 1, tail[:300]))
                if self.stop_all.is_set():
                    return False
                time.sleep(min(0.5 * (i + 1), 3))
            return False

    def supervisor(self):
        """Plays systemd: restarts an agent that exited, and one that stops answering its control
        socket (the watchdog: `pms-agent status` times out twice in a row)."""
        misses = 0
        while not self.stop_all.wait(1.0):
            with self.agent_lock:
                if self.agent_down or self.agent is None:
                    misses = 0
                    continue
                if not self.agent.alive():
                    rc = self.agent.proc.returncode
                    self.unexpected_exits.append((round(now(), 1), rc))
                    log("SUPERVISOR: agent exited by itself (rc %s): restarting" % rc)
                    self.restart_agent("exited rc %s" % rc)
                    misses = 0
                    continue
                pid = self.agent.pid
            rc, out = self.cli("status", "--json", timeout=3)
            if rc is not None and "does not answer" in out:
                rc = None
            with self.agent_lock:
                if self.agent is None or self.agent.pid != pid or self.agent_down:
                    misses = 0
                    continue
                if rc is None:
                    misses += 1
                    if misses >= 2:
                        log("SUPERVISOR: agent pid %d unresponsive (status timed out twice): SIGKILL + restart" % pid)
                        self.watchdog_kills.append((round(now(), 1), pid))
                        self.restart_agent("watchdog")
                        misses = 0
                else:
                    misses = 0

    def sampler(self):
        while not self.stop_all.wait(1.0):
            a = self.agent
            if a is None or not a.alive():
                continue
            try:
                with open("/proc/%d/status" % a.pid) as f:
                    st = f.read()
                if "\nState:\tT" in st:
                    continue
                rss = int(re.search(r"VmRSS:\s+(\d+)", st).group(1))
                fds = len(os.listdir("/proc/%d/fd" % a.pid))
                self.samples.append((now(), a.pid, rss, fds))
            except (OSError, AttributeError):
                pass

    # -- faults
    def f_agent_sigkill(self):
        with self.agent_lock:
            pid = self.agent.pid
            self.agent.kill()
            ok = self.restart_agent("after SIGKILL")
        self.fault("agent_sigkill", ok, "pid %d killed, restarted" % pid)

    def f_agent_sigstop(self):
        pid = self.agent.pid
        self.agent.signal(signal.SIGSTOP)
        t = now()
        ok = wait_for(lambda: self.agent.pid != pid and self.agent.alive(), 40)
        self.fault("agent_sigstop", ok, "pid %d stopped; watchdog restart after %.1fs" % (pid, now() - t))

    def f_broker_restart(self):
        down = self.rng.uniform(1.0, 4.0)
        self.broker.kill()
        time.sleep(down)
        self.start_broker()
        self.fault("broker_restart", True, "mosquitto SIGKILLed, down %.1fs, restarted" % down)

    def _proxy_fault(self, proxy, kind):
        if kind == "stall":
            d = self.rng.uniform(2.0, 6.0)
            proxy.stall()
            time.sleep(d)
            proxy.resume()
            self.fault("%s_stall" % proxy.name, True, "stalled %.1fs" % d)
        elif kind == "cut":
            n = proxy.cut()
            self.fault("%s_cut" % proxy.name, True, "RST %d connections" % n)
        else:
            n = proxy.half_open()
            self.fault("%s_halfopen" % proxy.name, True, "%d connections silently black-holed" % n)

    def f_disk_full(self):
        if not self.mounted:
            self.fault("disk_full", True, "SKIPPED: no size-limited tmpfs for the state dir (not root, or mount refused)")
            return
        ballast = os.path.join(self.state, "ballast.bin")
        filled = 0
        try:
            with open(ballast, "wb") as f:
                chunk = b"\0" * (1 << 20)
                while True:
                    f.write(chunk)
                    f.flush()
                    filled += 1
        except OSError:
            pass
        hold = self.rng.uniform(3.0, 7.0)
        time.sleep(hold)
        st = os.statvfs(self.state)
        os.remove(ballast)
        self.fault("disk_full", True, "state tmpfs filled (%d MiB ballast, %d KiB left), held %.1fs, freed"
                   % (filled, st.f_bavail * st.f_frsize // 1024, hold))

    def f_key_unreadable(self):
        key = os.path.join(self.state, "queue.key")
        # As root a mode-0 file is still readable, so root gets "readable by group/others" (0644)
        # or a missing file; both must be refused clearly and never replaced by a new key.
        variant = self.rng.choice(["mode", "missing"])
        with self.agent_lock:
            self.agent_down = True
            try:
                self.agent.stop()
                if variant == "missing":
                    os.rename(key, key + ".aside")
                else:
                    os.chmod(key, 0o000 if os.geteuid() != 0 else 0o644)
                started, text = self.start_agent(timeout=30)
                if not started:
                    wait_for(lambda: not self.agent.alive(), 10)
                rc = self.agent.kill()
                msg = next((l for l in text.splitlines() if "key file" in l), text.strip()[-200:])
                if variant == "missing":
                    os.rename(key + ".aside", key)
                else:
                    os.chmod(key, 0o600)
                up = self.restart_agent("key restored")
            finally:
                self.agent_down = False
        ok = not started and "key file" in msg and up
        self.fault("key_unreadable", ok, "%s: refused=%s rc=%s msg=%r; restored, restarted=%s" % (
            variant, not started, rc, msg.strip()[:160], up))

    def f_db_corrupt_copy(self):
        db = os.path.join(self.state, "queue.db")
        copy = os.path.join(self.state, "queue.db.chaos-copy")
        for suffix in ("", "-wal"):
            if os.path.exists(db + suffix):
                shutil.copyfile(db + suffix, copy + suffix)
        size = os.path.getsize(copy)
        with open(copy, "r+b") as f:
            for _ in range(4):
                off = self.rng.randrange(4096, max(4097, size))
                f.seek(off)
                f.write(os.urandom(64))
        rc, out = self.cli("queue", "salvage", copy, timeout=60)
        for suffix in ("", "-wal", "-shm"):
            try:
                os.remove(copy + suffix)
            except OSError:
                pass
        ok = rc in (0, 1) and ("imported" in out or "corrupt" in out.lower() or "not a database" in out.lower()
                               or "malformed" in out.lower())
        self.fault("db_corrupt_copy", ok, "salvage rc=%s: %s" % (rc, out.strip()[:200]))

    def f_bad_config_restart(self):
        bad = json.loads(open(self.cfg_path).read())
        bad["agent"]["chaos_bogus_key"] = 1
        bad_path = os.path.join(self.work, "agent-bad.json")
        with open(bad_path, "w") as f:
            json.dump(bad, f, indent=1)
        rc_v, out_v = run([os.path.join(self.bin, "pms-agent"), "config", "validate", bad_path], timeout=20)
        rc_r, out_r = run([os.path.join(self.bin, "pms-agent"), "run", "--config", bad_path], timeout=30)
        pid = self.agent.pid
        rc_s, _ = self.cli("status", "--json", timeout=10)
        ok = rc_v not in (0, None) and rc_r not in (0, None) and "chaos_bogus_key" in out_r and self.agent.alive() \
            and self.agent.pid == pid and rc_s is not None
        self.fault("bad_config_restart", ok, "validate rc=%s, run rc=%s: %r; live agent answers: %s" % (
            rc_v, rc_r, out_r.strip()[:160], rc_s is not None))

    def link_up(self, timeout=30):
        """Waits until `pms-agent status --json` reports the cloud link connected."""
        def up():
            rc, out = self.cli("status", "--json", timeout=10)
            return rc is not None and json.loads(out).get("cloud", {}).get("connected") is True
        return wait_for(up, timeout, step=0.5)

    def f_remote_config_reject(self):
        # The document is only delivered to a connected, subscribed agent (a broker restarted
        # without persistence forgets the agent's session), so wait for the link first.
        linked = self.link_up()
        holder = socket.socket()
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        taken = holder.getsockname()[1]
        doc = {"adapters": self.adapters(taken)}
        path = os.path.join(self.work, "remote-config.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        for attempt in range(2):
            rc, out = run([os.path.join(self.bin, "pms-cloud-sim"), "push-config", path, "--tenant", TENANT,
                           "--agent", AGENT_ID, "--key", self.pki + "/signing.key",
                           "--url", "mqtts://localhost:%d" % self.broker_port, "--ca", self.pki + "/ca.pem",
                           "--cert", self.pki + "/cloud.pem", "--cert-key", self.pki + "/cloud.key",
                           "--wait", "20"], timeout=60)
            if '"result"' in out:
                break
            log("remote config: no answer (%s); pushing again" % out.strip().replace("\n", " ")[-160:])
            self.link_up()
        holder.close()
        ok = rc == 1 and '"rejected"' in out and str(taken) in out
        if rc is None or (rc != 0 and '"result"' not in out):
            ok = False  # no answer (e.g. the link was down): counted as not exercised properly
        self.fault("remote_config_reject", ok, "link up %s; rc=%s %s" % (linked, rc, out.strip().replace("\n", " ")[-220:]))

    def f_vendor_faults(self):
        rules = {"rules": [
            {"kind": "status", "status": 503, "count": 3},
            {"kind": "429", "count": 2, "retry_after": "seconds", "retry_after_s": 1},
            {"kind": "malformed_json", "count": 2},
            {"kind": "status", "status": 500, "probability": 0.05, "max": 5},
        ]}
        out = []
        for name, sim in (("epic", self.epic), ("nextgen", self.nextgen)):
            r = http_json("POST", sim["admin"]["http"] + "/faults", rules)
            out.append("%s %d rules" % (name, len(r.get("ids", []))))
        self.fault("vendor_faults", True, "5xx/429/malformed pages armed: " + ", ".join(out))

    def fault_kinds(self):
        kinds = ["agent_sigkill", "agent_sigstop", "broker_restart", "mqtt_stall", "mqtt_cut",
                 "mqtt_halfopen", "mllp_stall", "mllp_cut", "mllp_halfopen", "disk_full", "key_unreadable",
                 "db_corrupt_copy", "bad_config_restart", "remote_config_reject", "vendor_faults"]
        return kinds

    def do_fault(self, kind):
        if kind.startswith("mqtt_"):
            return self._proxy_fault(self.mqtt_proxy, kind[5:])
        if kind.startswith("mllp_"):
            return self._proxy_fault(self.mllp_proxy, kind[5:])
        return getattr(self, "f_" + kind)()

    # -- phases
    def setup(self):
        log("work dir %s  seed %d  marker %s  rate %d msg/s" % (self.work, self.seed, self.marker, self.rate))
        for b in ("pms-agent", "pms-cloud-sim"):
            if not os.access(os.path.join(self.bin, b), os.X_OK):
                raise RuntimeError("%s/%s missing: build it first (cmake --build build --target pms-agent "
                                   "pms-cloud-sim)" % (self.bin, b))
        make_pki(self.pki)
        run([os.path.join(self.bin, "pms-cloud-sim"), "keygen", "--out", self.pki + "/signing"], check=True)
        if os.geteuid() == 0 and not self.args.no_tmpfs:
            rc, out = run(["mount", "-t", "tmpfs", "-o", "size=%dm,mode=0700" % self.args.tmpfs_mb, "chaos-state",
                           self.state])
            self.mounted = rc == 0
            if not self.mounted:
                log("NOTE: cannot mount a tmpfs for the state dir (%s): disk_full fault skipped" % out.strip())
        else:
            log("NOTE: not root: the disk_full fault is skipped")
        self.start_broker()
        self.start_cloud_sim()
        self.epic = self.start_pms_sim("epic", ["--patients", "4", "--client-id", "agent", "--client-public-key",
                                                self.pki + "/epic-client.pub.pem"])
        self.nextgen = self.start_pms_sim("nextgen", ["--patients", "3", "--client-id", "agent",
                                                      "--client-secret", "ng-secret"])
        self.mqtt_proxy = Proxy("mqtt", self.broker_port)
        self.mllp_port = free_port()
        self.mllp_proxy = Proxy("mllp", self.mllp_port)
        with open(self.cfg_path, "w") as f:
            json.dump(self.config(), f, indent=1)
        rc, out = run([os.path.join(self.bin, "pms-agent"), "config", "validate", self.cfg_path])
        if rc != 0:
            raise RuntimeError("config invalid: " + out)
        ok, text = self.start_agent(timeout=60)
        if not ok:
            raise RuntimeError("agent did not start:\n" + text[-3000:])
        log("agent up (pid %d); mqtt proxy :%d -> broker :%d; mllp proxy :%d -> agent :%d" % (
            self.agent.pid, self.mqtt_proxy.port, self.broker_port, self.mllp_proxy.port, self.mllp_port))
        threading.Thread(target=self.supervisor, daemon=True).start()
        threading.Thread(target=self.sampler, daemon=True).start()

    def load_and_faults(self):
        self.load_t0 = time.monotonic()
        self.senders = [MllpSender(self, i) for i in range(16)]
        for s in self.senders:
            s.start()
        self.dropper = FileDropper(self)
        self.dropper.start()
        # Background churn on the FHIR simulator while faults run (updates advance the watermark).
        fault_s = self.minutes * 60 if self.minutes else (3600 if self.long else None)
        churn_s = int(fault_s or 120)
        try:
            http_json("POST", self.epic["admin"]["http"] + "/mutate",
                      {"background": {"rate_per_s": 1, "duration_s": churn_s, "create": 1, "update": 2,
                                      "types": ["Appointment", "Encounter", "Observation"]}})
        except Exception as e:
            log("churn not started: %s" % e)
        warm = 8
        log("load running (%d senders, files every %.1fs); warm-up %ds" % (len(self.senders), self.file_interval, warm))
        time.sleep(warm)
        kinds = self.fault_kinds()
        order = list(kinds)
        self.rng.shuffle(order)
        # Short profile: every kind once, 2-5 s apart. Timed (--long / --minutes): one fault per
        # gap (a minute in the long profile), every kind once first, then at random, until the end.
        end = None if fault_s is None else time.monotonic() + fault_s
        gap = (2.0, 5.0) if end is None else ((60.0, 60.0) if self.long else (5.0, 10.0))
        done = 0
        while True:
            if end is not None and time.monotonic() >= end:
                break
            if order:
                kind = order.pop(0)
            elif end is not None:
                kind = self.rng.choice(kinds)
            else:
                break
            try:
                self.do_fault(kind)
            except Exception as e:
                self.fault(kind, False, "harness error: %r" % e)
            done += 1
            if end is None and not order:
                break
            pause = self.rng.uniform(*gap)
            if end is not None:
                pause = min(pause, max(0.0, end - time.monotonic()))
            time.sleep(pause)
        log("faults done (%d); stopping the load" % done)
        self.mqtt_proxy.resume()
        self.mllp_proxy.resume()
        try:
            http_json("POST", self.epic["admin"]["http"] + "/mutate/stop", {})
        except Exception:
            pass
        self.load_stop.set()
        self.load_t1 = time.monotonic()
        deadline = time.monotonic() + self.ack_timeout * 3 + 10
        for s in self.senders:
            s.join(max(0.1, deadline - time.monotonic()))
        self.hard_stop.set()
        self.dropper.join(5)

    def missing(self, cloud):
        """Acknowledged records not (yet) at the cloud, per source."""
        miss = {"mllp": [], "file": [], "api": []}
        with self.lock:
            acked_mllp = [k for k, c in self.mllp.items() if c in ("AA", "CA")]
        for k in acked_mllp:
            if k not in cloud.ids_by_key:
                miss["mllp"].append(k)
        for name in self.archived_files():
            for k in self.files.get(name, []):
                if k not in cloud.ids_by_key:
                    miss["file"].append(k)
        miss["api"] = self.api_missing(cloud)
        return miss

    def archived_files(self):
        out = []
        for d, _, names in os.walk(os.path.join(self.inbox, "archive")):
            out.extend(names)
        return out

    def api_expected(self):
        if getattr(self, "_api_exp", None) is None:
            e = http_json("GET", self.epic["admin"]["http"] + "/expected?types=Patient,Appointment,Encounter,Observation", timeout=60)
            n = http_json("GET", self.nextgen["admin"]["http"] + "/expected?digest=1", timeout=60)
            self._api_exp = (e, n)
        return self._api_exp

    def api_missing(self, cloud):
        e, n = self.api_expected()
        miss = []
        for ref, v in e.get("resources", {}).items():
            if "fhir:%s/%s" % (ref, v.get("versionId")) not in cloud.ids_by_key:
                miss.append("fhir:%s/%s" % (ref, v.get("versionId")))
        for ref, v in n.get("resources", {}).items():
            if "vendor:" + v.get("digest", "") not in cloud.ids_by_key:
                miss.append("vendor:%s" % ref)
        return miss

    def drain(self, cloud):
        timeout = 90 if not self.long else 300
        t = time.monotonic()
        log("draining (up to %ds)" % timeout)
        last = None

        def done():
            nonlocal last
            cloud.refresh()
            left = [f for f in os.listdir(self.inbox) if os.path.isfile(os.path.join(self.inbox, f))
                    and not f.startswith(".")]
            m = self.missing(cloud)
            q = {}
            if not left and not any(m.values()):
                rc, out = self.cli("queue", "stats", "--json", timeout=10)
                q = json.loads(out) if rc == 0 else {"pending": "?"}
            last = (left, m, q)
            return not left and not any(m.values()) and q.get("pending") == 0 and q.get("leased") == 0 \
                and q.get("retry") == 0
        ok = wait_for(done, timeout, step=2.0)
        log("drain %s after %.1fs (files left %d, missing mllp %d file %d api %d; queue %s)" % (
            "complete" if ok else "INCOMPLETE", time.monotonic() - t, len(last[0]), len(last[1]["mllp"]),
            len(last[1]["file"]), len(last[1]["api"]), json.dumps(last[2])[:160]))
        self.phi_scan_running = self.scan_state()
        return ok, last

    # -- invariants
    def check(self, cloud, drained, last):
        rows = []

        def row(name, ok, detail):
            rows.append((name, "PASS" if ok else "FAIL", detail))

        cloud.refresh()
        if self.args.sabotage:
            # Self-test of the checks: a phantom acknowledged record, a second msg-id for a real
            # record and the PHI marker in the state dir must each turn their row to FAIL.
            self.mllp["hl7:M99-9999999"] = "AA"
            some = next(iter(cloud.ids_by_key))
            cloud.ids_by_key[some].add("SABOTAGE-MSG-ID")
            with open(os.path.join(self.state, "sabotage.txt"), "w") as f:
                f.write("x" + self.marker.lower() + "x")
        acked_mllp = {k for k, c in self.mllp.items() if c in ("AA", "CA")}
        m_miss = [k for k in acked_mllp if k not in cloud.ids_by_key]
        codes = collections.Counter(str(c) for c in self.mllp.values())
        row("mllp acked -> cloud", not m_miss,
            "%d acked (%s), %d missing%s" % (len(acked_mllp), " ".join("%s=%d" % kv for kv in sorted(codes.items())),
                                            len(m_miss), (" e.g. " + ",".join(sorted(m_miss)[:3])) if m_miss else ""))
        arch = self.archived_files()
        f_keys = [k for n in arch for k in self.files.get(n, [])]
        f_miss = [k for k in f_keys if k not in cloud.ids_by_key]
        left = [f for f in os.listdir(self.inbox) if os.path.isfile(os.path.join(self.inbox, f))]
        errs = []
        for d, _, names in os.walk(os.path.join(self.inbox, "error")):
            errs.extend(names)
        row("files archived -> cloud", not f_miss,
            "%d files archived (%d records), %d missing; %d left in inbox, %d in error/" % (
                len(arch), len(f_keys), len(f_miss), len(left), len(errs)))
        row("files all disposed", not left and len(arch) == len(self.files) and not errs,
            "%d dropped, %d archived, %d left, error/: %s" % (len(self.files), len(arch), len(left), errs[:3]))
        a_miss = self.api_missing(cloud)
        e, n = self.api_expected()
        row("api watermark -> cloud", not a_miss,
            "%d FHIR + %d vendor records expected, %d missing%s" % (
                len(e.get("resources", {})), len(n.get("resources", {})), len(a_miss),
                (" e.g. " + ",".join(a_miss[:3])) if a_miss else ""))
        multi = {k: v for k, v in cloud.ids_by_key.items() if len(v) > 1}
        multi_acked = [k for k in multi if k in acked_mllp or k in set(f_keys) or k.startswith(("fhir", "vendor"))]
        row("exactly once by msg-id", not multi,
            "%d records at cloud, %d msg-ids, %d redelivered lines (same msg-id); %d records with >1 msg-id "
            "(%d acked)%s" % (len(cloud.ids_by_key), len(cloud.key_by_id), cloud.dup_lines, len(multi), len(multi_acked),
                              (" e.g. " + ",".join(sorted(multi)[:3])) if multi else ""))
        unoffered = []
        fhir_known = self.fhir_versions()
        for k in cloud.ids_by_key:
            if k.startswith(("hl7:", "csv:", "x12:")):
                if k not in self.offered:
                    unoffered.append(k)
            elif k.startswith("fhir:"):
                if k[5:] not in fhir_known:
                    unoffered.append(k)
            elif not k.startswith(("vendor:", "fhir-del:")):
                unoffered.append(k)
        row("nothing delivered unoffered", not unoffered and not cloud.sha_bad and not cloud.unparsed,
            "%d unknown records, %d sha256 mismatches, %d unparsable%s" % (
                len(unoffered), len(cloud.sha_bad), len(cloud.unparsed),
                (" e.g. " + ",".join(unoffered[:3])) if unoffered else ""))
        bad_ack = [k for k in self.mllp_bad if self.mllp.get(k) in ("AA", "CA")]
        row("bad HL7 rejected", not bad_ack, "%d planted bad messages, %d wrongly accepted" % (len(self.mllp_bad), len(bad_ack)))
        # Live agent checks.
        rc, out = self.cli("queue", "stats", "--json", timeout=30)
        try:
            q = json.loads(out)
            qs = "pending %s, leased %s, retry %s, dead %s" % (q.get("pending"), q.get("leased"), q.get("retry"),
                                                               q.get("dead"))
        except ValueError:
            q, qs = {}, "rc=%s %s" % (rc, out.strip()[:120])
        row("queue drained", rc == 0 and drained and q.get("pending") == 0 and q.get("leased") == 0,
            "drain %s; queue: %s" % ("complete" if drained else "INCOMPLETE", qs))
        items, after, rc, out, err = [], 0, 0, "", None
        while True:
            rc, out = self.cli("queue", "dead", "--json", "--limit", "1000", "--after", str(after), timeout=60)
            try:
                doc = json.loads(out)
            except ValueError as ex:
                err = "rc=%s unparsable: %s (%s)" % (rc, out.strip()[:160], ex)
                break
            page = doc.get("records", [])
            items.extend(page)
            if not doc.get("more") or not page:
                break
            after = page[-1]["seq"]
        no_reason = [d for d in items if not d.get("reason")]
        dead_ok = rc == 0 and err is None and not no_reason
        dead_detail = err or "%d dead letters, %d without a reason" % (len(items), len(no_reason))
        if items and not err:
            dead_detail += "; e.g. %r" % items[0].get("reason", "")[:80]
        row("dead letters have a reason", dead_ok, dead_detail)
        rc, out = self.cli("audit", "verify", timeout=60)
        row("audit chain verifies", rc == 0, "rc=%s %s" % (rc, out.strip().replace("\n", " ")[:160]))
        bundle = os.path.join(self.work, "bundle.out")
        rc_b, out_b = self.cli("bundle", "--out", bundle, timeout=60)
        # Stop the agent cleanly, then look for PHI everywhere it writes.
        with self.agent_lock:
            self.agent_down = True
            rc_stop = self.agent.stop(timeout=30)
        row("agent stops cleanly", rc_stop == 0, "SIGTERM exit code %s" % rc_stop)
        row("no unexpected agent exits", not self.unexpected_exits,
            "%d unexpected exits %s; %d watchdog kills" % (len(self.unexpected_exits), self.unexpected_exits[:3],
                                                           len(self.watchdog_kills)))
        marker = self.marker.encode()
        hits, scanned = self.scan_state()
        r_hits, r_scanned = self.phi_scan_running
        hits = sorted(set(hits) | set(r_hits))
        row("no PHI in state dir", not hits and scanned > 0, "%d files scanned while running (db, WAL, ...), %d after "
            "stop; marker found in %s" % (r_scanned, scanned, hits[:5] or "none"))
        with open(self.agent_log, "rb") as f:
            alog = f.read()
        row("no PHI in agent logs", marker not in alog, "%d KiB of logs scanned" % (len(alog) // 1024))
        b_hits = self.bundle_has(bundle, marker) if rc_b == 0 and os.path.exists(bundle) else None
        row("no PHI in support bundle", b_hits == [], "bundle rc=%s, marker in %s" % (rc_b, b_hits if b_hits is not None else "(no bundle) " + out_b.strip()[:100]))
        # RSS / fds.
        rss_lim, fd_lim = self.args.max_rss_mb * 1024, self.args.max_fds
        if self.samples:
            max_rss = max(s[2] for s in self.samples)
            max_fd = max(s[3] for s in self.samples)
            rs, fs = self.slopes()
            row("agent RSS bounded", max_rss <= rss_lim, "max %.1f MiB (limit %d), slope %s KiB/min, %d samples" % (
                max_rss / 1024, self.args.max_rss_mb, rs, len(self.samples)))
            row("agent fds bounded", max_fd <= fd_lim, "max %d (limit %d), slope %s fds/min" % (max_fd, fd_lim, fs))
        else:
            row("agent RSS bounded", False, "no samples")
        fired = []
        for name, sim in (("epic", self.epic), ("nextgen", self.nextgen)):
            try:
                f = http_json("GET", sim["admin"]["http"] + "/faults")
                fired.append("%s %d" % (name, sum(int(r.get("fired", 0)) for r in f.get("rules", []))))
            except Exception as ex:
                fired.append("%s ?(%s)" % (name, ex))
        self.vendor_fired = ", ".join(fired)
        for kind in self.fault_kinds():
            res = self.fault_results.get(kind, [])
            bad = [d for ok, d in res if not ok]
            skipped = res and all("SKIPPED" in d for _, d in res)
            detail = ("skipped (see note)" if skipped else "%d injected, %d misbehaved" % (len(res), len(bad))) + \
                (": " + bad[0][:120] if bad else "") if res else "not injected"
            if kind == "vendor_faults":
                detail += "; fired: " + self.vendor_fired
            if not res and (self.long or self.minutes):
                rows.append(("fault " + kind, "SKIP", "not drawn in this timed run"))
                continue
            row("fault " + kind, bool(res) and not bad, detail)
        return rows

    def scan_state(self):
        """Files under the state dir containing the PHI marker (any case); (hits, files scanned)."""
        marker = self.marker.encode().lower()
        hits, scanned = [], 0
        for d, _, names in os.walk(self.state):
            for nme in names:
                p = os.path.join(d, nme)
                try:
                    with open(p, "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                scanned += 1
                if marker in data.lower():
                    hits.append(os.path.relpath(p, self.state))
        return hits, scanned

    def fhir_versions(self):
        out = set()
        since = 0
        while True:
            r = http_json("GET", self.epic["admin"]["http"] + "/changelog?since=%d&limit=5000" % since, timeout=60)
            for e in r.get("entries", []):
                out.add("%s/%s" % (e.get("ref"), e.get("versionId")))
            if r.get("next") is None:
                return out
            since = r["next"]

    @staticmethod
    def bundle_has(path, marker):
        with open(path, "rb") as f:
            data = f.read()
        blobs = [("bundle", data)]
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as t:
                for m in t.getmembers():
                    if m.isfile():
                        blobs.append((m.name, t.extractfile(m).read()))
        except tarfile.TarError:
            pass
        try:
            blobs.append(("gunzip", zlib.decompress(data, 47)))
        except zlib.error:
            pass
        return [n for n, b in blobs if marker in b]

    def slopes(self):
        """Least-squares slope (per minute) of RSS (KiB) and fds over the samples of the agent
        process that ran longest."""
        by_pid = collections.defaultdict(list)
        for s in self.samples:
            by_pid[s[1]].append(s)
        seg = max(by_pid.values(), key=len)
        if len(seg) < 10:
            return "n/a", "n/a"
        seg = seg[len(seg) // 4:]  # skip start-up
        def slope(i):
            xs = [s[0] for s in seg]
            ys = [s[i] for s in seg]
            mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
            den = sum((x - mx) ** 2 for x in xs) or 1
            return 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den
        return "%+.1f" % slope(2), "%+.2f" % slope(3)

    def rss_timeline(self, points=10):
        """RSS (MiB) of the longest-lived agent process at `points` evenly spaced samples."""
        by_pid = collections.defaultdict(list)
        for s in self.samples:
            by_pid[s[1]].append(s)
        if not by_pid:
            return "n/a"
        seg = max(by_pid.values(), key=len)
        idx = sorted({int(i * (len(seg) - 1) / max(1, points - 1)) for i in range(points)})
        return " ".join("%.0fs:%.1f" % (seg[i][0], seg[i][2] / 1024) for i in idx)

    def cleanup(self, keep):
        self.stop_all.set()
        self.load_stop.set()
        self.hard_stop.set()
        kill_all_children()
        for p in (getattr(self, "mqtt_proxy", None), getattr(self, "mllp_proxy", None)):
            if p:
                p.shutdown()
        if self.mounted:
            if keep:
                shutil.copytree(self.state, self.state + ".kept", dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("*.sock", "ballast.bin"))
            rc, out = run(["umount", self.state], timeout=30)
            if rc != 0:
                run(["umount", "-l", self.state], timeout=30)
            self.mounted = False
        if not keep:
            shutil.rmtree(self.work, ignore_errors=True)


def print_table(rows):
    w = max(len(r[0]) for r in rows)
    print("\n%-*s  %-6s %s" % (w, "invariant", "result", "detail"))
    print("-" * (w + 2) + "  ------ " + "-" * 60)
    for name, res, detail in rows:
        print("%-*s  %-6s %s" % (w, name, res, detail))
    print()


def main():
    ap = argparse.ArgumentParser(description="whole-system chaos harness for pms-agent")
    ap.add_argument("--seed", type=int, default=None, help="RNG seed (default: random, printed)")
    ap.add_argument("--long", action="store_true", help="long profile: 2000 msg/s, a fault every minute, 60 min")
    ap.add_argument("--minutes", type=float, default=None, help="fault phase length (long default 60)")
    ap.add_argument("--rate", type=int, default=None, help="MLLP messages/s over all 16 senders")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (always kept on FAIL)")
    ap.add_argument("--bin-dir", default=os.environ.get("PSA_BIN_DIR"))
    ap.add_argument("--tmpfs-mb", type=int, default=None,
                    help="state tmpfs size (default 256; 4096 with --long: the dedupe index "
                         "grows ~1 GB/hour at 2,000 msg/s until its cap)")
    ap.add_argument("--no-tmpfs", action="store_true")
    ap.add_argument("--sabotage", action="store_true",
                    help="self-test: falsify three results after the drain; the run must FAIL on exactly "
                         "'mllp acked -> cloud', 'exactly once by msg-id' and 'no PHI in state dir'")
    ap.add_argument("--max-rss-mb", type=int, default=96)
    ap.add_argument("--max-fds", type=int, default=256)
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 1 << 31)
    if args.long and args.minutes is None:
        args.minutes = 60
    if args.tmpfs_mb is None:
        args.tmpfs_mb = 4096 if args.long else 256
    h = Harness(args)
    global _log_file
    _log_file = open(os.path.join(h.work, "run.log"), "a")
    print("chaos: seed %d (replay: tests/chaos/run.sh --seed %d%s%s)" % (
        args.seed, args.seed, " --long" if args.long else "", (" --minutes %g" % args.minutes) if args.minutes else ""),
        flush=True)

    def on_signal(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)  # also when started in the background (SIGINT ignored)
    failed = True
    try:
        h.setup()
        h.load_and_faults()
        cloud = CloudView(h.out_file)
        drained, last = h.drain(cloud)
        rows = h.check(cloud, drained, last)
        print_table(rows)
        failed = any(r[1] == "FAIL" for r in rows)
        with open(os.path.join(h.work, "invariants.json"), "w") as f:
            json.dump(rows, f, indent=1)
        print("chaos: agent RSS MiB over the run (longest-lived process): " + h.rss_timeline(), flush=True)
        load_s = max(1e-3, h.load_t1 - h.load_t0)
        acked = sum(1 for c in h.mllp.values() if c in ("AA", "CA"))
        print("chaos: seed %d %s in %.0fs (load %.0fs: %d MLLP sent, %.0f acked/s; %d files; %d faults)" % (
            args.seed, "FAILED" if failed else "passed", now(), load_s, len(h.mllp), acked / load_s, len(h.files),
            sum(len(v) for v in h.fault_results.values())), flush=True)
    except KeyboardInterrupt:
        log("interrupted")
    except Exception as e:
        import traceback
        traceback.print_exc()
        log("harness error: %s" % e)
    finally:
        keep = args.keep or failed
        h.cleanup(keep)
        if keep:
            print("chaos: work dir kept: %s (faults.jsonl, agent.log, received.jsonl, run.log)" % h.work)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
