"""Allscripts / Veradigm Unity API, JSON endpoints.  pms-interfaces.md section 3.

POST {base}/Unity/UnityService.svc/json/GetToken  {"Username", "Password", "Appname"}
  -> HTTP 200, body = the raw token (a GUID, not JSON); failure -> HTTP 200 body "error: ...".
POST .../MagicJson  {"Action", "AppUserID", "Appname", "PatientID", "Token", "Parameter1".."Parameter6",
  "Data"} (all twelve keys, empty strings when unused) -> ALWAYS HTTP 200:
  success [{"<action lower-case>info": [row, ...]}] (rows: string values, mixed-case keys);
  error   [{"Error": "Magic Error - Action: <Action> - <message>"}].
POST .../RetireSecurityToken {"Token", "Appname"} -> retires the token.
Tokens expire after --token-idle-s of inactivity (default 1200 [U]) or --token-ttl; revoked by
  /_sim/revoke-tokens.
Actions: GetServerInfo, Echo, GetChangedPatients (Parameter1 = since, local date-time: ids of
  patients whose chart changed at or after it, deletions included), GetPatient, GetProviders,
  GetProvider, GetSchedule (P1 start date, P2 end date, optional PatientID) [U params],
  GetEncounterList, GetPatientProblems, GetMedicationByTransID (P1 0 = all), GetCharges [U];
  all per-patient lists are complete lists (no paging, no deletion markers).
Rate limits: unpublished; when set, the throttle answer is in-band (HTTP 200 Error row) [U].
"""

import json
import threading
import time
import uuid

from ..api.native import Collection, NativeVendor, coding, fhir_date_parts, fhir_ms, first, ref_id
from ..core.http import Response, json_response

PREFIX = "/Unity/UnityService.svc/json"
KEYS = ["Action", "AppUserID", "Appname", "PatientID", "Token", "Parameter1", "Parameter2", "Parameter3",
        "Parameter4", "Parameter5", "Parameter6", "Data"]
ACTIONS = {"GetServerInfo", "Echo", "GetChangedPatients", "GetPatient", "GetProviders", "GetProvider",
           "GetSchedule", "GetEncounterList", "GetPatientProblems", "GetMedicationByTransID", "GetCharges"}
NO_USER = {"GetServerInfo", "Echo"}
SINCE_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%m/%d/%Y %I:%M:%S %p",
                 "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y", "%Y-%m-%d")


def mdy(text):
    p = fhir_date_parts(text)
    return "%d/%d/%04d" % (p[1], p[2], p[0]) if p else ""


class MagicError(Exception):
    pass


