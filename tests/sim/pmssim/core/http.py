"""HTTP request/response value types shared by the server, the admin API and vendor apps."""

import json
import urllib.parse


class Request:
    """One parsed HTTP request. `query` keeps repeated parameters in order."""

    def __init__(self, method, target, headers, body, scheme, listener_host, client_addr):
        self.method = method
        self.target = target
        path, _, raw_query = target.partition("?")
        self.raw_path = path
        self.path = urllib.parse.unquote(path)
        self.raw_query = raw_query
        self.query = urllib.parse.parse_qsl(raw_query, keep_blank_values=True)
        self.headers = headers                       # dict: lower-case name -> value
        self.body = body
        self.scheme = scheme
        self.host = headers.get("host") or listener_host
        self.client_addr = client_addr
        # Filled in by the dispatcher / vendor app:
        self.endpoint = "unknown"
        self.fault = None
        self.token = None
        self.route_params = {}

    @property
    def origin(self):
        return "%s://%s" % (self.scheme, self.host)

    def url_for(self, path):
        return self.origin + path

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def params(self, name):
        return [v for k, v in self.query if k == name]

    def param(self, name, default=None):
        for k, v in self.query:
            if k == name:
                return v
        return default

    def form(self):
        ctype = self.header("content-type", "")
        if not ctype.lower().startswith("application/x-www-form-urlencoded"):
            return None
        try:
            return urllib.parse.parse_qsl(self.body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            return None

    def json(self):
        if not self.body:
            return {}
        return json.loads(self.body.decode("utf-8"))


class Response:
    """An HTTP response. `body` is bytes, or an iterable of bytes chunks (streamed).

    For streamed bodies `length` may give the total size (Content-Length framing); without it
    the server uses chunked transfer coding.
    """

    def __init__(self, status=200, body=b"", headers=None, content_type=None, length=None,
                 close=False):
        self.status = int(status)
        self.body = body
        self.headers = list(headers or [])
        if content_type:
            self.headers.append(("Content-Type", content_type))
        self.length = length
        self.close = close
        self.after_send = None     # optional callable run after the body was written

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def set_header(self, name, value):
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        self.headers.append((name, value))

    def body_bytes(self):
        if isinstance(self.body, (bytes, bytearray)):
            return bytes(self.body)
        return b"".join(self.body)


def json_response(obj, status=200, content_type="application/json", headers=None):
    return Response(status, json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
                    headers=headers, content_type=content_type)


class HttpError(Exception):
    """Raise to abort request handling with the given response."""

    def __init__(self, response):
        super().__init__("HTTP %d" % response.status)
        self.response = response
