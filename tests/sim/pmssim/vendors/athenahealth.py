"""athenahealth athenaOne v1 REST API.  pms-interfaces.md section 4 (the FHIR API is the
separate vendor `athenahealth-fhir`).

Auth: POST /oauth2/v1/token, HTTP Basic client_id:client_secret, form
  grant_type=client_credentials&scope=athena/service/Athenanet.MDP.* -> {"access_token",
  "token_type": "Bearer", "expires_in": "3600" (a string), "scope"}; OAuth errors
  {"error", "error_description"}; token endpoint limited to 50 requests/min [U].
API: /v1/{practiceid}/...  lists {"<plural>": [...], "totalcount": N, "next": "/v1/...?...&offset=&limit=",
  "previous": ...} with limit (default 1500, max 5000 [U]) / offset; single reads return a
  one-element array; errors {"error": ..., "detailedmessage": ...} with a non-2xx status.
Changed-data subscriptions (consume on read): POST /{feed}/changed/subscription [eventname],
  GET /{feed}/changed/subscription, GET /{feed}/changed/subscription/events, DELETE to
  unsubscribe; GET /{feed}/changed returns every record changed since the subscription that
  has not been returned yet (current content, one entry per record) and marks them processed,
  unless leaveunprocessed=true; showprocessedstartdatetime/showprocessedenddatetime
  (MM/DD/YYYY HH:MM:SS, practice local time) replays records processed in that window.
  Feeds: patients, appointments, providers, prescriptions, chart/healthhistory/problems,
  claims [U]. Deleted records come once through their feed as tombstones: "deleted": "true"
  [U] (patients also "status": "deleted").
Rate limits [U]: 100 requests/s (rolling) and 500,000/day (calendar day UTC); 429
  {"error": "Too Many Requests", ...} + Retry-After seconds [U].
"""

import threading
import urllib.parse

from ..api.native import Collection, NativeVendor, coding, fhir_date_parts, fhir_ms, first, ref_id
from ..core.auth import TokenService
from ..core.http import HttpError, json_response

SCOPE = "athena/service/Athenanet.MDP.*"
APPT_STATUS = {"booked": "f", "pending": "f", "proposed": "f", "arrived": "2", "checked-in": "2",
               "fulfilled": "4", "cancelled": "x", "noshow": "x"}
# feed path -> (collection, response key, event names for create / update / delete)
FEEDS = {
    "patients": ("patients", "patients", ("AddPatient", "UpdatePatient", "DeletePatient")),
    "appointments": ("appointments", "appointments", ("ScheduleAppointment", "UpdateAppointment", "DeleteAppointment")),
    "providers": ("providers", "providers", ("AddProvider", "UpdateProvider", "DeleteProvider")),
    "prescriptions": ("prescriptions", "prescriptions", ("AddPrescription", "UpdatePrescription", "DeletePrescription")),
    "chart/healthhistory/problems": ("problems", "problems", ("AddProblem", "UpdateProblem", "DeleteProblem")),
    "claims": ("claims", "claims", ("CreateClaim", "UpdateClaim", "DeleteClaim")),
}
EXTRA_APPT_EVENTS = ("CancelAppointment", "CheckIn", "CheckOut")
DEFAULT_LIMIT, MAX_LIMIT = 1500, 5000


def mdy(text):
    p = fhir_date_parts(text)
    return "%02d/%02d/%04d" % (p[1], p[2], p[0]) if p else ""


class Feed:
    def __init__(self, path, coll, key, events):
        self.path, self.coll, self.key, self.events = path, coll, key, events
        self.active = False
        self.subscribed_events = set()     # empty while active = all events
        self.unprocessed = {}               # native id -> seq (insertion order = change order)
        self.processed = []                 # (processed_at_ms, native id)

    def event_names(self):
        names = list(self.events)
        if self.path == "appointments":
            names[2:2] = list(EXTRA_APPT_EVENTS)
        return names


