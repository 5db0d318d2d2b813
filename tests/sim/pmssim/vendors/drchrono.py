"""DrChrono REST API (v4).  pms-interfaces.md section 8.

Auth: OAuth2 authorization code + refresh token at /o/authorize/ and /o/token/.
  - GET /o/authorize/?response_type=code&client_id=&redirect_uri=&scope=&state= consents at once
    (no browser) and redirects (302) to redirect_uri?code=...&state=...
  - POST /o/token/ grant_type=authorization_code (code single use, 10 min) or
    grant_type=refresh_token; client_id + client_secret in the form (or HTTP Basic).
  - Refresh-token ROTATION: every refresh issues a new refresh token and the old one becomes
    invalid at once -> 400 {"error": "invalid_grant"} when reused (--refresh-grace-s N keeps the
    old one valid N s, answering with the same new pair). Seed the initial refresh token with
    --refresh-token TOKEN or --refresh-token-file FILE (or admin POST /_sim/vendor/refresh-token).
  - Access tokens last --token-ttl (172800 s = 48 h).
API: /api/<collection> lists {"previous", "results", "next"} (cursor + page_size, follow next),
  /api/<collection>/<id> detail; `since` (updated_at >= since, inclusive, local time) on every
  list; deletions are soft: appointments `deleted_flag: true`, other collections `archived: true`
  [U], served with `since` (or show_archived=true) and stamped with the deletion time.
Rate limits: 500 requests per clock hour (fixed, resets at the top of the hour) plus a burst
  limit (default 9 per rolling second: "throttle at >= 10 calls within 1 s"); 429
  {"detail": "Request was throttled."} with NO Retry-After or rate-limit headers.
"""

import base64
import json
import secrets
import threading
import time
import urllib.parse

from ..api.native import (Collection, NativeVendor, coding, fhir_date_parts, fhir_ms, first,
                          number_id, ref_id)
from ..core.auth import AuthFailure
from ..core.datagen import VACCINES
from ..core.http import HttpError, Response, json_response

SCOPES = ["user:read", "user:write", "calendar:read", "calendar:write", "patients:read",
          "patients:write", "patients:summary:read", "billing:read", "billing:write",
          "clinical:read", "clinical:write", "labs:read", "labs:write"]

APPT_STATUS = {"booked": "Confirmed", "pending": "", "arrived": "Arrived", "fulfilled": "Complete",
               "cancelled": "Cancelled", "noshow": "No Show", "proposed": "", "checked-in": "Checked In"}

# collection -> (scope needed, max page_size)
API = {
    "patients": ("patients:read", 1000), "appointments": ("calendar:read", 250),
    "line_items": ("billing:read", 1000), "problems": ("clinical:read", 1000),
    "medications": ("clinical:read", 1000), "patient_vaccine_records": ("clinical:read", 1000),
    "doctors": ("user:read", 1000), "offices": ("user:read", 1000),
    "inventory_vaccines": ("clinical:read", 1000),
}
DEFAULT_PAGE = 100


def _date(text):
    p = fhir_date_parts(text)
    return "%04d-%02d-%02d" % p if p else None


