#!/usr/bin/env python3
"""Fleet simulation: N real pms-agent processes against a two-node ejabberd cluster.

Not part of CI. tests/fleet/run.sh is the entry point (it raises the fd limit and builds
nothing: build pms-agent and pms-cloud-sim first). Standard library only.

Phases (all figures are printed at the end, and written to <tmp>/report.json):
  1. PKI (openssl): a CA, a server certificate for localhost, one client certificate per agent
     (CN = agent id) and one for the cloud simulator (CN = cloud).
  2. A two-node ejabberd cluster on loopback: own config/spool/log dirs per node, a private
     epmd on a free port (-start_epmd false), node 2 joins node 1 (join_cluster); TLS mod_mqtt
     listeners with client-certificate identity (tls_verify + c2s_cafile; client id = CN).
  3. pms-cloud-sim listen --receipts on node 1 (ps/+/+/up/#), and N agents (own state dir,
     certificate, hl7-mllp adapter on its own port, cloud.urls = both nodes, confirm receipt).
  4. Feed 1: each agent gets a share of its ADT messages over MLLP while connected.
  5. Steady state: idle RSS/PSS/CPU per agent and of the broker (every beam.smp and its
     children) over a window, from /proc.
  6. Connection storm: both nodes stopped (SIGTERM, or SIGKILL with --outage kill), feed 2 is
     queued by the agents meanwhile, both nodes started again; connects per second from the
     agents' logs (event=link.connected, ms timestamps) and the brokers' logs, until every agent
     is connected again.
  7. Node failure: feed 3 paced over a few seconds; node 2 (the simulator is on node 1) is
     SIGKILLed mid-stream; per agent the time from its link.disconnected to its next
     link.connected, p50/p99.
  8. Delivery: every control id the agent acknowledged AA must reach the simulator; duplicates
     are counted, and a control id seen with two different msg-ids is a failure.
Everything started here is killed on exit (also on Ctrl-C / SIGTERM).
"""

import argparse
import asyncio
import base64
import collections
import datetime
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ERL = "/usr/bin/erl"
EPMD = "/usr/bin/epmd"
EJABBERDCTL = "/usr/sbin/ejabberdctl"
TENANT = "fleet"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def log(msg):
    print(time.strftime("%H:%M:%S ") + msg, flush=True)


# ---------------------------------------------------------------- processes and cleanup

class Children:
    """Every process this script started; killed (with its descendants) on exit."""

    def __init__(self, root):
        self.procs = []
        self.root = root
        self.pid_file = os.path.join(root, "pids")

    def spawn(self, argv, out_path=None, env=None, cwd=None):
        out = open(out_path, "ab") if out_path else subprocess.DEVNULL
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=env, cwd=cwd, start_new_session=True)
        if out_path:
            out.close()
        self.procs.append(p)
        # run.sh's last-resort cleanup kills a listed pid only if its command line still
        # contains the mark (an argument unique to this run).
        mark = next((x for x in argv if self.root in x), " ".join(argv[1:3]))
        with open(self.pid_file, "a") as f:
            f.write("%d\t%s\n" % (p.pid, mark))
        return p

    def kill_tree(self, p, sig=signal.SIGKILL):
        family = descendants(p.pid)
        for pid in [p.pid] + family:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return family

    def cleanup(self):
        alive = [p for p in self.procs if p.poll() is None]
        # Agents and the simulator first, politely; then everything, hard.
        for p in alive:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.time() + 10
        for p in alive:
            try:
                p.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass
        for p in self.procs:
            family = descendants(p.pid) if p.poll() is None else []
            for pid in ([p.pid] if p.poll() is None else []) + family:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass


def proc_table():
    """pid -> (ppid, state, comm) from /proc."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                s = f.read()
        except OSError:
            continue
        close = s.rfind(")")
        rest = s[close + 2:].split()
        out[int(name)] = (int(rest[1]), rest[0], s[s.find("(") + 1:close])
    return out


def descendants(root, table=None):
    table = table or proc_table()
    children = collections.defaultdict(list)
    for pid, (ppid, _, _) in table.items():
        children[ppid].append(pid)
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n):
    """n distinct free ports (bound at once, then released)."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def can_connect(port, timeout=0.5):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(pred, timeout, step=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def run(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


# ---------------------------------------------------------------- PKI

def make_pki(d, agent_ids, jobs=8):
    os.makedirs(d, exist_ok=True)
    ca_key, ca = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    r = run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", ca_key, "-out", ca, "-days", "30", "-subj",
             "/O=psa-fleet/CN=psa-fleet-ca", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    if r.returncode != 0:
        raise RuntimeError("openssl CA: " + r.stdout)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,"
                "keyEncipherment\nextendedKeyUsage=serverAuth\n"
                "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,"
                "keyEncipherment\nextendedKeyUsage=clientAuth\n")

    def issue(cn, ext):
        key, csr, pem = (os.path.join(d, cn + s) for s in (".key", ".csr", ".pem"))
        r = run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", key, "-out", csr, "-subj", "/O=psa-fleet/CN=" + cn])
        if r.returncode == 0:
            r = run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
                     "-set_serial", str(random.getrandbits(63)), "-out", pem, "-days", "30",
                     "-sha256", "-extfile", os.path.join(d, ext)])
        if r.returncode != 0:
            raise RuntimeError("openssl %s: %s" % (cn, r.stdout))
        os.unlink(csr)
        return pem, key

    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(jobs) as ex:
        server = ex.submit(issue, "localhost", "server.ext")
        cloud = ex.submit(issue, "cloud", "client.ext")
        agents = {a: ex.submit(issue, a, "client.ext") for a in agent_ids}
        return {"ca": ca, "server": server.result(), "cloud": cloud.result(),
                "agents": {a: f.result() for a, f in agents.items()}}


# ---------------------------------------------------------------- ejabberd cluster

def find_erl_libs():
    try:
        with open(EJABBERDCTL) as f:
            for line in f:
                if line.startswith("ERL_LIBS='"):
                    d = line[len("ERL_LIBS='"):].split("'")[0]
                    if os.path.isdir(d):
                        return d
    except OSError:
        pass
    for base in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib"):
        if os.path.isdir(base) and any(n.startswith("ejabberd-") for n in os.listdir(base)):
            return base
    return None


