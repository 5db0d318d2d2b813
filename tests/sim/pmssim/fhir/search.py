"""FHIR search: parameter parsing, matching, opaque cursors, Bundle assembly.

Supported parameters (others are ignored, or rejected with `Prefer: handling=strict`):
  all types        _id (comma list), _lastUpdated (repeatable; eq ne gt ge lt le sa eb ap), _count,
                   _sort (_lastUpdated | -_lastUpdated, where the vendor honours it)
  patient-scoped   patient, subject (Patient/x or x); Coverage also beneficiary
  Patient          identifier ([system|]value), family, given, name (prefix, case-insensitive;
                   :exact), birthdate (date prefixes), gender
  Practitioner, Organization, Location   identifier, name
  Appointment      date (start), status
  Encounter        date (period.start), status
  Observation      category, code, date (effectiveDateTime), status
  Condition        category, clinical-status, code
  others           status

Date semantics follow FHIR: a value denotes an interval at its precision, e.g.
`_lastUpdated=gt2024-05-01T10:00:00Z` matches lastUpdated >= 10:00:01.000 (strictly after the
whole second), `ge...` matches >= 10:00:00.000.
"""

import base64
import hashlib
import hmac
import json
import secrets

from ..core import fhirmodel
from ..core.clock import TimeParseError, parse_fhir_datetime

PREFIXES = ("eq", "ne", "gt", "ge", "lt", "le", "sa", "eb", "ap")
CONTROL = {"_count", "_sort", "_format", "_pretty", "_summary", "_elements", "_total",
           "_include", "_revinclude", "_contained"}
PAGING = {"_getpages", "_getpagesoffset", "_bundletype", "pageContext", "direction", "cursor",
          "_page_token"}


class SearchError(Exception):
    def __init__(self, message, status=400, code="invalid"):
        super().__init__(message)
        self.status = status
        self.code = code


def split_prefix(value):
    if len(value) > 2 and value[:2] in PREFIXES and (value[2].isdigit()):
        return value[:2], value[2:]
    return "eq", value


def time_match(op, lo, hi, t):
    if op in ("eq", "ap"):
        return lo <= t < hi
    if op == "ne":
        return not (lo <= t < hi)
    if op in ("gt", "sa"):
        return t >= hi
    if op == "ge":
        return t >= lo
    if op in ("lt", "eb"):
        return t < lo
    if op == "le":
        return t < hi
    return False


def parse_date_param(name, value):
    op, v = split_prefix(value)
    try:
        lo, hi = parse_fhir_datetime(v)
    except TimeParseError:
        raise SearchError("Invalid date value for %s: %r" % (name, value)) from None
    return op, lo, hi


def _token_match(codings, value):
    system, bar, code = value.rpartition("|")
    for c in codings:
        if bar:
            if (not system or c.get("system") == system) and (not code or c.get("code") == code or c.get("value") == code):
                return True
        elif c.get("code") == code or c.get("value") == code:
            return True
    return False


def _codings(cc):
    if not cc:
        return []
    if isinstance(cc, list):
        out = []
        for x in cc:
            out.extend(_codings(x))
        return out
    return cc.get("coding", [])


def _string_match(candidates, value, exact):
    for c in candidates:
        if not c:
            continue
        if exact:
            if c == value:
                return True
        elif c.lower().startswith(value.lower()):
            return True
    return False


def _date_value_match(op, lo, hi, text):
    if not text:
        return False
    try:
        rlo, _ = parse_fhir_datetime(text)
    except TimeParseError:
        return False
    return time_match(op, lo, hi, rlo)


def _date_field(rtype):
    return {"Appointment": lambda r: r.get("start"),
            "Encounter": lambda r: (r.get("period") or {}).get("start"),
            "Observation": lambda r: r.get("effectiveDateTime"),
            "Condition": lambda r: r.get("recordedDate"),
            "Procedure": lambda r: r.get("performedDateTime"),
            "Immunization": lambda r: r.get("occurrenceDateTime"),
            "DiagnosticReport": lambda r: r.get("effectiveDateTime"),
            "DocumentReference": lambda r: r.get("date"),
            "ChargeItem": lambda r: r.get("occurrenceDateTime"),
            "Claim": lambda r: r.get("created")}.get(rtype)


class Query:
    """A parsed search: index criteria plus content predicates."""

    def __init__(self, rtype):
        self.rtype = rtype
        self.ids = None
        self.patient = None
        self.lastupdated = []        # (op, lo, hi)
        self.preds = []              # callables(resource dict) -> bool
        self.names = set()           # names of criteria present (for strictness checks)
        self.ignored = []

    def match_index(self, v):
        if v.deleted:
            return False
        if self.patient is not None and v.patient != self.patient:
            return False
        for op, lo, hi in self.lastupdated:
            if not time_match(op, lo, hi, v.ts):
                return False
        return True

    def match(self, v):
        if not self.match_index(v):
            return False
        if self.preds:
            res = json.loads(v.body)
            return all(p(res) for p in self.preds)
        return True