class DrChrono(NativeVendor):
    name = "drchrono"
    summary = "DrChrono REST API v4 (OAuth2 code + rotating refresh tokens, cursor paging)"
    id_bases = {"Patient": 63000000, "Appointment": 150000000, "ChargeItem": 41000000,
                "Condition": 8800000, "MedicationRequest": 12000000, "Immunization": 900000,
                "Practitioner": 280000, "Location": 300000, "SupplyDelivery": 5000}
    defaults = {"token_ttl": 172800.0, "rate_limit": "500/3600", "rate_limit_mode": "fixed",
                "retry_after_style": "none"}
    deletion_summary = ("soft deletes: appointments deleted_flag=true, other collections archived=true [U]; "
                        "visible in `since` listings and detail reads")

    @classmethod
    def add_arguments(cls, parser):
        super().add_arguments(parser)
        parser.add_argument("--burst-limit", default="9/1",
                            help="burst throttle N/W (rolling), default 9/1: the 10th call within 1 s is throttled")
        parser.add_argument("--refresh-token", action="append", default=[],
                            help="seed a valid refresh token (repeatable)")
        parser.add_argument("--refresh-token-file",
                            help="file whose first line is a valid initial refresh token")
        parser.add_argument("--refresh-grace-s", type=float, default=0.0,
                            help="seconds a rotated refresh token stays usable (default 0)")
        parser.add_argument("--code-ttl", type=float, default=600.0, help="authorization code lifetime (s)")

    def __init__(self, ctx):
        super().__init__(ctx)
        a = ctx.args
        self.lock = threading.Lock()
        self.codes = {}       # code -> {client, redirect_uri, scope, expires}
        self.refresh = {}     # refresh token -> {client, scope, state, rotated_at, successor, pair}
        self.refresh_grace_s = a.refresh_grace_s
        self.code_ttl = a.code_ttl
        ctx.set_rate_limit("burst", a.burst_limit, "rolling")
        ctx.add_runtime_hook(self._get_rt, self._set_rt)

    def _get_rt(self):
        lim = self.ctx.limiters.get("burst")
        return {"burst_limit": "off" if lim is None else "%d/%g" % (lim.limit, lim.window),
                "refresh_grace_s": self.refresh_grace_s}

    def _set_rt(self, cfg):
        if "burst_limit" in cfg:
            self.ctx.set_rate_limit("burst", cfg.pop("burst_limit"), "rolling")
        if "refresh_grace_s" in cfg:
            self.refresh_grace_s = float(cfg.pop("refresh_grace_s"))

    def setup(self):
        super().setup()
        a = self.ctx.args
        seeds = list(a.refresh_token or [])
        if a.refresh_token_file:
            with open(a.refresh_token_file, encoding="utf-8") as fh:
                line = fh.readline().strip()
                if line:
                    seeds.append(line)
        for tok in seeds:
            self.refresh[tok] = {"client": a.client_id, "scope": " ".join(SCOPES), "state": "active"}

    # -- collections -------------------------------------------------------------------------
    def build_collections(self):
        dt = lambda ms: self.tz.fmt(ms, "%Y-%m-%dT%H:%M:%S")  # noqa: E731
        self.dt = dt

        def archived(rec):
            rec["archived"] = True

        def deleted_flag(rec):
            rec["deleted_flag"] = True

        def C(name, ftype, proj, tomb=archived, pf="patient"):
            return Collection(name, ftype, "id", proj, "updated_at", dt, "tombstone", tomb, pf)
        return [
            C("patients", "Patient", self.p_patient, pf=None),
            C("appointments", "Appointment", self.p_appointment, deleted_flag),
            C("line_items", "ChargeItem", self.p_line_item),
            C("problems", "Condition", self.p_problem),
            C("medications", "MedicationRequest", self.p_medication),
            C("patient_vaccine_records", "Immunization", self.p_vaccine_record),
            C("doctors", "Practitioner", self.p_doctor, pf=None),
            C("offices", "Location", self.p_office, pf=None),
            C("inventory_vaccines", "SupplyDelivery", self.p_inventory_vaccine, pf=None),
        ]

    def p_patient(self, r, v):
        name = first(r.get("name"), {})
        given = name.get("given") or [""]
        addr = first(r.get("address"), {})
        phones = {t.get("use"): t.get("value") for t in r.get("telecom", ()) if t.get("system") == "phone"}
        email = first([t.get("value") for t in r.get("telecom", ()) if t.get("system") == "email"], "")
        mrn = first([i.get("value") for i in r.get("identifier", ())], "")
        return {"id": int(v.id), "chart_id": mrn, "first_name": given[0], "middle_name": " ".join(given[1:]),
                "last_name": name.get("family", ""), "nick_name": "",
                "date_of_birth": _date(r.get("birthDate")),
                "gender": {"female": "Female", "male": "Male"}.get(r.get("gender"), "Other"),
                "address": first(addr.get("line"), ""), "city": addr.get("city", ""),
                "state": addr.get("state", ""), "zip_code": addr.get("postalCode", ""),
                "cell_phone": phones.get("mobile", ""), "home_phone": phones.get("home", ""),
                "email": email, "doctor": number_id(ref_id(first(r.get("generalPractitioner")), "Practitioner")),
                "patient_status": "A" if r.get("active", True) else "I",
                "preferred_language": coding(first(r.get("communication"), {}).get("language")).get("code", ""),
                "archived": False}

    def p_appointment(self, r, v):
        prac = loc = pat = None
        for p in r.get("participant", ()):
            ref = (p.get("actor") or {}).get("reference", "")
            if ref.startswith("Patient/"):
                pat = ref[8:]
            elif ref.startswith("Practitioner/"):
                prac = ref[13:]
            elif ref.startswith("Location/"):
                loc = ref[9:]
        start = fhir_ms(r.get("start"))
        reason = coding(first(r.get("reasonCode"), {}))
        return {"id": int(v.id), "patient": number_id(pat), "doctor": number_id(prac), "office": number_id(loc),
                "exam_room": 1, "scheduled_time": self.dt(start) if start is not None else None,
                "duration": r.get("minutesDuration", 30), "status": APPT_STATUS.get(r.get("status"), ""),
                "reason": r.get("description", ""), "notes": (r.get("cancelationReason") or {}).get("text", ""),
                "icd10_codes": [reason["code"]] if reason.get("code") else [], "deleted_flag": False}

    def p_line_item(self, r, v):
        c = coding(r.get("code"))
        units = (r.get("quantity") or {}).get("value", 1)
        total = (r.get("priceOverride") or {}).get("value", 0.0)
        paid = round(total * 0.8, 2) if r.get("status") == "billed" else 0.0
        return {"id": int(v.id), "patient": number_id(ref_id(r.get("subject"), "Patient")),
                "doctor": number_id(ref_id(first(r.get("performer"), {}).get("actor"), "Practitioner")),
                "appointment": None, "code": c.get("code", ""), "procedure_type": "C",
                "description": c.get("display", ""), "units": units,
                "price": "%.2f" % (total / units if units else total), "billed": "%.2f" % total,
                "paid_total": "%.2f" % paid, "balance_total": "%.2f" % (total - paid),
                "adjustment": "0.00", "billing_status": r.get("status", ""),
                "service_date": _date(r.get("occurrenceDateTime")), "posted_date": _date(r.get("enteredDate")),
                "archived": False}

    def p_problem(self, r, v):
        icd = coding(r.get("code"), "icd-10")
        status = coding(r.get("clinicalStatus")).get("code", "active")
        return {"id": int(v.id), "patient": number_id(ref_id(r.get("subject"), "Patient")),
                "doctor": number_id(ref_id(r.get("recorder"), "Practitioner")),
                "name": (r.get("code") or {}).get("text", ""), "icd_code": icd.get("code", ""),
                "icd_version": "10", "status": status if status in ("active", "inactive", "resolved") else "active",
                "date_diagnosis": _date(r.get("recordedDate")), "date_onset": _date(r.get("onsetDateTime")),
                "notes": "", "archived": False}

    def p_medication(self, r, v):
        med = r.get("medicationCodeableConcept") or {}
        c = coding(med)
        return {"id": int(v.id), "patient": number_id(ref_id(r.get("subject"), "Patient")),
                "doctor": number_id(ref_id(r.get("requester"), "Practitioner")),
                "name": med.get("text", ""), "rxnorm": c.get("code", ""),
                "status": "active" if r.get("status") in ("active", "on-hold") else "inactive",
                "sig": (first(r.get("dosageInstruction"), {}) or {}).get("text", ""),
                "number_refills": ((r.get("dispenseRequest") or {}).get("numberOfRepeatsAllowed", 0)),
                "date_prescribed": _date(r.get("authoredOn")), "archived": False}

    def p_vaccine_record(self, r, v):
        vc = r.get("vaccineCode") or {}
        return {"id": int(v.id), "patient": number_id(ref_id(r.get("patient"), "Patient")),
                "doctor": number_id(ref_id(first(r.get("performer"), {}).get("actor"), "Practitioner")),
                "cvx_code": coding(vc).get("code", ""), "name": vc.get("text", ""),
                "administered_date": _date(r.get("occurrenceDateTime")), "lot_number": r.get("lotNumber", ""),
                "archived": False}

    def p_doctor(self, r, v):
        name = first(r.get("name"), {})
        phone = first([t.get("value") for t in r.get("telecom", ()) if t.get("system") == "phone"], "")
        return {"id": int(v.id), "first_name": first(name.get("given"), ""), "last_name": name.get("family", ""),
                "suffix": first(name.get("suffix"), ""), "npi_number": first([i.get("value") for i in r.get("identifier", ())], ""),
                "office_phone": phone, "is_account_suspended": not r.get("active", True), "archived": False}

    def p_office(self, r, v):
        addr = r.get("address") or {}
        phone = first([t.get("value") for t in r.get("telecom", ()) if t.get("system") == "phone"], "")
        return {"id": int(v.id), "name": r.get("name", ""), "address": first(addr.get("line"), ""),
                "city": addr.get("city", ""), "state": addr.get("state", ""), "zip_code": addr.get("postalCode", ""),
                "phone_number": phone, "online_scheduling": False, "archived": False}

    def p_inventory_vaccine(self, r, v):
        n = int(v.id)
        cvx, name = VACCINES[n % len(VACCINES)]
        when = fhir_ms(r.get("occurrenceDateTime")) or 0
        return {"id": n, "name": name, "cvx_code": cvx, "manufacturer": (r.get("supplier") or {}).get("display", ""),
                "lot_number": "LOT%05d" % (n * 7919 % 100000),
                "current_quantity": ((r.get("suppliedItem") or {}).get("quantity") or {}).get("value", 0),
                "expiry": time.strftime("%Y-%m-%d", time.gmtime(when / 1000 + 365 * 86400)),
                "status": "inactive" if r.get("status") == "abandoned" else "active",
                "category": None, "archived": False}

    # -- responses ---------------------------------------------------------------------------
    def error_response(self, req, status, code, message, headers=None):
        return json_response({"detail": message}, status, headers=headers)

    def throttle_response(self, req, retry_after_s, style=None):
        return json_response({"detail": "Request was throttled."}, 429,
                             headers=self.retry_after_headers(retry_after_s, style or "none"))

    def auth_failure_response(self, req, exc):
        if exc.status == 403:
            return json_response({"detail": "You do not have permission to perform this action."}, 403)
        return json_response({"detail": "Authentication credentials were not provided."}, 401,
                             headers=[("WWW-Authenticate", 'Bearer realm="api"')])

    def not_found(self, req):
        return json_response({"detail": "Not found."}, 404)

    def fail(self, status, message):
        raise HttpError(json_response({"detail": message}, status))

    # -- routing -----------------------------------------------------------------------------
    def route(self, req):
        path = req.path
        if path in ("/o/token/", "/o/token"):
            return "token", self.h_token, "token"
        if path in ("/o/authorize/", "/o/authorize"):
            return "authorize", self.h_authorize, "token"
        if path.startswith("/api/"):
            segs = [s for s in path[5:].split("/") if s]
            if not segs or segs[0] not in API:
                return None
            if len(segs) == 1:
                return "list:" + segs[0], lambda r: self.h_list(r, segs[0]), ("api", "burst")
            if len(segs) == 2:
                return "read:" + segs[0], lambda r: self.h_read(r, segs[0], segs[1]), ("api", "burst")
        return None

    # -- OAuth -------------------------------------------------------------------------------
    def _oauth_error(self, status, error, description, headers=None):
        if status != 401:
            self.ctx.stats.inc("auth_failures")
        return json_response({"error": error, "error_description": description}, status,
                             headers=[("Cache-Control", "no-store")] + list(headers or []))

    def _client_auth(self, req, form):
        authz = req.header("authorization", "")
        if authz[:6].lower() == "basic ":
            try:
                raw = base64.b64decode(authz[6:].strip(), validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return None
            cid, _, secret = raw.partition(":")
            cid, secret = urllib.parse.unquote_plus(cid), urllib.parse.unquote_plus(secret)
        else:
            cid, secret = form.get("client_id", ""), form.get("client_secret", "")
        client = self.ctx.registry.get(cid)
        if client is None or not client.secret or not secrets.compare_digest(client.secret.encode(), secret.encode()):
            return None
        return client

    def h_authorize(self, req):
        q = dict(req.query)
        client = self.ctx.registry.get(q.get("client_id", ""))
        redirect = q.get("redirect_uri", "")
        if client is None or not redirect:
            return self._oauth_error(400, "invalid_request", "unknown client_id or missing redirect_uri")
        if q.get("response_type") != "code":
            return self._oauth_error(400, "unsupported_response_type", "response_type must be code")
        scope = q.get("scope") or " ".join(SCOPES)
        bad = [s for s in scope.split() if s not in SCOPES]
        if bad:
            return self._oauth_error(400, "invalid_scope", "unknown scope %s" % bad[0])
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = {"client": client.client_id, "redirect_uri": redirect, "scope": scope,
                                "expires": time.monotonic() + self.code_ttl}
        params = [("code", code)] + ([("state", q["state"])] if "state" in q else [])
        sep = "&" if "?" in redirect else "?"
        return Response(302, b"", headers=[("Location", redirect + sep + urllib.parse.urlencode(params))])

    def _issue(self, client_id, scope):
        ttl = float(self.ctx.args.token_ttl)
        info = self.ctx.tokens.issue(client_id, scope.split(), ttl)
        rt = secrets.token_urlsafe(30)
        self.refresh[rt] = {"client": client_id, "scope": scope, "state": "active"}
        self.ctx.stats.inc("tokens_issued")
        return {"access_token": info.token, "token_type": "Bearer", "expires_in": int(round(ttl)),
                "refresh_token": rt, "scope": scope}

    def h_token(self, req):
        self.ctx.stats.inc("token_requests")
        if req.method != "POST":
            return self._oauth_error(405, "invalid_request", "token endpoint requires POST")
        pairs = req.form()
        if pairs is None:
            return self._oauth_error(400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
        form = dict(pairs)
        client = self._client_auth(req, form)
        if client is None:
            return self._oauth_error(401, "invalid_client", "client authentication failed")
        grant = form.get("grant_type")
        with self.lock:
            if grant == "authorization_code":
                c = self.codes.pop(form.get("code", ""), None)
                if c is None or c["client"] != client.client_id or time.monotonic() > c["expires"]:
                    return self._oauth_error(400, "invalid_grant", "authorization code is invalid, expired or already used")
                if form.get("redirect_uri") != c["redirect_uri"]:
                    return self._oauth_error(400, "invalid_grant", "redirect_uri does not match the authorization request")
                body = self._issue(client.client_id, c["scope"])
            elif grant == "refresh_token":
                tok = form.get("refresh_token", "")
                rec = self.refresh.get(tok)
                if rec is None or rec["client"] != client.client_id:
                    return self._oauth_error(400, "invalid_grant", "refresh token is invalid")
                if rec["state"] == "rotated":
                    if time.monotonic() - rec["rotated_at"] < self.refresh_grace_s and rec.get("pair"):
                        body = rec["pair"]
                    else:
                        self.ctx.stats.inc("refresh_token_reuse")
                        return self._oauth_error(400, "invalid_grant", "refresh token has already been used (rotated)")
                else:
                    body = self._issue(client.client_id, rec["scope"])
                    rec.update(state="rotated", rotated_at=time.monotonic(), successor=body["refresh_token"], pair=body)
                    self.ctx.stats.inc("refresh_rotations")
            elif not grant:
                return self._oauth_error(400, "invalid_request", "grant_type is required")
            else:
                return self._oauth_error(400, "unsupported_grant_type", "grant_type %s is not supported" % grant)
        return json_response(body, 200, headers=[("Cache-Control", "no-store"), ("Pragma", "no-cache")])

    def require_token(self, req, scope):
        authz = req.header("authorization", "")
        if authz[:7].lower() != "bearer " or not authz[7:].strip():
            raise AuthFailure(401, "missing bearer token")
        info, reason = self.ctx.tokens.check(authz[7:].strip())
        if info is None:
            raise AuthFailure(401, reason)
        if scope not in info.scopes.scopes and scope.replace(":read", ":write") not in info.scopes.scopes:
            raise AuthFailure(403, "scope %s required" % scope)
        req.token = info
        return info

    # -- API ---------------------------------------------------------------------------------
    def _since(self, text):
        try:
            return self.tz.parse(text, ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M",
                                        "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"))
        except ValueError:
            self.fail(400, "Invalid `since` value %r: use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS" % text)

    def _encode_cursor(self, pos):
        return base64.urlsafe_b64encode(json.dumps({"p": pos}).encode()).decode().rstrip("=")

    def _decode_cursor(self, text):
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            return int(json.loads(raw)["p"])
        except (ValueError, KeyError, TypeError):
            raise HttpError(json_response({"detail": "Invalid cursor"}, 404)) from None

    def h_list(self, req, name):
        scope, max_page = API[name]
        self.require_token(req, scope)
        coll = self.by_name[name]
        q = dict(req.query)
        verbose = q.get("verbose") == "true"
        try:
            page_size = self.int_param(q.get("page_size"), DEFAULT_PAGE, 1, 25 if verbose else max_page)
        except ValueError:
            self.fail(400, "Invalid page_size")
        since_ms = self._since(q["since"]) if q.get("since") else None
        lo_ms = hi_ms = None
        if name == "appointments":
            if not any(k in q for k in ("since", "occurred_since", "date", "date_range")):
                self.fail(400, "One of `since`, `occurred_since`, `date` or `date_range` is required")
            if q.get("date"):
                lo_ms = self._since(q["date"])
                hi_ms = lo_ms + 86_400_000
            elif q.get("date_range"):
                a, _, b = q["date_range"].partition("/")
                lo_ms, hi_ms = self._since(a), self._since(b or a) + 86_400_000
                if hi_ms - lo_ms > 191 * 86_400_000:
                    self.fail(400, "date_range must not exceed 190 days")
            if q.get("occurred_since"):
                lo_ms = self._since(q["occurred_since"])
        show_deleted = since_ms is not None or q.get("show_archived") == "true"
        start = self._decode_cursor(q["cursor"]) if q.get("cursor") else -1
        patient = q.get("patient")
        doctor = q.get("doctor")
        cheap = doctor is None and lo_ms is None       # every candidate matches: fetch one page only
        vs = self.versions(coll, include_deleted=show_deleted, since_ms=since_ms,
                           patient=patient if coll.patient_field else None, after_pos=start,
                           limit=page_size + 1 if cheap else None)
        out, more = [], False
        dup = self.is_dup(req)
        for v in vs:
            rec = self.record(v, coll)
            if rec is None:
                continue
            if doctor is not None and str(rec.get("doctor")) != doctor:
                continue
            if lo_ms is not None and name == "appointments":
                st = rec.get("scheduled_time")
                try:
                    t = self.tz.parse(st, ("%Y-%m-%dT%H:%M:%S",)) if st else None
                except ValueError:
                    t = None
                if t is None or t < lo_ms or (hi_ms is not None and t >= hi_ms):
                    continue
            if len(out) == page_size:
                more = True
                break
            if verbose and name == "appointments":
                rec.update(custom_fields=[], status_transitions=[], reminders=[], vitals={}, clinical_note=None)
            out.append((v.pos, rec))
        nxt = None
        if more and out:
            anchor = out[-2][0] if (dup and len(out) >= 2) else out[-1][0]
            params = [(k, val) for k, val in req.query if k != "cursor"] + [("cursor", self._encode_cursor(anchor))]
            nxt = self.with_query(req, req.path, params)
        prev = None
        if start >= 0:
            prev = self.with_query(req, req.path, [(k, val) for k, val in req.query if k != "cursor"])
        return json_response({"previous": prev, "results": [r for _, r in out], "next": nxt})

    def h_read(self, req, name, nid):
        scope, _ = API[name]
        self.require_token(req, scope)
        coll = self.by_name[name]
        v = self.get_version(coll, nid)
        if v is None:
            return self.not_found(req)
        return json_response(self.record(v, coll))

    # -- info / admin ------------------------------------------------------------------------
    def ready_info(self, urls):
        out = {}
        for scheme, u in urls.items():
            out[scheme] = {"base": u + "/api", "token": u + "/o/token/", "authorize": u + "/o/authorize/",
                           "admin": u + "/_sim"}
        primary = out.get("https") or out.get("http")
        return {"api_base": primary["base"], "token_url": primary["token"], "endpoints": out}

    def admin(self, req, sub):
        if sub == "refresh-token":
            if req.method == "POST":
                body = req.json()
                tok = body.get("token") or secrets.token_urlsafe(30)
                with self.lock:
                    self.refresh[tok] = {"client": body.get("client_id", self.ctx.args.client_id),
                                         "scope": body.get("scope", " ".join(SCOPES)), "state": "active"}
                return json_response({"token": tok})
            with self.lock:
                active = [t for t, r in self.refresh.items() if r["state"] == "active"]
                rotated = sum(1 for r in self.refresh.values() if r["state"] == "rotated")
            return json_response({"active": active, "rotated": rotated})
        return super().admin(req, sub)


VENDORS = {"drchrono": DrChrono}
