#!/usr/bin/env python3
"""RSS and CPU of the Windows build of pms-agent under Wine, under the same MLLP load as Linux.

What it measures: for the Linux agent (build/bin/pms-agent) and then the cross-built Windows agent
(build-windows/bin/pms-agent.exe, run in the foreground under Wine 8 in a throwaway WINEPREFIX),
each started with `run --config FILE` and a config holding only one hl7-mllp listener (no cloud
section, so records queue locally; integrity check off):

  * idle RSS: VmRSS of the agent process 3 s after its MLLP port accepts connections;
  * for each connection count N (--conns): N threads, each on its own TCP connection, send 1 KiB
    HL7 v2 ADT^A01 messages in MLLP frames one at a time, each waiting for its ACK (MSA|AA), for
    --seconds; every message has a unique MSH-10 ("B<conn>-<n>"). The agent commits each
    message to its queue before it ACKs. Printed: ACKed messages/s, send->ACK latency p50/p99,
    the agent process's CPU (utime+stime from /proc/PID/stat) per 1000 messages and as % of one
    core, and its peak VmRSS (sampled every 0.5 s).

Under Wine the measured process is the Linux process that runs pms-agent.exe (found in /proc by
its command line and its WINEPREFIX). Its RSS includes Wine's own DLLs (ntdll, kernelbase, ...),
so it is an upper bound for what Windows would report; the idle RSS of a trivial Wine console
process (ping.exe) in the same prefix is printed as the baseline to subtract, and each agent's
idle RSS is broken down (anonymous / file-backed, thread stack mappings, and for Wine the part of
pms-agent.exe's image that Wine copied into private memory). Wine also does part of the work in
other processes (wineserver, for waits and handles): their CPU is printed on a separate line, not
added to the agent's. The Windows agent is stopped with SIGINT (Ctrl+C for a Wine console
process, its clean stop), then SIGTERM/SIGKILL if needed, and the prefix with `wineserver -k`.
The load generator is this Python process (its CPU is printed too: on a 2-core machine it
competes with the agent, so compare the two agents with each other rather than with mllp_bench).
Benchmarks print figures and assert nothing: the exit code is 0 unless the setup broke (an agent
did not start, Wine could not boot a prefix).

Run from the repository root, with the binaries already built (`cmake --build --preset default
--target pms-agent` and packaging/windows/build.sh); Python 3 standard library only:

  python3 tests/bench/windows_mllp_bench.py [--seconds S] [--conns 1,16] \\
      [--linux-bin build/bin] [--windows-bin build-windows/bin] [--keep]

This is how the "Windows build under Wine vs Linux" RSS/CPU figures in the project's notes are
reproduced (default: 20 s per point, 1 and 16 connections). Everything lives in a temp dir under
/tmp (the agents' state, their logs, the WINEPREFIX), removed at the end unless --keep. Run it
on a quiet machine: the load average at the start is printed in the table's title.
"""
import argparse
import json
import os
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "windows"))
from winelib import (Wine, free_port, log, port_open, prefix_pids,  # noqa: E402
                     wait_for, win_path)

CLK_TCK = os.sysconf("SC_CLK_TCK")
T0 = time.monotonic()
WINE_NOTE = ("under Wine, RSS includes Wine's own libraries in the process (ntdll, kernelbase, "
             "...), so it is an upper bound for what Windows itself would report")


def tail(path, n=40):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)
    text = data.decode("utf-16" if data[:2] == b"\xff\xfe" else "utf-8", "replace")
    return "\n".join(text.splitlines()[-n:])


# ---------------------------------------------------------------------------------------------
# /proc

def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def cpu_ticks(pid):
    """utime + stime (fields 14 and 15 of /proc/PID/stat), in clock ticks; None if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return None
    rest = stat[stat.rindex(")") + 2:].split()  # rest[0] is field 3 (state)
    return int(rest[14 - 3]) + int(rest[15 - 3])


def pe_image_range(path):
    """(ImageBase, SizeOfImage) from a PE file's optional header; None if not a PE file."""
    try:
        with open(path, "rb") as f:
            h = f.read(4096)
        off = struct.unpack_from("<I", h, 0x3C)[0]
        if h[off:off + 4] != b"PE\0\0":
            return None
        opt = off + 24
        if struct.unpack_from("<H", h, opt)[0] == 0x20B:  # PE32+
            base = struct.unpack_from("<Q", h, opt + 24)[0]
        else:
            base = struct.unpack_from("<I", h, opt + 28)[0]
        return base, struct.unpack_from("<I", h, opt + 56)[0]
    except (OSError, struct.error):
        return None


