"""Create / update / delete / merge resources over time (admin `POST /_sim/mutate`).

Request body (JSON object, all keys optional):

  {"create": N, "update": N, "delete": N, "merge": N,   random operations
   "types": ["Observation", ...],                       restrict random picks to these types
   "seed": 7,                                           RNG seed (default: --seed + call number)
   "commit_lag_s": 0,                                   backdate lastUpdated (late commit hazard)
   "ops": [                                             explicit operations, applied in order
     {"op": "create", "type": "Observation", "patient": "<patient id>"},
     {"op": "create", "type": "Patient", "resource": {...}},
     {"op": "update", "ref": "Patient/<id>"},             realistic random change
     {"op": "update", "ref": "Patient/<id>", "resource": {...}},   replace content
     {"op": "delete", "ref": "Encounter/<id>"},
     {"op": "merge", "source": "Patient/<id>", "target": "Patient/<id>"}],
   "background": {"rate_per_s": 5, "duration_s": 30, "create": 1, "update": 2, "delete": 1}}

Random deletes never pick Patient unless "types" lists Patient. Deleting a Patient also deletes
every live resource of its compartment (same commit, deletions first). A merge marks the source patient
inactive with link type "replaced-by", adds a "replaces" link on the target, and re-points every
live resource of the source's compartment to the target (each such resource gets a new version,
op "merge"). Each operation is its own commit with a fresh timestamp.
"""

import random
import threading
import time

from . import fhirmodel
from .store import StoreError

CREATE_WEIGHTS = {"Patient": 6, "Appointment": 14, "Encounter": 10, "Observation": 22,
                  "Condition": 7, "Procedure": 4, "MedicationRequest": 6, "AllergyIntolerance": 2,
                  "Immunization": 4, "DiagnosticReport": 4, "DocumentReference": 4, "Coverage": 2,
                  "Account": 1, "ChargeItem": 8, "Claim": 3, "Device": 1, "RelatedPerson": 1,
                  "Practitioner": 1, "PractitionerRole": 1, "Location": 0.3, "Organization": 0.3,
                  "SupplyDelivery": 1}


class MutationError(Exception):
    pass


