"""Rate limiting and rate observation.

`RateLimiter(limit, window_s, mode)` counts every request the client *makes* (rejected ones
too) in either a rolling window (any `window_s` interval) or fixed windows aligned to the epoch
(e.g. top of the hour). A request that makes the count exceed `limit` is a *violation*: it is
answered with 429 and counted. `RateObserver` records the maximum number of requests seen in
any rolling window of a given length, for the stats endpoint.

Times are taken from time.monotonic() (rolling) or time.time() (fixed windows), never from the
skewed server clock.
"""

import collections
import math
import threading
import time


def parse_rate(text):
    """'250/60' -> (250, 60.0); 'off' / '' / None -> None. Also accepts '100/s', '250/min', '500/h'."""
    if text is None:
        return None
    text = str(text).strip().lower()
    if text in ("", "off", "none", "0"):
        return None
    n, _, w = text.partition("/")
    units = {"s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "hour": 3600}
    window = float(units[w]) if w in units else float(w or 1)
    limit = int(n)
    if limit <= 0 or window <= 0:
        raise ValueError("bad rate %r" % text)
    return limit, window


class RateLimiter:
    def __init__(self, limit, window_s, mode="rolling", name="api"):
        self.limit = int(limit)
        self.window = float(window_s)
        self.mode = mode
        self.name = name
        self._lock = threading.Lock()
        self._times = collections.deque()
        self._fixed_key = None
        self._fixed_count = 0
        self.reset_stats()

    def reset_stats(self):
        self.requests = 0
        self.violations = 0
        self.max_in_window = 0

    def hit(self):
        """Record one request. Returns (allowed, retry_after_seconds)."""
        with self._lock:
            self.requests += 1
            if self.mode == "fixed":
                now = time.time()
                key = math.floor(now / self.window)
                if key != self._fixed_key:
                    self._fixed_key, self._fixed_count = key, 0
                self._fixed_count += 1
                n = self._fixed_count
                retry = (key + 1) * self.window - now
            else:
                now = time.monotonic()
                d = self._times
                while d and d[0] <= now - self.window:
                    d.popleft()
                d.append(now)
                n = len(d)
                retry = (d[n - self.limit] + self.window - now) if n > self.limit else 0.0
            if n > self.max_in_window:
                self.max_in_window = n
            if n > self.limit:
                self.violations += 1
                return False, max(retry, 0.001)
            return True, 0.0

    def stats(self):
        with self._lock:
            return {"limit": self.limit, "window_s": self.window, "mode": self.mode,
                    "requests": self.requests, "max_in_window": self.max_in_window,
                    "violations": self.violations}


class RateObserver:
    """Max requests observed in any rolling window of `window_s` seconds."""

    def __init__(self, window_s):
        self.window = float(window_s)
        self._lock = threading.Lock()
        self._times = collections.deque()
        self.max_in_window = 0

    def hit(self):
        with self._lock:
            now = time.monotonic()
            d = self._times
            while d and d[0] <= now - self.window:
                d.popleft()
            d.append(now)
            if len(d) > self.max_in_window:
                self.max_in_window = len(d)

    def reset(self):
        with self._lock:
            self._times.clear()
            self.max_in_window = 0
