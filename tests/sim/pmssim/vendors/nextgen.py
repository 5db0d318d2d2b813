"""NextGen Enterprise API (non-FHIR).  pms-interfaces.md section 6.

Auth ("GSA" client credentials): POST /nge/prod/nge-oauth/token, form grant_type=client_credentials,
  client_id, client_secret, site_id -> {"access_token", "token_type": "Bearer", "expires_in": 3600};
  no refresh tokens; OAuth errors {"error", "error_description"}.
Session: PUT /nge/prod/nge-api/api/users/me/login-defaults {"enterpriseId", "practiceId"} ->
  200, empty body, header x-ng-sessionid (deterministic for the pair, never expires). Every other
  API call needs Authorization: Bearer AND X-NG-SessionId (missing/unknown -> 400 [U]).
  GET /master/practices lists the enterprise/practice pairs (bearer only).
Data (envelope {"items": [...]}; "count" with $count=true [U]; no next link: page with
  $skip/$top until a page is short): /persons, /persons/{id}, /persons/{id}/chart/encounters,
  /chart/problems, /chart/medications, /chart/allergies, /persons/{id}/charges [U],
  /appointments (next 7 days unless $filter is given), /master/providers [U], /master/locations [U].
  OData $filter (eq ne gt ge lt le, and/or/not, datetime'..' or bare ISO literals), $orderby,
  $top (default 25, max 1000 [U]), $skip, $count. Timestamps createTimestamp / modifyTimestamp
  [U names]: local ISO without zone, milliseconds. Deletions: not exposed (records vanish).
Errors [U]: {"message": "..."}; 401 "Authorization has been denied for this request.";
  429 + Retry-After (seconds) when a rate limit is set (unpublished; off by default).
"""

import hashlib
import json

from ..api.native import Collection, NativeVendor, coding, fhir_date_parts, fhir_ms, first, ref_id
from ..api.odata import ODataError, evaluate, parse_filter, parse_orderby
from ..core.auth import AuthFailure
from ..core.http import HttpError, Response, json_response

TOKEN_PATH = "/nge/prod/nge-oauth/token"
API = "/nge/prod/nge-api/api"
DEFAULT_TOP, MAX_TOP = 25, 1000
TIME_FIELDS = {"createTimestamp", "modifyTimestamp", "dateOfBirth", "appointmentDate", "encounterTimestamp",
               "onsetDate", "startDate", "serviceDate"}


def iso_date(text):
    p = fhir_date_parts(text)
    return "%04d-%02d-%02dT00:00:00" % p if p else None


