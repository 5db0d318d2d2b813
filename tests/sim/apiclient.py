"""Reference clients for the vendor-specific (non-FHIR) API simulators, used by selftest_api.py.

They are small but do what the C++ client must do per vendor (README "Vendor APIs"): the
vendor's auth (incl. DrChrono refresh-token rotation, Unity token re-acquisition, NextGen
session header), the vendor's paging, watermarks taken from the SERVER's clock, de-duplication
by native key + last-modified, tombstones, whole-list replacement (Unity) and full re-list
reconciliation (Kareo, NextGen: deletions are not signalled).

A `NativeStore` holds what the agent would hold: native key ("patients/123") -> record.
"""

import base64
import calendar
import email.utils
import http.client
import json
import time
import urllib.parse
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from simclient import ClientLimiter, Http, TransientError  # noqa: F401  (re-exported for tests)


def local_fmt(ms, offset_min, pattern):
    return time.strftime(pattern, time.gmtime((ms + offset_min * 60_000) // 1000))


def parse_local(text, offset_min, patterns):
    for p in patterns:
        try:
            return calendar.timegm(time.strptime(text, p)) * 1000 - offset_min * 60_000
        except ValueError:
            continue
    raise ValueError("unparsable time %r" % text)


def date_header_ms(resp):
    d = resp.header("date")
    return int(email.utils.parsedate_to_datetime(d).timestamp() * 1000) if d else None


class NativeStore:
    """key -> {"rec", "ts"}; newer last-modified wins, equal last-modified: the later delivery wins
    (two changes within one second share a second-precision timestamp)."""

    def __init__(self, ts_field=None, ts_parse=None):
        self.live = {}
        self.deleted = set()
        self.ts_field = ts_field
        self.ts_parse = ts_parse
        self.received = 0

    def upsert(self, key, rec):
        self.received += 1
        cur = self.live.get(key)
        ts = rec.get(self.ts_field) if self.ts_field else None
        if cur is not None and ts is not None and cur["rec"].get(self.ts_field) is not None:
            if self.ts_parse(ts) < self.ts_parse(cur["rec"][self.ts_field]):
                return False
        self.live[key] = {"rec": rec}
        self.deleted.discard(key)
        return True

    def delete(self, key):
        self.live.pop(key, None)
        self.deleted.add(key)

    def replace(self, keys_in_scope, records):
        """Whole-list semantics: `records` (key -> rec) is the complete content of a scope whose
        current keys are `keys_in_scope`; everything else in the scope is gone."""
        for k in set(keys_in_scope) - set(records):
            self.delete(k)
        for k, r in records.items():
            self.upsert(k, r)

    def keys_where(self, prefix, pred=lambda r: True):
        return [k for k, v in self.live.items() if k.startswith(prefix) and pred(v["rec"])]


def digest(record):
    import hashlib
    raw = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha1(raw.encode("utf-8")).hexdigest()[:16]


def compare(store, expected, strict_vanished=True):
    """-> list of problems (empty = the store matches /_sim/expected?digest=1)."""
    probs = []
    want = expected["resources"]
    got = store.live
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want) - (set() if strict_vanished else set(expected.get("vanished", {}))))
    if missing:
        probs.append("%d missing, e.g. %s" % (len(missing), missing[:4]))
    if extra:
        probs.append("%d extra, e.g. %s" % (len(extra), extra[:4]))
    stale = []
    for k in set(want) & set(got):
        w, rec = want[k], got[k]["rec"]
        if "digest" in w and digest(rec) != w["digest"]:
            stale.append(k)
    if stale:
        probs.append("%d stale, e.g. %s" % (len(stale), [(k, got[k]["rec"], want[k]) for k in sorted(stale)[:2]]))
    live_deleted = sorted(set(expected.get("deleted", {})) & set(got))
    if live_deleted:
        probs.append("deleted but held: %s" % live_deleted[:4])
    return probs


