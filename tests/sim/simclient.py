"""Reference FHIR client used by selftest.py (stdlib + python3-cryptography).

It is deliberately small but does what the C++ client must do: SMART Backend Services or client
secret auth, re-auth on 401, honouring Retry-After / documented rate limits, retries on
transient failures, following link[next] verbatim, Bulk $export with polling, and a local
"store" keyed by Type/id keeping the highest versionId plus tombstones.
"""

import base64
import collections
import http.client
import json
import ssl
import threading
import time
import urllib.parse
import uuid

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_jwt(claims, key, alg, kid=None):
    header = {"alg": alg, "typ": "JWT"}
    if kid:
        header["kid"] = kid
    signing_input = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
    if alg.startswith("RS"):
        sig = key.sign(signing_input, padding.PKCS1v15(), {"RS256": hashes.SHA256(), "RS384": hashes.SHA384()}[alg])
    else:
        size = {"ES256": 32, "ES384": 48}[alg]
        der = key.sign(signing_input, ec.ECDSA({"ES256": hashes.SHA256(), "ES384": hashes.SHA384()}[alg]))
        r, s = decode_dss_signature(der)
        sig = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return signing_input.decode() + "." + b64url(sig)


def assertion(client_id, aud, key, alg, kid, exp_in=240, jti=None, **extra):
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": aud, "exp": now + exp_in,
              "jti": jti or str(uuid.uuid4()), "iat": now}
    claims.update(extra)
    return sign_jwt(claims, key, alg, kid)


class HttpResult:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        return self.headers.get(name.lower())

    def json(self):
        return json.loads(self.body)


