"""Epic (FHIR R4, SMART Backend Services).  pms-interfaces.md section 1.

- Base /api/FHIR/R4, token endpoint /oauth2/token (outside the FHIR base, like
  /interconnect-fhir-oauth/oauth2/token), private_key_jwt only (RS384, ES384, ES256).
- Strict search by default: patient-scoped types need patient/subject/_id; Patient needs _id,
  identifier, or a name part together with birthdate; other types need _id/identifier/name.
- No _history (population incremental sync = Group $export with _since).
- Paging: link[next] = {base}/{Type}?<original params>&_count=N&_page_token=<opaque>.
- Rate limits unpublished: off by default; when set, 429 + Retry-After (seconds).
"""

from ..fhir.app import US_CORE_TYPES, FhirVendor


class Epic(FhirVendor):
    name = "epic"
    summary = "Epic on FHIR (R4) with Backend Services auth and Group $export"
    types = US_CORE_TYPES + ["Appointment", "RelatedPerson", "Account"]
    id_style = "epic"
    base_path = "/api/FHIR/R4"
    token_path = "/oauth2/token"
    auth_methods = ("private_key_jwt",)
    jwt_algs = ("RS384", "ES384", "ES256")
    paging = "token"
    bundle_total = True
    sort_supported = False
    group_id = "e3iabhmS8rsueyz7vaimuiaSmfGvi.QwjVXJANlPOgR83"
    software = ("Epic", "November 2025")
    bulk_chunked = True
    strict_message = "This search requires a patient parameter (or _id/identifier)."
    defaults = {"strict_search": "on", "history": "off", "token_ttl": 3600.0,
                "retry_after_style": "seconds", "bulk_job_seconds": 2.0, "bulk_retry_after": 1}

    def strict_qualifies(self, rtype, names):
        if rtype == "Patient":
            return bool(names & {"_id", "identifier"}) or (
                bool(names & {"family", "given", "name"}) and "birthdate" in names)
        return super().strict_qualifies(rtype, names)


VENDORS = {"epic": Epic}