def memory_breakdown(pid, pe_path=None):
    """Where a process's RSS is: anonymous / file-backed (kB), its threads, the resident part of
    the mappings its threads' stack pointers are in, and (pe_path) the anonymous resident part
    of that PE image's address range (Wine copies an image it cannot map from the file)."""
    out = {"anon": None, "file": None, "threads": None, "stacks": None, "image": None}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                key, _, val = line.partition(":")
                if key in ("RssAnon", "RssFile", "Threads"):
                    out[{"RssAnon": "anon", "RssFile": "file", "Threads": "threads"}[key]] = \
                        int(val.split()[0])
        maps = []  # (start, end, rss kB, anonymous kB)
        with open("/proc/%d/smaps" % pid) as f:
            for line in f:
                first = line.split(None, 1)[0]
                if "-" in first and not first.endswith(":"):
                    a, b = first.split("-")
                    maps.append([int(a, 16), int(b, 16), 0, 0])
                elif first == "Rss:" and maps:
                    maps[-1][2] = int(line.split()[1])
                elif first == "Anonymous:" and maps:
                    maps[-1][3] = int(line.split()[1])
        sps = set()
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/syscall" % (pid, tid)) as f:
                    fields = f.read().split()
            except OSError:
                continue
            if len(fields) >= 3:  # "nr args... sp pc" or "-1 sp pc"; "running" has none
                sps.add(int(fields[-2], 16))
        if sps:
            out["stacks"] = sum(m[2] for m in maps if any(m[0] <= sp < m[1] for sp in sps))
        rng = pe_image_range(pe_path) if pe_path else None
        if rng:
            base, size = rng
            inside = [m for m in maps if m[0] >= base and m[1] <= base + size]
            if inside:
                out["image"] = sum(m[3] for m in inside)
    except (OSError, ValueError):
        pass
    return out


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:][:1] not in ("Z", "X")


def wine_pid(prefix, image):
    """The Linux pid of the Wine process of `prefix` running `image` (e.g. pms-agent.exe)."""
    hits = [(pid, comm) for pid, (comm, cmd) in prefix_pids(prefix).items()
            if image.lower() in cmd.lower() and alive(pid)]
    if not hits:
        return None
    # The `wine` wrapper execs the loader (same pid), so one hit is the rule; if a second one
    # shows up (a helper whose command line names the exe), prefer the one Wine named after it.
    hits.sort(key=lambda h: (h[1].lower() != image.lower()[:15], h[0]))
    return hits[0][0]


# ---------------------------------------------------------------------------------------------
# MLLP load

def adt_a01(control_id, size=1024):
    """An HL7 v2.5.1 ADT^A01 of exactly `size` bytes (padded with a Z segment)."""
    m = ("MSH|^~\\&|REGADT|GOODHEALTH|PSAGENT|PRACTICE0042|20240105083000||ADT^A01^ADT_A01|"
         + control_id + "|P|2.5.1\r"
         "EVN|A01|20240105083000|||OP1234^OPERATOR^TEST\r"
         "PID|1||MRN10001^^^GOODHEALTH^MR||DOE^JANE^Q^^MS||19800101|F|||123 FAKE ST^^SPRINGFIELD"
         "^IL^62701^USA^H||(555)555-0100^PRN^PH||S||ACCT0001\r"
         "PV1|1|I|WARD1^101^A^GOODHEALTH||||1234^KILDARE^JAMES^^^DR|||MED||||7|||1234^KILDARE"
         "^JAMES^^^DR|IN|VIS0001\r"
         "AL1|1|DA|PCN^PENICILLIN^L|SV|HIVES~RASH\r"
         "DG1|1|I10|J18.9^PNEUMONIA, UNSPECIFIED ORGANISM^I10||20240105|A\r")
    pad = size - len(m) - len("ZPD|1|") - 1
    return m + "ZPD|1|" + ("PAD^X~" * (pad // 6 + 1))[:pad - 1] + "X\r"


class Sender(threading.Thread):
    """One connection: a message, wait for its ACK, the next, until the deadline."""

    def __init__(self, index, port, go):
        super().__init__(daemon=True)
        self.index, self.port, self.go = index, port, go
        self.deadline = None  # set by the main thread before `go` is set
        self.acked = 0
        self.naks = 0
        self.error = None
        self.latencies = []
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def run(self):
        try:
            if not self.go.wait(60):
                return
            n = 0
            sock, lat = self.sock, self.latencies
            while time.monotonic() < self.deadline:
                ctl = "B%d-%d" % (self.index, n)
                n += 1
                frame = b"\x0b" + adt_a01(ctl).encode() + b"\x1c\x0d"
                t = time.perf_counter()
                sock.sendall(frame)
                buf = b""
                while not buf.endswith(b"\x1c\x0d"):
                    chunk = sock.recv(4096)
                    if not chunk:
                        raise ConnectionError("connection closed by the agent")
                    buf += chunk
                elapsed = time.perf_counter() - t
                if ("MSA|AA|" + ctl).encode() in buf:
                    self.acked += 1
                    lat.append(elapsed)
                else:
                    self.naks += 1
                    if self.naks == 1:
                        log("conn %d: not an AA for %s: %r" % (self.index, ctl, buf[:200]))
                    time.sleep(0.05)
        except Exception as e:  # recorded and printed; the other connections go on
            self.error = "%s: %s" % (type(e).__name__, e)
        finally:
            self.sock.close()


def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(round(q * (len(sorted_values) - 1))))]


