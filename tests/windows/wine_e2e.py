#!/usr/bin/env python3
"""The Windows agent, installed from its MSI under Wine, doing the main job as a service.

In a fresh WINEPREFIX: an MSI with an invalid CONFIG fails and leaves nothing; the MSI with a good
CONFIG installs and starts the service; HL7 sent from Linux over MLLP reaches pms-cloud-sim through
a Linux mosquitto with mutual TLS exactly once; the CLI works through the named pipe; a CSV dropped
into the watched folder arrives row by row; the service process is killed hard mid-stream and,
restarted, loses nothing it acknowledged; it stops cleanly; a higher-version MSI upgrades it
keeping config, key and queue; uninstalling removes the service and the binaries and keeps
%ProgramData%. Prints one PASS/FAIL line per check and exits 1 if any failed.

Standard library only. Usage:
  tests/windows/wine_e2e.py --msi build-windows/pms-agent-0.1.0-x64.msi \
      --upgrade-msi build-windows/pms-agent-0.1.1-x64.msi --linux-bin build/bin [--keep]
"""
import argparse
import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from winelib import Wine, free_port, log, read_text, run, wait_for, win_path

AGENT_ID = "practice-win"
TENANT = "acme-health"
SERVICE = "pms-agent"
PROGRAM = r"C:\Program Files\PracticeStudio\Agent\pms-agent.exe"
DATA = r"C:\ProgramData\PracticeStudio\Agent"

RESULTS = []


def check(name, ok, detail=""):
    RESULTS.append((name, bool(ok), detail))
    print("%-4s %-46s %s" % ("PASS" if ok else "FAIL", name, detail), flush=True)
    return bool(ok)


# ---------------------------------------------------------------------------------------------
# PKI, broker, cloud simulator

def service_state(wine):
    """RUNNING, STOPPED, ... as `sc query` says, or MISSING."""
    _, out = wine("sc", "query", SERVICE, timeout=60)
    for line in out.splitlines():
        if "STATE" in line:
            return line.split()[-1]
    return "MISSING"


def make_pki(d):
    os.makedirs(d, exist_ok=True)

    def ossl(*a):
        run(["openssl"] + list(a), check_rc=True)

    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days",
         "2", "-subj", "/CN=Wine Test CA", "-keyout", d + "/ca.key", "-out", d + "/ca.pem")
    for name, cn, san in (("broker", "localhost", "DNS:localhost,IP:127.0.0.1"),
                          ("agent", AGENT_ID, None), ("cloud", "cloud", None)):
        ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj",
             "/CN=" + cn, "-keyout", "%s/%s.key" % (d, name), "-out", "%s/%s.csr" % (d, name))
        with open("%s/%s.ext" % (d, name), "w") as f:
            f.write("basicConstraints=CA:FALSE\n" + ("subjectAltName=%s\n" % san if san else ""))
        ossl("x509", "-req", "-in", "%s/%s.csr" % (d, name), "-CA", d + "/ca.pem", "-CAkey",
             d + "/ca.key", "-CAcreateserial", "-days", "2", "-extfile", "%s/%s.ext" % (d, name),
             "-out", "%s/%s.pem" % (d, name))
        os.chmod("%s/%s.key" % (d, name), 0o600)


class Child:
    def __init__(self, argv, out_path):
        self.out = open(out_path, "ab")
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.out,
                                  stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.out.close()


def start_broker(work, pki):
    port = free_port()
    with open(work + "/acl", "w") as f:
        f.write("pattern readwrite ps/+/%u/#\n\nuser cloud\ntopic readwrite ps/#\n")
    conf = work + "/mosquitto.conf"
    with open(conf, "w") as f:
        if os.geteuid() == 0:
            f.write("user root\n")
        f.write("per_listener_settings false\nallow_anonymous false\nacl_file %s/acl\n"
                "log_dest file %s/mosquitto.log\nlistener %d 127.0.0.1\ncafile %s/ca.pem\n"
                "certfile %s/broker.pem\nkeyfile %s/broker.key\nrequire_certificate true\n"
                "use_identity_as_username true\ntls_version tlsv1.2\n"
                % (work, work, port, pki, pki, pki))
    broker = Child(["mosquitto", "-c", conf], work + "/mosquitto.out")
    if not wait_for(lambda: socket.create_connection(("127.0.0.1", port), 1).close() or True, 15):
        raise RuntimeError("mosquitto did not start")
    return broker, port


