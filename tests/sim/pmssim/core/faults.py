"""Fault injection rules (admin `/_sim/faults`).

A rule matches requests by endpoint key glob (e.g. "search:*", "bulk-file", "token"), optional
path regex and method, and fires either for the next `count` matching requests or with a
`probability` (optionally capped by `max`), after skipping the first `after` matches.

Rule JSON:
  {"kind": "status" | "429" | "timeout" | "reset" | "truncate" | "malformed_json" |
           "duplicate" | "revoke_token" | "delay" | "bulk_fail",
   "endpoint": "search:*",      glob on the endpoint key (default "*": every non-admin request)
   "path": "regex",             optional, searched in the request path
   "method": "GET",             optional
   "count": 1,                  fire on the next N matches (default 1 unless probability given)
   "probability": 0.1,          fire with this probability instead (seeded RNG)
   "max": 5,                    cap on firings for probability rules
   "after": 0,                  let this many matches pass first
   "status": 503,               for kind "status" (any 4xx/5xx; default 503)
   "retry_after": "seconds" | "http-date" | "none",   for "status"/"429" (default: vendor style)
   "retry_after_s": 2,          value announced in Retry-After
   "hang_s": 30,                for "timeout": hold the connection this long, then close it
   "delay_s": 1.0,              for "delay": answer normally after this delay
   "id": "optional-name"}

Kinds:
  status          answer with that HTTP status and an error body (OperationOutcome for FHIR)
  429             throttle answer in the vendor's style (see README per vendor)
  timeout         read the request, send nothing, close after hang_s (client must time out)
  reset           close the connection immediately without an answer
  truncate        send the headers (full Content-Length / chunked) and half the body, then close
  malformed_json  200 with a corrupted JSON body (valid HTTP framing)
  malformed_xml   same corruption (the body is cut and junk appended), named for XML/SOAP vendors
  duplicate       search/history paging: the next page repeats the last entry of this page
  revoke_token    revoke the bearer token used by this request, answer 401 (token expiry)
  delay           answer normally after delay_s
  bulk_fail       (bulk status) the export job fails: 500 OperationOutcome from now on
"""

import fnmatch
import random
import re
import threading

KINDS = {"status", "429", "timeout", "reset", "truncate", "malformed_json", "malformed_xml", "duplicate",
         "revoke_token", "delay", "bulk_fail"}


class FaultError(ValueError):
    pass


class FaultRule:
    _ids = 0

    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise FaultError("rule must be an object")
        kind = str(spec.get("kind", ""))
        if kind not in KINDS:
            raise FaultError("unknown fault kind %r (one of %s)" % (kind, ", ".join(sorted(KINDS))))
        FaultRule._ids += 1
        self.id = str(spec.get("id") or "f%d" % FaultRule._ids)
        self.kind = kind
        self.endpoint = str(spec.get("endpoint", "*"))
        self.path_re = re.compile(spec["path"]) if spec.get("path") else None
        self.method = spec.get("method")
        self.probability = spec.get("probability")
        self.count = spec.get("count")
        if self.probability is None and self.count is None:
            self.count = 1
        self.max = spec.get("max")
        self.after = int(spec.get("after", 0))
        self.status = int(spec.get("status", 503))
        self.retry_after = spec.get("retry_after")
        self.retry_after_s = spec.get("retry_after_s", 1)
        self.hang_s = float(spec.get("hang_s", 30))
        self.delay_s = float(spec.get("delay_s", 1))
        self.matched = 0
        self.fired = 0
        self.spec = dict(spec, id=self.id)

    def matches(self, endpoint, method, path):
        if not fnmatch.fnmatchcase(endpoint, self.endpoint):
            return False
        if self.method and self.method.upper() != method:
            return False
        if self.path_re and not self.path_re.search(path):
            return False
        return True

    def exhausted(self):
        if self.count is not None and self.probability is None:
            return self.fired >= int(self.count)
        if self.max is not None:
            return self.fired >= int(self.max)
        return False

    def describe(self):
        return dict(self.spec, matched=self.matched, fired=self.fired, exhausted=self.exhausted())


class FaultInjector:
    def __init__(self, seed=0):
        self._lock = threading.Lock()
        self._rules = []
        self._rng = random.Random("faults:%s" % seed)
        self.fired_by_kind = {}

    def set_rules(self, specs, replace=False):
        rules = [FaultRule(s) for s in specs]
        with self._lock:
            if replace:
                self._rules = []
            self._rules.extend(rules)
        return [r.id for r in rules]

    def clear(self):
        with self._lock:
            self._rules = []

    def remove(self, rule_id):
        with self._lock:
            self._rules = [r for r in self._rules if r.id != rule_id]

    def describe(self):
        with self._lock:
            return {"rules": [r.describe() for r in self._rules],
                    "fired_by_kind": dict(self.fired_by_kind)}

    def pick(self, endpoint, method, path):
        """Return the first rule that fires for this request (or None)."""
        with self._lock:
            for r in self._rules:
                if r.exhausted() or not r.matches(endpoint, method, path):
                    continue
                r.matched += 1
                if r.matched <= r.after:
                    continue
                if r.probability is not None and self._rng.random() >= float(r.probability):
                    continue
                r.fired += 1
                self.fired_by_kind[r.kind] = self.fired_by_kind.get(r.kind, 0) + 1
                return r
            return None
