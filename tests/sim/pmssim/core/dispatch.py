"""Request pipeline: admin routing, vendor routing, stats, rate limits, fault injection.

Order for a vendor request:
  1. route (404 in the vendor's shape if nothing matches)
  2. count the request (stats per endpoint key; observed rates)
  3. Retry-After discipline: a request in a scope that is still inside an announced Retry-After
     window counts as `retry_after_violations` (requests arriving within 100 ms of the 429 being
     sent are treated as already in flight and not counted)
  4. rate limiter(s) of the route's scope: over the limit -> violation + 429 in the vendor's style
     (a route may name several scopes as a tuple, e.g. ("api", "burst"): every limiter counts the
     request; the Retry-After discipline is kept for the first scope)
  5. fault injection (first matching rule)
  6. the vendor handler
  7. post-handler faults (truncate, malformed_json), status accounting
  8. the arrival log: when the request arrived and when its answer was ready (wall clock), for
     tests that check a client's pacing against either instant (GET /_sim/arrivals)
"""

import sys
import time
import traceback

from .auth import AuthFailure
from .http import HttpError

GRACE_IN_FLIGHT_S = 0.1


class Dispatcher:
    def __init__(self, ctx, app, admin):
        self.ctx = ctx
        self.app = app
        self.admin = admin
        self._not_before = ctx.not_before   # scope -> (sent_at_mono, not_before_mono)

    def _note_retry_after(self, scope, resp):
        ra = resp.header("Retry-After")
        if not ra or scope is None:
            return
        try:
            secs = float(ra)
        except ValueError:
            secs = 1.0   # an HTTP date: announced time is at least 1 s away
        now = time.monotonic()
        self._not_before[scope] = (now, now + secs - 0.05)

    def handle(self, req):
        ctx = self.ctx
        if req.path.startswith("/_sim/") or req.path == "/_sim":
            ctx.stats.inc("admin_requests")
            return self.admin.handle(req)
        routed = self.app.route(req)
        if routed is None:
            req.endpoint = "unknown"
            ctx.stats.count_request("unknown")
            resp = self.app.not_found(req)
            ctx.stats.count_status("unknown", resp.status)
            return resp
        endpoint, handler, scopes = routed
        if not isinstance(scopes, tuple):
            scopes = (scopes,)
        received = time.time()
        resp = self._handle_routed(req, endpoint, handler, scopes)
        ctx.stats.log_arrival(endpoint, scopes, received, time.time(), resp.status, req.path)
        return resp

    def _handle_routed(self, req, endpoint, handler, scopes):
        ctx = self.ctx
        scope = scopes[0]
        req.endpoint = endpoint
        ctx.stats.count_request(endpoint)

        nb = self._not_before.get(scope)
        if nb is not None:
            now = time.monotonic()
            if nb[0] + GRACE_IN_FLIGHT_S < now < nb[1]:
                ctx.stats.inc("retry_after_violations")
            elif now >= nb[1]:
                self._not_before.pop(scope, None)

        worst = None
        for s in scopes:
            limiter = ctx.limiters.get(s)
            if limiter is not None:
                ok, retry = limiter.hit()
                if not ok:
                    worst = retry if worst is None else max(worst, retry)
        if worst is not None:
            resp = self.app.throttle_response(req, worst)
            self._note_retry_after(scope, resp)
            ctx.stats.count_status(endpoint, resp.status)
            return resp

        rule = ctx.faults.pick(endpoint, req.method, req.path)
        post = None
        if rule is not None:
            ctx.stats.inc("faults_injected")
            kind = rule.kind
            if kind == "status":
                code = "transient" if rule.status >= 500 else "processing"
                resp = self.app.error_response(req, rule.status, code, "Injected fault: HTTP %d" % rule.status,
                                               headers=self.app.retry_after_headers(rule.retry_after_s, rule.retry_after or "none")
                                               if rule.retry_after else None)
                self._note_retry_after(scope, resp)
                ctx.stats.count_status(endpoint, resp.status)
                return resp
            if kind == "429":
                resp = self.app.throttle_response(req, rule.retry_after_s, rule.retry_after)
                self._note_retry_after(scope, resp)
                ctx.stats.count_status(endpoint, 429)
                return resp
            if kind in ("timeout", "reset"):
                from .http import Response
                resp = Response(0)
                resp.action = ("hang", rule.hang_s) if kind == "timeout" else ("reset",)
                ctx.stats.count_status(endpoint, "timeout" if kind == "timeout" else "reset")
                return resp
            if kind == "revoke_token":
                authz = req.header("authorization", "")
                if authz[:7].lower() == "bearer ":
                    ctx.tokens.revoke(authz[7:].strip())
            elif kind == "delay":
                time.sleep(rule.delay_s)
            elif kind in ("truncate", "malformed_json", "malformed_xml"):
                post = kind
            req.fault = rule

        try:
            resp = handler(req)
        except HttpError as exc:
            resp = exc.response
        except AuthFailure as exc:
            resp = self.app.auth_failure_response(req, exc)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            resp = self.app.error_response(req, 500, "exception", "Internal simulator error")

        if post in ("malformed_json", "malformed_xml") and 200 <= resp.status < 300:
            data = resp.body_bytes()
            cut = max(1, len(data) * 2 // 3)
            resp.body = data[:cut] + b',"x":]}'
            resp.length = None
        elif post == "truncate":
            resp.truncate = True
        if resp.status == 401:
            ctx.stats.inc("auth_failures")
        if resp.status == 429:
            self._note_retry_after(scope, resp)
        ctx.stats.count_status(endpoint, resp.status)
        return resp