class Node:
    def __init__(self, k, root):
        self.k = k
        self.name = "ejabberd%d@localhost" % k
        self.port = free_port()
        self.dir = os.path.join(root, "ejabberd%d" % k)
        self.config = os.path.join(self.dir, "ejabberd.yml")
        self.spool = os.path.join(self.dir, "spool")
        self.log_file = os.path.join(self.dir, "logs", "ejabberd.log")
        self.out_file = os.path.join(self.dir, "console.out")
        self.proc = None
        os.makedirs(self.spool, exist_ok=True)
        os.makedirs(os.path.dirname(self.log_file), exist_ok=True)

    @property
    def url(self):
        return "mqtts://localhost:%d" % self.port

    def running(self):
        return self.proc is not None and self.proc.poll() is None


class Cluster:
    def __init__(self, root, pki, children, session_expiry):
        self.root = root
        self.pki = pki
        self.children = children
        self.session_expiry = session_expiry
        self.erl_libs = find_erl_libs()
        if not self.erl_libs or not os.path.exists(ERL):
            raise RuntimeError("ejabberd/erl not installed (packaging/install-deps.sh)")
        self.cookie = "psafleet%x" % random.getrandbits(64)
        self.nodes = [Node(1, root), Node(2, root)]
        self.epmd_port = free_port()
        self.ctl_seq = 0
        for n in self.nodes:
            self.write_config(n)

    def write_config(self, n):
        cert, key = self.pki["server"]
        ca = self.pki["ca"]
        # Limits that would throttle hundreds of clients from one address, raised:
        # max_fsm_queue (messages queued to one connection's process: 10000 by default, past it
        # the connection is closed), the listen backlog (5 by default), mod_mqtt max_queue (an
        # offline session's queue: 5000 by default), session_expiry (300 s by default).
        # ejabberd 23.01 mod_mqtt has no per-IP connection limit or shaper; mod_fail2ban is not
        # loaded.
        text = f"""# Written by tests/fleet/fleet.py for {n.name}
hosts:
  - localhost
loglevel: info
log_rotate_count: 0
max_fsm_queue: 1000000
certfiles:
  - "{cert}"
  - "{key}"
ca_file: "{ca}"
c2s_cafile: "{ca}"
listen:
  -
    port: {n.port}
    ip: "127.0.0.1"
    module: mod_mqtt
    backlog: 4096
    max_fsm_queue: 1000000
    tls: true
    tls_verify: true
acl:
  cloud:
    user:
      - "cloud"
access_rules:
  cloud_only:
    allow: cloud
modules:
  mod_mqtt:
    session_expiry: {self.session_expiry}
    max_queue: unlimited
    access_publish:
      "ps/+/%u/#": all
      "ps/#": cloud_only
    access_subscribe:
      "ps/+/%u/#": all
      "ps/#": cloud_only
"""
        with open(n.config, "w") as f:
            f.write(text)

    def env(self, extra=None):
        e = dict(os.environ)
        e.update({"ERL_EPMD_PORT": str(self.epmd_port), "ERL_LIBS": self.erl_libs,
                  "ERL_CRASH_DUMP_BYTES": "0", "ERL_MAX_PORTS": "65536"})
        e.update(extra or {})
        return e

    def start_epmd(self):
        self.epmd = self.children.spawn([EPMD, "-port", str(self.epmd_port), "-address",
                                         "127.0.0.1"], os.path.join(self.root, "epmd.out"))
        if not wait_for(lambda: can_connect(self.epmd_port), 10):
            raise RuntimeError("epmd did not start")

    def launch(self, n):
        argv = [ERL, "-sname", n.name, "-setcookie", self.cookie, "-start_epmd", "false",
                "-noinput", "-noshell", "+P", "1000000", "-kernel", "inet_dist_use_interface",
                "{127,0,0,1}", "-mnesia", "dir", '"%s"' % n.spool, "-s", "ejabberd"]
        n.log_offset = os.path.getsize(n.log_file) if os.path.exists(n.log_file) else 0
        n.proc = self.children.spawn(argv, n.out_file, env=self.env({
            "EJABBERD_CONFIG_PATH": n.config, "EJABBERD_LOG_PATH": n.log_file,
            "ERL_CRASH_DUMP": os.path.join(n.dir, "erl_crash.dump"), "HOME": n.dir}),
            cwd=n.spool)

    def read_log(self, n, offset=0):
        try:
            with open(n.log_file, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def started(self, n, offset):
        fresh = self.read_log(n, offset)
        listening = "Start accepting TLS connections at 127.0.0.1:%d for mod_mqtt" % n.port
        return "is started in the node" in fresh and listening in fresh and can_connect(n.port)

    def wait_started(self, n, offset, timeout=90):
        ok = wait_for(lambda: not n.running() or self.started(n, offset), timeout, 0.1)
        if not ok or not n.running():
            raise RuntimeError("%s did not start:\n%s" % (n.name, self.tail(n)))

    def tail(self, n, lines=30):
        return "\n".join(self.read_log(n).splitlines()[-lines:])

    def ctl(self, n, args, timeout=60):
        self.ctl_seq += 1
        argv = [ERL, "-sname", "psactl%dx%d@localhost" % (os.getpid(), self.ctl_seq),
                "-setcookie", self.cookie, "-start_epmd", "false", "-hidden", "-noinput",
                "-noshell", "-s", "ejabberd_ctl", "-extra", n.name] + args
        try:
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=self.env({"HOME": self.root}), timeout=timeout)
            return r.returncode, r.stdout
        except subprocess.TimeoutExpired:
            return -1, "timeout"

    def cluster_view(self, n):
        rc, out = self.ctl(n, ["list_cluster"], 30)
        return sorted(l.strip() for l in out.splitlines() if l.strip()) if rc == 0 else []

    def whole(self):
        want = sorted(n.name for n in self.nodes if n.running())
        return all(self.cluster_view(n) == want for n in self.nodes if n.running())

    def start(self):
        self.start_epmd()
        for n in self.nodes:
            self.launch(n)
        for n in self.nodes:
            self.wait_started(n, 0)
        n2 = self.nodes[1]
        offset = os.path.getsize(n2.log_file)
        rc, out = self.ctl(n2, ["join_cluster", self.nodes[0].name])
        if rc != 0:
            raise RuntimeError("join_cluster failed: " + out)
        self.wait_started(n2, offset)
        if not wait_for(self.whole, 60, 1):
            raise RuntimeError("the nodes do not list each other")

    def kill(self, n):
        """SIGKILL: beam.smp and everything under it, at once."""
        if not n.running():
            return
        self.children.kill_tree(n.proc)
        n.proc.wait(10)

    def stop(self, n):
        """SIGTERM (init:stop: a clean shutdown); SIGKILL after 60 s."""
        if not n.running():
            return
        n.proc.send_signal(signal.SIGTERM)

    def wait_stopped(self, n, timeout=60):
        try:
            n.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log("%s did not stop within %d s: SIGKILL" % (n.name, timeout))
            self.kill(n)
        # Port programs (erl_child_setup, inet_gethost) of the node.
        for pid, (ppid, state, comm) in proc_table().items():
            if ppid == n.proc.pid and state != "Z":
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def vm_stats(self):
        """Per running node: erlang:memory(total) in bytes and the process and port counts,
        asked over distribution from a hidden node."""
        self.ctl_seq += 1
        names = ",".join("'%s'" % n.name for n in self.nodes if n.running())
        expr = ("[io:format(\"~s ~p ~p ~p~n\", [N, rpc:call(N, erlang, memory, [total]), "
                "rpc:call(N, erlang, system_info, [process_count]), rpc:call(N, erlang, "
                "system_info, [port_count])]) || N <- [%s]], halt()." % names)
        argv = [ERL, "-sname", "psaprobe%dx%d@localhost" % (os.getpid(), self.ctl_seq),
                "-setcookie", self.cookie, "-start_epmd", "false", "-hidden", "-noinput",
                "-noshell", "-eval", expr]
        try:
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=self.env({"HOME": self.root}), timeout=30)
        except subprocess.TimeoutExpired:
            return {}
        out = {}
        for line in r.stdout.splitlines():
            f = line.split()
            if len(f) == 4 and all(x.isdigit() for x in f[1:]):
                out[f[0]] = {"memory": int(f[1]), "processes": int(f[2]), "ports": int(f[3])}
        return out

    def broker_pids(self):
        table = proc_table()
        pids = []
        for n in self.nodes:
            if n.running():
                pids.append(n.proc.pid)
                pids.extend(descendants(n.proc.pid, table))
        return pids