class Http:
    """Keep-alive HTTP(S) client, one connection per thread and origin."""

    def __init__(self, cafile=None, timeout=10.0):
        self.ctx = ssl.create_default_context(cafile=cafile) if cafile else None
        self.timeout = timeout
        self._local = threading.local()

    def _conn(self, scheme, netloc, timeout):
        conns = self._local.__dict__.setdefault("conns", {})
        key = (scheme, netloc)
        c = conns.get(key)
        if c is None:
            host, _, port = netloc.rpartition(":")
            if scheme == "https":
                c = http.client.HTTPSConnection(host, int(port), context=self.ctx, timeout=timeout)
            else:
                c = http.client.HTTPConnection(host, int(port), timeout=timeout)
            conns[key] = c
        c.timeout = timeout
        if c.sock is not None:
            c.sock.settimeout(timeout)
        return c

    def close(self):
        for c in self._local.__dict__.get("conns", {}).values():
            c.close()
        self._local.__dict__["conns"] = {}

    def drop(self, url):
        u = urllib.parse.urlsplit(url)
        c = self._local.__dict__.get("conns", {}).pop((u.scheme, u.netloc), None)
        if c is not None:
            c.close()

    def request(self, method, url, headers=None, body=None, timeout=None):
        u = urllib.parse.urlsplit(url)
        target = u.path + ("?" + u.query if u.query else "")
        c = self._conn(u.scheme, u.netloc, timeout or self.timeout)
        try:
            c.request(method, target, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            if r.will_close:
                self.drop(url)
            return HttpResult(r.status, hdrs, data)
        except Exception:
            self.drop(url)
            raise


class ClientLimiter:
    """Client-side rolling-window limiter (stay under a documented limit).

    acquire() returns a slot; complete(slot) after the answer moves the slot to that moment.
    The server counts a request when it arrives, somewhere between our send and the answer:
    counting from the answer keeps the next window clear of it however the requests' network
    delays differ (counting from the send let a slow request and a fast later one land in one
    server window under load)."""

    def __init__(self, limit, window):
        self.limit, self.window = limit, window
        self.times = collections.deque()
        self.lock = threading.Lock()

    def acquire(self):
        while True:
            with self.lock:
                now = time.monotonic()
                while self.times and self.times[0][0] <= now - self.window:
                    self.times.popleft()
                if len(self.times) < self.limit:
                    slot = [now]
                    self.times.append(slot)
                    return slot
                wait = self.times[0][0] + self.window - now + 0.01
            time.sleep(wait)

    def complete(self, slot):
        with self.lock:
            if slot is not None:
                slot[0] = max(slot[0], time.monotonic())


class TransientError(Exception):
    pass


class LocalStore:
    """What the agent would hold: latest version per Type/id, plus tombstones."""

    def __init__(self):
        self.live = {}        # key -> (vid, resource)
        self.deleted = {}     # key -> vid or None
        self.received = 0

    def upsert(self, res):
        self.received += 1
        key = "%s/%s" % (res["resourceType"], res["id"])
        vid = int(res["meta"]["versionId"])
        cur = self.live.get(key)
        dv = self.deleted.get(key, -1)
        if dv is not None and dv >= vid:
            return
        if cur is None or cur[0] < vid:
            self.live[key] = (vid, res)
            self.deleted.pop(key, None)

    def delete(self, key, vid=None):
        cur = self.live.get(key)
        if vid is not None and cur is not None and cur[0] > vid:
            return
        self.live.pop(key, None)
        self.deleted[key] = vid

    def versions(self):
        return {k: str(v[0]) for k, v in self.live.items()}


class FhirClient:
    def __init__(self, http, base, token_url, client_id, auth, scope="system/*.read",
                 limiter=None, extra_params=None, retries=6):
        self.http = http
        self.base = base
        self.token_url = token_url
        self.client_id = client_id
        self.auth = auth            # ("jwt", key, alg, kid) | ("basic", secret) | ("post", secret)
        self.scope = scope
        self.limiter = limiter
        self.token = None
        self.extra = list(extra_params or [])
        self.retries = retries
        self.events = collections.Counter()

    # -- auth --------------------------------------------------------------------------------
    def token_request(self, scope=None, **overrides):
        form = {"grant_type": "client_credentials", "scope": scope or self.scope}
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        kind = self.auth[0]
        if kind == "jwt":
            _, key, alg, kid = self.auth
            form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            form["client_assertion"] = overrides.pop("assertion", None) or assertion(
                self.client_id, self.token_url, key, alg, kid)
        elif kind == "basic":
            secret = overrides.pop("secret", self.auth[1])
            raw = "%s:%s" % (urllib.parse.quote_plus(self.client_id), urllib.parse.quote_plus(secret))
            headers["Authorization"] = "Basic " + base64.b64encode(raw.encode()).decode()
        else:
            form["client_id"] = self.client_id
            form["client_secret"] = overrides.pop("secret", self.auth[1])
        form.update(overrides)
        return self.http.request("POST", self.token_url, headers, urllib.parse.urlencode(form).encode())

    def authenticate(self):
        for attempt in range(self.retries):
            r = self.token_request()
            if r.status == 200:
                self.token = r.json()["access_token"]
                self.events["token"] += 1
                return r.json()
            if r.status == 429 or r.status >= 500:
                time.sleep(float(r.header("retry-after") or 1))
                continue
            raise AssertionError("token request failed: %d %s" % (r.status, r.body[:300]))
        raise AssertionError("token request kept failing")

    # -- requests ----------------------------------------------------------------------------
    def raw(self, method, url, headers=None, timeout=None):
        if self.token is None:
            self.authenticate()
        h = {"Accept": "application/fhir+json", "Authorization": "Bearer " + self.token}
        h.update(headers or {})
        slot = self.limiter.acquire() if self.limiter else None
        try:
            return self.http.request(method, url, h, timeout=timeout)
        finally:
            if slot is not None:
                self.limiter.complete(slot)

    def get(self, url, headers=None, want_json=True, ok=(200,), timeout=None):
        """GET with retries: 401 -> re-auth, 429 -> Retry-After, 5xx/broken bodies -> backoff."""
        last = None
        for attempt in range(self.retries):
            try:
                r = self.raw("GET", url, headers, timeout=timeout)
            except (OSError, http.client.HTTPException) as exc:
                self.events["transport_error"] += 1
                last = exc
                time.sleep(0.05 * (attempt + 1))
                continue
            if r.status == 401:
                self.events["reauth"] += 1
                self.token = None
                continue
            if r.status == 429:
                self.events["throttled"] += 1
                ra = r.header("retry-after")
                time.sleep(_retry_after_seconds(ra) if ra else 1.0)
                continue
            if r.status >= 500:
                self.events["server_error"] += 1
                time.sleep(_retry_after_seconds(r.header("retry-after")) if r.header("retry-after") else 0.05 * (attempt + 1))
                continue
            if r.status not in ok:
                return r
            if want_json:
                try:
                    r.data = json.loads(r.body)
                except ValueError as exc:
                    self.events["bad_json"] += 1
                    last = exc
                    continue
            return r
        raise TransientError("giving up on %s: %r" % (url, last))

    def url(self, path, params=()):
        q = list(params) + self.extra
        return self.base + path + ("?" + urllib.parse.urlencode(q) if q else "")

    # -- search ------------------------------------------------------------------------------
    def search_all(self, rtype, params=(), store=None, max_pages=100000):
        url = self.url("/" + rtype, params)
        pages, first_meta = 0, None
        out = []
        while url and pages < max_pages:
            r = self.get(url)
            if r.status != 200:
                raise AssertionError("search %s -> %d %s" % (url, r.status, r.body[:300]))
            b = r.data
            if first_meta is None:
                first_meta = b["meta"]["lastUpdated"]
            for e in b.get("entry", []):
                out.append(e["resource"])
                if store is not None:
                    store.upsert(e["resource"])
            url = next((l["url"] for l in b.get("link", []) if l["relation"] == "next"), None)
            pages += 1
        return out, first_meta, pages

    def history_all(self, rtype, since, store):
        path = "/%s/_history" % rtype if rtype else "/_history"
        url = self.url(path, [("_since", since)] if since else [])
        first_meta = None
        n = 0
        while url:
            r = self.get(url)
            if r.status != 200:
                raise AssertionError("history %s -> %d %s" % (url, r.status, r.body[:300]))
            b = r.data
            if first_meta is None:
                first_meta = b["meta"]["lastUpdated"]
            for e in b.get("entry", []):
                n += 1
                if e["request"]["method"] == "DELETE":
                    etag = e.get("response", {}).get("etag", "")
                    vid = int(etag.split('"')[1]) if '"' in etag else None
                    store.delete(e["request"]["url"], vid)
                else:
                    store.upsert(e["resource"])
            url = next((l["url"] for l in b.get("link", []) if l["relation"] == "next"), None)
        return first_meta, n

    # -- bulk --------------------------------------------------------------------------------
    def bulk_kickoff(self, path, params=()):
        url = self.url(path, params)
        for _ in range(self.retries):
            r = self.raw("GET", url, {"Prefer": "respond-async"})
            if r.status == 401:
                self.token = None
                continue
            if r.status == 429 and "already in progress" not in r.body.decode(errors="replace"):
                time.sleep(_retry_after_seconds(r.header("retry-after")) if r.header("retry-after") else 1)
                continue
            if r.status >= 500:
                time.sleep(0.1)
                continue
            return r
        raise TransientError("kick-off keeps failing")

    def bulk_wait(self, status_url, first_wait=0.0, poll=0.1, deadline_s=60):
        time.sleep(first_wait)
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            try:
                r = self.raw("GET", status_url)
            except (OSError, http.client.HTTPException):
                time.sleep(poll)
                continue
            if r.status == 200:
                return json.loads(r.body)
            if r.status == 401:
                self.token = None
                continue
            if r.status in (202, 429):
                ra = r.header("retry-after")
                time.sleep(_retry_after_seconds(ra) if ra else poll)
                continue
            if r.status >= 500 and b"failed" not in r.body:
                time.sleep(poll)
                continue
            raise AssertionError("bulk status %d %s" % (r.status, r.body[:300]))
        raise AssertionError("bulk export did not finish")

    def bulk_download(self, manifest, store):
        counts = collections.Counter()
        for item in manifest.get("output", []):
            for _ in range(self.retries):
                r = self.get(item["url"], headers={"Accept": "application/fhir+ndjson"}, want_json=False)
                try:
                    lines = [json.loads(l) for l in r.body.split(b"\n") if l.strip()]
                except ValueError:
                    self.events["bad_ndjson"] += 1
                    continue
                break
            else:
                raise TransientError("download keeps failing")
            assert len(lines) == item["count"], (item, len(lines))
            for res in lines:
                assert res["resourceType"] == item["type"]
                store.upsert(res)
                counts[item["type"]] += 1
        for item in manifest.get("deleted", []):
            r = self.get(item["url"], headers={"Accept": "application/fhir+ndjson"}, want_json=False)
            for line in r.body.split(b"\n"):
                if line.strip():
                    b = json.loads(line)
                    assert b["resourceType"] == "Bundle" and b["type"] == "transaction"
                    for e in b["entry"]:
                        assert e["request"]["method"] == "DELETE"
                        store.delete(e["request"]["url"])
                        counts["deleted"] += 1
        return counts

    def bulk_export(self, path, params=(), store=None, first_wait=0.0):
        r = self.bulk_kickoff(path, params)
        if r.status != 202:
            raise AssertionError("kick-off %d %s" % (r.status, r.body[:300]))
        status_url = r.header("content-location")
        ra = r.header("retry-after")
        manifest = self.bulk_wait(status_url, first_wait=float(ra) if ra else first_wait)
        counts = self.bulk_download(manifest, store if store is not None else LocalStore())
        self.raw("DELETE", status_url)
        return manifest, counts


def _retry_after_seconds(value):
    if value is None:
        return 1.0
    try:
        return max(0.0, float(value))
    except ValueError:
        import email.utils
        when = email.utils.parsedate_to_datetime(value).timestamp()
        return max(0.0, when - time.time())
