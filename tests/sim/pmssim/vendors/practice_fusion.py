"""Practice Fusion (FHIR R4 per organization).  pms-interfaces.md section 10.

- Base /fhir/r4/v1/{organizationId}; token {base}/token, introspect {base}/introspect,
  JWKS {base}/.well-known/jwk. Client auth: client secret (basic or post) or private_key_jwt.
- Search not strict by default; _history served (simulator choice).
- Rate limit undisclosed: off by default; when set, 429 with OperationOutcome
  issue.code=throttled and no rate-limit or Retry-After headers.
"""

from ..fhir.app import US_CORE_TYPES, FhirVendor


class PracticeFusion(FhirVendor):
    name = "practice-fusion"
    summary = "Practice Fusion FHIR R4 (per organization)"
    types = list(US_CORE_TYPES)
    id_style = "uuid"
    base_path = "/fhir/r4/v1/{tenant}"
    tenant_arg = "organization_id"
    tenant_denied_status = 404
    tenant_denied_message = "Organization not found"
    token_path = "{base}/token"
    auth_methods = ("client_secret_basic", "client_secret_post", "private_key_jwt")
    jwt_algs = ("RS384", "ES384")
    paging = "getpages"
    introspection = True
    group_id = "pf-all-patients"
    software = ("Practice Fusion FHIR", "1.0")
    defaults = {"strict_search": "off", "history": "on", "token_ttl": 3600.0,
                "retry_after_style": "none"}

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--organization-id", default="7d3a6c8e-1f0b-4b2a-9d5e-3c6f2a1b8e90")


VENDORS = {"practice-fusion": PracticeFusion}
