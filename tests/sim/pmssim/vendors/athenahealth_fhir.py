"""athenahealth FHIR R4.  pms-interfaces.md section 4 (FHIR part).

- Base /fhir/r4; every search and read must carry ah-practice=Organization/a-1.Practice-{id}
  (missing -> 400, another practice -> 403); ah-department / ah-brand accepted.
- Token /oauth2/v1/token: client_secret_basic (and private_key_jwt, SMART); expires_in is
  sent as a string.
- Strict search (practice-wide searches refused); no _history; Group $export for population.
- Paging: link[next] = {base}/{Type}?<params>&_count=N&cursor=<opaque>.
- Rate limits [U]: 100 requests/s API, 50 token requests/min; 429 + Retry-After (seconds).
"""

from ..core import ids
from ..fhir.app import US_CORE_TYPES, FhirVendor


class AthenaFhir(FhirVendor):
    name = "athenahealth-fhir"
    summary = "athenahealth FHIR R4 (ah-practice tenancy, cursor paging)"
    types = US_CORE_TYPES + ["Appointment"]
    base_path = "/fhir/r4"
    token_path = "/oauth2/v1/token"
    auth_methods = ("client_secret_basic", "private_key_jwt")
    jwt_algs = ("RS384", "ES384")
    expires_in_string = True
    paging = "athena"
    bundle_total = False
    summary_count = False            # [U] _summary=count ignored (no Bundle.total at all)
    required_params = ("ah-practice",)
    extra_params = ("ah-practice", "ah-department", "ah-brand")
    software = ("athenaOne FHIR", "R4")
    strict_message = "Practice-wide searches are not supported; provide a patient-specific parameter."
    defaults = {"strict_search": "on", "history": "off", "token_ttl": 3600.0,
                "rate_limit": "100/1", "token_rate_limit": "50/60", "retry_after_style": "seconds"}

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--practice-id", default="195900", help="athenaOne practice id")

    def __init__(self, ctx):
        super().__init__(ctx)
        self.practice = ctx.args.practice_id
        self.group_id = "a-%s.all-patients" % self.practice

    def id_factory(self):
        return ids.athena_ids(self.ctx.args.practice_id)

    def check_required_params(self, req):
        val = req.param("ah-practice")
        if val is None:
            self.fail(req, 400, "required", "The ah-practice parameter is required")
        if val != "Organization/a-1.Practice-%s" % self.practice:
            self.fail(req, 403, "forbidden", "Practice %s is not accessible to this client" % val)


VENDORS = {"athenahealth-fhir": AthenaFhir}