def drive(port, conns, seconds, pid, extra_pids=()):
    """N connections for `seconds`; CPU of `pid` (and of `extra_pids`, summed), RSS samples."""
    go = threading.Event()
    senders = []
    try:
        for i in range(conns):
            senders.append(Sender(i, port, go))
    except OSError:
        for s in senders:
            s.sock.close()
        raise
    for s in senders:
        s.start()
    rss_samples = [rss_kb(pid) or 0]
    ticks0 = cpu_ticks(pid)
    extra0 = {p: cpu_ticks(p) for p in extra_pids}
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    deadline = t0 + seconds
    for s in senders:
        s.deadline = deadline
    go.set()
    while time.monotonic() < deadline:
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        rss_samples.append(rss_kb(pid) or 0)
    for s in senders:
        s.join(timeout=30)  # a send in progress ends with its ACK or the 10 s socket timeout
    wall = time.monotonic() - t0
    ticks1 = cpu_ticks(pid)
    extra1 = {p: cpu_ticks(p) for p in extra_pids}
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    rss_samples.append(rss_kb(pid) or 0)
    lat = sorted(x for s in senders for x in s.latencies)
    acked = sum(s.acked for s in senders)
    cpu_s = None if ticks0 is None or ticks1 is None else (ticks1 - ticks0) / CLK_TCK
    extra_s = {p: (extra1[p] - extra0[p]) / CLK_TCK for p in extra_pids
               if extra0.get(p) is not None and extra1.get(p) is not None}
    client_s = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    return {
        "conns": conns, "acked": acked, "wall": wall, "rate": acked / wall if wall else 0.0,
        "p50": percentile(lat, 0.50) * 1000, "p99": percentile(lat, 0.99) * 1000,
        "cpu_s": cpu_s, "extra_s": extra_s, "client_s": client_s,
        "rss_max_kb": max(rss_samples), "naks": sum(s.naks for s in senders),
        "errors": [(s.index, s.error) for s in senders if s.error],
        "stuck": sum(1 for s in senders if s.is_alive()),
    }


# ---------------------------------------------------------------------------------------------
# Agents

def config(state_for_agent, port, control):
    cfg = {
        "agent": {"id": "practice-0042", "tenant": "bench", "log_level": "info",
                  "state_dir": state_for_agent},
        "store": {"integrity_check": "off"},
        "adapters": [{"name": "bench", "type": "hl7-mllp", "vendor": "cerner",
                      "ack_mode": "original", "listen": "127.0.0.1:%d" % port}],
    }
    if control is not None:
        cfg["control"] = {"socket": control}
    return cfg


def stop_process(pid, popen, signals, label):
    """Send each (signal, seconds to wait) in turn until `pid` is gone; reap `popen`."""
    how = "already gone"
    for sig, wait_s in signals:
        if not alive(pid):
            break
        try:
            os.kill(pid, sig)
        except OSError:
            break
        how = signal.Signals(sig).name
        if wait_for(lambda: not alive(pid) or (popen.pid == pid and popen.poll() is not None),
                    wait_s, 0.1):
            break
    else:
        if alive(pid):
            how = "still alive after SIGKILL"
    if popen.poll() is None:
        try:
            popen.wait(10)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(10)
    log("%s stopped (%s)" % (label, how))


