"""Server clock (with skew) and FHIR/HTTP time formatting and parsing.

All server timestamps are integer milliseconds since the Unix epoch (UTC). The clock can be
skewed at run time (admin API `/_sim/clock`) to simulate a server whose clock differs from the
client's. Write timestamps (`meta.lastUpdated`) are strictly increasing even if the skew is
reduced, like a database sequence: `stamp()` never returns a value <= a previous one.
"""

import calendar
import email.utils
import re
import threading
import time


class SimClock:
    """Wall clock plus a configurable skew; hands out strictly increasing write stamps."""

    def __init__(self, skew_s=0.0):
        self._skew_ms = int(round(skew_s * 1000))
        self._last_ms = 0
        self._lock = threading.Lock()

    @property
    def skew_s(self):
        return self._skew_ms / 1000.0

    def set_skew(self, skew_s):
        with self._lock:
            self._skew_ms = int(round(float(skew_s) * 1000))

    def now_ms(self):
        """Current (skewed) server time in ms. Not monotonic: follows the wall clock."""
        return int(time.time() * 1000) + self._skew_ms

    def now(self):
        return self.now_ms() / 1000.0

    def stamp(self):
        """Reserve a unique write timestamp, strictly greater than any previous stamp."""
        with self._lock:
            ms = max(int(time.time() * 1000) + self._skew_ms, self._last_ms + 1)
            self._last_ms = ms
            return ms

    def observe(self, ms):
        """Make sure future stamps are greater than `ms` (used for loaded historical data)."""
        with self._lock:
            if ms > self._last_ms:
                self._last_ms = ms

    def last_stamp(self):
        with self._lock:
            return self._last_ms


_DAYS = {}


def _day(days):
    s = _DAYS.get(days)
    if s is None:
        s = time.strftime("%Y-%m-%d", time.gmtime(days * 86400))
        if len(_DAYS) < 200000:
            _DAYS[days] = s
    return s


def fmt_instant(ms, precision="ms"):
    """FHIR instant in UTC: 2024-05-01T12:34:56.789Z (precision 'ms') or ...:56Z ('s')."""
    secs, rem = divmod(int(ms), 1000)
    days, sod = divmod(secs, 86400)
    h, r = divmod(sod, 3600)
    if precision == "s":
        return "%sT%02d:%02d:%02dZ" % (_day(days), h, r // 60, r % 60)
    return "%sT%02d:%02d:%02d.%03dZ" % (_day(days), h, r // 60, r % 60, rem)


def fmt_dt_seconds(ms):
    return fmt_instant(ms, "s")


def fmt_date(ms):
    return _day(int(ms) // 86_400_000)


def fmt_http_date(ms):
    return email.utils.formatdate(int(ms) / 1000.0, usegmt=True)


_DT_RE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<mo>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d{1,9}))?)?"
    r"(?P<tz>Z|[+\- ]\d{2}:\d{2})?)?)?)?$")


class TimeParseError(ValueError):
    pass


def parse_fhir_datetime(text):
    """Parse a FHIR date/dateTime/instant into the half-open interval [lo_ms, hi_ms) it denotes.

    '2024' covers the whole year, '2024-05-01T10:00:00Z' covers one second,
    '...T10:00:00.123Z' one millisecond. A missing time zone is taken as UTC. A space in the
    zone position is read as '+' (an unencoded '+' in a query string decodes to a space).
    """
    m = _DT_RE.match(text.strip() if text else "")
    if not m:
        raise TimeParseError("invalid date/time value: %r" % text)
    y = int(m.group("y"))
    mo = int(m.group("mo") or 1)
    d = int(m.group("d") or 1)
    h = int(m.group("h") or 0)
    mi = int(m.group("mi") or 0)
    s = int(m.group("s") or 0)
    frac = m.group("f")
    if m.group("h") is not None and m.group("tz") is None and m.group("s") is not None:
        pass  # FHIR requires a zone when a time is given; we are lenient and assume UTC
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h <= 23 and mi <= 59 and s <= 60):
        raise TimeParseError("invalid date/time value: %r" % text)
    try:
        base = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    except (OverflowError, ValueError) as exc:
        raise TimeParseError("invalid date/time value: %r" % text) from exc
    tz = m.group("tz")
    if tz and tz != "Z":
        sign = -1 if tz[0] == "-" else 1
        off = int(tz[1:3]) * 3600 + int(tz[4:6]) * 60
        base -= sign * off
    lo = base * 1000
    if frac is not None:
        digits = (frac + "000")[:3]
        lo += int(digits)
        hi = lo + 1 if len(frac) <= 3 else lo + 1
    elif m.group("s") is not None:
        hi = lo + 1000
    elif m.group("mi") is not None:
        hi = lo + 60_000
    elif m.group("d") is not None:
        hi = lo + 86_400_000
    elif m.group("mo") is not None:
        ny, nmo = (y + 1, 1) if mo == 12 else (y, mo + 1)
        hi = calendar.timegm((ny, nmo, 1, 0, 0, 0, 0, 0, 0)) * 1000
    else:
        hi = calendar.timegm((y + 1, 1, 1, 0, 0, 0, 0, 0, 0)) * 1000
    return lo, hi


def parse_instant_ms(text):
    """Parse an instant to its lower bound in ms (used for _since / transactionTime input)."""
    return parse_fhir_datetime(text)[0]