def start_cloud_sim(work, pki, linux_bin, port):
    ready = work + "/sim.ready"
    sim = Child([os.path.join(linux_bin, "pms-cloud-sim"), "listen", "--url",
                 "mqtts://localhost:%d" % port, "--ca", pki + "/ca.pem", "--cert",
                 pki + "/cloud.pem", "--key", pki + "/cloud.key", "--client-id", "wine-cloud",
                 "--payloads", "--out", work + "/cloud.jsonl", "--ready-file", ready, "--quiet"],
                work + "/cloud-sim.log")
    if not wait_for(lambda: os.path.exists(ready), 30):
        raise RuntimeError("pms-cloud-sim did not start")
    return sim


class Cloud:
    """What pms-cloud-sim received: HL7 by MSH-10, CSV rows by their Id, and msg-ids per key."""

    def __init__(self, path):
        self.path = path

    def keys(self):
        ids = {}
        try:
            with open(self.path, "rb") as f:
                lines = f.read().split(b"\n")
        except FileNotFoundError:
            return ids
        for line in lines:
            if not line.strip():
                continue
            m = json.loads(line)
            payload = base64.b64decode(m.get("payload_base64", "")).decode("utf-8", "replace")
            if m.get("format") == "hl7v2":
                fields = payload.split("\r", 1)[0].split("|")
                key = "hl7:" + (fields[9] if len(fields) > 9 else "?")
            elif m.get("format") == "csv+json":
                key = "csv:" + str(json.loads(payload).get("Id"))
            else:
                key = "other:" + hashlib.sha256(payload.encode()).hexdigest()
            ids.setdefault(key, set()).add(m.get("msg_id"))
        return ids


# ---------------------------------------------------------------------------------------------
# MLLP sender (Linux side)

def hl7(ctl, marker):
    return ("MSH|^~\\&|WINTEST|HOSP|PSA|CLOUD|20261206120000||ADT^A01|%s|P|2.5\r"
            "EVN|A01|20261206120000\r"
            "PID|1||%s^^^HOSP^MR||%s^PATIENT||19700101|F\r"
            "PV1|1|I\r" % (ctl, ctl, marker))


class MllpSender:
    """One message at a time, each waiting for its ACK; a lost connection or timeout means
    reconnect and send the same message again (same control id), as real senders do."""

    def __init__(self, port, marker):
        self.port = port
        self.marker = marker
        self.sock = None
        self.acked = []

    def _connect(self):
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def send(self, ctl, deadline_s=120):
        deadline = time.monotonic() + deadline_s
        frame = b"\x0b" + hl7(ctl, self.marker).encode() + b"\x1c\x0d"
        while time.monotonic() < deadline:
            try:
                if self.sock is None:
                    self._connect()
                self.sock.sendall(frame)
                buf = b""
                while b"\x1c\x0d" not in buf:
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("closed")
                    buf += chunk
                ack = buf.decode("utf-8", "replace")
                if "|AA|" in ack or "MSA|AA" in ack:
                    self.acked.append(ctl)
                    return True
                time.sleep(0.5)  # AR/AE "retry later"
            except (OSError, ConnectionError):
                if self.sock is not None:
                    self.sock.close()
                self.sock = None
                time.sleep(0.5)
        return False

    def close(self):
        if self.sock is not None:
            self.sock.close()


# ---------------------------------------------------------------------------------------------