class RetryingHttp:
    """Transport retries shared by the clients: connection errors, 5xx, broken bodies."""

    def __init__(self, http, limiters=(), retries=6):
        self.http = http
        self.limiters = list(limiters)
        self.retries = retries
        self.events = {}
        self.last_date_ms = None
        self.run_start = None       # server Date of the first response since the last start_run()

    def start_run(self):
        self.run_start = None

    def ev(self, name):
        self.events[name] = self.events.get(name, 0) + 1

    def send(self, method, url, headers=None, body=None, timeout=None):
        slots = [(lim, lim.acquire()) for lim in self.limiters]
        try:
            r = self.http.request(method, url, headers or {}, body, timeout=timeout)
        finally:
            for lim, slot in slots:
                lim.complete(slot)
        d = date_header_ms(r)
        if d:
            self.last_date_ms = d
            if self.run_start is None:
                self.run_start = d
        return r

    def call(self, method, url, headers=None, body=None, parse=None, on_401=None, timeout=None):
        """Send with retries; parse(resp) may raise ValueError for a broken body (retried).
        Returns (resp, parsed)."""
        last = None
        for attempt in range(self.retries):
            try:
                r = self.send(method, url, headers() if callable(headers) else headers, body, timeout)
            except (OSError, http.client.HTTPException) as exc:
                self.ev("transport_error")
                last = exc
                time.sleep(0.05 * (attempt + 1))
                continue
            if r.status == 401 and on_401 is not None:
                self.ev("reauth")
                on_401()
                continue
            if r.status == 429:
                self.ev("throttled")
                ra = r.header("retry-after")
                time.sleep(float(ra) if ra and ra.isdigit() else 1.0)
                continue
            if r.status >= 500:
                self.ev("server_error")
                time.sleep(0.05 * (attempt + 1))
                continue
            if parse is None:
                return r, None
            try:
                return r, parse(r)
            except ValueError as exc:
                self.ev("bad_body")
                last = exc
                continue
        raise TransientError("giving up on %s %s: %r" % (method, url, last))


# ---------------------------------------------------------------------------------------------
# DrChrono
# ---------------------------------------------------------------------------------------------

class DrChronoClient:
    COLLECTIONS = ["patients", "appointments", "line_items", "problems", "medications",
                   "patient_vaccine_records", "doctors", "offices", "inventory_vaccines"]

    def __init__(self, http, info, client_id, secret, refresh_token, offset_min=0, limiters=(), persist=None):
        self.rh = RetryingHttp(http, limiters)
        self.base = info["base"]
        self.token_url = info["token"]
        self.client_id, self.secret = client_id, secret
        self.refresh_token = refresh_token
        self.access = None
        self.offset = offset_min
        self.persist = persist          # called with the new refresh token BEFORE it is used
        self.watermark = None

    def token_request(self, form):
        body = urllib.parse.urlencode(dict(form, client_id=self.client_id, client_secret=self.secret)).encode()
        return self.rh.http.request("POST", self.token_url, {"Content-Type": "application/x-www-form-urlencoded"}, body)

    def refresh(self):
        """Refresh with retries on 5xx / transport errors. If the server rotated the token but the
        answer was lost, the retry gets invalid_grant: only a grace period (or a new consent) helps."""
        for attempt in range(5):
            try:
                r = self.token_request({"grant_type": "refresh_token", "refresh_token": self.refresh_token})
                tok = json.loads(r.body) if r.status == 200 else None
            except (OSError, http.client.HTTPException, ValueError):
                self.rh.ev("token_transport_error")
                time.sleep(0.05)
                continue
            if r.status >= 500:
                self.rh.ev("token_server_error")
                time.sleep(0.05)
                continue
            break
        else:
            raise TransientError("refresh keeps failing")
        if r.status != 200:
            raise AssertionError("refresh failed: %d %s" % (r.status, r.body[:200]))
        self.refresh_token = tok["refresh_token"]
        if self.persist:
            self.persist(self.refresh_token)
        self.access = tok["access_token"]
        return tok

    def _headers(self):
        if self.access is None:
            self.refresh()
        return {"Authorization": "Bearer " + self.access, "Accept": "application/json"}

    def _on_401(self):
        self.access = None

    def get(self, url):
        return self.rh.call("GET", url, self._headers, parse=lambda r: json.loads(r.body), on_401=self._on_401)

    def list_all(self, name, params=()):
        url = self.base + "/" + name + ("?" + urllib.parse.urlencode(list(params)) if params else "")
        out, pages = [], 0
        while url:
            r, data = self.get(url)
            if r.status != 200:
                raise AssertionError("%s -> %d %s" % (url, r.status, r.body[:200]))
            out += data.get("results", data.get("data", []))
            url = data.get("next")
            pages += 1
        return out, pages

    def sync(self, store, page_size=50):
        """Full sync when no watermark, else `since` = watermark. The next watermark is the
        server's Date at the start of this run (local time, whole seconds): every change
        committed after that has updated_at >= it (since is inclusive)."""
        self.rh.start_run()
        for name in self.COLLECTIONS:
            params = [("page_size", str(page_size))]
            if self.watermark:
                params.append(("since", self.watermark))
            elif name == "appointments":
                params.append(("since", "1900-01-01"))
            recs, _ = self.list_all(name, params)
            for rec in recs:
                key = "%s/%s" % (name, rec["id"])
                if rec.get("deleted_flag") is True or rec.get("archived") is True:
                    store.delete(key)
                else:
                    store.upsert(key, rec)
        self.watermark = local_fmt(self.rh.run_start - 1000, self.offset, "%Y-%m-%dT%H:%M:%S")


