#!/usr/bin/python3
"""Capacity check of a simulator at benchmark scale (prints figures, never fails).

    /usr/bin/python3 tests/sim/loadcheck.py [--vendor meditech] [--resources 100000] [--plain]

Starts the simulator with ~N resources, then measures with the Python reference client:
start-up time and RSS, Bulk $export (NDJSON download) resources/s, paged search resources/s
(_count=1000, all types), and small-request rate (reads/s on one keep-alive connection).
The Python client is itself a bottleneck, so these are lower bounds of the simulator's capacity.
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import selftest  # noqa: E402
from simclient import FhirClient, Http, LocalStore  # noqa: E402


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vendor", default="meditech")
    ap.add_argument("--resources", type=int, default=100000)
    args = ap.parse_args()
    selftest.setUpModule()
    try:
        t0 = time.monotonic()
        sim = selftest.Sim(args.vendor, "--resources", str(args.resources), "--strict-search", "off",
                           "--rate-limit", "off", "--token-rate-limit", "off")
        startup = time.monotonic() - t0
        sim.admin("POST", "config", {"bulk_retry_after": 0, "bulk_job_seconds": 0.1})
        cfg = selftest.VENDORS[args.vendor]
        auth = selftest.make_auth(cfg["auth"][0])
        http = Http(cafile=selftest.MAT.ca, timeout=60)
        types = sim.admin("GET", "info")["types"]
        scope = "system/*.read"
        if cfg.get("bulk_split"):
            scope_search = " ".join("system/%s.read" % t for t in types)
        else:
            scope_search = scope
        c = FhirClient(http, sim.https["base"], sim.https["token"], selftest.CLIENT_ID, auth,
                       scope=scope, extra_params=cfg.get("extra"))
        total = len(sim.admin("GET", "expected")["resources"])
        print("vendor %s: %d resources, start-up %.1f s, simulator RSS %.0f MB"
              % (args.vendor, total, startup, rss_mb(sim.proc.pid)))

        store = LocalStore()
        t0 = time.monotonic()
        manifest, counts = c.bulk_export("/Group/%s/$export" % sim.info["group_id"], store=store)
        dt = time.monotonic() - t0
        n = sum(counts.values())
        print("bulk $export (HTTPS, NDJSON, parse+store in Python): %d resources in %.2f s = %.0f resources/s"
              % (n, dt, n / dt))

        raw = 0
        t0 = time.monotonic()
        r = c.bulk_kickoff("/Group/%s/$export" % sim.info["group_id"])
        m = c.bulk_wait(r.header("content-location"))
        for item in m["output"]:
            raw += len(c.get(item["url"], want_json=False).body)
        dt = time.monotonic() - t0
        print("bulk $export download only: %.1f MB in %.2f s = %.0f MB/s, %.0f resources/s"
              % (raw / 1e6, dt, raw / 1e6 / dt, n / dt))

        cs = FhirClient(http, sim.https["base"], sim.https["token"], selftest.CLIENT_ID, auth,
                        scope=scope_search, extra_params=cfg.get("extra"))
        store = LocalStore()
        t0 = time.monotonic()
        pages = 0
        for t in types:
            _, _, p = cs.search_all(t, [("_count", "1000")], store=store)
            pages += p
        dt = time.monotonic() - t0
        print("paged search (_count=1000): %d resources, %d pages in %.2f s = %.0f resources/s"
              % (len(store.live), pages, dt, len(store.live) / dt))

        pid = next(k for k in store.live if k.startswith("Patient/")).split("/")[1]
        url = cs.url("/Patient/" + pid)
        cs.get(url)
        t0 = time.monotonic()
        k = 0
        while time.monotonic() - t0 < 3:
            cs.raw("GET", url)
            k += 1
        dt = time.monotonic() - t0
        print("small reads on one keep-alive HTTPS connection: %.0f requests/s" % (k / dt))
        print("simulator RSS after the run: %.0f MB" % rss_mb(sim.proc.pid))
        sim.stop()
    finally:
        selftest.tearDownModule()


if __name__ == "__main__":
    main()
