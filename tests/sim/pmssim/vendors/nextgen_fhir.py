"""NextGen FHIR R4 with Bulk Data for backend clients.  pms-interfaces.md section 6 ("FHIR").

- Base /nge/prod/fhir-api-r4/fhir/r4 [V]; US Core resources [V].
- "Bulk FHIR via SMART Backend Services (NextGen Office and Enterprise)" [V]: private_key_jwt
  (RS384, ES384 as in SMART 0.1); the backend token path is not published
  [U: /nge/prod/fhir-api-r4/oauth/token]; Group id [U].
- The documented FHIR API is patient-access, so population searches are refused [U: strict
  on, like the other EHR FHIR servers of section 0.2]; no _history [U].
- Rate limits unpublished: off by default; when set, 429 + Retry-After (seconds) [U].
"""

from ..fhir.app import US_CORE_TYPES, FhirVendor


class NextGenFhir(FhirVendor):
    name = "nextgen-fhir"
    summary = "NextGen FHIR R4 (US Core) with Bulk Group $export for backend clients"
    types = list(US_CORE_TYPES)
    id_style = "uuid"
    base_path = "/nge/prod/fhir-api-r4/fhir/r4"
    token_path = "/nge/prod/fhir-api-r4/oauth/token"
    auth_methods = ("private_key_jwt",)
    jwt_algs = ("RS384", "ES384")
    paging = "getpages"
    group_id = "nextgen-all-patients"
    software = ("NextGen FHIR", "R4")
    defaults = {"strict_search": "on", "history": "off", "token_ttl": 3600.0,
                "retry_after_style": "seconds"}


VENDORS = {"nextgen-fhir": NextGenFhir}
