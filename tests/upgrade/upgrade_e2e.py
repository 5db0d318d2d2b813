#!/usr/bin/env python3
"""Self-upgrade end to end (issue 19, README "Self-upgrade"), with real packages and real dpkg.

The site: this tree's .deb installed with dpkg into a root of its own (dpkg --root; maintainer
scripts run chrootless with DPKG_ROOT), its three units run by tests/upgrade/mini_init.py the way
systemd runs them, a real mosquitto with mutual TLS, pms-cloud-sim receiving records, and an
MLLP sender streaming messages through the whole test, each waiting for its ACK.

Checks, in order: refusals that install nothing (a config key posing as the release key, a wrong
SHA-256, an announced size the chunks do not reach, a downgrade, an arm64 package); the cloud
rolls out V+1: upgraded, V+1 running, `upgrade status` shows V+1 over V; a V+2 that exits at
start: rolled_back (health_check), V+1 running again; `pms-agent upgrade rollback` on site goes
back to V; the helper is SIGKILLed in the middle of an upgrade and its restart finishes it; every
message the agent ACKed reached the cloud. One PASS/FAIL line per check; exit 1 if any failed.

    tests/upgrade/upgrade_e2e.py --build build [--keep]
Needs root (dpkg --root) and the packages make-packages.sh builds from BUILD (pms-agent,
pms-agent-next, pms-cloud-sim built).
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "windows"))
from winelib import free_port, log, run, wait_for  # noqa: E402
from wine_e2e import (AGENT_ID, TENANT, Child, Cloud, MllpSender, make_pki,  # noqa: E402
                      start_broker, start_cloud_sim)

RESULTS = []


def check(name, ok, detail=""):
    RESULTS.append((name, bool(ok), detail))
    print("%-4s %-52s %s" % ("PASS" if ok else "FAIL", name, detail), flush=True)
    return bool(ok)


class Site:
    def __init__(self, work, build, pki, broker_port):
        self.work = work
        self.build = build
        self.pki = pki
        self.broker_port = broker_port
        self.root = os.path.join(work, "root")
        self.state = os.path.join(work, "state")
        self.cfg = os.path.join(work, "agent.json")
        self.mllp_port = free_port()
        self.init = None

    def agent_bin(self):
        return os.path.join(self.root, "usr", "bin", "pms-agent")

    def dpkg(self, *args):
        return run(["dpkg", "--root=" + self.root, "--force-script-chrootless",
                    "--force-depends"] + list(args), timeout=300)

    def installed(self):
        _, out = run(["dpkg-query", "--root=" + self.root, "--show", "--showformat=${Version}",
                      "pms-agent"])
        return out.strip()

    def cli(self, *args, timeout=60):
        return run([self.agent_bin()] + list(args) + ["--config", self.cfg], timeout=timeout)

    def status(self):
        rc, out = self.cli("status", "--json", timeout=20)
        if rc != 0:
            return None
        try:
            return json.loads(out[out.index("{"):])
        except ValueError:
            return None

    def running_version(self):
        s = self.status()
        return s.get("version") if s else None

    def healthy(self, version):
        s = self.status()
        # Status acknowledged: the agent's subscriptions (made before it) are in place.
        return (s is not None and s.get("version") == version
                and s.get("cloud", {}).get("connected")
                and s.get("cloud", {}).get("status_published", 0) >= 1)

    def setup(self, base_deb, keys):
        for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates"):
            os.makedirs(os.path.join(self.root, d), exist_ok=True)
        for f in ("status", "available"):
            open(os.path.join(self.root, "var/lib/dpkg", f), "a").close()
        rc, out = self.dpkg("--install", base_deb)
        if rc != 0:
            raise RuntimeError("dpkg --install base: " + out[-2000:])
        os.makedirs(self.state, mode=0o750, exist_ok=True)
        cfg = {
            "agent": {"id": AGENT_ID, "tenant": TENANT, "state_dir": self.state,
                      "log_level": "info"},
            "cloud": {"url": "mqtts://localhost:%d" % self.broker_port,
                      "ca_file": self.pki + "/ca.pem", "cert_file": self.pki + "/agent.pem",
                      "key_file": self.pki + "/agent.key",
                      "config_signing_key": keys + "/config.pub.pem",
                      "release_keys": [keys + "/release.pub.pem"],
                      "upgrade_health_timeout_s": 30, "upgrade_health_settle_s": 3},
            "control": {"socket": self.state + "/control.sock"},
            "adapters": [{"name": "mllp", "type": "hl7-mllp", "vendor": "cerner",
                          "listen": "127.0.0.1:%d" % self.mllp_port}],
        }
        with open(self.cfg, "w") as f:
            json.dump(cfg, f, indent=2)
        rc, out = self.cli("keys", "init")
        if rc != 0:
            raise RuntimeError("keys init: " + out)
        os.environ["PSA_UPGRADE_DPKG_ROOT"] = self.root  # inherited by the helper via mini-init
        units = os.path.join(self.root, "lib", "systemd", "system")
        self.init = Child([sys.executable, os.path.join(HERE, "mini_init.py"), "serve",
                           "--units", units, "--map", "/usr/=" + self.root + "/usr/",
                           "--map", "/etc/pms-agent/agent.json=" + self.cfg,
                           "--map", "/var/lib/pms-agent/=" + self.state + "/",
                           "--state-root", os.path.join(self.work, "var-lib"),
                           "--socket", os.path.join(self.work, "init.sock"),
                           "--log", self.work], os.path.join(self.work, "mini-init.log"))

    def stop(self):
        if self.init is not None:
            self.init.stop()


def roll_out(site, keys, deb, version, *extra, wait=240, release_key="release.key"):
    """pms-cloud-sim upgrade: the stages the agent reported and the exit code."""
    argv = [os.path.join(site.build, "bin", "pms-cloud-sim"), "upgrade", deb,
            "--version", version, "--release-key", keys + "/" + release_key,
            "--key", keys + "/config.key", "--tenant", TENANT, "--agent", AGENT_ID,
            "--url", "mqtts://localhost:%d" % site.broker_port, "--ca", site.pki + "/ca.pem",
            "--cert", site.pki + "/cloud.pem", "--cert-key", site.pki + "/cloud.key",
            "--client-id", "cloud-upgrade", "--wait", str(wait)] + list(extra)
    rc, out = run(argv, timeout=wait + 60)
    results = []
    for line in out.splitlines():
        if line.startswith("{"):
            try:
                results.append(json.loads(line))
            except ValueError:
                pass
    return rc, results, out


def final(results):
    return results[-1] if results else {}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--messages-per-s", type=float, default=20)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    if os.geteuid() != 0:
        print("upgrade_e2e: needs root (dpkg --root, package ownership)", file=sys.stderr)
        return 1

    work = tempfile.mkdtemp(prefix="psa-upgrade-")
    log("work dir " + work)
    pki = work + "/pki"
    make_pki(pki)
    keys = work + "/keys"
    os.makedirs(keys)
    sim = os.path.join(build, "bin", "pms-cloud-sim")
    run([sim, "keygen", "--out", keys + "/config"], check_rc=True)
    run([sim, "keygen", "--out", keys + "/release"], check_rc=True)
    pkgs = work + "/pkgs"
    run([os.path.join(HERE, "make-packages.sh"), build, pkgs], timeout=600, check_rc=True)
    versions = dict(line.strip().split("=", 1) for line in open(pkgs + "/versions.env")
                    if "=" in line)
    base, nxt, broken = versions["BASE"], versions["NEXT"], versions["BROKEN"]

    broker, port = start_broker(work, pki)
    cloud_sim = start_cloud_sim(work, pki, os.path.join(build, "bin"), port)
    site = Site(work, build, pki, port)
    sender_stop = threading.Event()
    sender = None
    try:
        site.setup(pkgs + "/base.deb", keys)
        check("base %s installed with dpkg, agent healthy" % base,
              wait_for(lambda: site.healthy(base), 60), site.installed())

        # An MLLP stream through everything that follows.
        mllp = MllpSender(site.mllp_port, "UPGRADE-PHI-MARKER")

        def stream():
            n = 0
            while not sender_stop.is_set():
                n += 1
                mllp.send("UPG%06d" % n, deadline_s=180)
                time.sleep(1.0 / args.messages_per_s)
        sender = threading.Thread(target=stream, daemon=True)
        sender.start()

        # Refusals: nothing downloaded is installed.
        for name, deb, version, extra, reason, signer in (
                ("config key as release key", "next.deb", nxt, [], "bad_signature",
                 "config.key"),
                ("wrong sha256", "next.deb", nxt, ["--sha256", "0" * 64], "sha256_mismatch",
                 "release.key"),
                ("truncated (size beyond the chunks)", "next.deb", nxt,
                 ["--size", str(os.path.getsize(pkgs + "/next.deb") + 4096)], "sha256_mismatch",
                 "release.key"),
                ("downgrade", "base.deb", "0.0.1", [], "downgrade", "release.key"),
                ("arm64 package", "foreign.deb", versions["FOREIGN"], [], "bad_package",
                 "release.key")):
            rc, results, out = roll_out(site, keys, pkgs + "/" + deb, version, *extra, wait=120,
                                        release_key=signer)
            f = final(results)
            check("rejected: " + name,
                  rc == 1 and f.get("stage") == "rejected" and f.get("reason") == reason
                  and site.installed() == base,
                  "%s %s; installed %s" % (f.get("stage"), f.get("reason"), site.installed()))

        # The real upgrade.
        rc, results, out = roll_out(site, keys, pkgs + "/next.deb", nxt)
        stages = [r.get("stage") for r in results]
        check("upgrade to %s: upgraded" % nxt, rc == 0 and stages[-1:] == ["upgraded"],
              " ".join(s or "?" for s in stages))
        check("stages in order", all(s in stages for s in
                                     ("downloading", "verified", "installing", "health_check")),
              " ".join(dict.fromkeys(s or "?" for s in stages)))
        check("%s running and installed" % nxt,
              wait_for(lambda: site.healthy(nxt), 60) and site.installed() == nxt,
              "running %s, installed %s" % (site.running_version(), site.installed()))
        rc, out = site.cli("upgrade", "status", "--json")
        st = json.loads(out[out.index("{"):]) if "{" in out else {}
        check("upgrade status: current and previous",
              st.get("current") == nxt and st.get("previous") == base, out.strip()[:300])

        # A version that cannot start: rolled back by itself.
        rc, results, out = roll_out(site, keys, pkgs + "/broken.deb", broken)
        f = final(results)
        check("broken %s: rolled_back (health_check)" % broken,
              f.get("stage") == "rolled_back" and f.get("reason") == "health_check",
              "%s %s %s" % (f.get("stage"), f.get("reason"), f.get("error", "")[:120]))
        check("%s running again" % nxt,
              wait_for(lambda: site.healthy(nxt), 60) and site.installed() == nxt,
              "running %s, installed %s" % (site.running_version(), site.installed()))

        # Rollback on site.
        rc, out = site.cli("upgrade", "rollback")
        check("upgrade rollback accepted", rc == 0, out.strip()[:200])
        check("rolled back to %s on site" % base,
              wait_for(lambda: site.healthy(base) and site.installed() == base
                       and not os.path.exists(site.state + "/upgrade/request.json"), 120),
              "running %s, installed %s" % (site.running_version(), site.installed()))

        # The helper SIGKILLed half-way: the path unit starts it again and it finishes.
        killed = {"done": False}

        def kill_helper():
            def helper_pid():
                rc, out = run(["pgrep", "-f", "upgrade apply"])
                pids = [int(p) for p in out.split()] if rc == 0 else []
                return pids[0] if pids else None
            if wait_for(lambda: helper_pid() is not None
                        and os.path.exists(work + "/var-lib/pms-agent-upgrade/journal.json"), 200):
                time.sleep(0.5)
                pid = helper_pid()
                if pid:
                    os.kill(pid, signal.SIGKILL)
                    killed["done"] = True
        killer = threading.Thread(target=kill_helper, daemon=True)
        killer.start()
        rc, results, out = roll_out(site, keys, pkgs + "/next.deb", nxt)
        killer.join(5)
        check("helper SIGKILLed mid-upgrade, restarted, upgraded",
              killed["done"] and final(results).get("stage") == "upgraded"
              and wait_for(lambda: site.healthy(nxt), 60),
              "killed=%s final=%s" % (killed["done"], final(results).get("stage")))

        # Nothing the agent ACKed was lost across all of it.
        sender_stop.set()
        sender.join(200)
        acked = list(mllp.acked)
        got = Cloud(work + "/cloud.jsonl")
        missing = []

        def all_arrived():
            keys_seen = got.keys()
            missing[:] = [c for c in acked if "hl7:" + c not in keys_seen]
            return not missing
        ok = wait_for(all_arrived, 90)
        check("every ACKed MLLP message delivered", ok and len(acked) > 0,
              "%d acked, %d missing %s" % (len(acked), len(missing), missing[:5]))
    except Exception as e:  # a broken step: report it as a failed check, keep the logs
        check("test ran to the end", False, repr(e))
    finally:
        sender_stop.set()
        site.stop()
        cloud_sim.stop()
        broker.stop()
    failed = [r for r in RESULTS if not r[1]]
    if failed or args.keep:
        for name in ("mini-init.log", "helper.log", "agent.log"):
            p = os.path.join(work, name)
            if os.path.exists(p):
                print("---- %s (last 60 lines)" % name)
                print("\n".join(open(p, errors="replace").read().splitlines()[-60:]))
        print("work dir kept: " + work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    print("%d checks, %d failed" % (len(RESULTS), len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
