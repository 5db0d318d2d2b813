"""Admin API under /_sim/ (no auth, JSON in and out; never rate limited or faulted).

  GET  /_sim/health                  {"ok": true, "vendor": ...}
  GET  /_sim/info                    ready-file content plus vendor profile settings
  GET  /_sim/expected[?types=A,B]    final state the client must hold (see store.expected)
  GET  /_sim/changelog?since=SEQ&limit=N[&types=A,B]
  POST /_sim/mutate                  see core/mutate.py; {"background": {...}} starts churn
  POST /_sim/mutate/stop             stop background churn
  GET  /_sim/stats                   counters (see README)
  POST /_sim/reset-stats
  GET  /_sim/arrivals[?scope=api]    every vendor request: endpoint, scopes, received and answered
                                     (Unix seconds, float), status; oldest first (last 200,000)
  GET  /_sim/faults                  rules with matched/fired counts
  POST /_sim/faults                  {"rules": [...], "replace": bool, "revoke_tokens": bool}
  DELETE /_sim/faults                clear all rules
  POST /_sim/revoke-tokens           revoke every issued token (token expiry mid-run)
  GET  /_sim/clock                   {"now": ..., "skew_s": ...}
  POST /_sim/clock                   {"skew_s": -3600}
  GET  /_sim/config                  runtime-tunable settings
  POST /_sim/config                  {"rate_limit": "5/1", "bulk_job_seconds": 0.5, ...}
  POST /_sim/shutdown                answer, then stop the process
  *    /_sim/vendor/<sub>            vendor-specific admin endpoints (VendorApp.admin)
"""

import json
import threading

from .clock import fmt_instant
from .faults import FaultError
from .http import json_response
from .mutate import MutationError


class Admin:
    def __init__(self, ctx, app):
        self.ctx = ctx
        self.app = app

    def _types(self, req):
        t = req.param("types")
        return set(x for x in t.split(",") if x) if t else None

    def handle(self, req):
        sub = req.path[len("/_sim/"):].strip("/")
        m = req.method
        try:
            body = req.json() if m in ("POST", "PUT") else {}
        except (ValueError, UnicodeDecodeError):
            return json_response({"error": "body is not JSON"}, 400)
        ctx = self.ctx
        try:
            if sub == "health":
                return json_response({"ok": True, "vendor": self.app.name})
            if sub == "info":
                return json_response(dict(ctx.ready, profile=self.app.info(),
                                          types=ctx.store.types(), counts=ctx.store.counts()))
            if sub == "expected" and m == "GET":
                return json_response(self.app.expected(req, self._types(req)))
            if sub == "changelog" and m == "GET":
                return json_response(ctx.store.changelog(int(req.param("since", 0)),
                                                         int(req.param("limit", 1000)),
                                                         self._types(req)))
            if sub == "mutate" and m == "POST":
                out = ctx.mutator.apply(body)
                for c in out.get("changes", ()):
                    c["lastUpdated"] = fmt_instant(c["lastUpdated"], ctx.store.precision)
                return json_response(out)
            if sub == "mutate/stop" and m == "POST":
                return json_response(ctx.mutator.stop_background())
            if sub == "stats" and m == "GET":
                snap = ctx.stats.snapshot()
                snap["faults"] = ctx.faults.describe()
                snap["tokens"] = {"revocations": ctx.revocations}
                snap.update(self.app.info().get("stats", {}))
                return json_response(snap)
            if sub == "arrivals" and m == "GET":
                return json_response({"arrivals": ctx.stats.arrivals_list(req.param("scope") or None)})
            if sub == "reset-stats" and m == "POST":
                ctx.stats.reset()
                ctx.not_before.clear()
                return json_response({"ok": True})
            if sub == "faults":
                if m == "GET":
                    return json_response(ctx.faults.describe())
                if m == "DELETE":
                    ctx.faults.clear()
                    return json_response({"ok": True})
                if m == "POST":
                    out = {}
                    if body.get("clear"):
                        ctx.faults.clear()
                    if body.get("rules"):
                        out["ids"] = ctx.faults.set_rules(body["rules"], bool(body.get("replace")))
                    if body.get("revoke_tokens"):
                        out["revoked"] = ctx.revoke_all_tokens()
                    return json_response(dict(out, ok=True))
            if sub == "revoke-tokens" and m == "POST":
                return json_response({"revoked": ctx.revoke_all_tokens()})
            if sub == "clock":
                if m == "POST":
                    if "skew_s" in body:
                        ctx.clock.set_skew(float(body["skew_s"]))
                    elif "adjust_s" in body:
                        ctx.clock.set_skew(ctx.clock.skew_s + float(body["adjust_s"]))
                return json_response({"now": fmt_instant(ctx.clock.now_ms()), "skew_s": ctx.clock.skew_s})
            if sub == "config":
                if m == "POST":
                    ctx.set_runtime_config(body)
                return json_response(ctx.runtime_config())
            if sub == "shutdown" and m == "POST":
                threading.Thread(target=ctx.request_shutdown, daemon=True).start()
                return json_response({"ok": True, "stopping": True})
            if sub.startswith("vendor/"):
                resp = self.app.admin(req, sub[len("vendor/"):])
                if resp is not None:
                    return resp
            return json_response({"error": "unknown admin endpoint %s %s" % (m, req.path)}, 404)
        except (MutationError, FaultError) as exc:
            return json_response({"error": str(exc)}, 400)
        except (ValueError, KeyError, TypeError) as exc:
            return json_response({"error": "bad request: %s" % exc}, 400)


def dumps(obj):
    return json.dumps(obj, indent=1)