class Athena(NativeVendor):
    name = "athenahealth"
    summary = "athenahealth athenaOne v1 REST (OAuth2 client credentials, changed-data subscriptions)"
    id_bases = {"Patient": 0, "Appointment": 1050000, "Claim": 5500, "Practitioner": 0, "Location": 0,
                "Condition": 3800, "MedicationRequest": 250000}
    defaults = {"token_ttl": 3600.0, "rate_limit": "100/1", "rate_limit_mode": "rolling",
                "token_rate_limit": "50/60", "retry_after_style": "seconds"}
    deletion_summary = ("changed feeds deliver a tombstone once: the last content with \"deleted\": \"true\" [U] "
                        "(patients also status \"deleted\"); lists and reads stop showing the record")

    @classmethod
    def add_arguments(cls, parser):
        super().add_arguments(parser)
        parser.add_argument("--practice-id", default="195900", help="athenaOne practice id")
        parser.add_argument("--day-limit", default="500000/86400",
                            help="per-day API limit N/W (fixed windows, UTC days) or off")

    def __init__(self, ctx):
        super().__init__(ctx)
        self.practice = ctx.args.practice_id
        self.prefix = "/v1/%s" % self.practice
        self.lock = threading.Lock()
        self.feeds = {p: Feed(p, self.by_name[c], k, ev) for p, (c, k, ev) in FEEDS.items()}
        self.dept_ids = []
        ctx.set_rate_limit("day", ctx.args.day_limit, "fixed")
        ctx.add_runtime_hook(lambda: {"day_limit": self._rate("day")}, self._set_rt)
        self.token_service = TokenService(
            ctx.clock, ctx.registry, ctx.tokens, ("client_secret_basic",), (),
            lambda: float(ctx.args.token_ttl), error_body=lambda e, d: {"error": e, "error_description": d},
            expires_in_string=True, token_type="Bearer", stats=ctx.stats)
        ctx.store.subscribe(self._on_commit)

    def _rate(self, scope):
        lim = self.ctx.limiters.get(scope)
        return "off" if lim is None else "%d/%g" % (lim.limit, lim.window)

    def _set_rt(self, cfg):
        if "day_limit" in cfg:
            self.ctx.set_rate_limit("day", cfg.pop("day_limit"), "fixed")

    def setup(self):
        super().setup()
        self.ctx.registry.get(self.ctx.args.client_id).scopes = [SCOPE]
        self.dept_ids = self.ctx.store.live_ids("Location") or ["1"]

    def default_scopes(self):
        return [SCOPE]

    # -- collections -------------------------------------------------------------------------
    def build_collections(self):
        lm = lambda ms: self.tz.fmt(ms, "%m/%d/%Y %H:%M:%S")  # noqa: E731

        def tomb(rec):
            rec["deleted"] = "true"

        def tomb_patient(rec):
            rec["status"] = "deleted"
            rec["deleted"] = "true"
        return [
            Collection("patients", "Patient", "patientid", self.p_patient, "lastmodified", lm, "tombstone", tomb_patient),
            Collection("appointments", "Appointment", "appointmentid", self.p_appointment, "lastmodified", lm, "tombstone", tomb),
            Collection("problems", "Condition", "problemid", self.p_problem, None, None, "tombstone", tomb, "patientid"),
            Collection("prescriptions", "MedicationRequest", "documentid", self.p_prescription, None, None, "tombstone", tomb, "patientid"),
            Collection("claims", "Claim", "claimid", self.p_claim, None, None, "tombstone", tomb, "patientid"),
            Collection("providers", "Practitioner", "providerid", self.p_provider, None, None, "tombstone", tomb),
            Collection("departments", "Location", "departmentid", self.p_department, None, None, "absent"),
        ]

    def _dept_of_patient(self, pid):
        ids = self.dept_ids or ["1"]
        return ids[int(pid) % len(ids)]

    def p_patient(self, r, v):
        name = first(r.get("name"), {})
        given = name.get("given") or [""]
        addr = first(r.get("address"), {})
        phones = {t.get("use"): t.get("value") for t in r.get("telecom", ()) if t.get("system") == "phone"}
        email = first([t.get("value") for t in r.get("telecom", ()) if t.get("system") == "email"], "")
        dept = self._dept_of_patient(v.id)
        return {"patientid": v.id, "firstname": given[0], "middlename": " ".join(given[1:]),
                "lastname": name.get("family", ""), "sex": {"female": "F", "male": "M"}.get(r.get("gender"), "U"),
                "dob": mdy(r.get("birthDate")), "address1": first(addr.get("line"), ""), "city": addr.get("city", ""),
                "state": addr.get("state", ""), "zip": addr.get("postalCode", ""), "countrycode": "USA",
                "homephone": phones.get("home", ""), "mobilephone": phones.get("mobile", ""), "email": email,
                "maritalstatus": coding(r.get("maritalStatus")).get("code", ""),
                "status": "active" if r.get("active", True) else "inactive",
                "departmentid": dept, "primarydepartmentid": dept,
                "primaryproviderid": ref_id(first(r.get("generalPractitioner")), "Practitioner") or ""}

    def p_appointment(self, r, v):
        pat = prac = loc = ""
        for p in r.get("participant", ()):
            ref = (p.get("actor") or {}).get("reference", "")
            if ref.startswith("Patient/"):
                pat = ref[8:]
            elif ref.startswith("Practitioner/"):
                prac = ref[13:]
            elif ref.startswith("Location/"):
                loc = ref[9:]
        start = fhir_ms(r.get("start")) or 0
        atype = coding(r.get("appointmentType"))
        rec = {"appointmentid": v.id, "patientid": pat, "providerid": prac, "departmentid": loc,
               "date": self.tz.fmt(start, "%m/%d/%Y"), "starttime": self.tz.fmt(start, "%H:%M"),
               "duration": r.get("minutesDuration", 30), "appointmentstatus": APPT_STATUS.get(r.get("status"), "f"),
               "appointmenttype": atype.get("display", ""),
               "appointmenttypeid": {"ROUTINE": "2", "FOLLOWUP": "3", "WALKIN": "4", "CHECKUP": "5"}.get(atype.get("code"), "1")}
        if r.get("status") == "noshow":
            rec["cancelreasonnoshow"] = True
        if r.get("status") == "cancelled":
            rec["cancelreasonname"] = (r.get("cancelationReason") or {}).get("text", "CANCELLED")
        return rec

    def p_problem(self, r, v):
        sct = coding(r.get("code"), "snomed")
        status = coding(r.get("clinicalStatus")).get("code", "active")
        return {"problemid": int(v.id), "patientid": int(ref_id(r.get("subject"), "Patient") or 0),
                "name": (r.get("code") or {}).get("text", ""), "codeset": "SNOMED", "code": sct.get("code", ""),
                "events": [{"eventtype": "START", "startdate": mdy(r.get("onsetDateTime")),
                            "status": status.upper()}]}

    def p_prescription(self, r, v):
        med = (r.get("medicationCodeableConcept") or {}).get("text", "")
        st = {"active": "Approved", "on-hold": "Pending", "completed": "Closed", "stopped": "Denied"}.get(r.get("status"), "Approved")
        authored = fhir_ms(r.get("authoredOn")) or 0
        return {"documentid": int(v.id), "patientid": int(ref_id(r.get("subject"), "Patient") or 0),
                "class": "Prescription", "description": "Prescription for %s" % med, "ordergenusname": med,
                "status": st, "dateordered": self.tz.fmt(authored, "%Y-%m-%dT%H:%M:%S") + self._iso_offset(),
                "externalnote": (first(r.get("dosageInstruction"), {}) or {}).get("text", ""),
                "orderingprovider": ref_id(r.get("requester"), "Practitioner") or ""}

    def _iso_offset(self):
        m = self.tz.offset_min
        return "%s%02d:%02d" % ("-" if m < 0 else "+", abs(m) // 60, abs(m) % 60)

    def p_claim(self, r, v):
        item = first(r.get("item"), {})
        c = coding(item.get("productOrService"))
        dx = first(r.get("diagnosis"), {})
        dc = coding(dx.get("diagnosisCodeableConcept"))
        return {"claimid": v.id, "patientid": int(ref_id(r.get("patient"), "Patient") or 0),
                "departmentid": self.dept_ids[int(v.id) % len(self.dept_ids)] if self.dept_ids else "1",
                "claimcreateddate": mdy(r.get("created")), "billedservicedate": mdy(item.get("servicedDate")),
                "procedures": [{"procedurecode": c.get("code", ""), "proceduredescription": c.get("display", ""),
                                "chargeamount": "%g" % (item.get("net") or {}).get("value", 0)}],
                "diagnoses": [{"diagnosisrawcode": dc.get("code", ""), "diagnosiscodeset": "ICD10",
                               "diagnosisdescription": dc.get("display", ""), "deleteddiagnosis": "false"}],
                "primaryinsurancepayer": {"status": "CLOSED" if r.get("status") == "cancelled" else "OPEN",
                                          "name": (r.get("insurer") or {}).get("display", "")}}

    def p_provider(self, r, v):
        name = first(r.get("name"), {})
        npi = first([i.get("value") for i in r.get("identifier", ())], "0")
        cred = first(name.get("suffix"), "")
        return {"providerid": int(v.id), "firstname": first(name.get("given"), ""), "lastname": name.get("family", ""),
                "displayname": name.get("text", ""), "npi": int(npi) if npi.isdigit() else npi,
                "providertype": cred, "providertypeid": cred, "sex": {"female": "F", "male": "M"}.get(r.get("gender"), "U"),
                "entitytype": "Person", "billable": True, "hideinportal": not r.get("active", True),
                "phone": first([t.get("value") for t in r.get("telecom", ()) if t.get("system") == "phone"], "")}

    def p_department(self, r, v):
        addr = r.get("address") or {}
        h = self.tz.offset_min / 60.0
        return {"departmentid": v.id, "name": r.get("name", ""), "address": first(addr.get("line"), ""),
                "city": addr.get("city", ""), "state": addr.get("state", ""), "zip": addr.get("postalCode", ""),
                "phone": first([t.get("value") for t in r.get("telecom", ()) if t.get("system") == "phone"], ""),
                "timezone": int(h) if h == int(h) else h, "clinicals": "ON", "patientdepartmentname": r.get("name", "")}

    # -- changed feeds -----------------------------------------------------------------------
    def _on_commit(self, versions):
        with self.lock:
            for v in versions:
                coll = self.by_type.get(v.type)
                if coll is None:
                    continue
                for feed in self.feeds.values():
                    if feed.coll is not coll or not feed.active:
                        continue
                    ev = feed.events[0 if v.op == "create" else 2 if v.op == "delete" else 1]
                    if feed.subscribed_events and ev not in feed.subscribed_events:
                        if not (feed.path == "appointments" and ev == "UpdateAppointment"
                                and feed.subscribed_events & set(EXTRA_APPT_EVENTS)):
                            continue
                    feed.unprocessed.pop(v.id, None)
                    feed.unprocessed[v.id] = v.seq

    # -- responses ---------------------------------------------------------------------------
    def error_response(self, req, status, code, message, headers=None):
        err = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests",
               500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
               504: "Gateway Timeout"}.get(status, "Bad Request" if status < 500 else "Server Error")
        return json_response({"error": err, "detailedmessage": message}, status, headers=headers)

    def throttle_response(self, req, retry_after_s, style=None):
        return self.error_response(req, 429, "throttled", "Rate limit exceeded; slow down",
                                   headers=self.retry_after_headers(retry_after_s, style))

    def auth_failure_response(self, req, exc):
        return json_response({"error": "Unauthorized", "detailedmessage": "The access token is invalid, expired or missing (%s)." % exc.description},
                             401, headers=[("WWW-Authenticate", 'Bearer realm="athenahealth", error="invalid_token"')])

    def not_found(self, req):
        return self.error_response(req, 404, "not-found", "Invalid path or method: %s %s" % (req.method, req.path))

    def fail(self, req, status, message):
        raise HttpError(self.error_response(req, status, "", message))

    # -- routing -----------------------------------------------------------------------------
    def route(self, req):
        path = req.path.rstrip("/")
        if path == "/oauth2/v1/token":
            return "token", self.h_token, "token"
        if not path.startswith("/v1/"):
            return None
        segs = path[4:].split("/")
        scopes = ("api", "day")
        if segs[0] != self.practice:
            return "practice-denied", lambda r: self.fail(r, 403, "Practice ID %s is not valid or not accessible." % segs[0]), scopes
        rest = "/".join(segs[1:])
        for fp, feed in self.feeds.items():
            if rest == fp + "/changed":
                return "changed:" + feed.key, lambda r: self.h_changed(r, feed), scopes
            if rest == fp + "/changed/subscription":
                return "subscription:" + feed.key, lambda r: self.h_subscription(r, feed), scopes
            if rest == fp + "/changed/subscription/events":
                return "subscription-events:" + feed.key, lambda r: self.h_events(r, feed), scopes
        parts = segs[1:]
        if len(parts) == 3 and parts[0] == "chart" and parts[2] in ("problems", "medications"):
            coll = self.by_name["problems" if parts[2] == "problems" else "prescriptions"]
            return "chart:" + parts[2], lambda r: self.h_chart(r, coll, parts[1], parts[2]), scopes
        if parts[:2] == ["appointments", "booked"] and len(parts) == 2:
            return "list:appointments", self.h_appointments, scopes
        lists = {"patients": "patients", "claims": "claims", "providers": "providers", "departments": "departments",
                 "appointments": "appointments"}
        if len(parts) == 1 and parts[0] in lists and parts[0] != "appointments":
            return "list:" + parts[0], lambda r: self.h_list(r, self.by_name[lists[parts[0]]]), scopes
        if len(parts) == 2 and parts[0] in lists:
            return "read:" + parts[0], lambda r: self.h_read(r, self.by_name[lists[parts[0]]], parts[1]), scopes
        return None

    # -- auth --------------------------------------------------------------------------------
    def h_token(self, req):
        auds = {req.url_for("/oauth2/v1/token")}
        status, body, headers = self.token_service.token_request(req, auds)
        return json_response(body, status, headers=headers)

    def require_token(self, req):
        req.token = self.token_service.check_bearer(req, realm="athenahealth")
        return req.token

    # -- lists -------------------------------------------------------------------------------
    def _paging(self, req):
        try:
            limit = self.int_param(req.param("limit"), DEFAULT_LIMIT, 1, MAX_LIMIT)
            offset = self.int_param(req.param("offset"), 0)
        except ValueError as exc:
            self.fail(req, 400, "Invalid limit or offset: %s" % exc)
        return limit, offset

    def _envelope(self, req, key, records, limit, offset, total=None, sliced=False):
        total = len(records) if total is None else total
        page = records if sliced else records[offset:offset + limit]
        out = {key: page, "totalcount": total}
        base = [(k, v) for k, v in req.query if k not in ("limit", "offset")]
        if offset + limit < total:
            step = limit - 1 if (self.is_dup(req) and limit > 1) else limit
            out["next"] = req.path + "?" + urllib.parse.urlencode(base + [("offset", str(offset + step)), ("limit", str(limit))])
        if offset > 0:
            out["previous"] = req.path + "?" + urllib.parse.urlencode(base + [("offset", str(max(0, offset - limit))), ("limit", str(limit))])
        return out

    def _live_records(self, coll, pred=None, patient=None):
        out = []
        for v in self.versions(coll, patient=patient):
            rec = self.record(v, coll)
            if pred is None or pred(rec):
                out.append(rec)
        return out

    def h_list(self, req, coll):
        self.require_token(req)
        limit, offset = self._paging(req)
        filters = {}
        for k in ("firstname", "lastname", "dob", "departmentid", "status", "patientid", "providerid"):
            if req.param(k):
                filters[k] = req.param(k)

        def pred(rec):
            for k, val in filters.items():
                have = str(rec.get(k, ""))
                if k in ("firstname", "lastname"):
                    if not have.lower().startswith(val.lower()):
                        return False
                elif have != val:
                    return False
            return True
        if not filters:        # project only the page
            vs = self.versions(coll)
            page = [self.record(v, coll) for v in vs[offset:offset + limit]]
            return json_response(self._envelope(req, coll.name, page, limit, offset, len(vs), sliced=True))
        recs = self._live_records(coll, pred)
        return json_response(self._envelope(req, coll.name, recs, limit, offset))

    def h_appointments(self, req):
        self.require_token(req)
        limit, offset = self._paging(req)
        sd, ed = req.param("startdate"), req.param("enddate")
        if not sd or not ed:
            self.fail(req, 400, "startdate and enddate are required (MM/DD/YYYY).")
        try:
            lo = self.tz.parse(sd, ("%m/%d/%Y",))
            hi = self.tz.parse(ed, ("%m/%d/%Y",)) + 86_400_000
        except ValueError:
            self.fail(req, 400, "startdate and enddate must be MM/DD/YYYY.")
        want = {k: req.param(k) for k in ("departmentid", "providerid", "patientid") if req.param(k)}
        coll = self.by_name["appointments"]

        def pred(rec):
            t = self.tz.parse(rec["date"] + " " + rec["starttime"], ("%m/%d/%Y %H:%M",))
            return lo <= t < hi and all(str(rec.get(k)) == val for k, val in want.items())
        return json_response(self._envelope(req, "appointments", self._live_records(coll, pred), limit, offset))

    def h_chart(self, req, coll, pid, what):
        self.require_token(req)
        pv = self.ctx.store.get("Patient", pid)
        if pv is None or pv.deleted:
            self.fail(req, 404, "The patient is not found.")
        recs = self._live_records(coll, patient=pid)
        return json_response({what: recs, "totalcount": len(recs)})

    def h_read(self, req, coll, nid):
        self.require_token(req)
        v = self.get_version(coll, nid)
        if v is None or v.deleted:
            self.fail(req, 404, "%s %s is not found." % (coll.id_field, nid))
        return json_response([self.record(v, coll)])

    # -- subscriptions -----------------------------------------------------------------------
    def h_events(self, req, feed):
        self.require_token(req)
        return json_response({"subscriptions": [{"eventname": e} for e in feed.event_names()]})

    def h_subscription(self, req, feed):
        self.require_token(req)
        with self.lock:
            if req.method == "GET":
                evs = sorted(feed.subscribed_events) if feed.subscribed_events else feed.event_names()
                return json_response({"status": "ACTIVE" if feed.active else "INACTIVE",
                                      "subscriptions": [{"eventname": e} for e in evs] if feed.active else []})
            form = dict(req.form() or [])
            ev = form.get("eventname") or req.param("eventname")
            if ev and ev not in feed.event_names():
                self.fail(req, 400, "Unknown eventname %s." % ev)
            if req.method == "POST":
                if not feed.active:
                    feed.active = True
                    feed.subscribed_events = set()
                    if ev:
                        feed.subscribed_events.add(ev)
                elif ev and feed.subscribed_events:
                    feed.subscribed_events.add(ev)
                elif not ev:
                    feed.subscribed_events = set()
                return json_response({"success": "true"})
            if req.method == "DELETE":
                if ev and feed.subscribed_events:
                    feed.subscribed_events.discard(ev)
                    if feed.subscribed_events:
                        return json_response({"success": "true"})
                feed.active = False
                feed.subscribed_events = set()
                feed.unprocessed.clear()
                return json_response({"success": "true"})
        self.fail(req, 405, "Method not allowed.")

    def _processed_window(self, req):
        s, e = req.param("showprocessedstartdatetime"), req.param("showprocessedenddatetime")
        if not s and not e:
            return None
        fmts = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y")
        try:
            lo = self.tz.parse(s, fmts) if s else 0
            hi = (self.tz.parse(e, fmts) + 999) if e else self.ctx.clock.now_ms() + 1
        except ValueError:
            self.fail(req, 400, "showprocessedstartdatetime/showprocessedenddatetime must be MM/DD/YYYY HH:MM:SS.")
        return lo, hi

    def h_changed(self, req, feed):
        self.require_token(req)
        if req.method != "GET":
            self.fail(req, 405, "Method not allowed.")
        limit, offset = self._paging(req)
        window = self._processed_window(req)
        leave = (req.param("leaveunprocessed") or "").lower() == "true"
        coll = feed.coll
        want_pid = req.param("patientid")
        with self.lock:
            if not feed.active:
                self.fail(req, 403, "No active subscription for %s; POST %s/%s/changed/subscription first." % (feed.path, self.prefix, feed.path))
            if window is not None:
                seen, ids = set(), []
                for ms, nid in feed.processed:
                    if window[0] <= ms < window[1] and nid not in seen:
                        seen.add(nid)
                        ids.append(nid)
            else:
                ids = list(feed.unprocessed)
            recs = []
            for nid in ids:
                v = self.get_version(coll, nid)
                rec = self.record(v, coll) if v is not None else None
                if rec is None:
                    continue
                if want_pid and str(rec.get("patientid")) != want_pid:
                    continue
                recs.append((nid, rec))
            total = len(recs)
            page = recs[offset:offset + limit]
            if window is None and not leave:
                now = self.ctx.clock.now_ms()
                for nid, _ in page:
                    feed.unprocessed.pop(nid, None)
                    feed.processed.append((now, nid))
                if len(feed.processed) > 500_000:      # replay history kept for the newest records
                    del feed.processed[:100_000]
        out = self._envelope(req, feed.key, [r for _, r in recs], limit, offset, total)
        return json_response(out)

    # -- info --------------------------------------------------------------------------------
    def ready_info(self, urls):
        out = {}
        for scheme, u in urls.items():
            out[scheme] = {"base": u + self.prefix, "token": u + "/oauth2/v1/token", "admin": u + "/_sim"}
        primary = out.get("https") or out.get("http")
        return {"api_base": primary["base"], "token_url": primary["token"], "endpoints": out,
                "practice_id": self.practice}

    def info(self):
        out = super().info()
        with self.lock:
            out["feeds"] = {p: {"active": f.active, "events": sorted(f.subscribed_events),
                                "unprocessed": len(f.unprocessed), "processed": len(f.processed)}
                            for p, f in self.feeds.items()}
        return out


VENDORS = {"athenahealth": Athena}
