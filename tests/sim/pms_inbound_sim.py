#!/usr/bin/python3
"""PMS-inbound MLLP simulator: the receiving side of a PMS's HL7 v2 interface, for the
agent's write-back target `hl7-mllp-out` (issue 15). Standard library only.

It listens for MLLP (TCP, or TLS with --cert/--key), parses each message and answers by rules:
  - AR + ERR 200 for a message type not in --accept-types (default: every type);
  - AE + ERR 207 for an MSH-10 listed with --reject-msh10;
  - AE + ERR 101 at PID-3 for a message without a PID-3 value (unless --no-require-pid3);
  - AA otherwise: the message is APPLIED, i.e. one line is appended to the change log
    (--change-log, JSON lines: {"seq","msh10","type","trigger","applied_at"}).
With --dedupe-msh10 (the default; --no-dedupe-msh10 turns it off) a message whose MSH-10 was
applied before (the change log is read at start, so this holds across restarts) is answered
AA again and not applied twice: what real PMS interface engines do when they dedupe on MSH-10.
Faults: --slow-ms N delays every answer; --late-ms N delays the answer to the first receipt
of each MSH-10 (the message is applied at once; meant to exceed the client's ACK timeout, so
the resend is answered at once); --drop-every N applies every N-th received message (counted
over all connections) and then closes the connection without answering (a lost ACK);
--stale-ack sends, before each real answer, an AA whose MSA-2 is another control id.
Writes {"port","pid"} to --ready-file (tmp + rename) once listening. No patient data is
written anywhere: the change log holds control ids, types and times only.
"""
import argparse
import datetime
import json
import os
import socket
import ssl
import sys
import threading
import time

VT, FS, CR = b"\x0b", b"\x1c", b"\x0d"


def now_hl7():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d%H%M%S+0000")


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


class Message:
    """The few parts of an HL7 v2 message the rules need."""

    def __init__(self, text):
        segs = [s for s in text.replace("\r\n", "\r").replace("\n", "\r").split("\r") if s.strip()]
        if not segs or not segs[0].startswith("MSH") or len(segs[0]) < 8:
            raise ValueError("no MSH segment at the start")
        self.sep = segs[0][3]
        self.comp = segs[0][4]
        self.segments = [s.split(self.sep) for s in segs]
        # MSH: fields[0] "MSH", fields[n-1] MSH-n (MSH-1 is the separator itself).
        msh = ["MSH", self.sep] + self.segments[0][1:]
        self.msh = msh

    def msh_field(self, n):
        return self.msh[n] if n < len(self.msh) else ""

    def component(self, value, k):
        parts = value.split(self.comp)
        return parts[k - 1] if k - 1 < len(parts) else ""

    def find(self, seg_id):
        for s in self.segments:
            if s[0] == seg_id:
                return s
        return None