def run_agent(label, kind, args, work, wine=None):
    """Start one agent, measure it idle and under each load. Returns its result dict or None."""
    d = os.path.join(work, kind)
    state = os.path.join(d, "state")
    os.makedirs(state)
    cfg_path = os.path.join(d, "agent.json")
    agent_log = os.path.join(d, "agent.log")
    port = free_port()
    if kind == "linux":
        exe = os.path.abspath(os.path.join(args.linux_bin, "pms-agent"))
        cfg = config(state, port, os.path.join(state, "control.sock"))
        argv = [exe, "run", "--config", cfg_path]
        ready_timeout = 60
    else:
        exe = os.path.abspath(os.path.join(args.windows_bin, "pms-agent.exe"))
        cfg = config(win_path(state), port, "\\\\.\\pipe\\pms-agent-bench-%d" % os.getpid())
        argv = [exe, "run", "--config", win_path(cfg_path)]
        ready_timeout = 180
    if not os.path.isfile(exe):
        log("%s: %s not found (build it first); skipped" % (label, exe))
        return None
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2)

    popen = None
    pid = None
    try:
        log("%s: starting %s (MLLP port %d)" % (label, " ".join(argv), port))
        t = time.monotonic()
        if wine is None:
            with open(agent_log, "ab") as out:
                popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        else:
            popen = wine.popen(argv, agent_log)
        up = False
        deadline = time.monotonic() + ready_timeout
        while not up and popen.poll() is None and time.monotonic() < deadline:
            try:
                up = port_open(port)
            except OSError:
                time.sleep(0.2)
        if not up:
            state_txt = ("exited with %s" % popen.returncode if popen.poll() is not None
                         else "no listener after %d s" % ready_timeout)
            print("\n%s: the agent did not start (%s); last 40 lines of %s:\n%s\n"
                  % (label, state_txt, agent_log, tail(agent_log)), flush=True)
            if wine is not None:
                own = os.path.join(wine.prefix, "drive_c/ProgramData/PracticeStudio/Agent/logs",
                                   "agent.log")
                if os.path.exists(own):
                    print("its own log file %s:\n%s\n" % (own, tail(own)), flush=True)
            return None
        log("%s: MLLP listener up after %.1f s" % (label, time.monotonic() - t))
        if wine is None:
            pid = popen.pid
        else:
            wait_for(lambda: wine_pid(wine.prefix, "pms-agent.exe") is not None, 30, 0.2)
            pid = wine_pid(wine.prefix, "pms-agent.exe")
            if pid is None:
                print("\n%s: listener up but no process running pms-agent.exe in %s\n"
                      % (label, wine.prefix), flush=True)
                return None
            log("%s: measuring Linux pid %d (%s); wine launcher pid %d"
                % (label, pid, prefix_pids(wine.prefix).get(pid, ("?", "?"))[0], popen.pid))

        time.sleep(3)  # idle figure: 3 s of nothing after readiness
        if not alive(pid):
            print("\n%s: the agent died while idle; last 40 lines of %s:\n%s\n"
                  % (label, agent_log, tail(agent_log)), flush=True)
            return None
        result = {"label": label, "rss_idle_kb": rss_kb(pid), "points": [],
                  "idle_mem": memory_breakdown(pid, exe if wine is not None else None),
                  "exe": exe}
        # Wine does part of the work in the prefix's other processes (wineserver above all).
        extra = []
        if wine is not None:
            extra = [p for p in prefix_pids(wine.prefix) if p != pid and alive(p)]
            result["server_pid"] = wine.server_pid()
        for conns in args.conns:
            log("%s: %d connection(s) for %g s" % (label, conns, args.seconds))
            try:
                point = drive(port, conns, args.seconds, pid, extra)
            except OSError as e:  # could not even connect
                print("\n%s: %d connection(s) to 127.0.0.1:%d failed (%s); last 40 lines of %s:"
                      "\n%s\n" % (label, conns, port, e, agent_log, tail(agent_log)), flush=True)
                break
            if wine is not None:
                point["server_s"] = point["extra_s"].get(result["server_pid"])
            result["points"].append(point)
            for idx, err in point["errors"]:
                log("%s: conn %d ended early: %s" % (label, idx, err))
            if point["stuck"]:
                log("%s: %d sender thread(s) still waiting for an ACK" % (label, point["stuck"]))
            if not alive(pid):
                print("\n%s: the agent died under load; last 40 lines of %s:\n%s\n"
                      % (label, agent_log, tail(agent_log)), flush=True)
                break
        return result
    finally:
        if popen is not None:
            if wine is None:
                stop_process(popen.pid, popen,
                             [(signal.SIGTERM, 30), (signal.SIGKILL, 10)], label)
            else:
                target = pid or wine_pid(wine.prefix, "pms-agent.exe") or popen.pid
                # SIGINT is Ctrl+C for a Wine console process (the agent's clean stop);
                # SIGTERM ends a Wine process without running its handlers.
                stop_process(target, popen, [(signal.SIGINT, 15), (signal.SIGTERM, 10),
                                             (signal.SIGKILL, 10)], label)