# ---------------------------------------------------------------- agents and their logs

LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z level=\w+ comp=cloudlink "
                  r"inst=\S+ event=(link\.\w+)(.*)$")


class FileTail:
    """The complete lines a growing file gained since the last call (a partial last line waits)."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.partial = b""

    def new_lines(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return []
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        return lines


def parse_ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=datetime.timezone.utc).timestamp()


class Agent:
    def __init__(self, idx, root, pki, urls, build, receipt_timeout):
        self.id = "fleet-%04d" % idx
        self.dir = os.path.join(root, "agents", self.id)
        os.makedirs(self.dir, exist_ok=True)
        self.config = os.path.join(self.dir, "agent.json")
        self.log_file = os.path.join(self.dir, "agent.log")
        self.mllp_port = None
        self.proc = None
        self.events = []  # (unix ts, event, rest of line)
        self.log_tail = FileTail(self.log_file)
        self.acked = set()
        self.sent = set()
        self.feed_errors = []
        self.cert, self.key = pki["agents"][self.id]
        self.urls = urls
        self.build = build
        self.receipt_timeout = receipt_timeout

    def write_config(self):
        cfg = {
            "agent": {"id": self.id, "tenant": TENANT, "log_level": "info",
                      "state_dir": self.dir},
            "control": {"socket": os.path.join(self.dir, "control.sock")},
            "adapters": [{"name": "pms-adt", "type": "hl7-mllp", "vendor": "cerner",
                          "ack_mode": "original", "listen": "127.0.0.1:%d" % self.mllp_port}],
            "cloud": {"urls": self.urls, "ca_file": self.ca, "cert_file": self.cert,
                      "key_file": self.key, "confirm": "receipt",
                      "receipt_timeout_s": self.receipt_timeout},
        }
        with open(self.config, "w") as f:
            json.dump(cfg, f, indent=1)

    def cli(self, args, timeout=20):
        try:
            return run([os.path.join(self.build, "pms-agent"), "--config", self.config] + args,
                       timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def poll_log(self):
        for raw in self.log_tail.new_lines():
            m = LINE.match(raw.decode("utf-8", "replace"))
            if m:
                self.events.append((parse_ts(m.group(1)), m.group(2), m.group(3)))

    def connected(self):
        for ts, ev, rest in reversed(self.events):
            if ev == "link.connected":
                return True
            if ev in ("link.disconnected", "link.stopped"):
                return False
        return False

    def url_now(self):
        for ts, ev, rest in reversed(self.events):
            if ev == "link.connected":
                m = re.search(r"url=(\S+)", rest)
                return m.group(1) if m else None
        return None

    def times(self, event, after=0.0):
        return [ts for ts, ev, _ in self.events if ev == event and ts >= after]


# ---------------------------------------------------------------- MLLP feed

def adt_message(control_id, size):
    segs = [
        "MSH|^~\\&|REGADT|GOODHEALTH|PSAGENT|PRACTICE|20240105083000||ADT^A01^ADT_A01|%s|P|2.5.1"
        % control_id,
        "EVN|A01|20240105083000|||OP1234^OPERATOR^TEST",
        "PID|1||MRN10001^^^GOODHEALTH^MR||FLEET^JANE^Q^^MS||19800101|F|||123 FAKE ST^^SPRINGFIELD"
        "^IL^62701^USA^H||(555)555-0100^PRN^PH||S||ACCT0001",
        "PV1|1|I|WARD1^101^A^GOODHEALTH||||1234^KILDARE^JAMES^^^DR|||MED||||7|||1234^KILDARE^JAMES"
        "^^^DR|IN|VIS0001",
        "AL1|1|DA|PCN^PENICILLIN^L|SV|HIVES~RASH",
        "DG1|1|I10|J18.9^PNEUMONIA, UNSPECIFIED ORGANISM^I10||20240105|A",
    ]
    m = "\r".join(segs) + "\r"
    if len(m) + 16 < size:
        m += "ZPD|1|" + "X" * (size - len(m) - 7) + "\r"
    return m.encode()


async def feed_agent(agent, ids, size, interval, timeout=60):
    """Sends `ids` one at a time (each waits for its ACK), `interval` s apart."""
    reader = writer = None
    for cid in ids:
        msg = b"\x0b" + adt_message(cid, size) + b"\x1c\x0d"
        agent.sent.add(cid)
        for attempt in range(5):  # a lost connection: reconnect and send the same id again
            try:
                if writer is None:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection("127.0.0.1", agent.mllp_port), timeout)
                writer.write(msg)
                await writer.drain()
                ack = await asyncio.wait_for(reader.readuntil(b"\x1c\x0d"), timeout)
                text = ack.decode("utf-8", "replace")
                m = re.search(r"(?:^|\r)MSA\|(\w+)\|([^|\r]*)", text)
                if m and m.group(1) in ("AA", "CA") and m.group(2) == cid:
                    agent.acked.add(cid)
                else:
                    agent.feed_errors.append("%s: %s" % (cid, m.group(1) if m else "no MSA"))
                break
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
                if writer is not None:
                    writer.close()
                reader = writer = None
                if attempt == 4:
                    agent.feed_errors.append("%s: %s" % (cid, e))
                await asyncio.sleep(0.5)
        if interval:
            await asyncio.sleep(interval)
    if writer is not None:
        writer.close()


def feed(agents, label, count, size, interval=0.0, concurrency=64, stagger=0.0):
    async def main():
        sem = asyncio.Semaphore(concurrency)

        async def one(a, delay):
            await asyncio.sleep(delay)
            async with sem:
                await feed_agent(a, ["%s-%s-%03d" % (a.id, label, i) for i in range(count)],
                                 size, interval)
        await asyncio.gather(*(one(a, random.uniform(0, stagger)) for a in agents))
    asyncio.run(main())


# ---------------------------------------------------------------- /proc sampling

def cpu_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
        rest = s[s.rfind(")") + 2:].split()
        return int(rest[11]) + int(rest[12])
    except OSError:
        return None


def mem_kb(pid):
    """(RSS, PSS) in KiB."""
    rss = pss = None
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def thread_ticks(pids):
    """(pid, thread name, tid) -> utime+stime ticks for every thread of `pids`."""
    out = {}
    for pid in pids:
        try:
            tids = os.listdir("/proc/%d/task" % pid)
        except OSError:
            continue
        for tid in tids:
            try:
                with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                    st = f.read()
            except OSError:
                continue
            close = st.rfind(")")
            rest = st[close + 2:].split()
            out[(pid, st[st.find("(") + 1:close], tid)] = int(rest[11]) + int(rest[12])
    return out


def threads(pid):
    try:
        return len(os.listdir("/proc/%d/task" % pid))
    except OSError:
        return None


def fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def summary(values, unit="", fmt="%.1f"):
    if not values:
        return "n/a"
    return ("min " + fmt + " p50 " + fmt + " mean " + fmt + " p99 " + fmt + " max " + fmt + "%s") % (
        min(values), pct(values, 50), statistics.mean(values), pct(values, 99), max(values), unit)


# ---------------------------------------------------------------- delivery check

class Received:
    """Reads the simulator's --out lines incrementally: control id -> msg-ids, per agent."""

    def __init__(self, path):
        self.tail = FileTail(path)
        self.lines = 0
        self.dup_lines = 0
        self.sha_bad = 0
        self.no_control = 0
        self.by_control = collections.defaultdict(set)  # (agent, control id) -> msg-ids
        self.arrived = {}  # (agent, control id) -> first arrival (local time.time())

    def poll(self):
        lines = self.tail.new_lines()
        now = time.time()
        for raw in lines:
            if not raw.strip():
                continue
            d = json.loads(raw)
            self.lines += 1
            if d.get("duplicate"):
                self.dup_lines += 1
            if not d.get("sha256_ok"):
                self.sha_bad += 1
            payload = base64.b64decode(d.get("payload_base64", ""))
            msh = payload.split(b"\r", 1)[0].decode("utf-8", "replace")
            fields = msh.split("|")
            if not msh.startswith("MSH") or len(fields) < 10:
                self.no_control += 1
                continue
            key = (d.get("agent"), fields[9])
            self.by_control[key].add(d.get("msg_id"))
            self.arrived.setdefault(key, now)

    def missing(self, agents):
        self.poll()
        return [(a.id, c) for a in agents for c in a.acked if (a.id, c) not in self.by_control]


