"""Threaded HTTP/1.1 server with optional TLS (one thread per connection, keep-alive).

The TLS handshake runs in the connection's thread (never blocks accept). Responses are framed
with Content-Length, or chunked transfer coding when a streamed body has no known length.
Streamed bodies are written in 64 KiB pieces and never held in memory as a whole.

Fault actions on a Response (set by the dispatcher):
  resp.action = ("hang", seconds)   send nothing; close when the peer goes away or after seconds
  resp.action = ("reset",)          close at once (RST)
  resp.truncate = True              send headers and about half the body, then close
"""

import http.server
import select
import socket
import socketserver
import ssl
import struct
import sys
import time
import traceback

from .clock import fmt_http_date
from .http import Request, Response

MAX_BODY = 16 * 1024 * 1024
WRITE_CHUNK = 64 * 1024


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pmssim/1"
    sys_version = ""
    timeout = 120           # idle keep-alive timeout (seconds)

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("pmssim %s %s\n" % (self.address_string(), fmt % args))

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            body = bytearray()
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ConnectionError("eof in chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:
                        trailer = self.rfile.readline(8192)
                        if trailer in (b"\r\n", b"\n", b""):
                            break
                    return bytes(body)
                if len(body) + size > MAX_BODY:
                    raise ValueError("body too large")
                body += self.rfile.read(size)
                self.rfile.readline(8)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self):
        srv = self.server
        try:
            body = self._read_body()
        except (ValueError, ConnectionError):
            self.close_connection = True
            self._write(Response(413, b"request body rejected\n", content_type="text/plain", close=True))
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = Request(self.command, self.path, headers, body, srv.scheme,
                      "%s:%d" % (srv.server_name, srv.server_port), self.client_address)
        try:
            resp = srv.dispatcher.handle(req)
        except Exception:  # a bug in the simulator: report it as a 500 and keep serving
            traceback.print_exc()
            resp = Response(500, b"internal simulator error\n", content_type="text/plain")
        if (headers.get("connection") or "").lower() == "close":
            self.close_connection = True
        self._write(resp)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

    def _hang(self, seconds):
        end = time.monotonic() + seconds
        sock = self.connection
        while time.monotonic() < end:
            try:
                r, _, _ = select.select([sock], [], [], min(0.2, max(0.0, end - time.monotonic())))
                if r:
                    data = sock.recv(4096, socket.MSG_PEEK) if not isinstance(sock, ssl.SSLSocket) else sock.recv(4096)
                    if not data:
                        break
            except (OSError, ValueError):
                break
            if self.server.stopping:
                break

    def _reset(self):
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass

    def _write(self, resp):
        action = getattr(resp, "action", None)
        if action:
            self.close_connection = True
            if action[0] == "hang":
                self._hang(action[1])
            self._reset()
            return
        truncate = getattr(resp, "truncate", False)
        body = resp.body
        streamed = not isinstance(body, (bytes, bytearray))
        length = resp.length if streamed else len(body)
        head = self.command == "HEAD"
        try:
            self.send_response_only(resp.status)
            names = {k.lower() for k, _ in resp.headers}
            if "date" not in names:
                self.send_header("Date", fmt_http_date(self.server.clock.now_ms()))
            self.send_header("Server", self.server_version)
            for k, v in resp.headers:
                self.send_header(k, v)
            if length is not None:
                self.send_header("Content-Length", str(length))
            else:
                self.send_header("Transfer-Encoding", "chunked")
            if resp.close or truncate or self.close_connection:
                self.send_header("Connection", "close")
                self.close_connection = True
            # headers and a small body go out in one write (one TLS record / TCP segment)
            self._headers_buffer.append(b"\r\n")
            sent = 0
            if not streamed and not head:
                data = bytes(body)
                if truncate:
                    data = data[: max(1, len(data) // 2)]
                self._headers_buffer.append(data)
                sent = len(data)
            self.flush_headers()
            if head or not streamed:
                self.server.stats.inc("bytes_sent", sent)
                if resp.after_send:
                    resp.after_send()
                return
            chunked = length is None
            limit = (length // 2 if length else None) if truncate else None
            buf = bytearray()
            cut = False
            chunks = 0
            for piece in body:
                buf += piece
                if len(buf) < WRITE_CHUNK:
                    continue
                out = bytes(buf)
                buf.clear()
                if truncate and limit is not None and sent + len(out) >= limit:
                    out, cut = out[: max(0, limit - sent)], True
                elif truncate and limit is None and chunks >= 1:
                    out, cut = out[: len(out) // 2], True
                self._emit(out, chunked)
                sent += len(out)
                chunks += 1
                if cut:
                    break
            if not cut:
                out = bytes(buf)
                if truncate:
                    out = out[: max(0, limit - sent)] if limit is not None else out[: max(1, len(out) // 2)]
                self._emit(out, chunked)
                sent += len(out)
                if chunked and not truncate:
                    self.wfile.write(b"0\r\n\r\n")
            self.server.stats.inc("bytes_sent", sent)
            if resp.after_send:
                resp.after_send()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout, OSError):
            self.close_connection = True

    def _emit(self, data, chunked):
        if not data:
            return
        if chunked:
            self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
        else:
            self.wfile.write(data)


class SimHTTPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address, dispatcher, clock, stats, ssl_context=None, verbose=False):
        self.dispatcher = dispatcher
        self.clock = clock
        self.stats = stats
        self.ssl_context = ssl_context
        self.scheme = "https" if ssl_context else "http"
        self.verbose = verbose
        self.stopping = False
        super().__init__(address, _Handler)

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = host
        self.server_port = port

    def finish_request(self, request, client_address):
        self.stats.inc("connections")
        conn = request
        try:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        if self.ssl_context is not None:
            try:
                request.settimeout(15)
                conn = self.ssl_context.wrap_socket(request, server_side=True,
                                                    do_handshake_on_connect=False)
                conn.do_handshake()
            except (ssl.SSLError, OSError):
                self.stats.inc("tls_handshake_failures")
                try:
                    conn.close()
                except OSError:
                    pass
                return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        except (ConnectionError, ssl.SSLError, socket.timeout, OSError):
            pass
        finally:
            if conn is not request:
                try:
                    conn.close()
                except OSError:
                    pass

    def handle_error(self, request, client_address):
        if self.verbose:
            traceback.print_exc()

    @property
    def base_url(self):
        return "%s://%s:%d" % (self.scheme, self.server_name, self.server_port)
