"""eClinicalWorks (FHIR R4 per practice code).  pms-interfaces.md section 5.

- Base /fhir/r4/{practice_code}; unknown practice code -> 404.
- One authorization server: /oauth/oauth2/token, private_key_jwt with RS384 only.
- Bulk tokens (scope includes system/Group.read) may only be used for bulk endpoints and
  Group reads; search/read with such a token -> 403 (eCW: single-patient backend requests must
  not carry system/Group.read). Use a second token without Group.read for searches.
- Paging _count + link[next] ({base}?_getpages=...), Bundle.total present.
- Bulk: Content-Location {base}/$export-poll-location?job_id={id} and retry-after: 120 on the
  kick-off (scaled by --bulk-retry-after); polling earlier -> 429; an identical kick-off while
  one is running -> 429 OperationOutcome; DELETE on the poll location cancels.
- Rate limit: 250 requests/minute per practice code (rolling), 429 without Retry-After.
"""

from ..fhir.app import US_CORE_TYPES, FhirVendor


class EClinicalWorks(FhirVendor):
    name = "eclinicalworks"
    summary = "eClinicalWorks FHIR R4 (per practice code) with bulk $export"
    types = US_CORE_TYPES + ["ChargeItem", "Appointment"]
    id_style = "hex"
    base_path = "/fhir/r4/{tenant}"
    tenant_arg = "practice_code"
    tenant_denied_status = 404
    tenant_denied_message = "Practice code is not registered"
    token_path = "/oauth/oauth2/token"
    auth_methods = ("private_key_jwt",)
    jwt_algs = ("RS384",)
    paging = "getpages"
    bundle_total = True
    group_id = "ecw-all-patients"
    kickoff_retry_after = True
    bulk_status_style = "ecw"
    reject_duplicate_kickoff = True
    bulk_group_scope_split = True
    software = ("eClinicalWorks FHIR", "12.0")
    defaults = {"strict_search": "off", "history": "on", "token_ttl": 300.0,
                "rate_limit": "250/60", "rate_limit_mode": "rolling",
                "retry_after_style": "none", "bulk_retry_after": 120}

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--practice-code", default="JAFJCD", help="6-character practice code")


VENDORS = {"eclinicalworks": EClinicalWorks}