class NextGen(NativeVendor):
    name = "nextgen"
    summary = "NextGen Enterprise API (GSA client credentials + site_id, X-NG-SessionId, OData paging)"
    guid_ids = True
    defaults = {"token_ttl": 3600.0, "rate_limit": "off", "retry_after_style": "seconds"}
    deletion_summary = "not exposed: deleted records stop being returned (detect only by a full re-list)"

    @classmethod
    def add_arguments(cls, parser):
        super().add_arguments(parser)
        parser.add_argument("--site-id", default="pmssim-site", help="GSA site_id")
        parser.add_argument("--enterprise-id", default="00001", help="enterprise id")
        parser.add_argument("--practice-id", default="0001", help="practice id")

    def __init__(self, ctx):
        super().__init__(ctx)
        a = ctx.args
        self.site_id = a.site_id
        self.pairs = {(a.enterprise_id, a.practice_id)}
        self.sessions = {self._session_id(e, p): (e, p) for e, p in self.pairs}

    def _session_id(self, ent, prac):
        h = hashlib.sha256(("%s|%s|%s" % (self.ctx.args.seed, ent, prac)).encode()).hexdigest()
        return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:32])

    # -- collections -------------------------------------------------------------------------
    def build_collections(self):
        ts = lambda ms: self.tz.fmt(ms, "%Y-%m-%dT%H:%M:%S.%3f")  # noqa: E731
        self.ts = ts

        def C(name, ftype, id_field, proj, pf="personId"):
            return Collection(name, ftype, id_field, proj, "modifyTimestamp", ts, "absent", None, pf)
        return [
            C("persons", "Patient", "personId", self.p_person, None),
            C("appointments", "Appointment", "appointmentId", self.p_appointment),
            C("encounters", "Encounter", "encounterId", self.p_encounter),
            C("problems", "Condition", "problemId", self.p_problem),
            C("medications", "MedicationRequest", "medicationId", self.p_medication),
            C("allergies", "AllergyIntolerance", "allergyId", self.p_allergy),
            C("charges", "ChargeItem", "chargeId", self.p_charge),
            C("providers", "Practitioner", "providerId", self.p_provider, None),
            C("locations", "Location", "locationId", self.p_location, None),
        ]

    def _created(self, v):
        hist = self.ctx.store.history.get(v.key, ())
        return self.ts(hist[0].ts if hist else v.ts)

    def _local(self, text):
        ms = fhir_ms(text)
        return self.ts(ms) if ms is not None else None

    def p_person(self, r, v):
        name = first(r.get("name"), {})
        given = name.get("given") or [""]
        addr = first(r.get("address"), {})
        phones = {t.get("use"): t.get("value") for t in r.get("telecom", ()) if t.get("system") == "phone"}
        email = first([t.get("value") for t in r.get("telecom", ()) if t.get("system") == "email"], "")
        mrn = first([i.get("value") for i in r.get("identifier", ())], "")
        return {"personId": v.id, "personNumber": str(100000 + v.pos), "medicalRecordNumber": mrn,
                "firstName": given[0], "middleName": " ".join(given[1:]), "lastName": name.get("family", ""),
                "dateOfBirth": iso_date(r.get("birthDate")), "sex": {"female": "F", "male": "M"}.get(r.get("gender"), "U"),
                "addressLine1": first(addr.get("line"), ""), "addressLine2": "", "city": addr.get("city", ""),
                "state": addr.get("state", ""), "zip": addr.get("postalCode", ""), "homePhone": phones.get("home", ""),
                "cellPhone": phones.get("mobile", ""), "emailAddress": email, "isPatient": True,
                "expiredIndicator": False, "isActive": r.get("active", True), "createTimestamp": self._created(v)}

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
        return {"appointmentId": v.id, "personId": ref_id(pat, "Patient"), "providerId": ref_id(prac, "Practitioner"),
                "providerName": prac.get("display"), "locationId": ref_id(loc, "Location"), "locationName": loc.get("display"),
                "appointmentDate": self._local(r.get("start")), "duration": r.get("minutesDuration", 30),
                "status": r.get("status", ""), "eventName": coding(r.get("appointmentType")).get("display", ""),
                "details": r.get("description", ""), "isCancelled": r.get("status") == "cancelled",
                "createTimestamp": self._created(v)}

    def p_encounter(self, r, v):
        prac = ((first(r.get("participant"), {}) or {}).get("individual")) or {}
        return {"encounterId": v.id, "personId": ref_id(r.get("subject"), "Patient"),
                "encounterTimestamp": self._local((r.get("period") or {}).get("start")),
                "status": r.get("status", ""), "type": coding(first(r.get("type"), {})).get("display", ""),
                "renderingProviderId": ref_id(prac, "Practitioner"), "renderingProviderName": prac.get("display"),
                "createTimestamp": self._created(v)}

    def p_problem(self, r, v):
        return {"problemId": v.id, "personId": ref_id(r.get("subject"), "Patient"),
                "description": (r.get("code") or {}).get("text", ""), "icd10Code": coding(r.get("code"), "icd-10").get("code", ""),
                "snomedCode": coding(r.get("code"), "snomed").get("code", ""),
                "status": coding(r.get("clinicalStatus")).get("code", ""), "onsetDate": self._local(r.get("onsetDateTime")),
                "createTimestamp": self._created(v)}

    def p_medication(self, r, v):
        med = r.get("medicationCodeableConcept") or {}
        return {"medicationId": v.id, "personId": ref_id(r.get("subject"), "Patient"), "medicationName": med.get("text", ""),
                "rxNormCode": coding(med).get("code", ""), "sig": (first(r.get("dosageInstruction"), {}) or {}).get("text", ""),
                "status": r.get("status", ""), "startDate": self._local(r.get("authoredOn")),
                "prescriberName": (r.get("requester") or {}).get("display"), "createTimestamp": self._created(v)}

    def p_allergy(self, r, v):
        return {"allergyId": v.id, "personId": ref_id(r.get("patient"), "Patient"),
                "description": (r.get("code") or {}).get("text", ""), "category": first(r.get("category"), ""),
                "criticality": r.get("criticality", ""), "status": coding(r.get("clinicalStatus")).get("code", ""),
                "reaction": ((first((first(r.get("reaction"), {}) or {}).get("manifestation"), {})) or {}).get("text", ""),
                "createTimestamp": self._created(v)}

    def p_charge(self, r, v):
        c = coding(r.get("code"))
        return {"chargeId": v.id, "personId": ref_id(r.get("subject"), "Patient"), "cptCode": c.get("code", ""),
                "description": c.get("display", ""), "units": (r.get("quantity") or {}).get("value", 1),
                "amount": (r.get("priceOverride") or {}).get("value", 0.0), "serviceDate": self._local(r.get("occurrenceDateTime")),
                "status": r.get("status", ""), "createTimestamp": self._created(v)}

    def p_provider(self, r, v):
        name = first(r.get("name"), {})
        return {"providerId": v.id, "firstName": first(name.get("given"), ""), "lastName": name.get("family", ""),
                "degree": first(name.get("suffix"), ""), "npi": first([i.get("value") for i in r.get("identifier", ())], ""),
                "isActive": r.get("active", True), "createTimestamp": self._created(v)}

    def p_location(self, r, v):
        addr = r.get("address") or {}
        return {"locationId": v.id, "locationName": r.get("name", ""), "addressLine1": first(addr.get("line"), ""),
                "city": addr.get("city", ""), "state": addr.get("state", ""), "zip": addr.get("postalCode", ""),
                "isActive": r.get("status") == "active", "createTimestamp": self._created(v)}

    # -- responses ---------------------------------------------------------------------------
    def error_response(self, req, status, code, message, headers=None):
        return json_response({"message": message}, status, headers=headers)

    def throttle_response(self, req, retry_after_s, style=None):
        return json_response({"message": "Too many requests."}, 429, headers=self.retry_after_headers(retry_after_s, style))

    def auth_failure_response(self, req, exc):
        return json_response({"message": "Authorization has been denied for this request."}, 401,
                             headers=[("WWW-Authenticate", 'Bearer error="invalid_token"')])

    def not_found(self, req):
        return json_response({"message": "No HTTP resource was found that matches the request URI '%s'." % req.path}, 404)

    def fail(self, status, message):
        raise HttpError(json_response({"message": message}, status))

    # -- routing -----------------------------------------------------------------------------
    def route(self, req):
        path = req.path.rstrip("/")
        if path == TOKEN_PATH:
            return "token", self.h_token, "token"
        if not path.startswith(API + "/"):
            return None
        segs = path[len(API) + 1:].split("/")
        if segs == ["users", "me", "login-defaults"]:
            return "login-defaults", self.h_login_defaults, "api"
        if segs == ["master", "practices"]:
            return "practices", self.h_practices, "api"
        if segs in (["master", "providers"], ["master", "locations"]):
            name = segs[1]
            return "list:" + name, lambda r: self.h_list(r, self.by_name[name]), "api"
        if segs == ["persons"]:
            return "list:persons", lambda r: self.h_list(r, self.by_name["persons"]), "api"
        if segs == ["appointments"]:
            return "list:appointments", lambda r: self.h_list(r, self.by_name["appointments"]), "api"
        if len(segs) == 2 and segs[0] == "persons":
            return "read:persons", lambda r: self.h_read(r, self.by_name["persons"], segs[1]), "api"
        if len(segs) == 2 and segs[0] == "appointments":
            return "read:appointments", lambda r: self.h_read(r, self.by_name["appointments"], segs[1]), "api"
        if len(segs) == 4 and segs[0] == "persons" and segs[2] == "chart" and segs[3] in ("encounters", "problems", "medications", "allergies"):
            name = segs[3]
            return "chart:" + name, lambda r: self.h_list(r, self.by_name[name], segs[1]), "api"
        if len(segs) == 5 and segs[0] == "persons" and segs[2] == "chart" and segs[3] in ("encounters", "problems", "medications", "allergies"):
            name = segs[3]
            return "chart-read:" + name, lambda r: self.h_read(r, self.by_name[name], segs[4], segs[1]), "api"
        if len(segs) == 3 and segs[0] == "persons" and segs[2] == "charges":
            return "list:charges", lambda r: self.h_list(r, self.by_name["charges"], segs[1]), "api"
        return None

    # -- auth --------------------------------------------------------------------------------
    def _oauth_error(self, status, error, description):
        if status != 401:
            self.ctx.stats.inc("auth_failures")
        return json_response({"error": error, "error_description": description}, status,
                             headers=[("Cache-Control", "no-store")])

    def h_token(self, req):
        self.ctx.stats.inc("token_requests")
        if req.method != "POST":
            return self._oauth_error(405, "invalid_request", "POST required")
        pairs = req.form()
        if pairs is None:
            return self._oauth_error(400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
        form = dict(pairs)
        if form.get("grant_type") != "client_credentials":
            return self._oauth_error(400, "unsupported_grant_type", "grant_type must be client_credentials")
        client = self.ctx.registry.get(form.get("client_id", ""))
        if client is None or not client.secret or client.secret != form.get("client_secret"):
            return self._oauth_error(401, "invalid_client", "client authentication failed")
        if not form.get("site_id"):
            return self._oauth_error(400, "invalid_request", "site_id is required")
        if form["site_id"] != self.site_id:
            return self._oauth_error(401, "invalid_client", "the client is not enabled for site_id %s" % form["site_id"])
        ttl = float(self.ctx.args.token_ttl)
        info = self.ctx.tokens.issue(client.client_id, [], ttl)
        self.ctx.stats.inc("tokens_issued")
        return json_response({"access_token": info.token, "token_type": "Bearer", "expires_in": int(round(ttl))},
                             headers=[("Cache-Control", "no-store")])

    def _bearer(self, req):
        authz = req.header("authorization", "")
        if authz[:7].lower() != "bearer ":
            raise AuthFailure(401, "missing bearer token")
        info, reason = self.ctx.tokens.check(authz[7:].strip())
        if info is None:
            raise AuthFailure(401, reason)
        req.token = info
        return info

    def _session(self, req):
        self._bearer(req)
        sid = req.header("x-ng-sessionid")
        if not sid or sid not in self.sessions:
            self.fail(400, "A valid X-NG-SessionId header is required; call PUT %s/users/me/login-defaults first." % API)
        return self.sessions[sid]

    def h_login_defaults(self, req):
        self._bearer(req)
        if req.method != "PUT":
            self.fail(405, "The requested resource does not support http method '%s'." % req.method)
        try:
            body = json.loads(req.body or b"{}")
        except ValueError:
            self.fail(400, "The request body is not valid JSON.")
        pair = (str(body.get("enterpriseId", "")), str(body.get("practiceId", "")))
        if pair not in self.pairs:
            self.fail(400, "Invalid enterpriseId/practiceId %s/%s for this user." % pair)
        return Response(200, b"", headers=[("x-ng-sessionid", self._session_id(*pair))])

    def h_practices(self, req):
        self._bearer(req)
        return json_response({"items": [{"enterpriseId": e, "practiceId": p, "practiceName": "Practice %s" % p}
                                        for e, p in sorted(self.pairs)]})

    # -- lists -------------------------------------------------------------------------------
    def _field_kind(self, sample_fields):
        def kind(name):
            if name not in sample_fields:
                return None
            if name in TIME_FIELDS:
                return "time"
            v = sample_fields[name]
            if isinstance(v, bool):
                return "bool"
            if isinstance(v, (int, float)):
                return "num"
            return "str"
        return kind

    def _parse_time(self, text):
        if not isinstance(text, str):
            raise ValueError("not a date/time")
        t = text.strip()
        if t.endswith("Z") or (len(t) > 19 and t[-6] in "+-" and t[-3] == ":"):
            ms = fhir_ms(t if "T" in t else t + "T00:00:00Z")
            if ms is None:
                raise ValueError("invalid date/time %r" % text)
            return ms
        return self.tz.parse(t, ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"))

    def h_list(self, req, coll, person=None):
        self._session(req)
        if person is not None:
            pv = self.ctx.store.get("Patient", person)
            if pv is None or pv.deleted:
                self.fail(404, "Person %s was not found." % person)
        q = dict(req.query)
        try:
            top = self.int_param(q.get("$top"), DEFAULT_TOP, 0, MAX_TOP)
            skip = self.int_param(q.get("$skip"), 0)
        except ValueError as exc:
            self.fail(400, "Invalid $top/$skip: %s" % exc)
        vs = self.versions(coll, patient=person)
        recs = [self.record(v, coll) for v in vs]
        sample = dict(recs[0]) if recs else {}
        if not sample:
            # field names are known even for an empty list: project a neutral record
            sample = {k: "" for k in ("createTimestamp", "modifyTimestamp", coll.id_field)}
        kind = self._field_kind(sample)
        try:
            ast = parse_filter(q.get("$filter", ""), self._parse_time)
            order = parse_orderby(q.get("$orderby", ""), kind)
            if ast is not None:
                recs = [r for r in recs if evaluate(ast, r, kind, self._parse_time)]
            elif coll.name == "appointments":
                now = self.ctx.clock.now_ms()
                recs = [r for r in recs if r.get("appointmentDate") and now <= self._parse_time(r["appointmentDate"]) < now + 7 * 86_400_000]
        except (ODataError, ValueError) as exc:
            self.fail(400, "The query specified in the URI is not valid. %s" % exc)
        for field, desc in reversed(order):
            recs.sort(key=lambda r: (r.get(field) is None, r.get(field) if r.get(field) is not None else ""), reverse=desc)
        total = len(recs)
        if self.is_dup(req) and skip > 0:
            skip -= 1
        page = recs[skip:skip + top]
        out = {"items": page}
        if (q.get("$count") or "").lower() == "true":
            out["count"] = total
        return json_response(out)

    def h_read(self, req, coll, nid, person=None):
        self._session(req)
        v = self.get_version(coll, nid)
        if v is None or v.deleted or (person is not None and v.patient != person):
            self.fail(404, "%s %s was not found." % (coll.id_field, nid))
        return json_response(self.record(v, coll))

    # -- info --------------------------------------------------------------------------------
    def ready_info(self, urls):
        out = {}
        for scheme, u in urls.items():
            out[scheme] = {"base": u + API, "token": u + TOKEN_PATH, "admin": u + "/_sim"}
        primary = out.get("https") or out.get("http")
        e, p = sorted(self.pairs)[0]
        return {"api_base": primary["base"], "token_url": primary["token"], "endpoints": out,
                "site_id": self.site_id, "enterprise_id": e, "practice_id": p}


VENDORS = {"nextgen": NextGen}