def wine_baseline(wine, work):
    """Idle VmRSS of a trivial Wine console process (ping.exe), measured like the agent."""
    path = os.path.join(work, "baseline.log")
    p = wine.popen(["ping", "-n", "600", "127.0.0.1"], path)
    try:
        if not wait_for(lambda: wine_pid(wine.prefix, "ping.exe") is not None or
                        p.poll() is not None, 60, 0.2):
            return None, "ping.exe did not show up"
        pid = wine_pid(wine.prefix, "ping.exe")
        if pid is None:
            return None, "wine ping exited %s: %s" % (p.returncode, tail(path, 5))
        time.sleep(3)
        if not alive(pid):
            return None, "ping.exe ended early: %s" % tail(path, 5)
        return rss_kb(pid), "ping.exe, pid %d" % pid
    finally:
        pid = wine_pid(wine.prefix, "ping.exe")
        if pid is not None:
            stop_process(pid, p, [(signal.SIGTERM, 5), (signal.SIGKILL, 5)], "wine ping")
        elif p.poll() is None:
            p.kill()
            p.wait(10)


# ---------------------------------------------------------------------------------------------

def fmt(v, spec):
    return "n/a" if v is None or v != v else spec % v


def print_table(results, args, load_at_start, baseline):
    print()
    print("MLLP load, 1 KiB ADT, commit before ACK, %g s per point (load average at start: %.2f)"
          % (args.seconds, load_at_start))
    head = "%-16s %-7s %7s %8s %8s %15s %12s %13s %12s"
    print(head % ("agent", "conns", "msg/s", "p50 ms", "p99 ms", "CPU ms/1k msg", "CPU % core",
                  "RSS idle MB", "RSS max MB"))
    for label, res in results:
        if res is None:
            print("%-16s %s" % (label, "- (did not run; see above)"))
            continue
        idle = res["rss_idle_kb"] / 1024 if res["rss_idle_kb"] else None
        if not res["points"]:
            print(head % (label, "-", "", "", "", "", "", fmt(idle, "%.1f"), ""))
        for pt in res["points"]:
            per_k = pt["cpu_s"] * 1000 / (pt["acked"] / 1000) if pt["cpu_s"] is not None and \
                pt["acked"] else None
            pct = pt["cpu_s"] * 100 / pt["wall"] if pt["cpu_s"] is not None else None
            print(head % (label, pt["conns"], "%.0f" % pt["rate"], fmt(pt["p50"], "%.2f"),
                          fmt(pt["p99"], "%.2f"), fmt(per_k, "%.1f"), fmt(pct, "%.0f"),
                          fmt(idle, "%.1f"), "%.1f" % (pt["rss_max_kb"] / 1024)))
    print()
    base_mb, base_what = baseline
    if base_mb is not None:
        print("note: %s; Wine baseline (idle RSS of a trivial Wine console process, %s, same "
              "prefix, measured the same way): %.1f MB, subtract it for an estimate."
              % (WINE_NOTE, base_what.split(",")[0], base_mb / 1024))
    else:
        print("note: %s; Wine baseline not measured (%s)." % (WINE_NOTE, base_what))
    for label, res in results:
        if res is None:
            continue
        m = res["idle_mem"]
        mb = lambda kb: fmt(kb / 1024 if kb is not None else None, "%.1f")  # noqa: E731
        line = "idle RSS, %s: %s MB = %s MB anonymous + %s MB file-backed; %s threads, the " \
               "mappings their stacks are in: %s MB resident" % (
                   label, mb(res["rss_idle_kb"]), mb(m["anon"]), mb(m["file"]),
                   m["threads"] if m["threads"] is not None else "n/a", mb(m["stacks"]))
        if m["image"]:
            line += ("; %s (%.1f MB on disk) resident as private memory: %s MB (Wine copies a PE "
                     "image whose sections are not page-aligned in the file; Windows maps it "
                     "from the file and counts only the pages touched)"
                     % (os.path.basename(res["exe"]), os.path.getsize(res["exe"]) / 2**20,
                        mb(m["image"])))
        print(line)
    for label, res in results:
        if res is None:
            continue
        for pt in res["points"]:
            if "server_s" not in pt:
                continue
            total = sum(pt["extra_s"].values())
            server = pt["server_s"]
            per_k = total * 1e6 / pt["acked"] if pt["acked"] else None
            print("note: %s, %d conn(s): Wine's other processes of the prefix used %s CPU ms/1k "
                  "msg, %s %% of a core (wineserver alone: %s %%), not counted above"
                  % (label, pt["conns"], fmt(per_k, "%.1f"), fmt(total * 100 / pt["wall"], "%.0f"),
                     fmt(server * 100 / pt["wall"] if server is not None else None, "%.0f")))
    for label, res in results:
        if res is None:
            continue
        for pt in res["points"]:
            extra = ""
            if pt["naks"] or pt["errors"]:
                extra = "; %d non-AA answers, %d connection(s) ended early" % (
                    pt["naks"], len(pt["errors"]))
            print("load generator (this Python process), %s, %d conn(s): %.0f %% of a core, "
                  "%d messages ACKed in %.1f s%s" % (label, pt["conns"],
                                                     pt["client_s"] * 100 / pt["wall"],
                                                     pt["acked"], pt["wall"], extra))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20, help="seconds per point (default 20)")
    ap.add_argument("--conns", default="1,16", help="connection counts (default 1,16)")
    ap.add_argument("--linux-bin", default="build/bin")
    ap.add_argument("--windows-bin", default="build-windows/bin")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (state, logs, prefix)")
    args = ap.parse_args()
    try:
        args.conns = [int(c) for c in args.conns.split(",") if c.strip()]
        if not args.conns or min(args.conns) < 1 or args.seconds <= 0:
            raise ValueError
    except ValueError:
        ap.error("--conns takes positive integers separated by commas; --seconds > 0")

    # SIGTERM/SIGHUP to this script: unwind through the `finally` blocks (children, wineserver).
    def bail(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, bail)
    signal.signal(signal.SIGHUP, bail)

    load_at_start = os.getloadavg()[0]
    work = tempfile.mkdtemp(prefix="psa-winbench-", dir="/tmp")
    log("work dir %s (load average %.2f, %d cores)" % (work, load_at_start, os.cpu_count()))
    results = []
    baseline = (None, "Windows agent not run")
    wine = None
    setup_ok = True
    try:
        results.append(("linux", run_agent("linux", "linux", args, work)))

        label = "windows (Wine)"
        res = None
        exe = os.path.join(args.windows_bin, "pms-agent.exe")
        if shutil.which("wine") is None or shutil.which("wineserver") is None:
            print("\n%s: wine is not installed; skipped" % label, flush=True)
        elif not os.path.isfile(exe):
            print("\n%s: %s not found (packaging/windows/build.sh builds it); skipped"
                  % (label, exe), flush=True)
        else:
            wine = Wine(os.path.join(work, "prefix"))
            try:
                t = time.monotonic()
                wine.boot()
                log("fresh WINEPREFIX booted in %.1f s" % (time.monotonic() - t))
                baseline = wine_baseline(wine, work)
                log("Wine baseline: %s kB (%s)" % (baseline[0], baseline[1]))
                res = run_agent(label, "windows", args, work, wine=wine)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                print("\n%s: Wine setup failed: %s\n" % (label, e), flush=True)
        results.append((label, res))
        setup_ok = all(r is not None for _, r in results)
        print_table(results, args, load_at_start, baseline)
    finally:
        if wine is not None:
            wine.shutdown()
        if args.keep:
            log("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if setup_ok else 1


if __name__ == "__main__":
    sys.exit(main())
