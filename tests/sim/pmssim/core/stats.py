"""Request statistics (admin `GET /_sim/stats`, `POST /_sim/reset-stats`)."""

import collections
import threading
import time

from .ratelimit import RateObserver


ARRIVALS_KEPT = 200000


class Stats:
    def __init__(self):
        self._lock = threading.Lock()
        self.limiters = {}     # scope -> RateLimiter (registered by the app)
        self.reset()

    def reset(self):
        with self._lock:
            self.started = time.time()
            self.requests = {}          # endpoint key -> count
            self.status = {}            # endpoint key -> {status: count}
            self.counters = {
                "requests_total": 0,
                "auth_failures": 0,         # 401 answers on API requests + failed token requests
                "token_requests": 0,
                "tokens_issued": 0,
                "throttled_429": 0,         # every 429 sent (limiter, fault, bulk polling)
                "rate_limit_violations": 0, # requests beyond the documented limit
                "retry_after_violations": 0,  # requests sent before an announced Retry-After
                "bulk_poll_too_early": 0,   # bulk status polls before the announced Retry-After
                "faults_injected": 0,
                "bytes_sent": 0,
                "tls_handshake_failures": 0,
                "connections": 0,
                "admin_requests": 0,
            }
            # (endpoint, scopes, received, answered, status) per vendor request, wall clock
            self.arrivals = collections.deque(maxlen=ARRIVALS_KEPT)
            self.obs_1s = RateObserver(1)
            self.obs_60s = RateObserver(60)
            for lim in self.limiters.values():
                lim.reset_stats()

    def count_request(self, endpoint):
        with self._lock:
            self.requests[endpoint] = self.requests.get(endpoint, 0) + 1
            self.counters["requests_total"] += 1
        self.obs_1s.hit()
        self.obs_60s.hit()

    def count_status(self, endpoint, status):
        with self._lock:
            per = self.status.setdefault(endpoint, {})
            per[str(status)] = per.get(str(status), 0) + 1
            if status == 429:
                self.counters["throttled_429"] += 1

    def log_arrival(self, endpoint, scopes, received, answered, status, path=""):
        with self._lock:
            self.arrivals.append((endpoint, tuple(s for s in scopes if s), received, answered, status, path))

    def arrivals_list(self, scope=None):
        """Admin `GET /_sim/arrivals[?scope=S]`: the logged requests, oldest first."""
        with self._lock:
            items = list(self.arrivals)
        return [{"endpoint": e, "scopes": list(sc), "received": r, "answered": a, "status": st,
                 "path": p}
                for e, sc, r, a, st, p in items if scope is None or scope in sc]

    def inc(self, name, n=1):
        with self._lock:
            self.counters[name] = self.counters.get(name, 0) + n

    def snapshot(self):
        with self._lock:
            out = dict(self.counters)
            out["uptime_s"] = round(time.time() - self.started, 3)
            out["requests"] = dict(self.requests)
            out["status"] = {k: dict(v) for k, v in self.status.items()}
            out["observed_max_per_1s"] = self.obs_1s.max_in_window
            out["observed_max_per_60s"] = self.obs_60s.max_in_window
            out["rate_limits"] = {k: v.stats() for k, v in self.limiters.items()}
            out["rate_limit_violations"] = sum(v.violations for v in self.limiters.values())
            return out
