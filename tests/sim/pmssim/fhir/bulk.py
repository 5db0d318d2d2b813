"""FHIR Bulk Data Access ($export) -- async kick-off, status polling, NDJSON downloads.

Kick-off (`GET [base]/$export`, `[base]/Patient/$export`, `[base]/Group/{id}/$export`):
  requires `Prefer: respond-async`; params `_type`, `_since`, `_outputFormat`
  (application/fhir+ndjson | application/ndjson | ndjson), `_typeFilter`/`_elements`/
  `includeAssociatedData` are rejected (400) unless `Prefer: handling=lenient` (then reported
  in `error[]`). The snapshot is taken at kick-off: `transactionTime` is reserved on the server
  clock, every change committed before it is in the export, every later change has a later
  lastUpdated. With `_since`, output holds resources with lastUpdated > _since and `deleted[]`
  holds transaction Bundles (one line = up to 50 DELETE entries) for resources deleted since.
  Patient/Group exports hold the patient compartment of the group's members plus all
  non-patient resources (Practitioner, Organization, Location, ...) of the requested types.

Status (`Content-Location` URL): 202 + X-Progress + Retry-After while running; 429 + Retry-After
when polled before the announced Retry-After (counted as `bulk_poll_too_early`); 200 manifest
when done; 500 OperationOutcome when the job failed; 404 after DELETE. DELETE -> 202.
"""

import json
import secrets
import threading
import time

from ..core.auth import AuthFailure
from ..core.clock import TimeParseError, fmt_http_date, fmt_instant, parse_instant_ms
from ..core.http import HttpError, Response, json_response
from ..core import fhirmodel

FORMATS = {"application/fhir+ndjson", "application/ndjson", "ndjson"}
POLL_GRACE_S = 0.2
DELETED_PER_BUNDLE = 50


class BulkJob:
    def __init__(self, jid, client_id, key, request_url, tx_ms, duration, retry_after):
        self.id = jid
        self.client_id = client_id
        self.key = key
        self.request_url = request_url
        self.tx_ms = tx_ms
        self.created = time.monotonic()
        self.ready_at = self.created + duration
        self.duration = duration
        self.retry_after = retry_after
        self.next_poll_ok = 0.0
        self.files = {}          # name -> dict(kind, type, items, count)
        self.order = []
        self.failed = False
        self.cancelled = False
        self.errors = []         # OperationOutcome dicts (lenient handling)

    def running(self):
        return not self.failed and not self.cancelled and time.monotonic() < self.ready_at


