"""Tebra (Kareo) FHIR R4.  pms-interfaces.md section 9 ("Newer Tebra surfaces").

- Base /fhir/R4 [U: host root documented only], token /smartauth/oauth/token with client
  credentials and a client secret (basic or post) -- no JWKS / private_key_jwt.
- Search not strict by default; _history served (simulator choice).
- 429 documented without headers: when a limit is set, 429 OperationOutcome, no Retry-After.
"""

from ..fhir.app import US_CORE_TYPES, FhirVendor


class TebraFhir(FhirVendor):
    name = "tebra-fhir"
    summary = "Tebra FHIR R4 (client secret auth)"
    types = US_CORE_TYPES + ["Appointment"]
    id_style = "numeric"
    base_path = "/fhir/R4"
    token_path = "/smartauth/oauth/token"
    auth_methods = ("client_secret_basic", "client_secret_post")
    jwt_algs = ()
    paging = "getpages"
    group_id = "tebra-all-patients"
    software = ("Tebra FHIR", "R4")
    defaults = {"strict_search": "off", "history": "on", "token_ttl": 3600.0,
                "retry_after_style": "none"}


VENDORS = {"tebra-fhir": TebraFhir}