class Mutator:
    def __init__(self, store, gen, seed):
        self.store = store
        self.gen = gen
        self.seed = seed
        self.lock = threading.Lock()     # serialises mutation calls (generator state)
        self.calls = 0
        self._bg = None
        self._bg_stop = threading.Event()

    # -- helpers -----------------------------------------------------------------------------
    def _live_keys(self, types):
        with self.store.lock:
            return [k for k, v in self.store.current.items() if not v.deleted and v.type in types]

    def _patient_ref(self, pid):
        v = self.store.get("Patient", pid)
        if v is None or v.deleted:
            raise MutationError("Patient/%s does not exist" % pid)
        return {"reference": "Patient/" + pid, "display": fhirmodel.patient_display(v.resource())}

    def _random_patient(self, rng):
        ids = self.store.live_ids("Patient")
        if not ids:
            return None
        return rng.choice(ids)

    def _commit(self, changes, lag_ms, out):
        vs = self.store.commit(changes, backdate_ms=lag_ms)
        for v in vs:
            out.append({"seq": v.seq, "op": v.op, "ref": v.key, "versionId": str(v.vid),
                        "lastUpdated": v.ts})

    # -- operations --------------------------------------------------------------------------
    def _create(self, rng, rtype, patient, resource, lag_ms, out):
        exposed = set(self.store.types()) | set(self.gen.types)
        if rtype not in exposed:
            raise MutationError("type %s is not served by this vendor" % rtype)
        if resource is not None:
            res = dict(resource)
            rid = res.get("id") or self.gen.next_id(rtype)
        else:
            pref = None
            needs_patient = rtype in fhirmodel.PATIENT_SCOPED and not (rtype == "Device" and patient is None and rng.random() < 0.5)
            if needs_patient:
                pid = patient or self._random_patient(rng)
                if pid is None:
                    raise MutationError("no live patient to attach a %s to" % rtype)
                pref = self._patient_ref(pid)
            rid, res = self.gen.new_resource(rng, rtype, pref)
        self._commit([("create", rtype, rid, res)], lag_ms, out)

    def _update(self, rng, ref, resource, lag_ms, out):
        rtype, _, rid = ref.partition("/")
        v = self.store.get(rtype, rid)
        if v is None or v.deleted:
            raise MutationError("%s does not exist" % ref)
        res = dict(resource) if resource is not None else self.gen.modify(rng, rtype, v.resource())
        self._commit([("update", rtype, rid, res)], lag_ms, out)

    def _delete(self, ref, lag_ms, out):
        rtype, _, rid = ref.partition("/")
        changes = []
        if rtype == "Patient":
            # a patient's chart goes with it: delete the live compartment resources first
            with self.store.lock:
                for ctype in fhirmodel.PATIENT_SCOPED:
                    for cid in dict.fromkeys(self.store.by_patient.get((ctype, rid), ())):
                        v = self.store.get(ctype, cid)
                        if v is not None and not v.deleted and v.patient == rid:
                            changes.append(("delete", ctype, cid, None))
        changes.append(("delete", rtype, rid, None))
        self._commit(changes, lag_ms, out)

    def _merge(self, source, target, lag_ms, out):
        s_id = source.split("/", 1)[-1]
        t_id = target.split("/", 1)[-1]
        if s_id == t_id:
            raise MutationError("cannot merge a patient into itself")
        sv, tv = self.store.get("Patient", s_id), self.store.get("Patient", t_id)
        if sv is None or sv.deleted or tv is None or tv.deleted:
            raise MutationError("merge needs two live patients")
        src, tgt = sv.resource(), tv.resource()
        src["active"] = False
        src["link"] = [{"other": {"reference": "Patient/" + t_id}, "type": "replaced-by"}]
        tgt.setdefault("link", []).append({"other": {"reference": "Patient/" + s_id}, "type": "replaces"})
        display = fhirmodel.patient_display(tgt)
        changes = [("update", "Patient", s_id, src), ("update", "Patient", t_id, tgt)]
        with self.store.lock:
            for rtype in fhirmodel.PATIENT_SCOPED:
                for rid in self.store.by_patient.get((rtype, s_id), ()):
                    v = self.store.get(rtype, rid)
                    if v is None or v.deleted or v.patient != s_id:
                        continue
                    res = v.resource()
                    fhirmodel.set_patient_ref(rtype, res, t_id, display)
                    changes.append(("merge", rtype, rid, res))
        self._commit(changes, lag_ms, out)

    # -- entry point -------------------------------------------------------------------------
    def apply(self, spec):
        if not isinstance(spec, dict):
            raise MutationError("body must be a JSON object")
        if "background" in spec:
            return self.start_background(spec["background"])
        with self.lock:
            self.calls += 1
            rng = random.Random("mutate:%s:%s" % (spec.get("seed", self.seed), self.calls))
            lag_ms = int(float(spec.get("commit_lag_s", 0)) * 1000)
            exposed = [t for t in self.store.types()]
            types = spec.get("types") or exposed
            bad = [t for t in types if t not in exposed]
            if bad:
                raise MutationError("types not served by this vendor: %s" % ",".join(bad))
            out = []
            try:
                for op in spec.get("ops", ()):
                    kind = op.get("op")
                    if kind == "create":
                        self._create(rng, op["type"], op.get("patient"), op.get("resource"), lag_ms, out)
                    elif kind == "update":
                        self._update(rng, op["ref"], op.get("resource"), lag_ms, out)
                    elif kind == "delete":
                        self._delete(op["ref"], lag_ms, out)
                    elif kind == "merge":
                        self._merge(op["source"], op["target"], lag_ms, out)
                    else:
                        raise MutationError("unknown op %r" % kind)
                weights = [(t, CREATE_WEIGHTS.get(t, 1)) for t in types]
                for _ in range(int(spec.get("create", 0))):
                    t = rng.choices([w[0] for w in weights], [w[1] for w in weights])[0]
                    self._create(rng, t, None, None, lag_ms, out)
                n_upd = int(spec.get("update", 0))
                if n_upd:
                    keys = self._live_keys(set(types))
                    for key in rng.sample(keys, min(n_upd, len(keys))):
                        self._update(rng, key, None, lag_ms, out)
                n_del = int(spec.get("delete", 0))
                if n_del:
                    del_types = set(types) if spec.get("types") else set(types) - {"Patient"}
                    keys = self._live_keys(del_types)
                    for key in rng.sample(keys, min(n_del, len(keys))):
                        self._delete(key, lag_ms, out)
                for _ in range(int(spec.get("merge", 0))):
                    ids = [i for i in self.store.live_ids("Patient")
                           if b'"active":false' not in self.store.get("Patient", i).body]
                    if len(ids) < 2:
                        break
                    s, t = rng.sample(ids, 2)
                    self._merge("Patient/" + s, "Patient/" + t, lag_ms, out)
            except (KeyError, TypeError, ValueError) as exc:
                raise MutationError("bad mutation spec: %s" % exc) from exc
            except StoreError as exc:
                raise MutationError(str(exc)) from exc
            return {"changes": out, "count": len(out), "lastSeq": len(self.store.log)}

    # -- background churn --------------------------------------------------------------------
    def start_background(self, cfg):
        self.stop_background()
        rate = float(cfg.get("rate_per_s", 5))
        duration = float(cfg.get("duration_s", 10))
        mix = {k: float(cfg.get(k, d)) for k, d in (("create", 1), ("update", 2), ("delete", 1))}
        types = cfg.get("types")
        self._bg_stop.clear()

        def run():
            end = time.monotonic() + duration
            rng = random.Random("bg:%s" % self.seed)
            while not self._bg_stop.is_set() and time.monotonic() < end:
                op = rng.choices(list(mix), list(mix.values()))[0]
                spec = {op: 1}
                if types:
                    spec["types"] = types
                try:
                    self.apply(spec)
                except MutationError:
                    pass
                self._bg_stop.wait(1.0 / rate if rate > 0 else 1.0)

        self._bg = threading.Thread(target=run, name="bg-mutations", daemon=True)
        self._bg.start()
        return {"background": "started", "rate_per_s": rate, "duration_s": duration}

    def stop_background(self):
        if self._bg is not None:
            self._bg_stop.set()
            self._bg.join(timeout=5)
            self._bg = None
        return {"background": "stopped", "lastSeq": len(self.store.log)}

    def background_running(self):
        return self._bg is not None and self._bg.is_alive()