class BulkManager:
    def __init__(self, app):
        self.app = app
        self.ctx = app.ctx
        self.lock = threading.Lock()
        self.jobs = {}
        self.last_kickoff = {}   # (client, key) -> monotonic (min-interval rule)

    # -- helpers -----------------------------------------------------------------------------
    def _err(self, req, status, code, msg, headers=None):
        return HttpError(self.app.error_response(req, status, code, msg, headers=headers))

    def status_url(self, req, jid):
        return self.app.bulk_status_url(req, jid)

    # -- kick-off ----------------------------------------------------------------------------
    def kickoff(self, req, kind, group_id=None):
        app, ctx = self.app, self.ctx
        token = app.require_token(req)
        prefer = (req.header("prefer") or "").lower()
        lenient = "handling=lenient" in prefer
        if "respond-async" not in prefer:
            raise self._err(req, 400, "invalid", "Prefer: respond-async header is required for $export")
        accept = (req.header("accept") or "application/fhir+json").lower()
        if not any(a in accept for a in ("application/fhir+json", "application/json", "*/*")):
            raise self._err(req, 400, "invalid", "Accept must be application/fhir+json")
        if req.method not in ("GET",):
            raise self._err(req, 405, "not-supported", "Use GET for $export kick-off")
        errors = []
        fmt = req.param("_outputFormat", "application/fhir+ndjson")
        if fmt not in FORMATS:
            raise self._err(req, 400, "invalid", "Unsupported _outputFormat %r" % fmt)
        since_ms = None
        since = req.params("_since")
        if len(since) > 1:
            raise self._err(req, 400, "invalid", "_since may be given once")
        if since:
            try:
                since_ms = parse_instant_ms(since[0])
            except TimeParseError:
                raise self._err(req, 400, "invalid", "Invalid _since value %r" % since[0]) from None
        for name in ("_typeFilter", "_elements", "includeAssociatedData", "_until"):
            if req.params(name) and not (name == "_typeFilter" and app.typefilter_supported):
                msg = "Parameter %s is not supported" % name
                if not lenient:
                    raise self._err(req, 400, "not-supported", msg)
                errors.append(msg)
        served = ctx.store.types()
        if kind == "group":
            if group_id != app.group_id:
                raise self._err(req, 404, "not-found", "Group/%s is not known" % group_id)
            if not (token.scopes.allows("Group", "read") or token.scopes.allows("Group", "search")):
                raise self._err(req, 403, "forbidden", "system/Group.read scope is required for Group export")
        types_param = ",".join(req.params("_type"))
        if types_param:
            requested = [t.strip() for t in types_param.split(",") if t.strip()]
        else:
            requested = list(served)
        types = []
        for t in requested:
            if t not in served:
                msg = "Resource type %s is not supported for export" % t
                if types_param and not lenient:
                    raise self._err(req, 400, "not-supported", msg)
                errors.append(msg)
                continue
            if not token.scopes.allows(t, "read"):
                msg = "Access token does not grant read access to %s" % t
                if types_param and not lenient:
                    raise self._err(req, 403, "forbidden", msg)
                if types_param:
                    errors.append(msg)
                continue
            if kind == "patient" and t not in fhirmodel.PATIENT_SCOPED and t != "Patient" and app.patient_export_compartment_only:
                continue
            types.append(t)
        if not types:
            raise self._err(req, 403, "forbidden", "No exportable resource types are authorised for this client")
        key = json.dumps([kind, group_id, sorted(types), since_ms, fmt])
        retry_after = int(app.bulk_retry_after)
        with self.lock:
            if app.reject_duplicate_kickoff:
                for job in self.jobs.values():
                    if job.key == key and job.client_id == token.client_id and job.running():
                        raise self._err(req, 429, "throttled",
                                        "An export with the same parameters is already in progress (job_id=%s)" % job.id)
            min_iv = float(app.bulk_min_interval_s or 0)
            last = self.last_kickoff.get((token.client_id, kind, group_id))
            if min_iv and last is not None and time.monotonic() - last < min_iv:
                raise self._err(req, 429, "throttled",
                                "Request not allowed: The Client requested this Group too recently.")
            self.last_kickoff[(token.client_id, kind, group_id)] = time.monotonic()
            jid = secrets.token_hex(8)
        store = ctx.store
        with store.lock:
            tx_ms = ctx.clock.stamp()
            job = BulkJob(jid, token.client_id, key, req.url_for(req.target), tx_ms,
                          float(app.bulk_job_seconds), retry_after)
            members = None
            if kind in ("group", "patient"):
                members = {v.id for v in store.live("Patient")}
            self._snapshot(job, types, since_ms, members)
        for msg in errors:
            job.errors.append({"resourceType": "OperationOutcome",
                               "issue": [{"severity": "warning", "code": "not-supported", "diagnostics": msg}]})
        if req.fault is not None and req.fault.kind == "bulk_fail":
            job.failed = True
        with self.lock:
            self.jobs[jid] = job
        headers = [("Content-Location", self.status_url(req, jid))]
        if app.kickoff_retry_after:
            headers.append(("Retry-After", str(retry_after)))
            job.next_poll_ok = job.created + retry_after - POLL_GRACE_S
        return Response(202, b"", headers=headers)

    def _snapshot(self, job, types, since_ms, members):
        store = self.ctx.store
        maxn = max(1, int(self.app.bulk_file_max))
        for t in types:
            items = []
            deleted = []
            for rid in store.rows.get(t, ()):
                v = store.current[t + "/" + rid]
                if since_ms is not None and v.ts <= since_ms:
                    continue
                if members is not None and t in fhirmodel.PATIENT_SCOPED | {"Patient"} and v.patient is not None:
                    if not v.deleted and v.patient not in members:
                        continue
                if v.deleted:
                    if since_ms is not None:
                        deleted.append(v)
                    continue
                items.append(v)
            for i in range(0, len(items), maxn):
                name = "%s-%d.ndjson" % (t, i // maxn + 1)
                job.files[name] = {"kind": "output", "type": t, "items": items[i:i + maxn]}
                job.order.append(name)
            if deleted:
                lines = []
                for i in range(0, len(deleted), DELETED_PER_BUNDLE):
                    chunk = deleted[i:i + DELETED_PER_BUNDLE]
                    lines.append(json.dumps({
                        "resourceType": "Bundle", "id": secrets.token_hex(8), "type": "transaction",
                        "meta": {"lastUpdated": fmt_instant(max(v.ts for v in chunk), store.precision)},
                        "entry": [{"request": {"method": "DELETE", "url": v.key}} for v in chunk]},
                        separators=(",", ":")).encode())
                name = "%s-deleted.ndjson" % t
                job.files[name] = {"kind": "deleted", "type": "Bundle", "items": lines}
                job.order.append(name)

    # -- polling -----------------------------------------------------------------------------
    def _job(self, req, jid):
        with self.lock:
            job = self.jobs.get(jid)
        if job is None or job.cancelled:
            raise self._err(req, 404, "not-found", "Export job %s not found (completed and deleted, or never existed)" % jid)
        return job

    def status(self, req, jid):
        token = self.app.require_token(req)
        job = self._job(req, jid)
        if token.client_id != job.client_id:
            raise self._err(req, 403, "forbidden", "Export job belongs to another client")
        now = time.monotonic()
        if req.fault is not None and req.fault.kind == "bulk_fail":
            job.failed = True
        if job.failed:
            return self.app.error_response(req, 500, "exception", "Export job failed")
        if job.running():
            if job.retry_after > 0 and now < job.next_poll_ok:
                self.ctx.stats.inc("bulk_poll_too_early")
                wait = max(1, int(-(-(job.next_poll_ok + POLL_GRACE_S - now) // 1)))
                return self.app.error_response(req, 429, "throttled", "Polling too frequently; retry later",
                                               headers=[("Retry-After", str(wait))])
            pct = int(100 * (now - job.created) / max(job.duration, 0.001))
            job.next_poll_ok = now + job.retry_after - POLL_GRACE_S
            headers = [("X-Progress", self.app.progress_text(min(pct, 99)))]
            if job.retry_after > 0:
                headers.append(("Retry-After", str(job.retry_after)))
            return Response(202, b"", headers=headers)
        return self._manifest(req, job)

    def _manifest(self, req, job):
        base = self.app.base_url(req)
        out, deleted = [], []
        for name in job.order:
            f = job.files[name]
            item = {"type": f["type"], "url": "%s/bulkfiles/%s/%s" % (base, job.id, name), "count": len(f["items"])}
            (deleted if f["kind"] == "deleted" else out).append(item)
        errors = []
        if job.errors:
            name = "errors.ndjson"
            job.files[name] = {"kind": "error", "type": "OperationOutcome",
                               "items": [json.dumps(e, separators=(",", ":")).encode() for e in job.errors]}
            errors.append({"type": "OperationOutcome", "url": "%s/bulkfiles/%s/%s" % (base, job.id, name),
                           "count": len(job.errors)})
        body = {"transactionTime": fmt_instant(job.tx_ms, "ms"), "request": job.request_url,
                "requiresAccessToken": True, "output": out, "error": errors}
        if deleted:
            body["deleted"] = deleted
        expires = self.ctx.clock.now_ms() + 3600_000
        return json_response(body, 200, headers=[("Expires", fmt_http_date(expires))])

    def delete(self, req, jid):
        self.app.require_token(req)
        with self.lock:
            job = self.jobs.get(jid)
            if job is None or job.cancelled:
                job = None
            else:
                job.cancelled = True
                del self.jobs[jid]
        if job is None:
            raise self._err(req, 404, "not-found", "Export job %s not found" % jid)
        return Response(202, b"")

    # -- downloads ---------------------------------------------------------------------------
    def download(self, req, jid, name):
        token = self.app.require_token(req)
        job = self._job(req, jid)
        if token.client_id != job.client_id:
            raise self._err(req, 403, "forbidden", "Export file belongs to another client")
        if job.running() or job.failed:
            raise self._err(req, 404, "not-found", "Export job %s has no files (yet)" % jid)
        f = job.files.get(name)
        if f is None:
            raise self._err(req, 404, "not-found", "No such export file %s" % name)
        items = f["items"]
        if f["kind"] == "output":
            pieces = [v.body for v in items]
        else:
            pieces = items
        length = sum(len(p) + 1 for p in pieces)

        def gen():
            for p in pieces:
                yield p + b"\n"
        resp = Response(200, gen(), content_type="application/fhir+ndjson",
                        length=None if self.app.bulk_chunked else length)
        return resp

    def describe(self):
        with self.lock:
            return [{"id": j.id, "running": j.running(), "failed": j.failed,
                     "files": len(j.files), "transactionTime": fmt_instant(j.tx_ms)}
                    for j in self.jobs.values()]


__all__ = ["BulkManager", "AuthFailure"]
