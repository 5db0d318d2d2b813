#!/usr/bin/env python3
"""Plays systemd for the agent's three units where systemd is not PID 1 (these machines, CI).

    mini_init.py serve --units DIR --map FROM=TO... --state-root DIR --socket SOCK --log DIR
    mini_init.py start|stop|restart|is-active UNIT      (the systemctl stand-in; $MINI_INIT_SOCKET)

`serve` reads the installed unit files from DIR (pms-agent.service, pms-agent-upgrade.service,
pms-agent-upgrade.path; read again at every start, as after a daemon-reload) and runs them as
systemd would, for the directives they use:
  - pms-agent.service: ExecStart; Restart=on-failure after RestartSec; stop = SIGTERM, then
    SIGKILL after TimeoutStopSec.
  - pms-agent-upgrade.path: while PathExists= holds and the service is not running, start
    pms-agent-upgrade.service (again after it ended, as long as the file is there).
  - pms-agent-upgrade.service: a oneshot ExecStart with $STATE_DIRECTORY (StateDirectory= under
    --state-root, mode from StateDirectoryMode=) and UMask=.
Paths in ExecStart and PathExists go through the --map prefixes (the installed tree under a
dpkg --root, the test's config and state directory). What it does not do, and why that is
fine here: User= (the tests run as one user), the sandboxing directives (checked offline with
systemd-analyze), sd_notify (the agent runs without $NOTIFY_SOCKET).

The helper reaches it through $PSA_UPGRADE_SYSTEMCTL (this file) and $MINI_INIT_SOCKET, and
installs through $PSA_UPGRADE_DPKG_ROOT: the test seams of agent/src/upgrade_system.h.
Standard library only.
"""
import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

AGENT = "pms-agent.service"
HELPER = "pms-agent-upgrade.service"
PATH_UNIT = "pms-agent-upgrade.path"


