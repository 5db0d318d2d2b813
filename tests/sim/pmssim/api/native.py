"""NativeVendor: base class of the vendor-specific (non-FHIR) API simulators.

The canonical data stays FHIR R4 in `ctx.store` (generated, mutated and change-logged by the
core). A native vendor declares *collections*: one vendor resource list per FHIR type, e.g.
DrChrono `patients` <- Patient, Kareo `Charges` <- ChargeItem. Each collection has

  name        the vendor's collection name, also the first half of the native key ("patients/123")
  fhir_type   the FHIR type it is projected from (the native id is the FHIR id: ids are numeric
              or GUIDs in these vendors' styles, see `id_bases` / `guid_ids`)
  project     pure function (resource dict, Version) -> native record dict. It may only look at
              that one resource version, so a record changes exactly when its resource changes
  ts_field    the vendor's last-modified field (athena `lastmodified`, DrChrono `updated_at`,
              Kareo `LastModifiedDate`, NextGen `modifyTimestamp`) or None; filled in by the base
              class from Version.ts, formatted by `ts_fmt`, in the practice's local time
  deletions   how the vendor shows deletions of this collection:
                "tombstone"  the record is still served, marked deleted (`tombstone(rec)` marks it),
                             with its last-modified time = deletion time
                "absent"     the record silently disappears (only a complete re-list detects it)

`expected()` answers GET /_sim/expected in native identity terms (see README "Vendor APIs").
Times: every vendor here renders zone-less local date-times; `--utc-offset` (default +00:00)
sets the practice's fixed offset from UTC (no DST). Input date-times are read in the same zone.
"""

import calendar
import hashlib
import json
import re
import time

from ..core.clock import TimeParseError, fmt_instant, parse_fhir_datetime
from ..core.http import json_response
from ..core.vendor import VendorApp


# -- local time -----------------------------------------------------------------------------------

def parse_offset(text):
    """'+05:30' / '-05:00' / '0' / '-300' (minutes) -> offset in minutes."""
    text = str(text).strip()
    m = re.match(r"^([+-])(\d{1,2}):?(\d{2})$", text)
    if m:
        mins = int(m.group(2)) * 60 + int(m.group(3))
        return -mins if m.group(1) == "-" else mins
    return int(text)