class Sim:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.received = 0
        self.seq = 0
        self.applied = set()
        self.late_done = set()
        self.ack_counter = 0
        self.reject = set()
        for item in args.reject_msh10 or []:
            self.reject.update(x for x in item.split(",") if x)
        self.accept = set()
        for item in args.accept_types or []:
            self.accept.update(x.strip() for x in item.split(",") if x.strip())
        if args.change_log and os.path.exists(args.change_log):
            with open(args.change_log, encoding="utf-8") as f:
                for line in f:
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue  # a line cut by a kill: the entry was not written
                    self.applied.add(entry.get("msh10"))
                    self.seq = max(self.seq, int(entry.get("seq", 0)))

    # --- answers ---------------------------------------------------------------------------
    def ack(self, msg, code, control_id, err=None, text=""):
        with self.lock:
            self.ack_counter += 1
            ack_id = "SIM%d%06d" % (os.getpid(), self.ack_counter)
        trigger = msg.component(msg.msh_field(9), 2) if msg else ""
        version = (msg.component(msg.msh_field(12), 1) if msg else "") or "2.5.1"
        msh = ["MSH", "^~\\&", "PMSSIM", "PMS",
               msg.msh_field(3) if msg else "", msg.msh_field(4) if msg else "",
               now_hl7(), "", "ACK^%s^ACK" % trigger if trigger else "ACK", ack_id, "P", version]
        segs = ["|".join(msh), "|".join(["MSA", code, control_id] + ([text] if text else []))]
        if err:
            (seg, field, ecode, etext, user) = err
            old = version[:3] in ("2.1", "2.2", "2.3", "2.4")
            if old:
                segs.append("ERR|%s^1^%s^%s&%s&HL70357" % (seg, field, ecode, etext))
            else:
                loc = "%s^1^%s" % (seg, field) if seg else ""
                segs.append("|".join(["ERR", "", loc, "%s^%s^HL70357" % (ecode, etext), "E",
                                      "", "", "", user]))
        return ("\r".join(segs) + "\r").encode("utf-8")

    def decide(self, msg):
        """(code, err, apply) for a parsed message."""
        a = self.args
        mtype = msg.component(msg.msh_field(9), 1)
        trigger = msg.component(msg.msh_field(9), 2)
        msh10 = msg.msh_field(10)
        if self.accept and mtype not in self.accept and ("%s^%s" % (mtype, trigger)) not in self.accept:
            return "AR", ("MSH", 9, 200, "Unsupported message type",
                          "message type not accepted by this interface"), False
        if msh10 in self.reject:
            return "AE", ("", 0, 207, "Application internal error",
                          "rejected by simulator rule"), False
        if a.require_pid3:
            pid = msg.find("PID")
            if pid is None or len(pid) <= 3 or not pid[3].strip():
                return "AE", ("PID", 3, 101, "Required field missing",
                              "patient identifier (PID-3) required"), False
        return "AA", None, True

    def apply(self, msg):
        """Appends to the change log unless deduped. Returns True when applied now."""
        msh10 = msg.msh_field(10)
        with self.lock:
            if self.args.dedupe_msh10 and msh10 in self.applied:
                return False
            self.applied.add(msh10)
            self.seq += 1
            entry = {"seq": self.seq, "msh10": msh10,
                     "type": msg.component(msg.msh_field(9), 1),
                     "trigger": msg.component(msg.msh_field(9), 2),
                     "applied_at": now_iso()}
            if self.args.change_log:
                with open(self.args.change_log, "a", encoding="utf-8") as f:
                    f.write(json.dumps(entry, separators=(",", ":")) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
            return True

    # --- connections -----------------------------------------------------------------------
    def handle(self, conn):
        buf = b""
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                while True:
                    start = buf.find(VT)
                    if start < 0:
                        buf = b""
                        break
                    end = buf.find(FS + CR, start)
                    if end < 0:
                        buf = buf[start:]
                        break
                    frame = buf[start + 1:end]
                    buf = buf[end + 2:]
                    if not self.on_frame(conn, frame):
                        return
        except (OSError, ssl.SSLError):
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def on_frame(self, conn, frame):
        """Answers one frame; False when the connection is to be closed."""
        a = self.args
        with self.lock:
            self.received += 1
            count = self.received
        try:
            msg = Message(frame.decode("utf-8", errors="replace"))
        except ValueError:
            answer = self.ack(None, "AR", "", ("MSH", 1, 100, "Segment sequence error", "no MSH"))
            conn.sendall(VT + answer + FS + CR)
            return True
        msh10 = msg.msh_field(10)
        code, err, ok = self.decide(msg)
        if ok:
            self.apply(msg)
        if a.drop_every and count % a.drop_every == 0:
            return False
        delay_ms = a.slow_ms
        if a.late_ms:
            with self.lock:
                first = msh10 not in self.late_done
                self.late_done.add(msh10)
            if first:
                delay_ms += a.late_ms
        if delay_ms:
            time.sleep(delay_ms / 1000.0)
        if a.stale_ack:
            stale = self.ack(msg, "AA", "STALE" + msh10)
            conn.sendall(VT + stale + FS + CR)
        conn.sendall(VT + self.ack(msg, code, msh10, err) + FS + CR)
        return True


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--ready-file")
    p.add_argument("--change-log")
    p.add_argument("--cert", help="serve TLS with this certificate (PEM)")
    p.add_argument("--key")
    p.add_argument("--accept-types", action="append",
                   help="accepted MSH-9 types (SIU or SIU^S12), comma lists; default: all")
    p.add_argument("--reject-msh10", action="append", help="MSH-10 values answered AE")
    p.add_argument("--require-pid3", dest="require_pid3", action="store_true", default=True)
    p.add_argument("--no-require-pid3", dest="require_pid3", action="store_false")
    p.add_argument("--dedupe-msh10", dest="dedupe_msh10", action="store_true", default=True)
    p.add_argument("--no-dedupe-msh10", dest="dedupe_msh10", action="store_false")
    p.add_argument("--slow-ms", type=int, default=0)
    p.add_argument("--late-ms", type=int, default=0)
    p.add_argument("--drop-every", type=int, default=0)
    p.add_argument("--stale-ack", action="store_true")
    args = p.parse_args()

    sim = Sim(args)
    ctx = None
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.host, args.port))
    srv.listen(64)
    ready = {"port": srv.getsockname()[1], "pid": os.getpid()}
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(ready, f)
        os.replace(tmp, args.ready_file)
    else:
        print(json.dumps(ready), flush=True)

    while True:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ctx is not None:
            try:
                conn.settimeout(10)
                conn = ctx.wrap_socket(conn, server_side=True)
                conn.settimeout(None)
            except (OSError, ssl.SSLError):
                conn.close()
                continue
        threading.Thread(target=sim.handle, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