def parse_unit(path):
    """{key: [values]} of every section (keys are distinct enough across sections here)."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;[" or "=" not in line:
                continue
            k, v = line.split("=", 1)
            out.setdefault(k.strip(), []).append(v.strip())
    return out


def seconds(text, default):
    if not text:
        return default
    text = text.strip()
    for suffix, mult in (("min", 60), ("ms", 0.001), ("s", 1)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * mult
    return float(text)


class Init:
    def __init__(self, a):
        self.units = a.units
        self.maps = [m.split("=", 1) for m in a.map]
        self.state_root = a.state_root
        self.socket_path = a.socket
        self.log_dir = a.log
        self.lock = threading.RLock()
        self.agent = None          # Popen of pms-agent.service
        self.agent_wanted = False  # started and not stopped
        self.agent_restart_at = None
        self.agent_starts = 0
        self.helper = None
        self.helper_runs = 0
        self.stopping = False

    def log(self, msg):
        print("[mini-init %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)

    def mapped(self, text):
        for src, dst in self.maps:
            if text.startswith(src):
                return dst + text[len(src):]
        return text

    def unit(self, name):
        return parse_unit(os.path.join(self.units, name))

    def env(self):
        e = dict(os.environ)
        e["MINI_INIT_SOCKET"] = self.socket_path
        e["PSA_UPGRADE_SYSTEMCTL"] = os.path.abspath(__file__)
        return e

    # -- pms-agent.service ---------------------------------------------------------------------
    def start_agent(self):
        with self.lock:
            self.agent_wanted = True
            if self.agent is not None and self.agent.poll() is None:
                return
            u = self.unit(AGENT)
            argv = [self.mapped(x) for x in shlex.split(u["ExecStart"][0])]
            out = open(os.path.join(self.log_dir, "agent.log"), "ab")
            self.agent = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, env=self.env(),
                                          start_new_session=True)
            out.close()
            self.agent_starts += 1
            self.agent_restart_at = None
            self.log("started %s (pid %d): %s" % (AGENT, self.agent.pid, " ".join(argv)))

    def stop_agent(self):
        with self.lock:
            self.agent_wanted = False
            self.agent_restart_at = None
            p = self.agent
        if p is None or p.poll() is not None:
            return
        timeout = seconds(self.unit(AGENT).get("TimeoutStopSec", ["90s"])[0], 90)
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        self.log("stopped %s (exit %s)" % (AGENT, p.returncode))

    def watch_agent(self):
        with self.lock:
            p = self.agent
            if not self.agent_wanted or p is None:
                return
            if p.poll() is None:
                return
            if self.agent_restart_at is None:
                u = self.unit(AGENT)
                policy = u.get("Restart", ["no"])[0]
                if policy == "on-failure" and p.returncode != 0:
                    delay = seconds(u.get("RestartSec", ["0.1"])[0], 0.1)
                    self.agent_restart_at = time.monotonic() + delay
                    self.log("%s exited %d: restart in %.1f s" % (AGENT, p.returncode, delay))
                else:
                    self.agent_wanted = False
                    self.log("%s exited %d" % (AGENT, p.returncode))
            elif time.monotonic() >= self.agent_restart_at:
                self.start_agent()

    # -- pms-agent-upgrade.path / .service -----------------------------------------------------
    def watch_path(self):
        if self.helper is not None:
            if self.helper.poll() is None:
                return
            self.log("%s ended (exit %d)" % (HELPER, self.helper.returncode))
            self.kill_session(self.helper.pid)
            self.helper = None
        p = self.unit(PATH_UNIT)
        trigger = self.mapped(p["PathExists"][0])
        if not os.path.exists(trigger):
            return
        u = self.unit(HELPER)
        state = os.path.join(self.state_root, u["StateDirectory"][0])
        os.makedirs(state, exist_ok=True)
        os.chmod(state, int(u.get("StateDirectoryMode", ["0755"])[0], 8))
        env = self.env()
        env["STATE_DIRECTORY"] = state
        umask = int(u.get("UMask", ["0022"])[0], 8)
        argv = [self.mapped(x) for x in shlex.split(u["ExecStart"][0])]
        out = open(os.path.join(self.log_dir, "helper.log"), "ab")
        self.helper = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                       stderr=subprocess.STDOUT, env=env,
                                       start_new_session=True,
                                       preexec_fn=lambda: os.umask(umask))
        out.close()
        self.helper_runs += 1
        self.log("%s triggered by %s: started %s (pid %d)"
                 % (PATH_UNIT, trigger, HELPER, self.helper.pid))

    def kill_session(self, sid):
        """What systemd does to a service's cgroup when its main process is gone: whatever it
        started (dpkg, maintainer scripts) is killed too. The session stands in for the cgroup."""
        out = subprocess.run(["ps", "-eo", "pid=,sid="], capture_output=True, text=True).stdout
        for line in out.splitlines():
            pid, s = (int(x) for x in line.split())
            if s == sid:
                try:
                    os.kill(pid, signal.SIGKILL)
                    self.log("killed %d, left over from %s" % (pid, HELPER))
                except OSError:
                    pass

    # -- systemctl stand-in --------------------------------------------------------------------
    def handle(self, conn):
        with conn:
            words = conn.makefile().readline().split()
            reply = "error unknown request"
            if len(words) == 2 and words[1] == AGENT:
                verb = words[0]
                if verb == "start":
                    self.start_agent()
                    reply = "ok"
                elif verb == "stop":
                    self.stop_agent()
                    reply = "ok"
                elif verb == "restart":
                    self.stop_agent()
                    self.start_agent()
                    reply = "ok"
                elif verb == "is-active":
                    with self.lock:
                        up = self.agent is not None and self.agent.poll() is None
                    reply = "ok active" if up else "error inactive"
            elif len(words) == 2:
                reply = "error unit %s is not handled here" % words[1]
            self.log("systemctl %s -> %s" % (" ".join(words), reply))
            conn.sendall((reply + "\n").encode())

    def serve_socket(self):
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        srv.bind(self.socket_path)
        srv.listen(8)
        while not self.stopping:
            conn, _ = srv.accept()
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def run(self):
        threading.Thread(target=self.serve_socket, daemon=True).start()
        self.start_agent()

        def stop(*_):
            self.stopping = True
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while not self.stopping:
            self.watch_agent()
            self.watch_path()
            time.sleep(0.1)
        self.stop_agent()
        if self.helper is not None and self.helper.poll() is None:
            os.killpg(self.helper.pid, signal.SIGKILL)


def systemctl(verb, unit):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(300)
    s.connect(os.environ["MINI_INIT_SOCKET"])
    s.sendall(("%s %s\n" % (verb, unit)).encode())
    reply = s.makefile().readline().strip()
    if not reply.startswith("ok"):
        print("systemctl %s %s: %s" % (verb, unit, reply), file=sys.stderr)
        return 1
    return 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] in ("start", "stop", "restart", "is-active"):
        return systemctl(sys.argv[1], sys.argv[2])
    ap = argparse.ArgumentParser()
    ap.add_argument("serve")
    ap.add_argument("--units", required=True)
    ap.add_argument("--map", action="append", default=[])
    ap.add_argument("--state-root", required=True)
    ap.add_argument("--socket", required=True)
    ap.add_argument("--log", required=True)
    Init(ap.parse_args()).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