class LocalTime:
    """Fixed-offset local time of the practice (the vendors' zone-less date-times)."""

    def __init__(self, offset_min=0):
        self.offset_min = int(offset_min)
        self.off_ms = self.offset_min * 60_000

    def tm(self, ms):
        return time.gmtime((int(ms) + self.off_ms) // 1000)

    def fmt(self, ms, pattern):
        """strftime on the local time; '%3f' gives milliseconds."""
        t = self.tm(ms)
        if "%3f" in pattern:
            pattern = pattern.replace("%3f", "%03d" % ((int(ms) + self.off_ms) % 1000))
        return time.strftime(pattern, t)

    def mdy(self, ms):
        """M/D/YYYY (no zero padding)."""
        t = self.tm(ms)
        return "%d/%d/%04d" % (t.tm_mon, t.tm_mday, t.tm_year)

    def mdy_hms_ampm(self, ms):
        """.NET general format: 10/5/2021 9:03:08 AM."""
        t = self.tm(ms)
        h12 = t.tm_hour % 12 or 12
        return "%d/%d/%04d %d:%02d:%02d %s" % (t.tm_mon, t.tm_mday, t.tm_year, h12, t.tm_min, t.tm_sec,
                                               "AM" if t.tm_hour < 12 else "PM")

    def parse(self, text, patterns):
        """Parse a local date-time with the first matching strptime pattern -> UTC ms.
        Raises ValueError if nothing matches."""
        text = (text or "").strip()
        for p in patterns:
            try:
                st = time.strptime(text, p)
            except ValueError:
                continue
            return (calendar.timegm(st) * 1000) - self.off_ms
        raise ValueError("unrecognised date/time %r" % text)


def fhir_ms(text):
    """FHIR date/dateTime -> ms (lower bound); None if absent or invalid."""
    if not text:
        return None
    try:
        return parse_fhir_datetime(text)[0]
    except TimeParseError:
        return None


def fhir_date_parts(text):
    """'YYYY-MM-DD...' -> (y, m, d) or None (dates carry no zone: no conversion)."""
    m = re.match(r"^(\d{4})-(\d{2})-(\d{2})", text or "")
    return tuple(int(x) for x in m.groups()) if m else None


# -- collections ----------------------------------------------------------------------------------

class Collection:
    def __init__(self, name, fhir_type, id_field, project, ts_field=None, ts_fmt=None,
                 deletions="absent", tombstone=None, patient_field=None):
        self.name = name
        self.fhir_type = fhir_type
        self.id_field = id_field
        self.project = project
        self.ts_field = ts_field
        self.ts_fmt = ts_fmt
        self.deletions = deletions
        self.tombstone = tombstone
        self.patient_field = patient_field

    def describe(self):
        return {"name": self.name, "fhir_type": self.fhir_type, "id_field": self.id_field,
                "ts_field": self.ts_field, "deletions": self.deletions}


def digest(record):
    """Content digest of a native record (sorted-key compact JSON, SHA-1, 16 hex chars)."""
    raw = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha1(raw.encode("utf-8")).hexdigest()[:16]


def ref_id(ref, rtype):
    """'Practitioner/123' -> '123' when the reference is of that type, else None."""
    r = (ref or {}).get("reference", "") if isinstance(ref, dict) else (ref or "")
    return r[len(rtype) + 1:] if r.startswith(rtype + "/") else None


def first(seq, default=None):
    for x in seq or ():
        return x
    return default


def coding(cc, system_part=None):
    """First coding (optionally whose system contains system_part) of a CodeableConcept."""
    for c in (cc or {}).get("coding", ()):
        if system_part is None or system_part in c.get("system", ""):
            return c
    return {}


def number_id(text):
    """A numeric native id as int when it is one (athena/DrChrono serialise some ids as numbers)."""
    try:
        return int(text)
    except (TypeError, ValueError):
        return text


class NativeVendor(VendorApp):
    id_bases = {}           # FHIR type -> base of the numeric ids (id = base + n)
    guid_ids = False        # NextGen: upper-case GUIDs instead of numbers
    deletion_summary = ""   # one line for the README / info

    def __init__(self, ctx):
        super().__init__(ctx)
        self.tz = LocalTime(parse_offset(getattr(ctx.args, "utc_offset", "0") or "0"))
        self.colls = self.build_collections()
        self.by_type = {c.fhir_type: c for c in self.colls}
        self.by_name = {c.name: c for c in self.colls}
        self._records = {}     # (key, vid) -> projected record (see record())

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--utc-offset", default="+00:00",
                            help="practice local time offset from UTC for the vendor's zone-less "
                                 "date-times, e.g. --utc-offset=-05:00 (fixed, no DST; default +00:00)")

    def build_collections(self):
        return []

    def served_types(self):
        return [c.fhir_type for c in self.colls]

    # -- ids ---------------------------------------------------------------------------------
    def id_factory(self):
        if self.guid_ids:
            salt = "%s|%s" % (self.name, self.ctx.args.seed)

            def make_guid(rtype, n):
                h = hashlib.sha1(("%s|%s|%d" % (salt, rtype, n)).encode()).hexdigest().upper()
                return "%s-%s-4%s-%s-%s" % (h[:8], h[8:12], h[13:16], "A" + h[17:20], h[20:32])
            return make_guid
        bases = dict(self.id_bases)

        def make(rtype, n):
            return str(bases.get(rtype, 1000) + n)
        return make

    # -- data access -------------------------------------------------------------------------
    def fmt_ts(self, coll, ms):
        return coll.ts_fmt(ms) if coll.ts_fmt else None

    def last_live(self, v):
        """The newest live version of v's resource (v itself unless v is a deletion)."""
        if not v.deleted:
            return v
        for old in reversed(self.ctx.store.history.get(v.key, ())):
            if not old.deleted:
                return old
        return None

    RECORD_CACHE_MAX = 50_000

    def record(self, v, coll=None):
        """Native record of a current version: projection (+ timestamp), or the tombstone of a
        deleted resource (last live content, marked deleted, stamped with the deletion time).
        Returns a fresh (shallow) copy; projections are cached per version (they are pure)."""
        ck = (v.key, v.vid)
        cached = self._records.get(ck)
        if cached is not None:
            return dict(cached)
        coll = coll or self.by_type[v.type]
        live = self.last_live(v)
        if live is None:
            return None
        rec = coll.project(live.resource(), live)
        if coll.ts_field:
            rec[coll.ts_field] = self.fmt_ts(coll, v.ts)
        if v.deleted and coll.tombstone:
            coll.tombstone(rec)
        if len(self._records) >= self.RECORD_CACHE_MAX:
            for k in list(self._records)[:self.RECORD_CACHE_MAX // 4]:
                self._records.pop(k, None)
        self._records[ck] = rec
        return dict(rec)

    def versions(self, coll, include_deleted=False, since_ms=None, patient=None, after_pos=-1, limit=None):
        """Current versions of a collection in creation (row) order; since_ms: changed at or
        after (inclusive, ms); patient: only that patient's compartment; after_pos: only rows
        after that position (keyset paging); limit: stop after that many."""
        store = self.ctx.store
        out = []
        with store.lock:
            cur = store.current
            prefix = coll.fhir_type + "/"
            if patient is not None:
                ids = dict.fromkeys(store.by_patient.get((coll.fhir_type, patient), ()))
                cands = sorted((cur[prefix + i] for i in ids), key=lambda v: v.pos)
                cands = [v for v in cands if v.patient == patient and v.pos > after_pos]
            else:
                rows = store.rows.get(coll.fhir_type, ())
                cands = (cur[prefix + rows[i]] for i in range(max(0, after_pos + 1), len(rows)))
            for v in cands:
                if v.deleted and not include_deleted:
                    continue
                if since_ms is not None and v.ts < since_ms:
                    continue
                out.append(v)
                if limit is not None and len(out) >= limit:
                    break
        return out

    def get_version(self, coll, nid):
        return self.ctx.store.get(coll.fhir_type, str(nid))

    # -- expected ----------------------------------------------------------------------------
    def expected(self, req, types):
        if req.param("view") == "fhir":
            return self.ctx.store.expected(types)
        want_digest = req.param("digest") in ("1", "true")
        wanted = set(req.param("collections").split(",")) if req.param("collections") else None
        live, deleted, vanished = {}, {}, {}
        store = self.ctx.store
        with store.lock:
            items = list(store.current.values())
            seq = len(store.log)
        for v in items:
            coll = self.by_type.get(v.type)
            if coll is None or (types and v.type not in types) or (wanted and coll.name not in wanted):
                continue
            key = "%s/%s" % (coll.name, v.id)
            entry = {"versionId": str(v.vid), "fhir": v.key}
            if coll.ts_field:
                entry[coll.ts_field] = self.fmt_ts(coll, v.ts)
            if not v.deleted:
                if want_digest:
                    entry["digest"] = digest(self.record(v, coll))
                live[key] = entry
            elif coll.deletions == "tombstone":
                deleted[key] = entry
            else:
                vanished[key] = entry
        return {"vendor": self.name, "view": "native",
                "resources": live, "deleted": deleted, "vanished": vanished,
                "counts": {"resources": len(live), "deleted": len(deleted), "vanished": len(vanished),
                           "changelog": seq},
                "collections": [c.describe() for c in self.colls],
                "lastSeq": seq, "now": fmt_instant(self.ctx.clock.now_ms()),
                "now_local": self.tz.fmt(self.ctx.clock.now_ms(), "%Y-%m-%dT%H:%M:%S")}

    # -- admin -------------------------------------------------------------------------------
    def admin(self, req, sub):
        """/_sim/vendor/record?key=patients/123 -> the native record (tombstone if deleted);
        /_sim/vendor/map?ref=Patient/123 -> native key; /_sim/vendor/changelog?since=SEQ -> the
        change log with native keys."""
        if sub == "record":
            name, _, nid = (req.param("key") or "").partition("/")
            coll = self.by_name.get(name)
            v = self.get_version(coll, nid) if coll else None
            if v is None:
                return json_response({"error": "unknown key"}, 404)
            return json_response({"key": "%s/%s" % (name, nid), "deleted": v.deleted,
                                  "versionId": str(v.vid), "record": self.record(v, coll)})
        if sub == "map":
            rtype, _, rid = (req.param("ref") or "").partition("/")
            coll = self.by_type.get(rtype)
            if coll is None:
                return json_response({"error": "type not served"}, 404)
            return json_response({"ref": "%s/%s" % (rtype, rid), "key": "%s/%s" % (coll.name, rid)})
        if sub == "changelog":
            out = self.ctx.store.changelog(int(req.param("since", 0)), int(req.param("limit", 1000)))
            for e in out["entries"]:
                rtype, _, rid = e["ref"].partition("/")
                coll = self.by_type.get(rtype)
                e["key"] = "%s/%s" % (coll.name, rid) if coll else None
            return json_response(out)
        return None

    def info(self):
        return {"vendor": self.name, "collections": [c.describe() for c in self.colls],
                "utc_offset_min": self.tz.offset_min, "deletions": self.deletion_summary,
                "retry_after_style": self.ctx.retry_after_style, "token_ttl": self.ctx.args.token_ttl}

    # -- request helpers ---------------------------------------------------------------------
    @staticmethod
    def with_query(req, path, params):
        """Absolute URL on the request's origin: path + urlencoded params (list of pairs)."""
        import urllib.parse
        q = urllib.parse.urlencode([(k, v) for k, v in params if v is not None])
        return req.url_for(path + ("?" + q if q else ""))

    @staticmethod
    def is_dup(req):
        """The `duplicate` fault fired for this request: the next page repeats this page's last
        record (the "same record on two pages" hazard)."""
        return req.fault is not None and req.fault.kind == "duplicate"

    @staticmethod
    def int_param(text, default, lo=0, hi=None):
        """Parse a non-negative integer parameter; ValueError when invalid."""
        if text is None or text == "":
            return default
        if not re.match(r"^\d+$", str(text)):
            raise ValueError("not a non-negative integer: %r" % text)
        n = int(text)
        if n < lo:
            raise ValueError("must be at least %d" % lo)
        if hi is not None and n > hi:
            n = hi
        return n