# ---------------------------------------------------------------------------------------------
# athenahealth v1
# ---------------------------------------------------------------------------------------------

class AthenaClient:
    FEEDS = {"patients": ("patients", "patients", "patientid"),
             "appointments": ("appointments", "appointments", "appointmentid"),
             "providers": ("providers", "providers", "providerid"),
             "prescriptions": ("prescriptions", "prescriptions", "documentid"),
             "chart/healthhistory/problems": ("problems", "problems", "problemid"),
             "claims": ("claims", "claims", "claimid")}

    def __init__(self, http, info, client_id, secret, offset_min=0, limiters=()):
        self.rh = RetryingHttp(http, limiters)
        self.base = info["base"]
        self.origin = self.base[:self.base.index("/v1/")]
        self.token_url = info["token"]
        self.client_id, self.secret = client_id, secret
        self.token = None
        self.offset = offset_min

    def token_request(self, secret=None, scope="athena/service/Athenanet.MDP.*"):
        raw = "%s:%s" % (self.client_id, self.secret if secret is None else secret)
        return self.rh.http.request("POST", self.token_url,
                                    {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode(),
                                     "Content-Type": "application/x-www-form-urlencoded"},
                                    urllib.parse.urlencode({"grant_type": "client_credentials", "scope": scope}).encode())

    def authenticate(self):
        raw = "%s:%s" % (self.client_id, self.secret)
        r, tok = self.rh.call("POST", self.token_url,
                              {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode(),
                               "Content-Type": "application/x-www-form-urlencoded"},
                              b"grant_type=client_credentials&scope=athena%2Fservice%2FAthenanet.MDP.%2A",
                              parse=lambda r: json.loads(r.body))
        if r.status != 200:
            raise AssertionError("token: %d %s" % (r.status, r.body[:200]))
        self.token = tok["access_token"]

    def _headers(self):
        if self.token is None:
            self.authenticate()
        return {"Authorization": "Bearer " + self.token}

    def _on_401(self):
        self.token = None

    def call(self, method, path, params=(), form=None):
        url = (self.origin + path if path.startswith("/v1/") else self.base + path)
        if params:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(list(params))
        body = urllib.parse.urlencode(form).encode() if form else None

        def headers():
            h = self._headers()
            if body is not None:
                h["Content-Type"] = "application/x-www-form-urlencoded"
            return h
        return self.rh.call(method, url, headers, body, parse=lambda r: json.loads(r.body), on_401=self._on_401)

    def list_all(self, path, key, params=(), limit=50):
        out, url, pages = [], path, 0
        params = list(params) + [("limit", str(limit))]
        while url:
            r, data = self.call("GET", url, params)
            if r.status != 200:
                raise AssertionError("%s -> %d %s" % (url, r.status, r.body[:200]))
            out += data[key]
            url = data.get("next")
            params = ()      # `next` carries the query
            pages += 1
        return out, pages

    def subscribe_all(self):
        for feed in self.FEEDS:
            r, data = self.call("POST", "/%s/changed/subscription" % feed)
            assert r.status == 200, (feed, r.status, r.body)

    def full_sync(self, store, limit=50):
        """Subscribe FIRST, then list everything: changes made while listing are queued in the
        feeds and applied by the next drain (nothing falls between the two)."""
        self.subscribe_all()
        for path, key in (("/patients", "patients"), ("/claims", "claims"), ("/providers", "providers"),
                          ("/departments", "departments")):
            for rec in self.list_all(path, key, limit=limit)[0]:
                store.upsert("%s/%s" % (key, rec[{"patients": "patientid", "claims": "claimid", "providers": "providerid",
                                                   "departments": "departmentid"}[key]]), rec)
        for rec in self.list_all("/appointments/booked", "appointments",
                                 [("startdate", "01/01/1900"), ("enddate", "12/31/2100")], limit=limit)[0]:
            store.upsert("appointments/%s" % rec["appointmentid"], rec)
        for k in store.keys_where("patients/"):
            pid = k.split("/")[1]
            for what, coll, idf in (("problems", "problems", "problemid"), ("medications", "prescriptions", "documentid")):
                r, data = self.call("GET", "/chart/%s/%s" % (pid, what))
                for rec in data[what]:
                    store.upsert("%s/%s" % (coll, rec[idf]), rec)
        self.reconcile_departments(store)

    def reconcile_departments(self, store):
        recs, _ = self.list_all("/departments", "departments")
        store.replace(store.keys_where("departments/"), {"departments/%s" % r["departmentid"]: r for r in recs})

    def drain(self, store, limit=50, feeds=None):
        """Consume every changed feed until a short page. Each page is applied before the next
        consuming read. A read that failed (transport error, truncated or broken body, 5xx) may
        have been consumed by the server anyway: replay showprocessedstartdatetime = server time
        (Date header) of the last good response before it, minus 2 s, once the feed is drained."""
        n = 0
        for feed in feeds or self.FEEDS:
            coll, key, idf = self.FEEDS[feed]
            url = self.base + "/%s/changed?limit=%d" % (feed, limit)
            lost_since, failures = None, 0
            while True:
                before = self.rh.last_date_ms or 0
                try:
                    r = self.rh.send("GET", url, self._headers())
                    data = json.loads(r.body) if r.status == 200 else None
                except (OSError, http.client.HTTPException, ValueError):
                    r, data = None, None
                if r is not None and r.status == 401:
                    self.token = None
                    continue
                if r is not None and r.status == 429:
                    ra = r.header("retry-after")
                    time.sleep(float(ra) if ra and ra.isdigit() else 1.0)
                    continue
                if data is None:
                    if r is not None and r.status < 500:
                        raise AssertionError("%s -> %d %s" % (feed, r.status, r.body[:200]))
                    failures += 1
                    if failures > 8:
                        raise TransientError("changed feed %s keeps failing" % feed)
                    self.rh.ev("lost_consuming_read")
                    lost_since = before if lost_since is None else min(lost_since, before)
                    time.sleep(0.05)
                    continue
                recs = data[key]
                for rec in recs:
                    if rec.get("deleted") == "true":
                        store.delete("%s/%s" % (coll, rec[idf]))
                    else:
                        store.upsert("%s/%s" % (coll, rec[idf]), rec)
                n += len(recs)
                if len(recs) < limit:
                    break
            if lost_since is not None:
                n += self.replay(store, feed, lost_since - 2000)
        self.reconcile_departments(store)
        return n

    def replay(self, store, feed, start_ms):
        coll, key, idf = self.FEEDS[feed]
        start = local_fmt(start_ms, self.offset, "%m/%d/%Y %H:%M:%S")
        recs, _ = self.list_all("/%s/changed" % feed, key, [("showprocessedstartdatetime", start)])
        for rec in recs:
            if rec.get("deleted") == "true":
                store.delete("%s/%s" % (coll, rec[idf]))
            else:
                store.upsert("%s/%s" % (coll, rec[idf]), rec)
        return len(recs)