def write_config(path, pki, broker_port, mllp_port, inbox, bad=False):
    cfg = {
        "agent": {"id": AGENT_ID, "tenant": TENANT, "log_level": "info"},
        "cloud": {"url": "mqtts://localhost:%d" % broker_port, "ca_file": win_path(pki + "/ca.pem"),
                  "cert_file": win_path(pki + "/agent.pem"), "key_file": win_path(pki + "/agent.key")},
        "adapters": [
            {"name": "mllp", "type": "hl7-mllp", "vendor": "cerner",
             "listen": "127.0.0.1:%d" % mllp_port},
            {"name": "drop", "type": "file-drop", "vendor": "generic", "path": win_path(inbox),
             "format": "csv", "kind": "appointment", "stable_ms": 300, "poll_interval_ms": 300},
        ],
    }
    if bad:
        cfg["adapters"][0]["listen"] = "not-an-address"
        cfg["cloud"]["max_inflght"] = 5
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--msi", required=True)
    ap.add_argument("--upgrade-msi", required=True)
    ap.add_argument("--linux-bin", required=True)
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--keep", action="store_true", help="keep the work dir and the prefix")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="psa-wine-")
    pki, inbox = work + "/pki", work + "/inbox"
    os.makedirs(inbox)
    marker = "PHIWIN" + os.urandom(6).hex()
    wine = Wine(work + "/prefix")
    children = []
    log("work dir %s" % work)
    try:
        make_pki(pki)
        broker, broker_port = start_broker(work, pki)
        children.append(broker)
        children.append(start_cloud_sim(work, pki, args.linux_bin, broker_port))
        cloud = Cloud(work + "/cloud.jsonl")
        t = time.monotonic()
        wine.boot()
        log("fresh WINEPREFIX booted in %.1f s" % (time.monotonic() - t))

        mllp_port = free_port()
        good = work + "/agent.json"
        bad = work + "/bad.json"
        write_config(good, pki, broker_port, mllp_port, inbox)
        write_config(bad, pki, broker_port, mllp_port, inbox, bad=True)
        shutil.copy(args.msi, work + "/agent.msi")
        shutil.copy(args.upgrade_msi, work + "/agent-upgrade.msi")

        # 1. An invalid CONFIG fails the install, says why in the MSI log, and leaves nothing.
        rc, _ = wine("msiexec", "/i", win_path(work + "/agent.msi"), "/qn",
                     "CONFIG=" + win_path(bad).replace("/", "\\"), "/l*v",
                     win_path(work + "/install-bad.log"))
        text = read_text(work + "/install-bad.log")
        check("invalid CONFIG fails the install", rc != 0, "msiexec rc %d" % rc)
        check("the MSI log names the config problems",
              "bad.json:" in text and "max_inflght" in text and "not-an-address" in text,
              "validation lines in install-bad.log")
        check("nothing left after the failed install",
              service_state(wine) == "MISSING" and not os.path.exists(wine.unix(PROGRAM)))

        # 2. Install with a good CONFIG: service registered and running.
        t = time.monotonic()
        rc, out = wine("msiexec", "/i", win_path(work + "/agent.msi"), "/qn",
                       "CONFIG=" + win_path(good).replace("/", "\\"), "/l*v",
                       win_path(work + "/install.log"))
        if not check("msiexec /i /qn CONFIG=... installs", rc == 0,
                     "rc %d in %.1f s" % (rc, time.monotonic() - t)):
            raise RuntimeError("install failed; see %s/install.log" % work)
        if not check("service pms-agent RUNNING (sc query)",
                     wait_for(lambda: service_state(wine) == "RUNNING", 60), service_state(wine)):
            raise RuntimeError("the service does not run; see its log under %ProgramData%")
        check("config installed under %ProgramData%",
              os.path.exists(wine.unix(DATA + r"\agent.json")))
        # A new process's PATH (Wine's cmd does not relay the output of programs it starts by
        # name, so the PATH itself is what is checked).
        rc, out = wine("cmd", "/c", "echo %PATH%", timeout=120)
        check("install folder on the system PATH",
              r"C:\Program Files\PracticeStudio\Agent" in out, out.strip()[-60:])
        check("MLLP listener up on 127.0.0.1",
              wait_for(lambda: socket.create_connection(("127.0.0.1", mllp_port), 1).close() or True,
                       60))

        # 3. HL7 from Linux over MLLP: every ACKed message at the cloud exactly once.
        sender = MllpSender(mllp_port, marker)
        t = time.monotonic()
        sent_ok = all(sender.send("W%05d" % i) for i in range(args.messages))
        rate = args.messages / max(time.monotonic() - t, 1e-6)
        check("%d HL7 messages ACKed (AA)" % args.messages, sent_ok, "%.0f msg/s" % rate)
        want = {"hl7:" + c for c in sender.acked}
        arrived = wait_for(lambda: want <= set(cloud.keys()), 120)
        ids = cloud.keys()
        once = all(len(ids.get(k, ())) == 1 for k in want)
        check("every ACKed message at the cloud", arrived,
              "%d of %d" % (len(want & set(ids)), len(want)))
        check("exactly once by msg-id", once)

        # 4. The CLI through the named pipe.
        rc, out = wine(PROGRAM, "status", timeout=120)
        check("pms-agent status (pipe)", rc == 0 and "CLOUD" in out and "mllp" in out,
              out.strip().splitlines()[0] if out.strip() else "no output")
        rc, out = wine(PROGRAM, "status", "--json", timeout=120)
        try:
            doc = json.loads(out[out.index("{"):])
        except ValueError:
            doc = {}
        check("status --json: cloud connected",
              (doc.get("cloud") or {}).get("connected") is True, str(doc.get("cloud"))[:120])
        rc, out = wine(PROGRAM, "check", timeout=180)
        check("pms-agent check runs", "config" in out and "agent" in out and "key file" in out,
              "rc %d" % rc)
        rc, out = wine(PROGRAM, "queue", "stats", timeout=120)
        check("pms-agent queue stats", rc == 0 and "pending" in out, out.strip()[:80])
        rc, out = wine(PROGRAM, "config", "validate", win_path(good), timeout=60)
        check("pms-agent config validate (good)", rc == 0, out.strip()[:80])
        rc, out = wine(PROGRAM, "config", "validate", win_path(bad), timeout=60)
        check("pms-agent config validate (bad) names the line", rc == 1 and "bad.json:" in out,
              out.strip().splitlines()[0] if out.strip() else "")

        # 5. A CSV dropped into the watched folder arrives row by row and is archived.
        rows = ["Id,Patient,Start", *["C%03d,%s,2026-12-07T09:%02d" % (i, marker, i % 60)
                                      for i in range(25)]]
        with open(inbox + "/appts.csv.tmp", "w", newline="") as f:
            f.write("\r\n".join(rows) + "\r\n")
        os.rename(inbox + "/appts.csv.tmp", inbox + "/appts.csv")
        want_csv = {"csv:C%03d" % i for i in range(25)}
        check("CSV rows at the cloud", wait_for(lambda: want_csv <= set(cloud.keys()), 120),
              "%d of 25" % len(want_csv & set(cloud.keys())))
        check("CSV file archived", wait_for(lambda: not os.path.exists(inbox + "/appts.csv"), 60))

        # 6. Kill the service process hard mid-stream; restarted, it loses nothing it ACKed.
        killer = {"killed": 0}

        def kill_later():
            time.sleep(1.5)
            for pid in wine.pids("pms-agent.exe"):
                os.kill(pid, signal.SIGKILL)
                killer["killed"] += 1

        k = threading.Thread(target=kill_later)
        k.start()
        sender2 = MllpSender(mllp_port, marker)
        restarted = {"done": False}

        def restart_when_dead():
            k.join()
            wait_for(lambda: not wine.pids("pms-agent.exe"), 30)
            # Wine's services.exe has no recovery actions: do what the SCM does on Windows.
            wine("sc", "stop", SERVICE, timeout=60)
            wine("sc", "start", SERVICE, timeout=60)
            restarted["done"] = True

        r = threading.Thread(target=restart_when_dead)
        r.start()
        ok2 = all(sender2.send("K%05d" % i, deadline_s=180) for i in range(150))
        r.join()
        check("service process killed hard mid-stream", killer["killed"] > 0,
              "%d process(es) SIGKILLed" % killer["killed"])
        check("restarted and every message ACKed", ok2 and restarted["done"],
              "%d ACKed" % len(sender2.acked))
        want2 = {"hl7:" + c for c in sender2.acked}
        check("nothing ACKed was lost", wait_for(lambda: want2 <= set(cloud.keys()), 120),
              "%d of %d" % (len(want2 & set(cloud.keys())), len(want2)))
        ids = cloud.keys()
        check("resends kept their msg-id", all(len(ids.get(k2, ())) == 1 for k2 in want2))

        # RSS/CPU of the service process under load (figures for the notes, not asserted).
        pids = wine.pids("pms-agent.exe")
        if pids:
            with open("/proc/%d/status" % pids[0]) as f:
                rss = [line for line in f if line.startswith("VmRSS")]
            log("service process %d: %s" % (pids[0], rss[0].strip() if rss else "?"))

        # 7. Stop cleanly.
        rc, out = wine("net", "stop", SERVICE, timeout=120)
        check("net stop: service STOPPED",
              wait_for(lambda: service_state(wine) == "STOPPED", 60), service_state(wine))
        logtext = read_text(wine.unix(DATA + r"\logs\agent.log"))
        check("agent log: clean shutdown", "event=stopped" in logtext)
        with open(wine.unix(DATA + r"\agent.json"), "rb") as f:
            config_hash = hashlib.sha256(f.read()).hexdigest()
        with open(wine.unix(DATA + r"\state\queue.key"), "rb") as f:
            key_hash = hashlib.sha256(f.read()).hexdigest()

        # 8. Upgrade to a higher version: config, key and queue kept; the service runs again.
        rc, out = wine("msiexec", "/i", win_path(work + "/agent-upgrade.msi"), "/qn", "/l*v",
                       win_path(work + "/upgrade.log"))
        check("major upgrade installs", rc == 0, "rc %d" % rc)
        check("service RUNNING after the upgrade",
              wait_for(lambda: service_state(wine) == "RUNNING", 60), service_state(wine))
        with open(wine.unix(DATA + r"\agent.json"), "rb") as f:
            same_cfg = hashlib.sha256(f.read()).hexdigest() == config_hash
        with open(wine.unix(DATA + r"\state\queue.key"), "rb") as f:
            same_key = hashlib.sha256(f.read()).hexdigest() == key_hash
        check("upgrade kept config and key", same_cfg and same_key)
        sender3 = MllpSender(mllp_port, marker)
        ok3 = all(sender3.send("U%05d" % i) for i in range(20))
        want3 = {"hl7:" + c for c in sender3.acked}
        check("the upgraded service delivers",
              ok3 and wait_for(lambda: want3 <= set(cloud.keys()), 120))
        for s in (sender, sender2, sender3):
            s.close()

        # 9. No PHI in clear in the state folder or the logs.
        hits = []
        for root, _, files in os.walk(wine.unix(DATA)):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    if marker.encode() in f.read():
                        hits.append(os.path.join(root, name))
        check("no PHI marker in %ProgramData% (queue, WAL, logs)", not hits, str(hits)[:200])

        # 10. Uninstall: service and binaries gone, %ProgramData% kept.
        rc, out = wine("msiexec", "/x", win_path(work + "/agent-upgrade.msi"), "/qn", "/l*v",
                       win_path(work + "/uninstall.log"))
        check("msiexec /x uninstalls", rc == 0, "rc %d" % rc)
        check("service removed", wait_for(lambda: service_state(wine) == "MISSING", 60))
        check("binaries removed", not os.path.exists(wine.unix(PROGRAM)))
        check("%ProgramData% kept (config, key, queue)",
              all(os.path.exists(wine.unix(DATA + p))
                  for p in (r"\agent.json", r"\state\queue.key", r"\state\queue.db")))
    except Exception as e:  # a broken step: report it as a failure with its reason
        check("harness", False, "%s: %s" % (type(e).__name__, e))
    finally:
        for c in reversed(children):
            c.stop()
        wine.shutdown()
        if args.keep or not all(ok for _, ok, _ in RESULTS):
            log("kept %s for inspection" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    failed = [n for n, ok, _ in RESULTS if not ok]
    log("%d checks, %d failed%s" % (len(RESULTS), len(failed),
                                     (": " + ", ".join(failed)) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
