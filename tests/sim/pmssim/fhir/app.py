"""FhirVendor: the FHIR R4 server shared by all FHIR vendor profiles.

Vendor profiles (pmssim/vendors/*.py) subclass FhirVendor and set class attributes (base path,
token path, auth methods, paging style, strictness, bulk flavour, ...) or override the small
hook methods (`strict_qualifies`, `validate_search`, `tenant_ok`, ...).

Endpoint keys (used by stats and fault rules):
  token, metadata, smart-config, search:<Type>, read:<Type>, vread:<Type>, history:<Type>,
  history:_all, history-instance:<Type>, group-read, bulk-kickoff, bulk-status, bulk-delete,
  bulk-file, introspect, jwks, tenant-denied
"""

import itertools
import json
import re
import secrets

from ..core import fhirmodel
from ..core.auth import AuthFailure, TokenService
from ..core.clock import TimeParseError, fmt_http_date, fmt_instant, parse_fhir_datetime
from ..core.http import HttpError, Response, json_response
from ..core.vendor import VendorApp
from .bulk import BulkManager
from .search import PAGING, CursorCodec, SearchError, bundle_bytes, parse_query

FHIR_JSON = "application/fhir+json"
US_CORE_TYPES = ["Patient", "Encounter", "Condition", "Observation", "Procedure",
                 "MedicationRequest", "AllergyIntolerance", "Immunization", "DiagnosticReport",
                 "DocumentReference", "Practitioner", "PractitionerRole", "Organization",
                 "Location", "Device", "Coverage"]


def outcome(code, diagnostics, severity="error"):
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}]}