# ---------------------------------------------------------------------------------------------
# Kareo SOAP
# ---------------------------------------------------------------------------------------------

KNS = "http://www.kareo.com/api/schemas/"
SNS = "http://schemas.xmlsoap.org/soap/envelope/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


class InBandError(Exception):
    pass


class SecurityError(Exception):
    pass


class KareoClient:
    LISTS = {"GetAppointments": ("Appointments", "AppointmentData"), "GetCharges": ("Charges", "ChargeData"),
             "GetPayments": ("Payments", "PaymentData"), "GetProviders": ("Providers", "ProviderData"),
             "GetServiceLocations": ("ServiceLocations", "ServiceLocationData")}

    def __init__(self, http, info, customer_key, user, password, offset_min=0, limiters=()):
        self.rh = RetryingHttp(http, limiters)
        self.url = info["soap"]
        self.key, self.user, self.password = customer_key, user, password
        self.offset = offset_min
        self.watermark = None

    @staticmethod
    def envelope(op, header, fields=None, filt=None):
        def els(d):
            return "".join("<sch:%s>%s</sch:%s>" % (k, escape(str(v)), k) for k, v in d.items())
        parts = ["<sch:RequestHeader>%s</sch:RequestHeader>" % els(header)]
        if fields is not None:
            parts.append("<sch:Fields>%s</sch:Fields>" % els({f: "true" for f in fields}))
        if filt:
            parts.append("<sch:Filter>%s</sch:Filter>" % els(filt))
        return ('<soapenv:Envelope xmlns:soapenv="%s" xmlns:sch="%s"><soapenv:Header/><soapenv:Body>'
                "<sch:%s><sch:request>%s</sch:request></sch:%s></soapenv:Body></soapenv:Envelope>"
                % (SNS, KNS, op, "".join(parts), op)).encode("utf-8")

    def raw(self, op, filt=None, fields=None, header=None, action=None):
        hdr = header or {"ClientVersion": "pmssim-ref", "CustomerKey": self.key, "Password": self.password, "User": self.user}
        return self.rh.send("POST", self.url, {"Content-Type": "text/xml; charset=utf-8",
                                               "SOAPAction": '"%sKareoServices/%s"' % (KNS, action or op)},
                            self.envelope(op, hdr, fields, filt))

    @staticmethod
    def parse_result(op, body):
        """-> result element; raises ValueError for non-XML, InBandError / SecurityError in-band."""
        try:
            root = ET.fromstring(body)
        except ET.ParseError as exc:
            raise ValueError("broken XML: %s" % exc) from None
        res = root.find("{%s}Body/{%s}%sResponse/{%s}%sResult" % (SNS, KNS, op, KNS, op))
        if res is None:
            raise ValueError("no %sResult in the response" % op)
        if res.findtext("{%s}ErrorResponse/{%s}IsError" % (KNS, KNS)) == "true":
            raise InBandError(res.findtext("{%s}ErrorResponse/{%s}ErrorMessage" % (KNS, KNS)))
        if res.findtext("{%s}SecurityResponse/{%s}SecurityResultSuccess" % (KNS, KNS)) != "true":
            raise SecurityError(res.findtext("{%s}SecurityResponse/{%s}SecurityResult" % (KNS, KNS)))
        return res

    @staticmethod
    def records(res, list_el, rec_el):
        out = []
        for el in res.findall("{%s}%s/{%s}%s" % (KNS, list_el, KNS, rec_el)):
            rec = {}
            for c in el:
                if c.get("{%s}nil" % XSI) == "true":
                    continue
                rec[c.tag[len(KNS) + 2:]] = c.text or ""
            out.append(rec)
        return out

    def call(self, op, filt=None, fields=None):
        for attempt in range(8):
            r, _ = self.rh.call("POST", self.url, {"Content-Type": "text/xml; charset=utf-8",
                                                   "SOAPAction": '"%sKareoServices/%s"' % (KNS, op)},
                                self.envelope(op, {"ClientVersion": "pmssim-ref", "CustomerKey": self.key,
                                                   "Password": self.password, "User": self.user}, fields, filt),
                                parse=lambda r: None)
            if r.status != 200:
                raise AssertionError("%s -> HTTP %d %s" % (op, r.status, r.body[:300]))
            try:
                return self.parse_result(op, r.body)
            except ValueError:
                self.rh.ev("bad_body")
                continue
            except InBandError as exc:
                if "throttl" in str(exc).lower():
                    self.rh.ev("throttled_inband")
                    time.sleep(1.0)
                    continue
                raise
        raise TransientError("%s keeps failing" % op)

    def all_patients(self, batch=100):
        out, key, calls = [], None, 0
        while True:
            filt = {"BatchSize": str(batch)}
            if key is not None:
                filt["StartKey"] = key
            res = self.call("GetAllPatients", filt)
            out += self.records(res, "Patients", "PatientData")
            calls += 1
            k = res.find("{%s}Key" % KNS)
            if k is None or k.get("{%s}nil" % XSI) == "true" or not k.text:
                return out, calls
            key = k.text

    def kdate(self, ms):
        return time.strftime("%m/%d/%Y %I:%M:%S %p", time.gmtime((ms + self.offset * 60_000) // 1000))

    def sync(self, store, batch=100, reconcile=False):
        """Full (or reconciling) sync: GetAllPatients batches + complete lists, replacing the store's
        content of each list (deletions are not signalled, so only a complete list shows them).
        Incremental: FromLastModifiedDate = previous run's start (server Date, local, minus 1 s)."""
        self.rh.start_run()
        full = reconcile or self.watermark is None
        filt = None if full else {"FromLastModifiedDate": self.watermark}
        if full:
            pats, _ = self.all_patients(batch)
            store.replace(store.keys_where("Patients/"), {"Patients/%s" % p["ID"]: p for p in pats})
        else:
            res = self.call("GetPatients", filt)
            for p in self.records(res, "Patients", "PatientData"):
                store.upsert("Patients/%s" % p["ID"], p)
        for op, (list_el, rec_el) in self.LISTS.items():
            recs = self.records(self.call(op, filt), list_el, rec_el)
            got = {"%s/%s" % (list_el, r["ID"]): r for r in recs}
            if full:
                store.replace(store.keys_where(list_el + "/"), got)
            else:
                for k, r in got.items():
                    store.upsert(k, r)
        self.watermark = self.kdate(self.rh.run_start - 1000)


# ---------------------------------------------------------------------------------------------
# NextGen Enterprise
# ---------------------------------------------------------------------------------------------

class NextGenClient:
    TOP = ["persons", "appointments", "master/providers", "master/locations"]
    CHART = ["chart/encounters", "chart/problems", "chart/medications", "chart/allergies", "charges"]
    ID = {"persons": "personId", "appointments": "appointmentId", "providers": "providerId", "locations": "locationId",
          "encounters": "encounterId", "problems": "problemId", "medications": "medicationId",
          "allergies": "allergyId", "charges": "chargeId"}

    def __init__(self, http, info, client_id, secret, site_id, enterprise_id, practice_id, offset_min=0, limiters=()):
        self.rh = RetryingHttp(http, limiters)
        self.base, self.token_url = info["base"], info["token"]
        self.client_id, self.secret, self.site_id = client_id, secret, site_id
        self.pair = {"enterpriseId": enterprise_id, "practiceId": practice_id}
        self.token = self.session = None
        self.offset = offset_min
        self.watermark = None

    def token_request(self, **over):
        form = dict({"grant_type": "client_credentials", "client_id": self.client_id,
                     "client_secret": self.secret, "site_id": self.site_id}, **over)
        return self.rh.http.request("POST", self.token_url, {"Content-Type": "application/x-www-form-urlencoded"},
                                    urllib.parse.urlencode(form).encode())

    def authenticate(self):
        form = {"grant_type": "client_credentials", "client_id": self.client_id,
                "client_secret": self.secret, "site_id": self.site_id}
        r, tok = self.rh.call("POST", self.token_url, {"Content-Type": "application/x-www-form-urlencoded"},
                              urllib.parse.urlencode(form).encode(), parse=lambda r: json.loads(r.body))
        if r.status != 200:
            raise AssertionError("token %d %s" % (r.status, r.body[:200]))
        self.token = tok["access_token"]
        if self.session is None:       # the session id never expires: fetch it once, keep it
            r, _ = self.rh.call("PUT", self.base + "/users/me/login-defaults",
                                {"Authorization": "Bearer " + self.token, "Content-Type": "application/json"},
                                json.dumps(self.pair).encode())
            assert r.status == 200, (r.status, r.body)
            self.session = r.header("x-ng-sessionid")

    def _headers(self):
        if self.token is None:
            self.authenticate()
        return {"Authorization": "Bearer " + self.token, "X-NG-SessionId": self.session}

    def _on_401(self):
        self.token = None

    def list_all(self, path, filt=None, top=25, orderby=None):
        out, skip = [], 0
        while True:
            q = [("$top", str(top)), ("$skip", str(skip))]
            if filt:
                q.append(("$filter", filt))
            if orderby:
                q.append(("$orderby", orderby))
            r, data = self.rh.call("GET", self.base + "/" + path + "?" + urllib.parse.urlencode(q), self._headers,
                                   parse=lambda r: json.loads(r.body), on_401=self._on_401)
            if r.status != 200:
                raise AssertionError("%s -> %d %s" % (path, r.status, r.body[:200]))
            out += data["items"]
            if len(data["items"]) < top:
                return out
            skip += top

    def sync(self, store, top=25, reconcile=False):
        """Full/reconciling: complete lists replace the store (deletions are not signalled);
        incremental: $filter=modifyTimestamp ge datetime'<wm>' (wm = previous run start, server
        Date in local time, minus 1 s), including a fan-out over every person's chart."""
        full = reconcile or self.watermark is None
        filt = ("modifyTimestamp ge datetime'1900-01-01T00:00:00'" if full
                else "modifyTimestamp ge datetime'%s'" % self.watermark)
        self.rh.start_run()
        for path in self.TOP:
            recs = self.list_all(path, filt, top)
            name = path.split("/")[-1]
            got = {"%s/%s" % (name, r[self.ID[name]]): r for r in recs}
            if full:
                store.replace(store.keys_where(name + "/"), got)
            else:
                for k, r in got.items():
                    store.upsert(k, r)
        persons = [k.split("/")[1] for k in store.keys_where("persons/")]
        for pid in persons:
            for sub in self.CHART:
                name = sub.split("/")[-1]
                recs = self.list_all("persons/%s/%s" % (pid, sub), filt, top)
                got = {"%s/%s" % (name, r[self.ID[name]]): r for r in recs}
                if full:
                    store.replace(store.keys_where(name + "/", lambda r: r.get("personId") == pid), got)
                else:
                    for k, r in got.items():
                        store.upsert(k, r)
        if full:   # charts of persons that disappeared
            for name in ("encounters", "problems", "medications", "allergies", "charges"):
                for k in store.keys_where(name + "/", lambda r: r.get("personId") not in persons):
                    store.delete(k)
        self.watermark = local_fmt(self.rh.run_start - 1000, self.offset, "%Y-%m-%dT%H:%M:%S")


# ---------------------------------------------------------------------------------------------
# Allscripts Unity
# ---------------------------------------------------------------------------------------------

class UnityError(Exception):
    pass


class UnityClient:
    KEYS = ["Action", "AppUserID", "Appname", "PatientID", "Token", "Parameter1", "Parameter2", "Parameter3",
            "Parameter4", "Parameter5", "Parameter6", "Data"]
    PER_PATIENT = [("appointments", "GetSchedule", "ID", {"Parameter1": "1/1/1900", "Parameter2": "12/31/2100"}),
                   ("encounters", "GetEncounterList", "ID", {}), ("problems", "GetPatientProblems", "ID", {}),
                   ("medications", "GetMedicationByTransID", "TransID", {"Parameter1": "0"}),
                   ("charges", "GetCharges", "ChargeID", {})]

    def __init__(self, http, info, user, password, appname, app_user, limiters=()):
        self.rh = RetryingHttp(http, limiters)
        self.base = info["base"]
        self.user, self.password, self.appname, self.app_user = user, password, appname, app_user
        self.token = None
        self.since = None

    def get_token(self, password=None, appname=None):
        body = json.dumps({"Username": self.user, "Password": self.password if password is None else password,
                           "Appname": appname or self.appname}).encode()
        r, _ = self.rh.call("POST", self.base + "/GetToken", {"Content-Type": "application/json"}, body)
        return r.body.decode()

    def authenticate(self):
        t = self.get_token()
        if "error:" in t:
            raise AssertionError(t)
        self.token = t

    def magic_raw(self, action, patient="", **params):
        body = {k: "" for k in self.KEYS}
        body.update(Action=action, AppUserID=self.app_user, Appname=self.appname, PatientID=patient,
                    Token=self.token or "")
        body.update(params)
        return self.rh.call("POST", self.base + "/MagicJson", {"Content-Type": "application/json"},
                            json.dumps(body).encode(), parse=lambda r: json.loads(r.body))

    def magic(self, action, patient="", **params):
        """-> rows; re-acquires the token on token errors, waits on in-band throttling."""
        for attempt in range(8):
            if self.token is None:
                self.authenticate()
            r, data = self.magic_raw(action, patient, **params)
            if r.status != 200:
                raise AssertionError("%s -> HTTP %d" % (action, r.status))
            err = data[0].get("Error") if data and isinstance(data[0], dict) else None
            if err is None:
                return data[0][action.lower() + "info"]
            low = err.lower()
            if "token" in low or "inactivity" in low:
                self.rh.ev("reauth")
                self.token = None
                continue
            if "too many requests" in low:
                self.rh.ev("throttled_inband")
                time.sleep(1.0)
                continue
            raise UnityError(err)
        raise TransientError("%s keeps failing" % action)

    def sync(self, store):
        """GetServerInfo first (its ServerTime is the next `since`: server clock, local time), then
        GetChangedPatients(since) and a complete refresh of each changed patient; providers: the
        complete list every run."""
        server_time = self.magic("GetServerInfo")[0]["ServerTime"]
        changed = [row["patientid"] for row in self.magic("GetChangedPatients", Parameter1=self.since or "1/1/1900")]
        for pid in changed:
            rows = self.magic("GetPatient", pid)
            if not rows:
                for name, _, _, _ in self.PER_PATIENT + [("patients", None, None, None)]:
                    for k in store.keys_where(name + "/", lambda r: r.get("PatientID", r.get("patientID", r.get("ID"))) == pid):
                        store.delete(k)
                continue
            store.upsert("patients/%s" % pid, rows[0])
            for name, action, idf, params in self.PER_PATIENT:
                got = {"%s/%s" % (name, r[idf]): r for r in self.magic(action, pid, **params)}
                scope = store.keys_where(name + "/", lambda r: r.get("PatientID", r.get("patientID")) == pid)
                store.replace(scope, got)
        provs = self.magic("GetProviders")
        store.replace(store.keys_where("providers/"), {"providers/%s" % r["personid"]: r for r in provs})
        self.since = server_time
        return changed

