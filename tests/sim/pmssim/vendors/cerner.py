"""Oracle Health / Cerner Millennium (FHIR R4).  pms-interfaces.md section 2.

- Base /r4/{tenant}; another tenant -> 403 OperationOutcome "Tenant not valid or accessible".
- Token endpoint /tenants/{tenant}/protocols/oauth2/profiles/smart-v1/token;
  client_secret_basic (system account) or private_key_jwt (RS384/ES384);
  OAuth errors are {"error": ..., "error_uri": ...} (no description).
- Strict search: "No supported search parameters provided" (400) for unqualified searches.
- Date rules for _lastUpdated and date: one value (any prefix) or exactly one lower bound
  (gt/ge) plus one upper bound (lt/le); open-ended pairs (e.g. ge + gt) -> 400.
- Paging: link[next] = {base}/{Type}?<params>&_count=N&pageContext=<opaque>&direction=NEXT;
  no Bundle.total; _sort not honoured (ignored).
- Bulk: X-Progress "in-progress", Retry-After; _typeFilter not supported.
- Rate limits unpublished, no headers: when set, 429 OperationOutcome without Retry-After.
"""

from ..fhir.app import US_CORE_TYPES, FhirVendor

PUBLIC_SANDBOX_TENANT = "ec2458f2-1e24-41c8-b71b-0e701af7583d"


class Cerner(FhirVendor):
    name = "cerner"
    summary = "Oracle Health Millennium FHIR R4 (tenant in path)"
    types = US_CORE_TYPES + ["Appointment", "RelatedPerson", "Account", "ChargeItem"]
    id_style = "cerner"
    base_path = "/r4/{tenant}"
    tenant_arg = "tenant"
    tenant_denied_status = 403
    tenant_denied_message = "Tenant not valid or accessible"
    token_path = "/tenants/{tenant}/protocols/oauth2/profiles/smart-v1/token"
    auth_methods = ("client_secret_basic", "private_key_jwt")
    jwt_algs = ("RS384", "ES384")
    oauth_error_style = "cerner"
    token_type = "Bearer"
    paging = "cerner"
    bundle_total = False
    summary_count = False            # [U] _summary=count ignored (no Bundle.total at all)
    sort_supported = False
    progress_style = "cerner"
    group_id = "11ec-d16a-c763b73e-98e8-a31715e6a2bf"
    software = ("Millennium", "2025.01")
    bulk_chunked = True
    strict_message = "No supported search parameters provided"
    defaults = {"strict_search": "on", "history": "off", "token_ttl": 570.0,
                "retry_after_style": "none", "max_page_size": 200}

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--tenant", default=PUBLIC_SANDBOX_TENANT, help="tenant id (path segment)")

    def validate_search(self, req, rtype, pairs, query):
        for pname in ("_lastUpdated", "date"):
            vals = [v for k, v in pairs if k == pname]
            if len(vals) <= 1:
                continue
            lower = [v for v in vals if v[:2] in ("gt", "ge", "sa")]
            upper = [v for v in vals if v[:2] in ("lt", "le", "eb")]
            if len(vals) > 2 or len(lower) != 1 or len(upper) != 1:
                self.fail(req, 400, "invalid",
                          "%s must be a single value or a bounded range (one ge/gt and one le/lt)" % pname)


VENDORS = {"cerner": Cerner}