# ---------------------------------------------------------------- the run

def histogram(times, origin, width=1.0):
    buckets = collections.Counter(int((t - origin) // width) for t in times)
    return buckets


def print_histogram(title, series, origin, until, width=1.0, bar_scale=None):
    """series: list of (label, [timestamps]); one row per `width` seconds from origin."""
    hs = [(label, histogram(ts, origin, width)) for label, ts in series]
    first = min([min(h) for _, h in hs if h] + [0])
    last = max([max(h) for _, h in hs if h] + [int((until - origin) // width)])
    peak = max([max(h.values()) for _, h in hs if h] + [1])
    scale = bar_scale or max(1.0, peak / 50.0)
    print(title)
    print("  %7s  " % "t (s)" + "  ".join("%9s" % label for label, _ in hs))
    for b in range(first, last + 1):
        cells = [h.get(b, 0) for _, h in hs]
        print("  %7.0f  " % (b * width) + "  ".join("%9d" % c for c in cells) + "  " +
              "#" * int(round(cells[0] / scale)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agents", type=int, default=500,
                    help="agents to run (500 held on a shared 2-core, 24 GB machine)")
    ap.add_argument("--messages", type=int, default=20,
                    help="ADT messages per agent in all (split over the three feeds)")
    ap.add_argument("--size", type=int, default=2048, help="bytes per HL7 message")
    ap.add_argument("--build-dir", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                        "build", "bin"))
    ap.add_argument("--start-rate", type=float, default=25.0, help="agents started per second")
    ap.add_argument("--idle-s", type=float, default=60.0, help="steady-state measuring window")
    ap.add_argument("--outage-s", type=float, default=20.0,
                    help="how long both nodes stay down in the storm phase")
    ap.add_argument("--outage", choices=("stop", "kill"), default="stop",
                    help="stop: SIGTERM both nodes (clean shutdown); kill: SIGKILL both")
    ap.add_argument("--receipt-timeout", type=int, default=120,
                    help="cloud.receipt_timeout_s of the agents (the agent's default, 120). A "
                    "short one makes every agent resend its whole window whenever the cloud's "
                    "receipts stall (10 s turned a loaded 750-agent run into a resend storm)")
    ap.add_argument("--session-expiry", type=int, default=3600)
    ap.add_argument("--deliver-timeout", type=float, default=300.0)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, configs)")
    ap.add_argument("--dir", help="work dir (default: a new temp dir)")
    args = ap.parse_args()

    build = os.path.abspath(args.build_dir)
    for b in ("pms-agent", "pms-cloud-sim"):
        if not os.access(os.path.join(build, b), os.X_OK):
            sys.exit("%s/%s missing: cmake --build --preset default --target pms-agent "
                     "pms-cloud-sim" % (build, b))
    root = args.dir or tempfile.mkdtemp(prefix="psa-fleet-")
    os.makedirs(root, exist_ok=True)
    os.umask(0o077)
    children = Children(root)
    report = {"agents": args.agents, "messages_per_agent": args.messages, "size": args.size,
              "dir": root}

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    log("work dir %s; %d agents; fd limit %d/%d; %d CPUs; %.1f GiB RAM" % (
        root, args.agents, soft, hard, os.cpu_count(),
        os.sysconf("SC_PHYS_PAGES") * PAGE / 2**30))
    ok = False
    try:
        ok = run_fleet(args, build, root, children, report)
    except KeyboardInterrupt as e:
        log("interrupted (%s): cleaning up" % (e or "Ctrl-C"))
    except RuntimeError as e:
        log("FAILED: %s" % e)
        report["failed"] = str(e)
    finally:
        log("stopping every process started here")
        children.cleanup()
        with open(os.path.join(root, "report.json"), "w") as f:
            json.dump(report, f, indent=1)
        if args.keep or not ok:
            log("kept %s (report.json, agents/*/agent.log, ejabberd*/logs)" % root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


def run_fleet(args, build, root, children, report):
    N = args.agents
    ids = ["fleet-%04d" % i for i in range(1, N + 1)]
    t = time.time()
    pki = make_pki(os.path.join(root, "pki"), ids)
    log("PKI: CA, server and %d client certificates in %.1f s" % (N + 1, time.time() - t))

    cluster = Cluster(os.path.join(root, "cluster"), pki, children, args.session_expiry)
    os.makedirs(cluster.root, exist_ok=True)
    t = time.time()
    cluster.start()
    n1, n2 = cluster.nodes
    log("ejabberd cluster up in %.1f s: %s (%s), %s (%s)" % (time.time() - t, n1.name, n1.url,
                                                             n2.name, n2.url))

    # The cloud simulator on node 1 (node 2 is the one killed in the failover phase).
    sim_out = os.path.join(root, "received.jsonl")
    ready = os.path.join(root, "sim.ready")
    cloud_cert, cloud_key = pki["cloud"]
    children.spawn([os.path.join(build, "pms-cloud-sim"), "listen", "--url", n1.url, "--ca",
                    pki["ca"], "--cert", cloud_cert, "--key", cloud_key, "--client-id", "cloud",
                    "--receipts", "--out", sim_out, "--payloads", "--quiet", "--ready-file",
                    ready], os.path.join(root, "sim.log"))
    if not wait_for(lambda: os.path.exists(ready), 30):
        raise RuntimeError("the simulator did not subscribe: " + open(
            os.path.join(root, "sim.log")).read()[-2000:])
    received = Received(sim_out)
    time.sleep(2)
    base = [mem_kb(p) for p in cluster.broker_pids()]
    broker_base_rss = sum(r for r, _ in base if r) / 1024
    report["broker_baseline_rss_mib"] = broker_base_rss
    vm_base = cluster.vm_stats()
    report["broker_baseline_vm"] = vm_base
    log("broker baseline (2 nodes, simulator connected, no agent): RSS %.0f MiB, Erlang memory "
        "%.0f MiB, %d processes" % (broker_base_rss, sum(v["memory"] for v in vm_base.values())
                                    / 2**20, sum(v["processes"] for v in vm_base.values())))

    # Agents, started at --start-rate per second.
    urls = [n.url for n in cluster.nodes]
    ports = free_ports(N)
    agents = []
    for i, port in enumerate(ports, 1):
        a = Agent(i, root, pki, urls, build, args.receipt_timeout)
        a.ca = pki["ca"]
        a.mllp_port = port
        a.write_config()
        agents.append(a)
    t_start = time.time()
    for i, a in enumerate(agents):
        a.proc = children.spawn([os.path.join(build, "pms-agent"), "run", "--config", a.config],
                                a.log_file)
        delay = t_start + (i + 1) / args.start_rate - time.time()
        if delay > 0:
            time.sleep(delay)
    log("%d agents started in %.1f s" % (N, time.time() - t_start))

    def poll_all():
        for a in agents:
            a.poll_log()
        return sum(1 for a in agents if a.connected())

    def dead_agents():
        return [a.id for a in agents if a.proc.poll() is not None]

    if not wait_for(lambda: poll_all() == N, 120, 1):
        dead = dead_agents()
        raise RuntimeError("only %d of %d agents connected (%d exited: %s)" % (
            poll_all(), N, len(dead), dead[:5]))
    first_connect = [min(a.times("link.connected")) for a in agents]
    log("all %d agents connected %.1f s after the first start (node 1: %d, node 2: %d)" % (
        N, max(first_connect) - t_start, sum(1 for a in agents if a.url_now() == n1.url),
        sum(1 for a in agents if a.url_now() == n2.url)))
    report["start"] = {"all_connected_s": max(first_connect) - t_start}

    # ---- feed 1: connected
    m1 = max(1, args.messages // 4)
    m2 = max(1, args.messages // 4)
    m3 = max(1, args.messages - m1 - m2)
    t = time.time()
    feed(agents, "a", m1, args.size)
    acked = sum(len(a.acked) for a in agents)
    log("feed 1: %d messages acknowledged by the agents in %.1f s" % (acked, time.time() - t))
    if not wait_for(lambda: not received.missing(agents), 120, 1):
        log("feed 1: %d not yet delivered" % len(received.missing(agents)))
    else:
        log("feed 1: all delivered")

    # ---- steady state
    log("steady state: settling 15 s, then measuring for %.0f s" % args.idle_s)
    time.sleep(15)
    pids = {a.id: a.proc.pid for a in agents}
    bpids = cluster.broker_pids()
    c0 = {k: cpu_ticks(p) for k, p in pids.items()}
    th0 = thread_ticks(pids.values())
    b0 = {p: cpu_ticks(p) for p in bpids}
    t0 = time.time()
    time.sleep(args.idle_s)
    dt = time.time() - t0
    c1 = {k: cpu_ticks(p) for k, p in pids.items()}
    th1 = thread_ticks(pids.values())
    vm = cluster.vm_stats()
    b1 = {p: cpu_ticks(p) for p in bpids}
    agent_cpu = [100.0 * (c1[k] - c0[k]) / CLK_TCK / dt for k in pids
                 if c0[k] is not None and c1[k] is not None]
    mems = [mem_kb(p) for p in pids.values()]
    rss = [r / 1024 for r, _ in mems if r]
    pss = [p / 1024 for _, p in mems if p]
    thr = [threads(p) for p in pids.values()]
    fdn = [fds(p) for p in pids.values()]
    broker_cpu = sum(b1[p] - b0[p] for p in bpids if b0.get(p) is not None and b1.get(p)
                     is not None) / CLK_TCK / dt * 100.0
    bmem = [mem_kb(p) for p in bpids]
    broker_rss = sum(r for r, _ in bmem if r) / 1024
    broker_pss = sum(p for _, p in bmem if p) / 1024
    ss = {
        "window_s": dt,
        "agent_rss_mib": summary(rss), "agent_pss_mib": summary(pss),
        "agent_cpu_pct": summary(agent_cpu, fmt="%.3f"),
        "agent_threads": summary([x for x in thr if x]), "agent_fds": summary([x for x in fdn if x]),
        "broker_rss_mib_total": broker_rss, "broker_pss_mib_total": broker_pss,
        "broker_rss_kib_per_agent": broker_rss * 1024 / N,
        "broker_rss_kib_per_agent_above_baseline": (broker_rss - broker_base_rss) * 1024 / N,
        "broker_cpu_pct_total": broker_cpu, "broker_cpu_pct_per_agent": broker_cpu / N,
        "agent_rss_mean_mib": statistics.mean(rss), "agent_pss_mean_mib": statistics.mean(pss),
        "agent_cpu_mean_pct": statistics.mean(agent_cpu),
    }
    by_thread = collections.Counter()
    for key, t1 in th1.items():
        by_thread[key[1]] += t1 - th0.get(key, t1)
    ss["agent_cpu_by_thread_pct_per_agent"] = {
        k: 100.0 * v / CLK_TCK / dt / N for k, v in by_thread.most_common()}
    vm_mem = sum(v["memory"] for v in vm.values())
    vm_mem0 = sum(v["memory"] for v in vm_base.values())
    ss["broker_vm"] = vm
    ss["broker_erlang_memory_kib_per_agent_above_baseline"] = (vm_mem - vm_mem0) / 1024 / N
    ss["broker_processes_per_agent_above_baseline"] = (
        sum(v["processes"] for v in vm.values()) -
        sum(v["processes"] for v in vm_base.values())) / N
    report["steady"] = ss
    log("steady state over %.0f s:" % dt)
    print("  agent RSS MiB: %s" % ss["agent_rss_mib"])
    print("  agent PSS MiB: %s" % ss["agent_pss_mib"])
    print("  agent CPU %%  : %s" % ss["agent_cpu_pct"])
    print("  agent threads: %s; fds: %s" % (ss["agent_threads"], ss["agent_fds"]))
    print("  broker (%d processes): RSS %.0f MiB (PSS %.0f MiB) = %.0f KiB per agent; CPU %.2f%% "
          "= %.4f%% per agent; above the no-agent baseline: %.0f KiB per agent" % (
              len(bpids), broker_rss, broker_pss, broker_rss * 1024 / N, broker_cpu,
              broker_cpu / N, (broker_rss - broker_base_rss) * 1024 / N))

    print("  agent CPU by thread (% of a core per agent): " + ", ".join(
        "%s %.4f" % kv for kv in ss["agent_cpu_by_thread_pct_per_agent"].items()))
    print("  broker Erlang memory: %.0f MiB (%.0f MiB without agents) = %.0f KiB per agent; "
          "%.1f Erlang processes per agent" % (
              vm_mem / 2**20, vm_mem0 / 2**20,
              ss["broker_erlang_memory_kib_per_agent_above_baseline"],
              ss["broker_processes_per_agent_above_baseline"]))

    # ---- connection storm: whole-cluster outage, feed 2 queued meanwhile
    for a in agents:
        a.poll_log()
    log_offsets = {n.name: os.path.getsize(n.log_file) for n in cluster.nodes}
    t_down = time.time()
    for n in cluster.nodes:
        cluster.kill(n) if args.outage == "kill" else cluster.stop(n)
    for n in cluster.nodes:
        cluster.wait_stopped(n)
    t_stopped = time.time()
    log("storm: both nodes %s in %.1f s" % ("killed" if args.outage == "kill" else "stopped",
                                            t_stopped - t_down))
    t = time.time()
    feed(agents, "b", m2, args.size)
    log("storm: feed 2 (%d per agent) queued by the agents while the cluster is down, %.1f s" % (
        m2, time.time() - t))
    rest = args.outage_s - (time.time() - t_down)
    if rest > 0:
        time.sleep(rest)
    for a in agents:
        a.poll_log()
    down_connected = sum(1 for a in agents if a.connected())
    t_restart = time.time()
    for n in cluster.nodes:
        cluster.launch(n)
    up_at = {}

    def nodes_up():
        for n in cluster.nodes:
            if n.name not in up_at and cluster.started(n, n.log_offset):
                up_at[n.name] = time.time()
        return len(up_at) == len(cluster.nodes) or any(not n.running() for n in cluster.nodes)
    wait_for(nodes_up, 120, 0.1)
    if len(up_at) != 2:
        raise RuntimeError("the cluster did not come back:\n" + cluster.tail(n1) + "\n" +
                           cluster.tail(n2))
    t_up = min(up_at.values())
    log("storm: both nodes restarted (accepting %.1f s and %.1f s after the start); %d agents "
        "were still connected during the outage" % (up_at[n1.name] - t_restart,
                                                   up_at[n2.name] - t_restart, down_connected))

    def all_back():
        for a in agents:
            a.poll_log()
        return all(a.times("link.connected", t_down) for a in agents)
    wait_for(all_back, 600, 1)
    back = [min(a.times("link.connected", t_down) or [float("nan")]) for a in agents]
    not_back = [a.id for a, b in zip(agents, back) if b != b]
    connects = [b for b in back if b == b]
    attempts = [ts for a in agents for ts in a.times("link.connecting", t_down)]
    all_connects = [ts for a in agents for ts in a.times("link.connected", t_down)]
    last = max(connects) if connects else float("nan")
    # Broker side: MQTT sessions opened per second for agents, from the ejabberd logs.
    broker_times = []
    for n in cluster.nodes:
        for line in cluster.read_log(n, log_offsets[n.name]).splitlines():
            if "Opened MQTT session for fleet-" in line:
                broker_times.append(datetime.datetime.strptime(
                    line[:23], "%Y-%m-%d %H:%M:%S.%f").replace(
                        tzinfo=datetime.timezone.utc).timestamp())
    print_histogram("storm: per second since the first node accepted again (t=0; the outage "
                    "began at %.1f s): first connect per agent, connection attempts and all "
                    "connects (agents' logs), sessions opened (brokers' logs)" % (t_down - t_up),
                    [("connected", connects), ("attempts", attempts), ("connects", all_connects),
                     ("broker", broker_times)],
                    t_up, last)
    hist = histogram(connects, t_up)
    storm = {
        "outage": args.outage, "outage_s": t_restart - t_down,
        "node_start_s": {k: v - t_restart for k, v in up_at.items()},
        "all_reconnected_after_first_node_up_s": last - t_up,
        "all_reconnected_after_outage_start_s": last - t_down,
        "agents_not_back": not_back,
        "peak_connects_per_s": max(hist.values()) if hist else 0,
        "seconds_with_connects": len(hist),
        "connects_per_s": {str(k): v for k, v in sorted(hist.items())},
        "attempts_total": len(attempts),
        "reconnect_delay_after_up_s": summary([c - t_up for c in connects]),
    }
    bh = histogram(broker_times, t_up)
    storm["broker_log_sessions_opened"] = len(broker_times)
    storm["broker_peak_per_s"] = max(bh.values()) if bh else 0
    report["storm"] = storm
    log("storm: every agent connected again %.1f s after the first node accepted (%.1f s after "
        "the outage began); peak %d connects/s, connects spread over %d distinct seconds; "
        "%d connection attempts since the outage; broker log: %d agent sessions opened, peak %d/s" % (
            storm["all_reconnected_after_first_node_up_s"],
            storm["all_reconnected_after_outage_start_s"], storm["peak_connects_per_s"],
            storm["seconds_with_connects"], len(attempts), len(broker_times),
            storm["broker_peak_per_s"]))
    if not_back:
        log("storm: %d agents never came back: %s" % (len(not_back), not_back[:10]))
    if not wait_for(cluster.whole, 60, 1):
        log("storm: the nodes do not list each other after the restart")

    # The simulator reconnects on its own (1 s). A connection that lasted less than 10 s does
    # not reset an agent's back-off (backoff_reset_after): wait until every agent has been
    # connected for 12 s, so the failover below measures agents in steady state.
    for a in agents:
        a.poll_log()
    settle = max(max(a.times("link.connected")[-1] for a in agents) + 12 - time.time(), 5)
    time.sleep(settle)

    # ---- node failure during steady traffic
    on_n2 = [a for a in agents if a.url_now() == n2.url]
    log("failover: %d agents on %s, %d on %s; feed 3 (%d per agent, one every 0.5 s)" % (
        N - len(on_n2), n1.name, len(on_n2), n2.name, m3))
    feeder = threading.Thread(target=feed, args=(agents, "c", m3, args.size, 0.5, N, 1.0))
    feeder.start()
    time.sleep(max(1.0, m3 * 0.5 / 2))
    t_kill = time.time()
    cluster.kill(n2)
    log("failover: %s SIGKILLed mid-stream" % n2.name)
    feeder.join()
    t_fed = time.time()

    def moved():
        for a in agents:
            a.poll_log()
        return all(a.times("link.connected", t_kill) for a in on_n2)
    wait_for(moved, 120, 1)
    fo = []
    fo_from_kill = []
    for a in on_n2:
        d = a.times("link.disconnected", t_kill - 0.5)
        c = a.times("link.connected", t_kill)
        if d and c:
            fo.append(min(c) - min(d))
            fo_from_kill.append(min(c) - t_kill)
    # Where the time goes: the back-off before the attempt that succeeded, and that attempt
    # itself (TCP + TLS + CONNECT/CONNACK: the time the broker took to admit the agent).
    admit = []
    for a in on_n2:
        c = a.times("link.connected", t_kill)
        tries = [t for t in a.times("link.connecting", t_kill) if c and t <= min(c)]
        if c and tries:
            admit.append(min(c) - max(tries))
    others = [a for a in agents if a not in on_n2]
    others_dropped = [a for a in others if a.times("link.disconnected", t_kill)]
    survivors_back = []
    for a in others_dropped:
        d = min(a.times("link.disconnected", t_kill))
        c = a.times("link.connected", d)
        if c:
            survivors_back.append(min(c) - d)
    failover = {
        "agents_on_killed_node": len(on_n2),
        "failed_over": len(fo),
        "p50_s": pct(fo, 50), "p99_s": pct(fo, 99), "max_s": max(fo) if fo else None,
        "from_kill_p50_s": pct(fo_from_kill, 50), "from_kill_p99_s": pct(fo_from_kill, 99),
        "successful_attempt_p50_s": pct(admit, 50), "successful_attempt_p99_s": pct(admit, 99),
        "survivor_agents_disconnected": len(others_dropped),
        "survivors_reconnect_p50_s": pct(survivors_back, 50),
        "survivors_reconnect_p99_s": pct(survivors_back, 99),
    }
    kill_sessions = []
    for line in cluster.read_log(n1, 0).splitlines():
        if "Opened MQTT session for fleet-" in line:
            ts = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f").replace(
                tzinfo=datetime.timezone.utc).timestamp()
            if ts >= t_kill:
                kill_sessions.append(ts)
    kh = histogram(kill_sessions, t_kill)
    failover["survivor_node_sessions_opened"] = len(kill_sessions)
    failover["survivor_node_peak_sessions_per_s"] = max(kh.values()) if kh else 0
    failover["survivor_node_sessions_per_s"] = {str(k): v for k, v in sorted(kh.items())}
    report["failover"] = failover
    log("failover: %d of %d agents of the killed node reconnected; link.disconnected -> "
        "link.connected p50 %.2f s, p99 %.2f s, max %.2f s (from the kill: p50 %.2f s, p99 "
        "%.2f s); %d agents on the surviving node were disconnected too" % (
            len(fo), len(on_n2), failover["p50_s"], failover["p99_s"], failover["max_s"] or 0,
            failover["from_kill_p50_s"], failover["from_kill_p99_s"], len(others_dropped)))
    log("failover: the successful attempt itself (TCP+TLS+CONNACK) took p50 %.2f s, p99 %.2f s; "
        "the surviving node opened %d agent sessions after the kill, peak %d/s (per second: %s); "
        "disconnected survivors were back after p50 %.2f s, p99 %.2f s" % (
            failover["successful_attempt_p50_s"], failover["successful_attempt_p99_s"],
            len(kill_sessions), failover["survivor_node_peak_sessions_per_s"],
            " ".join("%d" % kh.get(b, 0) for b in range(0, max(kh) + 1)) if kh else "-",
            failover["survivors_reconnect_p50_s"], failover["survivors_reconnect_p99_s"]))

    # ---- delivery
    t = time.time()
    wait_for(lambda: not received.missing(agents), args.deliver_timeout, 2)
    missing = received.missing(agents)
    sent = sum(len(a.sent) for a in agents)
    acked = sum(len(a.acked) for a in agents)
    feed_errors = [e for a in agents for e in a.feed_errors]
    multi = {k: v for k, v in received.by_control.items() if len(v) > 1}
    unexpected = [k for k in received.by_control if k[1] not in
                  next((a.sent for a in agents if a.id == k[0]), set())]
    delivery = {
        "sent": sent, "acked_by_agents": acked, "feed_errors": len(feed_errors),
        "received_lines": received.lines, "unique_control_ids": len(received.by_control),
        "lost": len(missing), "duplicate_lines": received.dup_lines,
        "control_ids_with_two_msg_ids": len(multi), "sha256_bad": received.sha_bad,
        "unexpected": len(unexpected), "wait_after_feed_s": time.time() - t,
    }
    report["delivery"] = delivery
    log("delivery: sent %d, acknowledged AA %d (feed errors %d), arrived unique %d, lost %d, "
        "duplicate lines %d (all with the same msg-id: %s), sha256 bad %d, unexpected %d" % (
            sent, acked, len(feed_errors), len(received.by_control), len(missing),
            received.dup_lines, "yes" if not multi else "NO: %d" % len(multi), received.sha_bad,
            len(unexpected)))
    for e in feed_errors[:5]:
        print("  feed error: " + e)
    for k in missing[:5]:
        print("  missing: %s %s" % k)

    # Cross-check with the agents themselves (queue empty, connects).
    from concurrent.futures import ThreadPoolExecutor

    def status(a):
        r = a.cli(["status", "--json"], timeout=10)
        try:
            return json.loads(r.stdout) if r else None
        except ValueError:
            return None
    with ThreadPoolExecutor(8) as ex:
        st = list(ex.map(status, agents))
    pending = [s["queue"].get("pending", 0) + s["queue"].get("leased", 0) +
               s["queue"].get("retry", 0) for s in st if s and "queue" in s]
    conns = [s["cloud"].get("connects", 0) for s in st if s and "cloud" in s]
    report["agents_status"] = {"answered": len([s for s in st if s]),
                               "pending_total": sum(pending), "connects": summary(conns, fmt="%d")}
    log("agents' status --json: %d answered; records still queued: %d; cloud.connects per "
        "agent: %s" % (len([s for s in st if s]), sum(pending), summary(conns, fmt="%d")))
    dead = dead_agents()
    report["agents_exited"] = dead
    if dead:
        log("agents that exited: %s" % dead[:10])
    return not missing and not multi and not dead and not not_back and received.sha_bad == 0


if __name__ == "__main__":
    sys.exit(main())