class FhirVendor(VendorApp):
    # ---- profile (override in vendor modules) ----------------------------------------------
    base_path = "/fhir/r4"               # may contain {tenant}
    tenant_arg = None                    # args attribute holding the tenant value
    tenant_denied_status = 404
    tenant_denied_message = "Unknown tenant"
    token_path = "/oauth2/token"         # may contain {tenant} or start with {base}
    auth_methods = ("private_key_jwt",)
    jwt_algs = ("RS384", "ES384")
    oauth_error_style = "standard"       # 'standard' {error,error_description} | 'cerner' {error,error_uri}
    expires_in_string = False
    token_type = "bearer"
    paging = "getpages"                  # 'getpages' | 'cerner' | 'athena' | 'token'
    bundle_total = True
    summary_count = True                 # _summary=count answered (a total-only Bundle); else ignored
    sort_supported = True
    strict_message = "Required search parameters are missing"
    required_params = ()                 # e.g. athena ('ah-practice',)
    extra_params = ()                    # accepted and ignored (tenancy params)
    group_id = "all-patients"
    kickoff_retry_after = False          # eCW: Retry-After on the kick-off response
    bulk_status_style = "path"           # 'path' ({base}/bulkstatus/{id}) | 'ecw' ($export-poll-location)
    reject_duplicate_kickoff = False
    typefilter_supported = False
    patient_export_compartment_only = False
    bulk_chunked = False
    bulk_min_interval_s = 0
    progress_style = "percent"           # 'percent' | 'cerner'
    software = ("pmssim FHIR", "1.0")
    introspection = False
    bulk_group_scope_split = False       # eCW: tokens with system/Group.read are bulk-only

    def __init__(self, ctx):
        super().__init__(ctx)
        a = ctx.args
        self.tenant = getattr(a, self.tenant_arg) if self.tenant_arg else None
        base = a.base_path or self.base_path
        self.base_template = base.rstrip("/")
        self.canonical_base = self.base_template.replace("{tenant}", self.tenant or "")
        pat = re.escape(self.base_template).replace(re.escape("{tenant}"), "(?P<tenant>[^/]+)")
        self.base_re = re.compile("^" + pat + "(?=/|$)")
        tp = self.token_path.replace("{base}", self.canonical_base).replace("{tenant}", self.tenant or "")
        self.token_path_resolved = tp
        self.cursors = CursorCodec()
        self._totals = {}
        self.bulk = BulkManager(self)
        self.bulk_job_seconds = a.bulk_job_seconds
        self.bulk_retry_after = a.bulk_retry_after
        self.bulk_file_max = a.bulk_file_max
        self.tokens_service = TokenService(
            ctx.clock, ctx.registry, ctx.tokens, self.auth_methods, self.jwt_algs,
            lambda: float(ctx.args.token_ttl), leeway_s=a.jwt_leeway,
            error_body=self.oauth_error_body, expires_in_string=self.expires_in_string,
            token_type=self.token_type, stats=ctx.stats)
        ctx.add_runtime_hook(self._get_runtime, self._set_runtime)

    # ---- runtime config ----------------------------------------------------------------
    _RUNTIME = ("strict_search", "history", "bulk_job_seconds", "bulk_retry_after",
                "bulk_file_max", "page_size", "max_page_size", "bulk_chunked",
                "bulk_min_interval_s")

    def _get_runtime(self):
        a = self.ctx.args
        return {"strict_search": a.strict_search, "history": a.history,
                "bulk_job_seconds": self.bulk_job_seconds, "bulk_retry_after": self.bulk_retry_after,
                "bulk_file_max": self.bulk_file_max, "page_size": a.page_size,
                "max_page_size": a.max_page_size, "bulk_chunked": self.bulk_chunked,
                "bulk_min_interval_s": self.bulk_min_interval_s}

    def _set_runtime(self, cfg):
        a = self.ctx.args
        for k in list(cfg):
            if k not in self._RUNTIME:
                continue
            v = cfg.pop(k)
            if k in ("strict_search", "history"):
                if v not in ("on", "off"):
                    raise ValueError("%s must be on or off" % k)
                setattr(a, k, v)
            elif k in ("page_size", "max_page_size"):
                setattr(a, k, int(v))
            elif k == "bulk_job_seconds":
                self.bulk_job_seconds = float(v)
            elif k == "bulk_retry_after":
                self.bulk_retry_after = int(v)
            elif k == "bulk_file_max":
                self.bulk_file_max = int(v)
            elif k == "bulk_chunked":
                self.bulk_chunked = bool(v)
            elif k == "bulk_min_interval_s":
                self.bulk_min_interval_s = float(v)

    # ---- helpers -----------------------------------------------------------------------
    def oauth_error_body(self, error, description):
        if self.oauth_error_style == "cerner":
            return {"error": error, "error_uri": "https://authorization.cerner.com/errors/%s" % error}
        return {"error": error, "error_description": description}

    def error_response(self, req, status, code, message, headers=None):
        return json_response(outcome(code, message), status, FHIR_JSON, headers)

    def throttle_response(self, req, retry_after_s, style=None):
        return self.error_response(req, 429, "throttled", "Request rate limit exceeded",
                                   headers=self.retry_after_headers(retry_after_s, style))

    def auth_failure_response(self, req, exc):
        headers = [("WWW-Authenticate", exc.www_authenticate)] if exc.www_authenticate else None
        code = {401: "login", 403: "forbidden"}.get(exc.status, "security") if exc.code in ("security", "login") else exc.code
        return self.error_response(req, exc.status, code, exc.description, headers)

    def base_url(self, req):
        return req.origin + req.route_params.get("base", self.canonical_base)

    def token_url(self, req):
        return req.origin + self.token_path_resolved

    def bulk_status_url(self, req, jid):
        if self.bulk_status_style == "ecw":
            return "%s/$export-poll-location?job_id=%s" % (self.base_url(req), jid)
        return "%s/bulkstatus/%s" % (self.base_url(req), jid)

    def progress_text(self, pct):
        if self.progress_style == "cerner":
            return "in-progress"
        return "in-progress (%d%%)" % pct

    def require_token(self, req):
        info = self.tokens_service.check_bearer(req, realm=self.name)
        req.token = info
        return info

    def require_scope(self, req, rtype, interaction):
        info = req.token or self.require_token(req)
        if self.bulk_group_scope_split and info.scopes.allows("Group", "read") and not req.endpoint.startswith(("bulk", "group")):
            raise AuthFailure(403, "A bulk access token (system/Group.read) cannot be used for single-patient requests",
                              code="forbidden")
        if not info.scopes.allows(rtype, interaction):
            raise AuthFailure(403, "Access token does not permit %s of %s" % (interaction, rtype), code="forbidden")
        return info

    def fail(self, req, status, code, message, headers=None):
        raise HttpError(self.error_response(req, status, code, message, headers))

    def strict(self):
        return self.ctx.args.strict_search == "on"

    def page_size(self, req):
        raw = req.param("_count")
        if raw is None:
            return int(self.ctx.args.page_size)
        try:
            n = int(raw)
        except ValueError:
            self.fail(req, 400, "invalid", "_count must be an integer")
        if n < 0:
            self.fail(req, 400, "invalid", "_count must not be negative")
        return max(1, min(n, int(self.ctx.args.max_page_size)))

    # ---- hooks (override per vendor) ---------------------------------------------------
    def tenant_ok(self, tenant):
        return tenant == self.tenant

    def strict_qualifies(self, rtype, names):
        if rtype == "Patient":
            return bool(names & {"_id", "identifier", "family", "given", "name", "birthdate"})
        if rtype in fhirmodel.PATIENT_SCOPED:
            return bool(names & {"_id", "patient", "subject", "beneficiary"})
        return bool(names & {"_id", "identifier", "name"})

    def validate_search(self, req, rtype, pairs, query):
        """Vendor-specific search rules; raise via self.fail()."""

    def check_required_params(self, req):
        for p in self.required_params:
            if req.param(p) is None:
                self.fail(req, 400, "required", "The %s parameter is required" % p)

    # ---- routing -----------------------------------------------------------------------
    def route(self, req):
        path = req.path
        if path.rstrip("/") == self.token_path_resolved:
            return "token", self.h_token, "token"
        m = self.base_re.match(path)
        if not m:
            return None
        tenant = m.groupdict().get("tenant")
        if tenant is not None and not self.tenant_ok(tenant):
            return "tenant-denied", self.h_tenant_denied, "api"
        req.route_params["base"] = m.group(0)
        segs = [s for s in path[m.end():].split("/") if s]
        method = req.method
        served = set(self.ctx.store.types())
        if not segs:
            tok = req.param("_getpages")
            if tok is not None:
                return self._page_endpoint(tok), self.h_page, "api"
            return None
        head = segs[0]
        if segs == ["metadata"]:
            return "metadata", self.h_metadata, "api"
        if segs == [".well-known", "smart-configuration"]:
            return "smart-config", self.h_smart_config, "api"
        if segs == [".well-known", "jwk"]:
            return "jwks", self.h_jwks, "api"
        if segs == ["introspect"] and self.introspection:
            return "introspect", self.h_introspect, "api"
        if segs == ["$export"]:
            return "bulk-kickoff", lambda r: self.bulk.kickoff(r, "system"), "api"
        if segs == ["$export-poll-location"] and self.bulk_status_style == "ecw":
            jid = req.param("job_id", "")
            if method == "DELETE":
                return "bulk-delete", lambda r: self.bulk.delete(r, jid), "api"
            return "bulk-status", lambda r: self.bulk.status(r, jid), "api"
        if head == "bulkstatus" and len(segs) == 2 and self.bulk_status_style == "path":
            if method == "DELETE":
                return "bulk-delete", lambda r: self.bulk.delete(r, segs[1]), "api"
            return "bulk-status", lambda r: self.bulk.status(r, segs[1]), "api"
        if head == "bulkfiles" and len(segs) == 3:
            return "bulk-file", lambda r: self.bulk.download(r, segs[1], segs[2]), "api"
        if segs == ["_history"]:
            if self._paging_token(req) is not None:
                return "history:_all", self.h_page, "api"
            return "history:_all", lambda r: self.h_history(r, None), "api"
        if head == "Group" and len(segs) == 3 and segs[2] == "$export":
            return "bulk-kickoff", lambda r: self.bulk.kickoff(r, "group", segs[1]), "api"
        if head == "Patient" and len(segs) == 2 and segs[1] == "$export":
            return "bulk-kickoff", lambda r: self.bulk.kickoff(r, "patient"), "api"
        if head == "Group" and len(segs) == 2:
            return "group-read", lambda r: self.h_group(r, segs[1]), "api"
        if head not in served:
            if head[:1].isupper():
                return "unsupported-type", lambda r: self.fail(
                    r, 404, "not-supported", "Resource type %s is not supported" % head), "api"
            return None
        if len(segs) == 1:
            if method == "GET":
                tok = self._paging_token(req)
                if tok is not None:
                    return "search:" + head, self.h_page, "api"
                return "search:" + head, lambda r: self.h_search(r, head, r.query), "api"
            return "search:" + head, lambda r: self.fail(r, 405, "not-supported", "Method not allowed"), "api"
        if len(segs) == 2 and segs[1] == "_search" and method == "POST":
            return "search:" + head, lambda r: self.h_search(r, head, r.form() or []), "api"
        if len(segs) == 2 and segs[1] == "_history":
            if self._paging_token(req) is not None:
                return "history:" + head, self.h_page, "api"
            return "history:" + head, lambda r: self.h_history(r, head), "api"
        if len(segs) == 2:
            return "read:" + head, lambda r: self.h_read(r, head, segs[1]), "api"
        if len(segs) == 3 and segs[2] == "_history":
            return "history-instance:" + head, lambda r: self.h_instance_history(r, head, segs[1]), "api"
        if len(segs) == 4 and segs[2] == "_history":
            return "vread:" + head, lambda r: self.h_vread(r, head, segs[1], segs[3]), "api"
        return None

    def _paging_token(self, req):
        if self.paging == "cerner":
            return req.param("pageContext")
        if self.paging == "athena":
            return req.param("cursor")
        if self.paging == "token":
            return req.param("_page_token")
        return None

    def _page_endpoint(self, tok):
        try:
            st = self.cursors.decode(tok)
            return ("history:" if st.get("m") == "h" else "search:") + (st.get("t") or "_all")
        except (SearchError, ValueError):
            return "search:?"

    # ---- auth / discovery endpoints ----------------------------------------------------
    def audiences(self, req):
        auds = {req.origin + self.token_path_resolved}
        for url in self.ctx.urls.values():
            auds.add(url + self.token_path_resolved)
        auds.add(req.origin.replace("127.0.0.1", "localhost") + self.token_path_resolved)
        return auds

    def h_token(self, req):
        status, body, headers = self.tokens_service.token_request(req, self.audiences(req))
        return json_response(body, status, "application/json", headers)

    def h_tenant_denied(self, req):
        return self.error_response(req, self.tenant_denied_status, "forbidden" if self.tenant_denied_status == 403 else "not-found",
                                   self.tenant_denied_message)

    def smart_configuration(self, req):
        token_url = self.token_url(req)
        base = self.base_url(req)
        cfg = {
            "issuer": base,
            "token_endpoint": token_url,
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": list(self.auth_methods),
            "scopes_supported": ["system/*.read", "system/*.rs"] +
                                ["system/%s.read" % t for t in self.ctx.store.types()] + ["system/Group.read"],
            "response_types_supported": ["token"],
            "capabilities": ["client-confidential-asymmetric" if "private_key_jwt" in self.auth_methods else "client-confidential-symmetric",
                             "permission-v1", "permission-v2"],
        }
        if "private_key_jwt" in self.auth_methods:
            cfg["token_endpoint_auth_signing_alg_values_supported"] = list(self.jwt_algs)
        if self.introspection:
            cfg["introspection_endpoint"] = base + "/introspect"
        return cfg

    def h_smart_config(self, req):
        return json_response(self.smart_configuration(req))

    def h_jwks(self, req):
        return json_response({"keys": []})

    def h_introspect(self, req):
        pairs = dict(req.form() or [])
        info, _ = self.ctx.tokens.check(pairs.get("token", ""))
        if info is None:
            return json_response({"active": False})
        return json_response({"active": True, "client_id": info.client_id, "scope": str(info.scopes),
                              "token_type": "Bearer"})

    def h_metadata(self, req):
        base = self.base_url(req)
        resources = []
        hist = self.ctx.args.history == "on"
        for t in sorted(self.ctx.store.types()):
            inter = [{"code": "read"}, {"code": "vread"}, {"code": "search-type"}]
            if hist:
                inter += [{"code": "history-type"}, {"code": "history-instance"}]
            params = [{"name": "_id", "type": "token"}, {"name": "_lastUpdated", "type": "date"}]
            if t in fhirmodel.PATIENT_SCOPED:
                params.append({"name": "patient", "type": "reference"})
            entry = {"type": t, "interaction": inter, "searchParam": params}
            if t == "Patient":  # Bulk Data IG: Patient-level export is declared on Patient
                entry["operation"] = [{"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"}]
            resources.append(entry)
        resources.append({"type": "Group", "interaction": [{"code": "read"}],
                          "operation": [{"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"}]})
        cap = {
            "resourceType": "CapabilityStatement", "status": "active", "kind": "instance",
            "date": fmt_instant(self.ctx.clock.now_ms(), "s"), "fhirVersion": "4.0.1",
            "format": ["json"], "software": {"name": self.software[0], "version": self.software[1]},
            "implementation": {"description": "%s (pmssim)" % self.name, "url": base},
            "rest": [{
                "mode": "server",
                "security": {
                    "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR"}]}],
                    "extension": [{"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                                   "extension": [{"url": "token", "valueUri": self.token_url(req)}]}]},
                "resource": resources,
                "interaction": ([{"code": "history-system"}] if hist else []),
                "operation": [{"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"}],
            }],
        }
        return json_response(cap, 200, FHIR_JSON)

    # ---- read ----------------------------------------------------------------------------
    def _resource_response(self, req, v):
        headers = [("ETag", 'W/"%d"' % v.vid), ("Last-Modified", fmt_http_date(v.ts))]
        return Response(200, v.body, headers=headers, content_type=FHIR_JSON)

    def h_read(self, req, rtype, rid):
        self.require_scope(req, rtype, "read")
        self.check_required_params(req)
        v = self.ctx.store.get(rtype, rid)
        if v is None:
            self.fail(req, 404, "not-found", "Resource %s/%s is not known" % (rtype, rid))
        if v.deleted:
            self.fail(req, 410, "deleted", "Resource %s/%s has been deleted" % (rtype, rid),
                      headers=[("ETag", 'W/"%d"' % v.vid)])
        return self._resource_response(req, v)

    def h_vread(self, req, rtype, rid, vid):
        self.require_scope(req, rtype, "read")
        for v in self.ctx.store.versions_of(rtype, rid):
            if str(v.vid) == vid:
                if v.deleted:
                    self.fail(req, 410, "deleted", "Version %s of %s/%s is a deletion" % (vid, rtype, rid))
                return self._resource_response(req, v)
        self.fail(req, 404, "not-found", "Version %s of %s/%s is not known" % (vid, rtype, rid))

    def h_group(self, req, gid):
        self.require_scope(req, "Group", "read")
        if gid != self.group_id:
            self.fail(req, 404, "not-found", "Group/%s is not known" % gid)
        with self.ctx.store.lock:
            members = [{"entity": {"reference": "Patient/" + v.id}} for v in self.ctx.store.live("Patient")]
            ts = self.ctx.store.log[-1].ts if self.ctx.store.log else self.ctx.clock.now_ms()
        group = {"resourceType": "Group", "id": gid,
                 "meta": {"lastUpdated": fmt_instant(ts, self.ctx.store.precision)},
                 "type": "person", "actual": True, "name": "All patients (pmssim)",
                 "quantity": len(members), "member": members}
        return json_response(group, 200, FHIR_JSON)

    # ---- search ----------------------------------------------------------------------------
    def h_search(self, req, rtype, pairs):
        self.require_scope(req, rtype, "search")
        self.check_required_params(req)
        strict_handling = "handling=strict" in (req.header("prefer") or "").lower()
        try:
            q = parse_query(rtype, pairs, self.ctx.store.types(), strict_handling, self.extra_params)
        except SearchError as exc:
            self.fail(req, exc.status, exc.code, str(exc))
        self.validate_search(req, rtype, pairs, q)
        if self.strict() and not self.strict_qualifies(rtype, q.names):
            self.fail(req, 400, "required", self.strict_message_for(rtype))
        sort = None
        raw_sort = req.param("_sort")
        if raw_sort and self.sort_supported:
            if raw_sort not in ("_lastUpdated", "-_lastUpdated"):
                self.fail(req, 400, "not-supported", "_sort=%s is not supported" % raw_sort)
            sort = raw_sort
        if req.param("_summary") == "count" and self.summary_count:
            return self._count_only(req, rtype, q)
        keep = [(k, v) for k, v in pairs if k not in PAGING and k != "_count" and not (k == "_sort" and sort is None)]
        state = {"m": "s", "t": rtype, "q": keep, "c": self.page_size(req), "k": None, "so": sort, "n": 0}
        return self._search_page(req, state)

    def _count_only(self, req, rtype, q):
        # FHIR R4 search.html#summary: _summary=count -> a searchset Bundle with total, no entries
        store = self.ctx.store
        with store.lock:
            total = sum(1 for v in store.live(rtype) if q.match(v))
            now_ms = self.ctx.clock.now_ms()
        body = bundle_bytes("searchset", secrets.token_hex(8), fmt_instant(now_ms, store.precision),
                            [("self", self._self_link(req))], [], total)
        return Response(200, body, content_type=FHIR_JSON)

    def strict_message_for(self, rtype):
        return self.strict_message

    def h_page(self, req):
        tok = req.param("_getpages") if self.paging == "getpages" else self._paging_token(req)
        try:
            state = self.cursors.decode(tok or "")
        except SearchError as exc:
            self.fail(req, exc.status, exc.code, str(exc))
        if self.paging == "cerner" and req.param("direction", "NEXT") != "NEXT":
            self.fail(req, 400, "not-supported", "Only direction=NEXT is supported")
        if state.get("m") == "h":
            if state.get("t"):
                self.require_scope(req, state["t"], "search")
            else:
                self.require_token(req)
            return self._history_page(req, state)
        self.require_scope(req, state["t"], "search")
        return self._search_page(req, state)

    def _next_link(self, req, state):
        tok = self.cursors.encode(state)
        base = self.base_url(req)
        rtype = state.get("t")
        if self.paging == "getpages":
            return "%s?_getpages=%s&_getpagesoffset=%d&_count=%d&_bundletype=%s" % (
                base, tok, (state["n"]) * state["c"], state["c"], "history" if state["m"] == "h" else "searchset")
        from urllib.parse import urlencode
        orig = [tuple(p) for p in state.get("q", [])]
        path = "%s/%s" % (base, rtype) if rtype else base
        if state["m"] == "h":
            path += "/_history"
        orig.append(("_count", str(state["c"])))
        if self.paging == "cerner":
            orig += [("pageContext", tok), ("direction", "NEXT")]
        elif self.paging == "athena":
            orig.append(("cursor", tok))
        else:
            orig.append(("_page_token", tok))
        return path + "?" + urlencode(orig)

    def _self_link(self, req):
        return req.url_for(req.target)

    def _search_page(self, req, state):
        store = self.ctx.store
        rtype = state["t"]
        try:
            q = parse_query(rtype, state["q"], store.types(), False, self.extra_params)
        except SearchError as exc:
            self.fail(req, exc.status, exc.code, str(exc))
        count, sort, last = state["c"], state["so"], state["k"]
        dup = req.fault is not None and req.fault.kind == "duplicate"
        with store.lock:
            now_ms = self.ctx.clock.now_ms()
            if q.ids is not None:
                cands = [store.current.get(rtype + "/" + i) for i in dict.fromkeys(q.ids)]
                cands = sorted((v for v in cands if v is not None), key=lambda v: v.pos)
            elif q.patient is not None:
                ids = store.by_patient.get((rtype, q.patient), ())
                cands = sorted({store.current[rtype + "/" + i] for i in ids}, key=lambda v: v.pos)
            else:
                cands = None
            if sort:
                pool = cands if cands is not None else list(store.live(rtype))
                matches = [v for v in pool if q.match(v)]
                rev = sort.startswith("-")
                matches.sort(key=lambda v: (v.ts, v.pos), reverse=rev)
                total = len(matches)
                if last is not None:
                    lk = tuple(last)
                    matches = [v for v in matches if ((v.ts, v.pos) < lk if rev else (v.ts, v.pos) > lk)]
                page = matches[:count + 1]
                keyf = lambda v: [v.ts, v.pos]  # noqa: E731
            else:
                if cands is None:
                    rows = store.rows.get(rtype, [])
                    start = 0 if last is None else last + 1
                    cur, prefix = store.current, rtype + "/"
                    cands_iter = (cur[prefix + rid] for rid in itertools.islice(rows, start, None))
                else:
                    cands_iter = (v for v in cands if last is None or v.pos > last)
                page = []
                for v in cands_iter:
                    if q.match(v):
                        page.append(v)
                        if len(page) > count:
                            break
                total = None
                if self.bundle_total:
                    # the total of a query is cached until the next change (cheap paging)
                    ck = (rtype, json.dumps(state["q"]), len(store.log))
                    total = self._totals.get(ck)
                    if total is None:
                        pool = cands if cands is not None else store.live(rtype)
                        total = sum(1 for v in pool if q.match(v))
                        if len(self._totals) > 256:
                            self._totals.clear()
                        self._totals[ck] = total
                keyf = lambda v: v.pos  # noqa: E731
        more = len(page) > count
        page = page[:count]
        base = json.dumps(self.base_url(req))[1:-1].encode()
        entries = [b'{"fullUrl":"%s/%s/%s","resource":%s,"search":{"mode":"match"}}'
                   % (base, v.type.encode(), v.id.encode(), v.body) for v in page]
        links = [("self", self._self_link(req))]
        if more:
            nxt = dict(state)
            nxt["n"] = state["n"] + 1
            anchor = page[-2] if (dup and len(page) >= 2) else page[-1]
            if dup and len(page) < 2:
                anchor = None
                nxt["k"] = last
            else:
                nxt["k"] = keyf(anchor)
            links.append(("next", self._next_link(req, nxt)))
        body = bundle_bytes("searchset", secrets.token_hex(8), fmt_instant(now_ms, self.ctx.store.precision),
                            links, entries, total if self.bundle_total else None)
        return Response(200, body, content_type=FHIR_JSON)

    # ---- history -------------------------------------------------------------------------
    def history_enabled(self):
        return self.ctx.args.history == "on"

    def h_history(self, req, rtype):
        if not self.history_enabled():
            self.fail(req, 400 if rtype else 404, "not-supported", "_history is not supported by this server")
        if rtype:
            self.require_scope(req, rtype, "search")
        else:
            self.require_token(req)
        since_ms = None
        since = req.params("_since")
        if since:
            try:
                since_ms = parse_fhir_datetime(since[-1])[0]
            except TimeParseError:
                self.fail(req, 400, "invalid", "Invalid _since value %r" % since[-1])
        for k, _ in req.query:
            if k not in ("_since", "_count", "_format") and k not in self.extra_params:
                if "handling=strict" in (req.header("prefer") or "").lower():
                    self.fail(req, 400, "not-supported", "Unsupported _history parameter %s" % k)
        with self.ctx.store.lock:
            # snapshot and Bundle.meta.lastUpdated are taken together: every change not in this
            # paging run has lastUpdated >= that time (so it is the next inclusive _since)
            snap = len(self.ctx.store.log)
            snap_ms = self.ctx.clock.now_ms()
        keep = [(k, v) for k, v in req.query if k in ("_since",)]
        state = {"m": "h", "t": rtype, "q": keep, "c": self.page_size(req), "k": None, "n": 0,
                 "hs": snap, "si": since_ms, "mt": snap_ms}
        return self._history_page(req, state)

    def _history_page(self, req, state):
        store = self.ctx.store
        rtype, since_ms, count = state["t"], state["si"], state["c"]
        upper = state["k"] if state["k"] is not None else state["hs"] + 1
        token = req.token
        dup = req.fault is not None and req.fault.kind == "duplicate"
        page = []
        with store.lock:
            now_ms = state.get("mt") or self.ctx.clock.now_ms()
            log = store.log
            i = min(upper - 1, len(log)) - 1
            while i >= 0:
                v = log[i]
                i -= 1
                if rtype is not None and v.type != rtype:
                    continue
                if since_ms is not None and v.ts < since_ms:
                    continue
                if token is not None and not token.scopes.allows(v.type, "search") and not token.scopes.allows(v.type, "read"):
                    continue
                page.append(v)
                if len(page) > count:
                    break
        more = len(page) > count
        page = page[:count]
        base = self.base_url(req)
        entries = []
        for v in page:
            full = "%s/%s/%s" % (base, v.type, v.id)
            lm = fmt_instant(v.ts, store.precision)
            if v.deleted:
                e = {"fullUrl": full, "request": {"method": "DELETE", "url": v.key},
                     "response": {"status": "204 No Content", "etag": 'W/"%d"' % v.vid, "lastModified": lm}}
                entries.append(json.dumps(e, separators=(",", ":")).encode())
            else:
                created = v.vid == 1
                req_part = {"method": "POST" if created else "PUT", "url": v.type if created else v.key}
                resp_part = {"status": "201 Created" if created else "200 OK", "etag": 'W/"%d"' % v.vid, "lastModified": lm}
                entries.append(b'{"fullUrl":' + json.dumps(full).encode() + b',"resource":' + v.body +
                               b',"request":' + json.dumps(req_part, separators=(",", ":")).encode() +
                               b',"response":' + json.dumps(resp_part, separators=(",", ":")).encode() + b"}")
        links = [("self", self._self_link(req))]
        if more:
            nxt = dict(state)
            nxt["n"] = state["n"] + 1
            anchor = page[-2] if (dup and len(page) >= 2) else page[-1]
            nxt["k"] = anchor.seq
            links.append(("next", self._next_link(req, nxt)))
        body = bundle_bytes("history", secrets.token_hex(8), fmt_instant(now_ms, store.precision), links, entries)
        return Response(200, body, content_type=FHIR_JSON)

    def h_instance_history(self, req, rtype, rid):
        if not self.history_enabled():
            self.fail(req, 400, "not-supported", "_history is not supported by this server")
        self.require_scope(req, rtype, "read")
        versions = self.ctx.store.versions_of(rtype, rid)
        if not versions:
            self.fail(req, 404, "not-found", "Resource %s/%s is not known" % (rtype, rid))
        state = {"m": "h", "t": rtype, "q": [], "c": 1000, "k": None, "n": 0,
                 "hs": len(self.ctx.store.log), "si": None}
        base = self.base_url(req)
        entries = []
        for v in reversed(versions):
            lm = fmt_instant(v.ts, self.ctx.store.precision)
            if v.deleted:
                entries.append(json.dumps({"fullUrl": "%s/%s" % (base, v.key), "request": {"method": "DELETE", "url": v.key},
                                           "response": {"status": "204 No Content", "etag": 'W/"%d"' % v.vid, "lastModified": lm}},
                                          separators=(",", ":")).encode())
            else:
                entries.append(b'{"fullUrl":' + json.dumps("%s/%s" % (base, v.key)).encode() + b',"resource":' + v.body +
                               b',"response":{"status":"200 OK","etag":"W/\\"' + str(v.vid).encode() + b'\\""}}')
        del state
        body = bundle_bytes("history", secrets.token_hex(8), fmt_instant(self.ctx.clock.now_ms(), self.ctx.store.precision),
                            [("self", self._self_link(req))], entries, len(entries))
        return Response(200, body, content_type=FHIR_JSON)

    # ---- info ----------------------------------------------------------------------------
    def ready_info(self, urls):
        out = {}
        for scheme, u in urls.items():
            out[scheme] = {"base": u + self.canonical_base, "token": u + self.token_path_resolved,
                           "smart_configuration": u + self.canonical_base + "/.well-known/smart-configuration",
                           "admin": u + "/_sim"}
        primary = out.get("https") or out.get("http")
        return {"fhir_base": primary["base"], "token_url": primary["token"], "endpoints": out,
                "group_id": self.group_id, "tenant": self.tenant}

    def info(self):
        a = self.ctx.args
        return {
            "vendor": self.name, "base_path": self.canonical_base, "token_path": self.token_path_resolved,
            "auth_methods": list(self.auth_methods), "jwt_algs": list(self.jwt_algs),
            "paging": self.paging, "bundle_total": self.bundle_total, "sort_supported": self.sort_supported,
            "strict_search": a.strict_search, "history": a.history, "group_id": self.group_id,
            "bulk_status_style": self.bulk_status_style, "kickoff_retry_after": self.kickoff_retry_after,
            "reject_duplicate_kickoff": self.reject_duplicate_kickoff, "required_params": list(self.required_params),
            "timestamp_precision": a.timestamp_precision, "retry_after_style": self.ctx.retry_after_style,
            "token_ttl": a.token_ttl, "bulk_jobs": self.bulk.describe(),
        }
