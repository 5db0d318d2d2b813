"""MEDITECH Greenfield / Expanse (FHIR R4, US Core STU6).  pms-interfaces.md section 7.

- Base /v2/uscore/STU6, token /oauth/token; client_secret_post, client_secret_basic or
  private_key_jwt (RS384/ES384) -- client credentials as enabled per customer.
- Search not strict by default (documentation silent); _history served (simulator choice).
- Paging {base}?_getpages=...; Bundle.total present.
- Rate limits unpublished: off by default; when set, 429 + Retry-After (seconds).
"""

from ..fhir.app import US_CORE_TYPES, FhirVendor


class Meditech(FhirVendor):
    name = "meditech"
    summary = "MEDITECH Greenfield FHIR R4 (US Core STU6)"
    types = list(US_CORE_TYPES)
    id_style = "uuid"
    base_path = "/v2/uscore/STU6"
    token_path = "/oauth/token"
    auth_methods = ("client_secret_post", "client_secret_basic", "private_key_jwt")
    jwt_algs = ("RS384", "ES384")
    paging = "getpages"
    group_id = "meditech-all-patients"
    software = ("MEDITECH Greenfield", "2.0")
    defaults = {"strict_search": "off", "history": "on", "token_ttl": 3600.0,
                "retry_after_style": "seconds"}


VENDORS = {"meditech": Meditech}