def parse_query(rtype, pairs, served_types, strict_handling=False, extra_allowed=()):
    """Build a Query from (name, value) pairs (paging/control parameters excluded by caller)."""
    q = Query(rtype)
    for raw_name, value in pairs:
        name, _, modifier = raw_name.partition(":")
        if name in CONTROL or name in PAGING or name in extra_allowed:
            continue
        if name == "_id":
            ids = [x for x in value.split(",") if x]
            q.ids = ids if q.ids is None else [i for i in q.ids if i in ids]
        elif name == "_lastUpdated":
            q.lastupdated.append(parse_date_param(name, value))
        elif name in ("patient", "subject", "beneficiary") and rtype in fhirmodel.PATIENT_SCOPED:
            pid = value.split("/")[-1] if "/" in value else value
            if value.count("/") and not value.split("/")[-2].endswith("Patient"):
                raise SearchError("%s must reference a Patient" % name)
            if not pid:
                raise SearchError("Empty %s parameter" % name)
            if q.patient is not None and q.patient != pid:
                q.patient = "\x00none"
            else:
                q.patient = pid
        elif name == "identifier" and rtype in ("Patient", "Practitioner", "Organization", "Location", "Coverage", "Account"):
            q.preds.append(lambda r, v=value: _token_match(r.get("identifier", []), v))
        elif name in ("family", "given", "name") and rtype in ("Patient", "Practitioner", "RelatedPerson"):
            exact = modifier == "exact"

            def pred(r, v=value, n=name, exact=exact):
                cands = []
                for hn in r.get("name", []):
                    if n in ("family", "name"):
                        cands.append(hn.get("family"))
                    if n in ("given", "name"):
                        cands.extend(hn.get("given", []))
                    if n == "name":
                        cands.append(hn.get("text"))
                return _string_match(cands, v, exact)
            q.preds.append(pred)
        elif name == "name" and rtype in ("Organization", "Location"):
            q.preds.append(lambda r, v=value, exact=(modifier == "exact"): _string_match([r.get("name")], v, exact))
        elif name == "birthdate" and rtype == "Patient":
            op, lo, hi = parse_date_param(name, value)
            q.preds.append(lambda r, op=op, lo=lo, hi=hi: _date_value_match(op, lo, hi, r.get("birthDate")))
        elif name == "gender" and rtype == "Patient":
            q.preds.append(lambda r, v=value: r.get("gender") == v)
        elif name == "date" and _date_field(rtype):
            op, lo, hi = parse_date_param(name, value)
            get = _date_field(rtype)
            q.preds.append(lambda r, op=op, lo=lo, hi=hi, get=get: _date_value_match(op, lo, hi, get(r)))
        elif name == "category" and rtype in ("Observation", "Condition", "DiagnosticReport", "DocumentReference", "AllergyIntolerance"):
            q.preds.append(lambda r, v=value: any(_token_match(_codings(c) if isinstance(c, dict) else [{"code": c}], x)
                                                  for c in r.get("category", []) for x in v.split(",")))
        elif name == "code" and rtype in ("Observation", "Condition", "Procedure", "DiagnosticReport"):
            q.preds.append(lambda r, v=value: any(_token_match(_codings(r.get("code")), x) for x in v.split(",")))
        elif name == "clinical-status" and rtype in ("Condition", "AllergyIntolerance"):
            q.preds.append(lambda r, v=value: _token_match(_codings(r.get("clinicalStatus")), v))
        elif name == "status":
            q.preds.append(lambda r, v=value: r.get("status") in v.split(","))
        else:
            if strict_handling:
                raise SearchError("Unknown or unsupported search parameter %r for %s" % (raw_name, rtype))
            q.ignored.append(raw_name)
            continue
        q.names.add(name)
    return q


class CursorCodec:
    """Opaque, tamper-evident page cursors (base64url JSON + HMAC)."""

    def __init__(self, secret=None):
        self._key = secret or secrets.token_bytes(16)

    def encode(self, state):
        raw = json.dumps(state, separators=(",", ":")).encode()
        mac = hmac.new(self._key, raw, hashlib.sha256).digest()[:9]
        return base64.urlsafe_b64encode(raw + mac).decode().rstrip("=")

    def decode(self, token):
        try:
            data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError):
            raise SearchError("Invalid or expired paging token", 400) from None
        raw, mac = data[:-9], data[-9:]
        if len(data) < 10 or not hmac.compare_digest(mac, hmac.new(self._key, raw, hashlib.sha256).digest()[:9]):
            raise SearchError("Invalid or expired paging token", 400)
        return json.loads(raw)


def entry_bytes(full_url, body, mode="match"):
    return (b'{"fullUrl":' + json.dumps(full_url).encode() + b',"resource":' + body +
            b',"search":{"mode":"' + mode.encode() + b'"}}')


def bundle_bytes(btype, bundle_id, meta_last_updated, links, entries, total=None):
    head = {"resourceType": "Bundle", "id": bundle_id, "meta": {"lastUpdated": meta_last_updated},
            "type": btype}
    if total is not None:
        head["total"] = total
    head["link"] = [{"relation": r, "url": u} for r, u in links]
    out = json.dumps(head, separators=(",", ":")).encode()
    if not entries:
        return out
    return out[:-1] + b',"entry":[' + b",".join(entries) + b"]}"
