"""What the Wine test (wine_e2e.py) and the Wine benchmark (tests/bench/windows_mllp_bench.py)
share: waiting with deadlines, free ports, running commands, and a WINEPREFIX of their own.

Two Wine habits shape this code. Processes Wine starts (services.exe, a service) inherit the
caller's stdout and outlive the command, so output goes through files, never pipes. And when the
prefix's wineserver exits, every Windows process of the prefix goes with it, so the server is
started persistent (`wineserver -p`) and stopped explicitly."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

T0 = time.monotonic()


def log(msg):
    """Progress lines, to stderr."""
    print("[%6.1fs] %s" % (time.monotonic() - T0, msg), file=sys.stderr, flush=True)


def wait_for(pred, timeout, step=0.25):
    """Polls `pred` (exceptions count as False) until it is true or `timeout` seconds passed."""
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


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def port_open(port):
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def run(argv, timeout=120, env=None, check_rc=False):
    """Runs a command to completion; returns (exit code, combined output)."""
    with tempfile.TemporaryFile() as out_file:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out_file,
                           stderr=subprocess.STDOUT, timeout=timeout, env=env)
        out_file.seek(0)
        out = out_file.read().decode("utf-8", "replace")
    if check_rc and p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), p.returncode, out[-2000:]))
    return p.returncode, out


def read_text(path):
    """A text file Windows or Wine wrote (UTF-16 with a BOM, or UTF-8); "" when missing."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return ""
    return data.decode("utf-16" if data[:2] == b"\xff\xfe" else "utf-8", "replace")


def win_path(path):
    """A Linux path as Wine sees it (drive Z: is /), forward slashes: the agent takes both."""
    return "Z:" + path


def prefix_pids(prefix):
    """{pid: (comm, cmdline)} of the processes whose environment has WINEPREFIX=prefix (never
    match Windows programs by name alone: other processes may carry the same words)."""
    want = ("WINEPREFIX=" + prefix).encode()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                if want not in f.read().split(b"\0"):
                    continue
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
            with open("/proc/%d/comm" % pid) as f:
                comm = f.read().strip()
            with open("/proc/%d/stat" % pid) as f:
                stat = f.read()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2:][:1] in ("Z", "X"):
            continue  # exited, not yet reaped
        found[pid] = (comm, cmd)
    return found


class Wine:
    """A throwaway WINEPREFIX and the commands run in it."""

    def __init__(self, prefix):
        self.prefix = prefix
        env = dict(os.environ, WINEPREFIX=prefix, WINEDEBUG="-all",
                   WINEDLLOVERRIDES="mscoree,mshtml=")
        env.pop("TMPDIR", None)  # wineserver would put its socket there
        env.pop("DISPLAY", None)
        self.env = env
        self.started = False

    def __call__(self, *argv, timeout=180):
        return run(["wine"] + list(argv), timeout=timeout, env=self.env)

    def popen(self, argv, log_path):
        with open(log_path, "ab") as out:
            return subprocess.Popen(["wine"] + list(argv), env=self.env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def _server(self):
        subprocess.run(["wineserver", "-p"], env=self.env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)

    def boot(self):
        """Creates the prefix. A new prefix runs two services.exe until it is restarted once
        (OpenService then fails at random), so it is restarted."""
        os.makedirs(self.prefix, exist_ok=True)
        self.started = True
        self._server()
        rc, out = run(["wine", "wineboot", "-i"], timeout=300, env=self.env)
        if rc != 0:
            raise RuntimeError("wine wineboot -i exited %d: %s" % (rc, out[-2000:]))
        subprocess.run(["wineserver", "-k"], env=self.env, timeout=60)
        wait_for(lambda: not self.pids("services.exe"), 20)
        self._server()
        run(["wine", "wineboot"], timeout=300, env=self.env)

    def shutdown(self):
        if not self.started:
            return
        try:
            subprocess.run(["wineserver", "-k"], env=self.env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        except subprocess.TimeoutExpired:
            log("wineserver -k did not return within 60 s")
        if not wait_for(lambda: not prefix_pids(self.prefix), 30):
            left = prefix_pids(self.prefix)
            log("Wine processes still there after wineserver -k, killing: %s" % sorted(left))
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def pids(self, image):
        """Linux pids of this prefix's processes running `image` (e.g. pms-agent.exe)."""
        return [pid for pid, (_, cmd) in prefix_pids(self.prefix).items()
                if image.lower() in cmd.lower()]

    def server_pid(self):
        for pid, (comm, _) in prefix_pids(self.prefix).items():
            if comm.startswith("wineserver"):
                return pid
        return None

    def unix(self, win_path_text):
        """The Linux path of a C:\\ path of this prefix."""
        rel = win_path_text[3:].replace("\\", "/")
        return os.path.join(self.prefix, "drive_c", rel)