class Unity(NativeVendor):
    name = "allscripts"
    summary = "Allscripts / Veradigm Unity API (GetToken, MagicJson, in-band errors)"
    id_bases = {"Patient": 12000, "Appointment": 880000, "Encounter": 3400000, "Condition": 61000,
                "MedicationRequest": 7700000, "ChargeItem": 450000, "Practitioner": 360}
    defaults = {"token_ttl": 86400.0, "rate_limit": "off"}
    deletion_summary = ("not signalled: GetChangedPatients lists the patient whose chart changed; its lists "
                        "(complete) no longer contain the record; a deleted patient's GetPatient is empty")

    @classmethod
    def add_arguments(cls, parser):
        super().add_arguments(parser)
        parser.add_argument("--appname", default="PMSSim.EdgeAgent", help="registered Appname")
        parser.add_argument("--app-user", default="jmedici", help="valid AppUserID (EHR user)")
        parser.add_argument("--token-idle-s", type=float, default=1200.0, help="token inactivity timeout (s)")
        parser.add_argument("--server-timezone", default="Eastern Standard Time", help="GetServerInfo ServerTimeZone text")

    def __init__(self, ctx):
        super().__init__(ctx)
        a = ctx.args
        self.appname = a.appname
        self.app_user = a.app_user
        self.idle_s = a.token_idle_s
        self.lock = threading.Lock()
        self.sessions = {}   # guid -> {"tok": internal token, "appname", "last": monotonic}
        ctx.add_runtime_hook(lambda: {"token_idle_s": self.idle_s}, self._set_rt)

    def _set_rt(self, cfg):
        if "token_idle_s" in cfg:
            self.idle_s = float(cfg.pop("token_idle_s"))

    # -- collections -------------------------------------------------------------------------
    def build_collections(self):
        def C(name, ftype, proj, pf="PatientID"):
            return Collection(name, ftype, "ID", proj, None, None, "absent", None, pf)
        return [
            C("patients", "Patient", self.p_patient, None),
            C("appointments", "Appointment", self.p_appointment),
            C("encounters", "Encounter", self.p_encounter),
            C("problems", "Condition", self.p_problem),
            C("medications", "MedicationRequest", self.p_medication),
            C("charges", "ChargeItem", self.p_charge),
            C("providers", "Practitioner", self.p_provider, None),
        ]

    def p_patient(self, r, v):
        name = first(r.get("name"), {})
        given = name.get("given") or [""]
        addr = first(r.get("address"), {})
        phones = {t.get("use"): t.get("value") for t in r.get("telecom", ()) if t.get("system") == "phone"}
        email = first([t.get("value") for t in r.get("telecom", ()) if t.get("system") == "email"], "")
        prac = first(r.get("generalPractitioner"), {})
        return {"ID": v.id, "LastName": name.get("family", ""), "FirstName": given[0], "MiddleName": " ".join(given[1:]),
                "Sex": {"female": "F", "male": "M"}.get(r.get("gender"), "U"), "DateofBirth": mdy(r.get("birthDate")),
                "MRN": first([i.get("value") for i in r.get("identifier", ())], ""), "SSN": "",
                "Addr1": first(addr.get("line"), ""), "Addr2": "", "City": addr.get("city", ""),
                "State": addr.get("state", ""), "ZIP": addr.get("postalCode", ""),
                "HomePhone": phones.get("home", ""), "WorkPhone": "", "CellPhone": phones.get("mobile", ""),
                "Email": email, "MaritalStatus": coding(r.get("maritalStatus")).get("code", ""),
                "PrimaryProviderID": ref_id(prac, "Practitioner") or "", "PrimaryProvider": prac.get("display", ""),
                "Status": "Active" if r.get("active", True) else "Inactive"}

    def p_appointment(self, r, v):
        pat = prac = loc = {}
        for p in r.get("participant", ()):
            a = p.get("actor") or {}
            ref = a.get("reference", "")
            if ref.startswith("Patient/"):
                pat = a
            elif ref.startswith("Practitioner/"):
                prac = a
            elif ref.startswith("Location/"):
                loc = a
        start = fhir_ms(r.get("start")) or 0
        t = self.tz.tm(start)
        return {"ID": v.id, "PatientID": ref_id(pat, "Patient") or "", "PatientName": pat.get("display", ""),
                "ProviderID": ref_id(prac, "Practitioner") or "", "Provider": prac.get("display", ""),
                "ApptDate": self.tz.mdy(start),
                "ApptTime": "%d:%02d %s" % (t.tm_hour % 12 or 12, t.tm_min, "AM" if t.tm_hour < 12 else "PM"),
                "Duration": str(r.get("minutesDuration", 30)), "Status": r.get("status", ""),
                "ApptType": coding(r.get("appointmentType")).get("display", ""), "Reason": r.get("description", ""),
                "Location": loc.get("display", "")}

    def p_encounter(self, r, v):
        start = fhir_ms((r.get("period") or {}).get("start")) or 0
        prac = (first(r.get("participant"), {}) or {}).get("individual") or {}
        return {"ID": v.id, "patientID": ref_id(r.get("subject"), "Patient") or "",
                "EncounterType": coding(first(r.get("type"), {})).get("display", ""),
                "DTS": self.tz.mdy_hms_ampm(start),
                "Location": (((first(r.get("location"), {}) or {}).get("location")) or {}).get("display", ""),
                "Status": r.get("status", ""), "Provider": prac.get("display", "")}

    def p_problem(self, r, v):
        icd = coding(r.get("code"), "icd-10")
        sct = coding(r.get("code"), "snomed")
        return {"ID": v.id, "PatientID": ref_id(r.get("subject"), "Patient") or "",
                "Description": (r.get("code") or {}).get("text", ""), "ICD10Code": icd.get("code", ""),
                "SnomedCode": sct.get("code", ""), "Status": coding(r.get("clinicalStatus")).get("code", "").capitalize(),
                "OnsetDate": mdy(r.get("onsetDateTime")), "EntryDate": mdy(r.get("recordedDate"))}

    def p_medication(self, r, v):
        med = r.get("medicationCodeableConcept") or {}
        return {"TransID": v.id, "PatientID": ref_id(r.get("subject"), "Patient") or "",
                "Description": med.get("text", ""), "RxNormCode": coding(med).get("code", ""),
                "Status": r.get("status", "").capitalize(),
                "Sig": (first(r.get("dosageInstruction"), {}) or {}).get("text", ""),
                "StartDate": mdy(r.get("authoredOn")), "Prescriber": (r.get("requester") or {}).get("display", "")}

    def p_charge(self, r, v):
        c = coding(r.get("code"))
        return {"ChargeID": v.id, "PatientID": ref_id(r.get("subject"), "Patient") or "",
                "ProcCode": c.get("code", ""), "Description": c.get("display", ""),
                "Units": str((r.get("quantity") or {}).get("value", 1)),
                "Amount": "%.2f" % (r.get("priceOverride") or {}).get("value", 0.0),
                "ServiceDate": mdy(r.get("occurrenceDateTime")), "Status": r.get("status", ""),
                "Provider": (((first(r.get("performer"), {}) or {}).get("actor")) or {}).get("display", "")}

    def p_provider(self, r, v):
        name = first(r.get("name"), {})
        given = first(name.get("given"), "")
        family = name.get("family", "")
        cred = first(name.get("suffix"), "")
        username = (given[:1] + family).lower().replace("'", "")
        return {"personid": v.id, "FirstName": given, "LastName": family, "Middle": "", "Credentials": cred,
                "Username": username, "EntryCode": (username[:10]).ljust(16), "PrimSpecialty": "Family Medicine",
                "SecSpecialty": " ", "ProviderInactive": "N" if r.get("active", True) else "Y", "UserInactive": "N",
                "UserType": "User/Provider", "Profession": "Physician" if cred in ("MD", "DO") else "Nurse Practitioner",
                "DefaultSiteCode": "001".ljust(10), "DefaultSiteName": "Main Practice", "Security": "",
                "CanPrescribeFlag": "Y", "orderingauthority": "8", "rxsupervisionrequired": "N",
                "supervisingdefaultID": "0", "supervisingdefaultName": ""}

    # -- responses ---------------------------------------------------------------------------
    def _magic_error(self, action, message):
        return json_response([{"Error": "Magic Error - Action: %s - %s" % (action or "", message)}],
                             content_type="application/json; charset=utf-8")

    def error_response(self, req, status, code, message, headers=None):
        body = ("<html><head><title>%d</title></head><body><h1>%s</h1></body></html>" % (status, message)).encode()
        return Response(status, body, headers=headers, content_type="text/html")

    def not_found(self, req):
        return self.error_response(req, 404, "not-found", "Endpoint not found.")

    def throttle_response(self, req, retry_after_s, style=None):
        self.ctx.stats.inc("throttled_inband")
        if req.path.endswith("/GetToken"):
            return Response(200, b"error: Too many requests. Please try again later.",
                            content_type="text/plain; charset=utf-8")
        try:
            action = (json.loads(req.body or b"{}") or {}).get("Action", "")
        except (ValueError, AttributeError):
            action = ""
        return self._magic_error(action, "Too many requests. Please try again later.")

    # -- routing -----------------------------------------------------------------------------
    def route(self, req):
        path = req.path.rstrip("/")
        if not path.startswith(PREFIX + "/"):
            return None
        name = path[len(PREFIX) + 1:]
        if name == "GetToken":
            return "GetToken", self.h_get_token, "api"
        if name == "RetireSecurityToken":
            return "RetireSecurityToken", self.h_retire, "api"
        if name == "MagicJson":
            action = ""
            try:
                body = json.loads(req.body or b"{}")
                action = body.get("Action", "") if isinstance(body, dict) else ""
            except (ValueError, UnicodeDecodeError):
                pass
            return "magic:" + (action if action in ACTIONS else "other"), self.h_magic, "api"
        return None

    def _json_body(self, req):
        if req.method != "POST":
            return None
        try:
            body = json.loads(req.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None
        return body if isinstance(body, dict) else None

    def h_get_token(self, req):
        self.ctx.stats.inc("token_requests")
        body = self._json_body(req)
        if body is None:
            return self.error_response(req, 400, "invalid", "Request Error: the request body is not a JSON object.")
        client = self.ctx.registry.get(str(body.get("Username", "")))
        if client is None or not client.secret or client.secret != body.get("Password"):
            self.ctx.stats.inc("auth_failures")
            return Response(200, b"error: Username and password not valid.", content_type="text/plain; charset=utf-8")
        if body.get("Appname") != self.appname:
            self.ctx.stats.inc("auth_failures")
            return Response(200, ("error: Appname %s is not registered." % body.get("Appname")).encode(),
                            content_type="text/plain; charset=utf-8")
        info = self.ctx.tokens.issue(client.client_id, [], float(self.ctx.args.token_ttl))
        guid = str(uuid.uuid4()).upper()
        with self.lock:
            self.sessions[guid] = {"tok": info.token, "appname": self.appname, "last": time.monotonic()}
        self.ctx.stats.inc("tokens_issued")
        return Response(200, guid.encode(), content_type="text/plain; charset=utf-8")

    def h_retire(self, req):
        body = self._json_body(req) or {}
        with self.lock:
            s = self.sessions.pop(str(body.get("Token", "")), None)
        if s is None:
            return Response(200, b"error: Invalid security token.", content_type="text/plain; charset=utf-8")
        self.ctx.tokens.revoke(s["tok"])
        return Response(200, b"Token retired.", content_type="text/plain; charset=utf-8")

    def _check_token(self, req, body):
        guid = str(body.get("Token", ""))
        with self.lock:
            s = self.sessions.get(guid)
            if s is None:
                raise MagicError("Invalid security token.")
            if req.fault is not None and req.fault.kind == "revoke_token":
                self.ctx.tokens.revoke(s["tok"])
            info, reason = self.ctx.tokens.check(s["tok"])
            now = time.monotonic()
            if info is None:
                self.sessions.pop(guid, None)
                raise MagicError("Invalid security token (%s)." % reason)
            if now - s["last"] > self.idle_s:
                self.sessions.pop(guid, None)
                self.ctx.tokens.revoke(s["tok"])
                raise MagicError("You have been logged out due to inactivity. Please log in again.")
            if body.get("Appname") != s["appname"]:
                raise MagicError("Appname does not match the security token.")
            s["last"] = now

    def h_magic(self, req):
        body = self._json_body(req)
        if body is None:
            return self.error_response(req, 400, "invalid", "Request Error: the request body is not a JSON object.")
        action = str(body.get("Action", ""))
        try:
            missing = [k for k in KEYS if k not in body]
            if missing:
                raise MagicError("Missing parameter(s): %s" % ", ".join(missing))
            self._check_token(req, body)
            if action not in ACTIONS:
                raise MagicError("Action is not supported.")
            if action not in NO_USER and body.get("AppUserID") != self.app_user:
                raise MagicError("Invalid AppUserID %r." % body.get("AppUserID"))
            rows = getattr(self, "a_" + action)(body)
        except MagicError as exc:
            if "token" in str(exc).lower() or "inactivity" in str(exc):
                self.ctx.stats.inc("auth_failures")
            return self._magic_error(action, str(exc))
        return json_response([{action.lower() + "info": rows}], content_type="application/json; charset=utf-8")

    # -- actions -----------------------------------------------------------------------------
    def _since(self, text, what="Parameter1"):
        try:
            return self.tz.parse(text, SINCE_FORMATS)
        except ValueError:
            raise MagicError("%s %r is not a valid date/time." % (what, text)) from None

    def a_GetServerInfo(self, body):
        now = self.ctx.clock.now_ms()
        m = self.tz.offset_min
        off = "%s%02d:%02d" % ("-" if m < 0 else "+", abs(m) // 60, abs(m) % 60)
        return [{"ServerTimeZone": self.ctx.args.server_timezone,
                 "ServerTime": self.tz.fmt(now, "%Y-%m-%dT%H:%M:%S"),
                 "ServerDateTimeOffset": self.tz.fmt(now, "%Y-%m-%dT%H:%M:%S.%3f0000") + off,
                 "System": "Enterprise EHR", "ProductVersion": "11.2.3.32.000", "uaibornondate": "10/07/2013"}]

    def a_Echo(self, body):
        return [{k.lower(): str(body.get(k, "")) for k in KEYS if k not in ("Token", "Data")}]

    def a_GetChangedPatients(self, body):
        if not body.get("Parameter1"):
            raise MagicError("Parameter1 (since date/time) is required.")
        since = self._since(body["Parameter1"])
        served = set(self.by_type)
        store = self.ctx.store
        with store.lock:
            pats = {v.patient for v in store.log if v.ts >= since and v.patient and v.type in served}
        return [{"patientid": pid} for pid in sorted(pats, key=lambda x: int(x))]

    def _patient_rows(self, name, body):
        pid = str(body.get("PatientID", ""))
        if not pid:
            raise MagicError("PatientID is required.")
        coll = self.by_name[name]
        return [self.record(v, coll) for v in self.versions(coll, patient=pid)]

    def a_GetPatient(self, body):
        pid = str(body.get("PatientID", ""))
        if not pid:
            raise MagicError("PatientID is required.")
        v = self.ctx.store.get("Patient", pid)
        if v is None or v.deleted:
            return []
        return [self.record(v, self.by_name["patients"])]

    def a_GetProviders(self, body):
        coll = self.by_name["providers"]
        name_filter = (body.get("Parameter2") or "").lower()
        rows = [self.record(v, coll) for v in self.versions(coll)]
        return [r for r in rows if not name_filter or r["LastName"].lower().startswith(name_filter)]

    def a_GetProvider(self, body):
        pid, user = body.get("Parameter1") or "", (body.get("Parameter2") or "").lower()
        if not pid and not user:
            raise MagicError("Parameter1 (provider id) or Parameter2 (user name) is required.")
        rows = self.a_GetProviders({"Parameter2": ""})
        return [r for r in rows if (pid and r["personid"] == pid) or (user and r["Username"] == user)]

    def a_GetSchedule(self, body):
        p1, p2 = body.get("Parameter1") or "", body.get("Parameter2") or ""
        if not p1:
            raise MagicError("Parameter1 (start date) is required.")
        lo = self._since(p1)
        hi = self._since(p2) + 86_400_000 if p2 else lo + 86_400_000
        coll = self.by_name["appointments"]
        pid = str(body.get("PatientID") or "")
        out = []
        for v in self.versions(coll, patient=pid or None):
            rec = self.record(v, coll)
            start = self.tz.parse(rec["ApptDate"], ("%m/%d/%Y",))
            if lo <= start < hi:
                out.append(rec)
        return out

    def a_GetEncounterList(self, body):
        return self._patient_rows("encounters", body)

    def a_GetPatientProblems(self, body):
        return self._patient_rows("problems", body)

    def a_GetMedicationByTransID(self, body):
        rows = self._patient_rows("medications", body)
        tid = str(body.get("Parameter1") or "0")
        return rows if tid == "0" else [r for r in rows if r["TransID"] == tid]

    def a_GetCharges(self, body):
        return self._patient_rows("charges", body)

    # -- info --------------------------------------------------------------------------------
    def ready_info(self, urls):
        out = {}
        for scheme, u in urls.items():
            out[scheme] = {"base": u + PREFIX, "token": u + PREFIX + "/GetToken", "magic": u + PREFIX + "/MagicJson",
                           "admin": u + "/_sim"}
        primary = out.get("https") or out.get("http")
        return {"api_base": primary["base"], "token_url": primary["token"], "endpoints": out,
                "appname": self.appname, "app_user": self.app_user}


VENDORS = {"allscripts": Unity}
