"""Versioned resource store and change log.

Every committed change creates an immutable `Version` (type, id, versionId, timestamp, JSON
bytes or a deletion marker). The change log is the ordered list of all versions ever committed
(seq 1..n), including the initial data set. `expected()` is the final state a correct client must
hold: every live resource's latest version, plus every resource whose latest version is a
deletion.

Thread safety: all mutating and index-reading methods take `self.lock` (an RLock). Version
objects are immutable, so their bodies can be streamed without holding the lock.

Extension point: `subscribe(fn)` registers a callback `fn(list_of_versions)` invoked after each
commit (outside the lock) -- e.g. for athenahealth-style "changed" queues.
"""

import json
import threading

from . import fhirmodel
from .clock import fmt_instant


def dumps(obj):
    """Compact JSON bytes (UTF-8, no ASCII escaping)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class Version:
    __slots__ = ("type", "id", "vid", "ts", "body", "deleted", "patient", "seq", "op", "pos")

    def __init__(self, rtype, rid, vid, ts, body, deleted, patient, seq, op, pos):
        self.type = rtype
        self.id = rid
        self.vid = vid          # int versionId
        self.ts = ts            # int ms (meta.lastUpdated, or deletion time)
        self.body = body        # bytes (full resource JSON incl. meta) or None when deleted
        self.deleted = deleted
        self.patient = patient  # patient id this resource belongs to (compartment) or None
        self.seq = seq          # position in the change log (1-based)
        self.op = op            # 'initial' | 'create' | 'update' | 'delete' | 'merge'
        self.pos = pos          # stable row position within its type (creation order)

    @property
    def key(self):
        return self.type + "/" + self.id

    def resource(self):
        return json.loads(self.body) if self.body is not None else None


class StoreError(Exception):
    pass


class ResourceStore:
    def __init__(self, clock, precision="ms"):
        self.clock = clock
        self.precision = precision
        self.lock = threading.RLock()
        self.current = {}      # "Type/id" -> latest Version (possibly deleted)
        self.rows = {}         # type -> list of ids in creation order (stable positions)
        self.by_patient = {}   # (type, patient id) -> list of ids (creation order)
        self.log = []          # all versions, in commit order (seq = index + 1)
        self.history = {}      # "Type/id" -> list of its versions (oldest first)
        self._listeners = []

    # -- extension ---------------------------------------------------------------------------
    def subscribe(self, fn):
        self._listeners.append(fn)

    # -- writes ------------------------------------------------------------------------------
    def _finish(self, rtype, rid, res, vid, ts):
        meta = dict(res.get("meta") or {})
        meta["versionId"] = str(vid)
        meta["lastUpdated"] = fmt_instant(ts, self.precision)
        out = {"resourceType": rtype, "id": rid, "meta": meta}
        for k, v in res.items():
            if k not in ("resourceType", "id", "meta"):
                out[k] = v
        return out

    def _append(self, rtype, rid, vid, ts, res, op):
        key = rtype + "/" + rid
        prev = self.current.get(key)
        if prev is None:
            rows = self.rows.setdefault(rtype, [])
            pos = len(rows)
            rows.append(rid)
        else:
            pos = prev.pos
        if res is None:
            patient = prev.patient if prev else None
            body = None
        else:
            res = self._finish(rtype, rid, res, vid, ts)
            patient = fhirmodel.patient_ref(rtype, res)
            body = dumps(res)
        if patient and (prev is None or prev.patient != patient):
            self.by_patient.setdefault((rtype, patient), []).append(rid)
        v = Version(rtype, rid, vid, ts, body, res is None, patient, len(self.log) + 1, op, pos)
        self.log.append(v)
        self.current[key] = v
        self.history.setdefault(key, []).append(v)
        return v

    def load_initial(self, items):
        """Bulk-load generated data: iterable of (type, id, resource_dict, versionId, ts_ms).

        Items are appended to the change log with op 'initial' in the given order.
        """
        with self.lock:
            max_ts = 0
            for rtype, rid, res, vid, ts in items:
                self._append(rtype, rid, vid, ts, res, "initial")
                if ts > max_ts:
                    max_ts = ts
            self.clock.observe(max_ts)

    def commit(self, changes, backdate_ms=0):
        """Apply changes atomically: list of (op, type, id, resource_dict_or_None).

        op is 'create', 'update', 'merge' (an update caused by a patient merge) or 'delete'.
        Each change gets its own fresh timestamp (strictly increasing); `backdate_ms` subtracts
        a lag from the recorded lastUpdated to simulate a late-committing transaction.
        Returns the new versions.
        """
        out = []
        with self.lock:
            for op, rtype, rid, res in changes:
                key = rtype + "/" + rid
                prev = self.current.get(key)
                if op == "create":
                    if prev is not None and not prev.deleted:
                        raise StoreError("%s already exists" % key)
                elif prev is None or prev.deleted:
                    raise StoreError("%s does not exist" % key)
                vid = (prev.vid + 1) if prev else 1
                ts = self.clock.stamp() - int(backdate_ms)
                out.append(self._append(rtype, rid, vid, ts, None if op == "delete" else res, op))
        for fn in self._listeners:
            fn(out)
        return out

    # -- reads -------------------------------------------------------------------------------
    def get(self, rtype, rid):
        return self.current.get(rtype + "/" + rid)

    def live(self, rtype):
        """Latest live versions of a type in row (creation) order. Caller holds the lock."""
        cur = self.current
        for rid in self.rows.get(rtype, ()):
            v = cur[rtype + "/" + rid]
            if not v.deleted:
                yield v

    def live_ids(self, rtype):
        with self.lock:
            return [v.id for v in self.live(rtype)]

    def versions_of(self, rtype, rid):
        with self.lock:
            return list(self.history.get(rtype + "/" + rid, ()))

    def types(self):
        with self.lock:
            return list(self.rows)

    def counts(self):
        with self.lock:
            out = {}
            for key, v in self.current.items():
                if not v.deleted:
                    out[v.type] = out.get(v.type, 0) + 1
            return out

    def expected(self, types=None):
        """Final state a correct client must hold (see module doc)."""
        with self.lock:
            live, deleted = {}, {}
            for key, v in self.current.items():
                if types and v.type not in types:
                    continue
                entry = {"versionId": str(v.vid), "lastUpdated": fmt_instant(v.ts, self.precision)}
                if v.deleted:
                    deleted[key] = entry
                else:
                    live[key] = entry
            return {
                "resources": live,
                "deleted": deleted,
                "counts": {"resources": len(live), "deleted": len(deleted),
                           "changelog": len(self.log)},
                "lastSeq": len(self.log),
                "now": fmt_instant(self.clock.now_ms()),
            }

    def changelog(self, since_seq=0, limit=1000, types=None):
        with self.lock:
            out = []
            nxt = None
            for v in self.log[max(0, int(since_seq)):]:
                if types and v.type not in types:
                    continue
                if len(out) >= limit:
                    nxt = v.seq - 1
                    break
                out.append({"seq": v.seq, "op": v.op, "ref": v.key, "versionId": str(v.vid),
                            "lastUpdated": fmt_instant(v.ts, self.precision),
                            "deleted": v.deleted, "patient": v.patient})
            return {"entries": out, "lastSeq": len(self.log), "next": nxt}
