#!/usr/bin/python3
"""Self-test of the vendor-specific (non-FHIR) API simulators: athenahealth v1, Allscripts Unity,
DrChrono, Kareo SOAP, NextGen Enterprise.

    /usr/bin/python3 tests/sim/selftest_api.py [-v] [-k DrChrono]

For each vendor it starts the simulator over HTTPS (private CA), checks auth success and failure
shapes, runs a full + incremental sync with the reference client (apiclient.py) around
create/update/delete/merge mutations and compares with GET /_sim/expected?digest=1 (native keys,
last-modified, content digests), exercises the vendor's paging (with the duplicate-record fault),
rate limits (violations counted, a paced client causes none) and faults.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import apiclient  # noqa: E402
from apiclient import (AthenaClient, ClientLimiter, DrChronoClient, Http, KareoClient, NativeStore,  # noqa: E402
                       NextGenClient, UnityClient, compare, parse_local)
from selftest import Material  # noqa: E402

MARKER = "ZQXMARKER7"
CLIENT_ID = "selftest-client"
SECRET = "s3cr3t-%s" % uuid.uuid4().hex[:8]
MAT = None
TMP = None


def setUpModule():
    global MAT, TMP
    TMP = tempfile.mkdtemp(prefix="pmssim-selftest-api-")
    MAT = Material(TMP)


def tearDownModule():
    if os.environ.get("PMSSIM_KEEP"):
        sys.stderr.write("pmssim selftest_api: keeping %s (simulator logs: sim-*.log)\n" % TMP)
    else:
        shutil.rmtree(TMP, ignore_errors=True)


class Sim:
    def __init__(self, vendor, *extra, patients=15):
        self.vendor = vendor
        self.ready_file = os.path.join(TMP, "ready-%s-%s.json" % (vendor, uuid.uuid4().hex[:6]))
        self.log = open(os.path.join(TMP, "sim-%s.log" % vendor), "ab")
        args = [sys.executable, os.path.join(HERE, "pms_sim.py"), "--vendor", vendor,
                "--ready-file", self.ready_file, "--cert", MAT.cert, "--key", MAT.key, "--plain",
                "--seed", "42", "--patients", str(patients), "--marker", MARKER,
                "--client-id", CLIENT_ID, "--client-secret", SECRET] + list(extra)
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.ready_file):
            if self.proc.poll() is not None:
                raise RuntimeError("simulator exited with %s" % self.proc.returncode)
            if time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError("simulator did not become ready")
            time.sleep(0.05)
        with open(self.ready_file) as fh:
            self.info = json.load(fh)
        self.http = Http(cafile=MAT.ca)
        self.https = self.info["endpoints"]["https"]
        self.admin_url = self.https["admin"]

    def admin(self, method, sub, body=None):
        data = json.dumps(body).encode() if body is not None else None
        r = self.http.request(method, self.admin_url + "/" + sub,
                              {"Content-Type": "application/json"} if data else {}, data)
        assert r.status == 200, (sub, r.status, r.body[:300])
        return r.json()

    def stop(self):
        try:
            self.admin("POST", "shutdown")
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        self.http.close()
        self.log.close()
        with open(self.log.name, "rb") as fh:
            text = fh.read().decode(errors="replace")
        if "Traceback" in text:
            raise AssertionError("simulator %s logged an exception:\n%s" % (self.vendor, text[-3000:]))


class Base(unittest.TestCase):
    vendor = None
    extra = ()
    reset_config = {}

    @classmethod
    def setUpClass(cls):
        cls.sim = Sim(cls.vendor, *cls.extra)

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()

    def setUp(self):
        self.sim.admin("DELETE", "faults")
        self.sim.admin("POST", "clock", {"skew_s": 0})
        if self.reset_config:
            self.sim.admin("POST", "config", self.reset_config)

    def expected(self):
        return self.sim.admin("GET", "expected?digest=1")

    def assert_synced(self, store, msg, strict_vanished=True):
        exp = self.expected()
        probs = compare(store, exp, strict_vanished)
        self.assertFalse(probs, "%s: %s" % (msg, "; ".join(probs)))
        return exp

    def fault(self, *rules, replace=True):
        self.sim.admin("POST", "faults", {"rules": list(rules), "replace": replace})

    def mutate(self, **spec):
        out = self.sim.admin("POST", "mutate", spec)
        self.assertGreater(out["count"], 0)
        return out

    def stats(self):
        return self.sim.admin("GET", "stats")

    def churn(self, during, seconds=0.8):
        """Run `during()` while background mutations commit, then stop them."""
        self.sim.admin("POST", "mutate", {"background": {"rate_per_s": 40, "duration_s": seconds}})
        t0 = time.monotonic()
        during()
        time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
        self.sim.admin("POST", "mutate/stop")


# =============================================================================================
# DrChrono
# =============================================================================================

DR_OFFSET = -300      # --utc-offset=-05:00


def dr_ts(text):
    return parse_local(text, DR_OFFSET, ("%Y-%m-%dT%H:%M:%S",))


class DrChronoTest(Base):
    vendor = "drchrono"
    reset_config = {"rate_limit": "100000/3600", "burst_limit": "1000/1", "refresh_grace_s": 0, "token_ttl": 172800}

    @classmethod
    def setUpClass(cls):
        cls.rt_file = os.path.join(TMP, "drchrono-refresh-token")
        cls.seed_rt = "seed-" + uuid.uuid4().hex
        with open(cls.rt_file, "w") as fh:
            fh.write(cls.seed_rt + "\n")
        cls.extra = ("--refresh-token-file", cls.rt_file, "--utc-offset=-05:00")
        super().setUpClass()

    def new_client(self, **kw):
        tok = self.sim.admin("POST", "vendor/refresh-token", {})["token"]
        saved = []
        c = DrChronoClient(self.sim.http, self.sim.https, CLIENT_ID, SECRET, tok, DR_OFFSET, persist=saved.append, **kw)
        c.saved = saved
        return c

    def token(self, form):
        body = urllib.parse.urlencode(dict(form)).encode()
        return self.sim.http.request("POST", self.sim.https["token"], {"Content-Type": "application/x-www-form-urlencoded"}, body)

    def test_01_auth_rotation(self):
        creds = {"client_id": CLIENT_ID, "client_secret": SECRET}
        r = self.token(dict(creds, grant_type="refresh_token", refresh_token=self.seed_rt))   # seeded by file
        self.assertEqual(r.status, 200, r.body)
        tok = r.json()
        self.assertEqual((tok["token_type"], tok["expires_in"]), ("Bearer", 172800))
        self.assertNotEqual(tok["refresh_token"], self.seed_rt)
        r = self.token(dict(creds, grant_type="refresh_token", refresh_token=self.seed_rt))    # reused: rotated
        self.assertEqual((r.status, r.json()["error"]), (400, "invalid_grant"))
        r2 = self.token(dict(creds, grant_type="refresh_token", refresh_token=tok["refresh_token"]))
        self.assertEqual(r2.status, 200)
        r = self.token(dict(creds, grant_type="refresh_token", refresh_token="nonsense"))
        self.assertEqual((r.status, r.json()["error"]), (400, "invalid_grant"))
        r = self.token(dict(client_id=CLIENT_ID, client_secret="wrong", grant_type="refresh_token",
                            refresh_token=r2.json()["refresh_token"]))
        self.assertEqual((r.status, r.json()["error"]), (401, "invalid_client"))
        r = self.token(dict(creds, grant_type="client_credentials"))
        self.assertEqual((r.status, r.json()["error"]), (400, "unsupported_grant_type"))
        # grace period: a reused token within it answers the same new pair
        self.sim.admin("POST", "config", {"refresh_grace_s": 30})
        r3 = self.token(dict(creds, grant_type="refresh_token", refresh_token=r2.json()["refresh_token"]))
        r4 = self.token(dict(creds, grant_type="refresh_token", refresh_token=r2.json()["refresh_token"]))
        self.assertEqual(r3.json()["refresh_token"], r4.json()["refresh_token"])
        self.sim.admin("POST", "config", {"refresh_grace_s": 0})
        # authorization code flow (auto consent)
        redirect = "https://agent.example/callback"
        url = self.sim.https["authorize"] + "?" + urllib.parse.urlencode(
            {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": redirect, "state": "xyz",
             "scope": "patients:read calendar:read"})
        r = self.sim.http.request("GET", url)
        self.assertEqual(r.status, 302)
        loc = urllib.parse.urlsplit(r.header("location"))
        q = dict(urllib.parse.parse_qsl(loc.query))
        self.assertEqual(q["state"], "xyz")
        bad = self.token(dict(creds, grant_type="authorization_code", code=q["code"], redirect_uri=redirect + "x"))
        self.assertEqual((bad.status, bad.json()["error"]), (400, "invalid_grant"))     # and the code is spent
        r = self.sim.http.request("GET", url)
        code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.header("location")).query))["code"]
        ok = self.token(dict(creds, grant_type="authorization_code", code=code, redirect_uri=redirect))
        self.assertEqual(ok.status, 200)
        self.assertEqual(ok.json()["scope"], "patients:read calendar:read")
        again = self.token(dict(creds, grant_type="authorization_code", code=code, redirect_uri=redirect))
        self.assertEqual((again.status, again.json()["error"]), (400, "invalid_grant"))
        # scope enforcement and 401 shapes
        h = {"Authorization": "Bearer " + ok.json()["access_token"]}
        self.assertEqual(self.sim.http.request("GET", self.sim.https["base"] + "/patients", h).status, 200)
        r = self.sim.http.request("GET", self.sim.https["base"] + "/line_items", h)
        self.assertEqual((r.status, r.json()["detail"]), (403, "You do not have permission to perform this action."))
        r = self.sim.http.request("GET", self.sim.https["base"] + "/patients")
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json(), {"detail": "Authentication credentials were not provided."})
        self.assertTrue(r.header("www-authenticate").startswith("Bearer"))
        self.sim.admin("POST", "revoke-tokens")
        self.assertEqual(self.sim.http.request("GET", self.sim.https["base"] + "/patients", h).status, 401)
        st = self.stats()
        self.assertGreaterEqual(st["refresh_token_reuse"], 1)
        self.assertGreaterEqual(st["refresh_rotations"], 3)

    def test_02_sync(self):
        c = self.new_client()
        store = NativeStore("updated_at", dr_ts)
        c.sync(store)
        self.assertEqual(len(c.saved), 1)                         # the rotated token was persisted
        exp = self.assert_synced(store, "full sync")
        self.assertGreater(len(exp["resources"]), 120)
        names = [v["rec"]["middle_name"] for k, v in store.live.items() if k.startswith("patients/")]
        self.assertTrue(names and all(MARKER in n for n in names))
        deleted_before = len(exp["deleted"])
        self.mutate(create=8, update=10, delete=5, merge=1)
        appt = next(k for k in exp["resources"] if k.startswith("appointments/"))
        self.mutate(ops=[{"op": "delete", "ref": exp["resources"][appt]["fhir"]}])
        c.sync(store)
        exp = self.assert_synced(store, "incremental sync")
        self.assertGreater(len(exp["deleted"]), deleted_before)
        r, rec = c.get(self.sim.https["base"] + "/" + appt)
        self.assertTrue(rec["deleted_flag"])                      # soft-deleted appointment
        # patient deletion (cascades to the chart), a skewed server clock, a revoked access token
        pat = next(k for k in exp["resources"] if k.startswith("patients/"))
        self.sim.admin("POST", "clock", {"skew_s": 3600})
        self.mutate(ops=[{"op": "delete", "ref": exp["resources"][pat]["fhir"]}], update=4)
        self.sim.admin("POST", "revoke-tokens")
        c.sync(store)
        self.assert_synced(store, "after patient delete + skew + revoke")
        self.assertGreaterEqual(c.rh.events.get("reauth", 0), 1)
        # churn while syncing: the watermark (server Date of the run's first response) catches
        # every change the run missed
        self.churn(lambda: c.sync(store, page_size=7))
        c.sync(store)
        self.assert_synced(store, "after churn")

    def test_03_paging(self):
        c = self.new_client()
        r, data = c.get(self.sim.https["base"] + "/appointments")
        self.assertEqual((r.status, "detail" in data), (400, True))
        r = c.rh.http.request("GET", self.sim.https["base"] + "/patients?cursor=%%%", c._headers())
        self.assertEqual((r.status, r.json()), (404, {"detail": "Invalid cursor"}))
        recs, pages = c.list_all("patients", [("page_size", "4")])
        self.assertGreater(pages, 3)
        self.assertEqual(len(recs), len({r["id"] for r in recs}))
        self.fault({"kind": "duplicate", "endpoint": "list:*", "probability": 0.5})
        store = NativeStore("updated_at", dr_ts)
        c.sync(store, page_size=5)
        self.assertGreater(store.received, len(store.live))       # the same record came on two pages
        self.assert_synced(store, "sync with duplicates")

    def test_04_rate_limits(self):
        c = self.new_client()
        c.refresh()
        url = self.sim.https["base"] + "/doctors"
        self.sim.admin("POST", "config", {"burst_limit": "3/1"})
        self.sim.admin("POST", "reset-stats")
        rs = [c.rh.http.request("GET", url, c._headers()) for _ in range(6)]
        self.assertEqual([r.status for r in rs[:3]], [200] * 3)
        throttled = [r for r in rs if r.status == 429]
        self.assertTrue(throttled)
        self.assertEqual(throttled[0].json(), {"detail": "Request was throttled."})
        self.assertIsNone(throttled[0].header("retry-after"))
        self.assertFalse([k for k in throttled[0].headers if "ratelimit" in k])
        st = self.stats()
        self.assertGreaterEqual(st["rate_limits"]["burst"]["violations"], 3)
        # the hourly bucket: fixed window, no headers either
        self.sim.admin("POST", "config", {"burst_limit": "off", "rate_limit": "4/3600"})
        self.sim.admin("POST", "reset-stats")
        codes = [c.rh.http.request("GET", url, c._headers()).status for _ in range(6)]
        self.assertEqual(codes, [200] * 4 + [429] * 2)
        st = self.stats()
        self.assertEqual((st["rate_limits"]["api"]["mode"], st["rate_limit_violations"]), ("fixed", 2))
        # a client pacing itself under both limits causes no violation
        self.sim.admin("POST", "config", {"burst_limit": "4/1", "rate_limit": "1000/3600"})
        self.sim.admin("POST", "reset-stats")
        c.rh.limiters = [ClientLimiter(4, 1.0)]
        for _ in range(10):
            self.assertEqual(c.get(url)[0].status, 200)
        st = self.stats()
        self.assertEqual((st["rate_limit_violations"], st["throttled_429"]), (0, 0))

    def test_05_faults(self):
        c = self.new_client()
        c.refresh()
        url = self.sim.https["base"] + "/offices"
        self.fault({"kind": "status", "status": 503})
        r = c.rh.http.request("GET", url, c._headers())
        self.assertEqual(r.status, 503)
        self.assertIn("detail", r.json())
        self.fault({"kind": "timeout", "hang_s": 2})
        with self.assertRaises(OSError):
            c.rh.http.request("GET", url, c._headers(), timeout=0.4)
        self.fault({"kind": "truncate"})
        with self.assertRaises(apiclient.http.client.IncompleteRead):
            c.rh.http.request("GET", url, c._headers())
        self.fault({"kind": "malformed_json"})
        with self.assertRaises(ValueError):
            json.loads(c.rh.http.request("GET", url, c._headers()).body)
        self.fault({"kind": "revoke_token"})
        self.assertEqual(c.rh.http.request("GET", url, c._headers()).status, 401)
        # a lost refresh answer: the server rotated, the client never saw the new token
        self.fault({"kind": "truncate", "endpoint": "token"})
        with self.assertRaises(AssertionError) as cm:
            c.refresh()
        self.assertIn("invalid_grant", str(cm.exception))
        c = self.new_client()
        self.sim.admin("POST", "config", {"refresh_grace_s": 30})
        self.fault({"kind": "truncate", "endpoint": "token"})
        c.refresh()                                   # the retry within the grace period recovers
        self.assertEqual(c.rh.events["token_transport_error"], 1)
        self.sim.admin("POST", "config", {"refresh_grace_s": 0})
        # a full sync through random faults still converges
        self.fault(*[dict(rule, endpoint=ep) for ep in ("list:*", "read:*") for rule in (
            {"kind": "status", "status": 502, "probability": 0.15, "max": 6},
            {"kind": "truncate", "probability": 0.1, "max": 4},
            {"kind": "malformed_json", "probability": 0.1, "max": 4},
            {"kind": "revoke_token", "probability": 0.05, "max": 2})])
        store = NativeStore("updated_at", dr_ts)
        c.sync(store)
        self.sim.admin("DELETE", "faults")
        self.assert_synced(store, "sync through faults")
        self.assertGreaterEqual(sum(c.rh.events.values()), 3)


# =============================================================================================
# athenahealth v1
# =============================================================================================

def ath_ts(text):
    return parse_local(text, 0, ("%m/%d/%Y %H:%M:%S",))


class AthenahealthTest(Base):
    vendor = "athenahealth"
    reset_config = {"rate_limit": "off", "day_limit": "off", "token_rate_limit": "off", "token_ttl": 3600}

    def client(self):
        return AthenaClient(self.sim.http, self.sim.https, CLIENT_ID, SECRET)

    def test_01_auth(self):
        c = self.client()
        r = c.token_request()
        self.assertEqual(r.status, 200)
        tok = r.json()
        self.assertEqual((tok["expires_in"], tok["token_type"], tok["scope"]), ("3600", "Bearer", "athena/service/Athenanet.MDP.*"))
        r = c.token_request(secret="wrong")
        self.assertEqual((r.status, r.json()["error"]), (401, "invalid_client"))
        self.assertTrue(r.header("www-authenticate").startswith("Basic"))
        r = c.token_request(scope="system/Patient.read")
        self.assertEqual((r.status, r.json()["error"]), (400, "invalid_scope"))
        r = self.sim.http.request("GET", self.sim.https["base"] + "/patients")
        self.assertEqual(r.status, 401)
        self.assertEqual(set(r.json()), {"error", "detailedmessage"})
        c.authenticate()
        other = self.sim.https["base"].replace("/195900", "/1")
        r = self.sim.http.request("GET", other + "/patients", c._headers())
        self.assertEqual((r.status, r.json()["error"]), (403, "Forbidden"))
        # token expiry mid-run: the client re-authenticates
        self.sim.admin("POST", "config", {"token_ttl": 1})
        c.authenticate()
        time.sleep(1.1)
        r = self.sim.http.request("GET", self.sim.https["base"] + "/providers", c._headers())
        self.assertEqual(r.status, 401)
        self.assertEqual(c.call("GET", "/providers")[0].status, 200)
        self.assertGreaterEqual(c.rh.events["reauth"], 1)

    def test_02_sync_feeds(self):
        c = self.client()
        r, data = c.call("GET", "/patients/changed")
        self.assertEqual((r.status, data["error"]), (403, "Forbidden"))          # no subscription yet
        store = NativeStore("lastmodified", ath_ts)
        c.full_sync(store)
        exp = self.assert_synced(store, "full sync")
        self.assertTrue(all(MARKER in v["rec"]["middlename"] for k, v in store.live.items() if k.startswith("patients/")))
        r, data = c.call("GET", "/patients/changed/subscription")
        self.assertEqual(data["status"], "ACTIVE")
        r, data = c.call("GET", "/appointments/changed/subscription/events")
        self.assertIn("CancelAppointment", [e["eventname"] for e in data["subscriptions"]])
        self.mutate(create=8, update=10, delete=4, merge=1, types=["Patient", "Appointment", "Condition",
                                                                     "MedicationRequest", "Claim", "Practitioner"])
        # leaveunprocessed peeks without consuming
        r1 = c.call("GET", "/appointments/changed", [("leaveunprocessed", "true")])[1]
        r2 = c.call("GET", "/appointments/changed", [("leaveunprocessed", "true")])[1]
        self.assertEqual([a["appointmentid"] for a in r1["appointments"]], [a["appointmentid"] for a in r2["appointments"]])
        self.assertGreater(r1["totalcount"], 0)
        t_before = c.rh.last_date_ms
        n = c.drain(store)
        self.assertGreater(n, 0)
        self.assert_synced(store, "after draining the changed feeds")
        self.assertEqual(c.call("GET", "/appointments/changed")[1]["appointments"], [])   # consumed
        # replay of processed records
        start = apiclient.local_fmt(t_before - 2000, 0, "%m/%d/%Y %H:%M:%S")
        r, data = c.call("GET", "/appointments/changed", [("showprocessedstartdatetime", start)])
        self.assertEqual({a["appointmentid"] for a in data["appointments"]}, {a["appointmentid"] for a in r1["appointments"]})
        # a deleted patient: tombstone once through the feed, then gone everywhere
        pat = next(k for k in exp["resources"] if k.startswith("patients/"))
        self.mutate(ops=[{"op": "delete", "ref": exp["resources"][pat]["fhir"]}])
        peek = c.call("GET", "/patients/changed", [("leaveunprocessed", "true")])[1]["patients"]
        tomb = [p for p in peek if "patients/" + p["patientid"] == pat]
        self.assertEqual((tomb[0]["status"], tomb[0]["deleted"]), ("deleted", "true"))
        c.drain(store)
        self.assert_synced(store, "after patient delete")
        self.churn(lambda: c.drain(store, limit=5))
        c.drain(store)
        self.assert_synced(store, "after churn")
        self.assertEqual(c.call("GET", "/" + pat)[0].status, 404)

    def test_03_paging_and_lost_reads(self):
        c = self.client()
        r, data = c.call("GET", "/patients", [("limit", "4")])
        self.assertEqual(len(data["patients"]), 4)
        self.assertTrue(data["next"].startswith("/v1/195900/patients?"))
        self.assertIn("offset=4", data["next"])
        total = data["totalcount"]
        recs, pages = c.list_all("/patients", "patients", limit=4)
        self.assertEqual((len(recs), pages), (total, -(-total // 4)))
        self.fault({"kind": "duplicate", "endpoint": "list:*", "probability": 0.6})
        recs, _ = c.list_all("/patients", "patients", limit=3)
        self.assertGreater(len(recs), len({r["patientid"] for r in recs}))
        self.assertEqual(len({r["patientid"] for r in recs}), total)
        self.sim.admin("DELETE", "faults")
        r, data = c.call("GET", "/appointments/booked")
        self.assertEqual(r.status, 400)
        # consume-on-read + a lost response: the client replays the processed window
        store = NativeStore("lastmodified", ath_ts)
        c.full_sync(store)
        c.drain(store)
        self.mutate(update=12, create=4, types=["Patient", "Appointment"])
        self.fault({"kind": "truncate", "endpoint": "changed:patients"},
                   {"kind": "malformed_json", "endpoint": "changed:appointments"}, replace=True)
        c.drain(store, limit=100)
        self.assertGreaterEqual(c.rh.events["lost_consuming_read"], 2)
        self.assert_synced(store, "after lost consuming reads")

    def test_04_rate_limits(self):
        c = self.client()
        c.authenticate()
        url = self.sim.https["base"] + "/departments"
        self.sim.admin("POST", "config", {"rate_limit": "5/1"})
        self.sim.admin("POST", "reset-stats")
        rs = [self.sim.http.request("GET", url, c._headers()) for _ in range(8)]
        self.assertEqual([r.status for r in rs[:5]], [200] * 5)
        t = next(r for r in rs if r.status == 429)
        self.assertEqual(t.json()["error"], "Too Many Requests")
        self.assertTrue(t.header("retry-after").isdigit())
        self.assertGreaterEqual(self.stats()["rate_limit_violations"], 3)
        self.sim.admin("POST", "config", {"rate_limit": "off", "day_limit": "6/86400"})
        self.sim.admin("POST", "reset-stats")
        codes = [self.sim.http.request("GET", url, c._headers()).status for _ in range(8)]
        self.assertEqual(codes, [200] * 6 + [429] * 2)
        self.assertEqual(self.stats()["rate_limits"]["day"]["violations"], 2)
        self.sim.admin("POST", "config", {"day_limit": "off", "token_rate_limit": "2/60"})
        self.assertEqual([c.token_request().status for _ in range(3)], [200, 200, 429])
        self.sim.admin("POST", "config", {"token_rate_limit": "off", "rate_limit": "5/1"})
        self.sim.admin("POST", "reset-stats")
        c.rh.limiters = [ClientLimiter(5, 1.0)]
        for _ in range(12):
            self.assertEqual(c.call("GET", "/departments")[0].status, 200)
        st = self.stats()
        self.assertEqual((st["rate_limit_violations"], st["retry_after_violations"]), (0, 0))

    def test_05_faults(self):
        c = self.client()
        c.authenticate()
        url = self.sim.https["base"] + "/providers"
        self.fault({"kind": "status", "status": 503})
        r = self.sim.http.request("GET", url, c._headers())
        self.assertEqual((r.status, set(r.json())), (503, {"error", "detailedmessage"}))
        self.fault({"kind": "timeout", "hang_s": 2})
        with self.assertRaises(OSError):
            self.sim.http.request("GET", url, c._headers(), timeout=0.4)
        self.fault({"kind": "revoke_token"})
        self.assertEqual(self.sim.http.request("GET", url, c._headers()).status, 401)
        self.fault({"kind": "status", "status": 502, "probability": 0.15, "max": 5},
                   {"kind": "truncate", "probability": 0.1, "max": 4},
                   {"kind": "revoke_token", "probability": 0.05, "max": 2})
        store = NativeStore("lastmodified", ath_ts)
        c.full_sync(store)
        self.mutate(update=6, create=3, delete=2)
        c.drain(store)
        self.sim.admin("DELETE", "faults")
        c.drain(store)
        self.assert_synced(store, "sync through faults")


# =============================================================================================
# Kareo SOAP
# =============================================================================================

KA_OFFSET = 120      # --utc-offset=+02:00


def ka_ts(text):
    return parse_local(text, KA_OFFSET, ("%m/%d/%Y %I:%M:%S %p",))


class KareoTest(Base):
    vendor = "kareo"
    extra = ("--utc-offset=+02:00",)
    reset_config = {"rate_limit": "off"}

    def client(self, key=None, password=None):
        return KareoClient(self.sim.http, self.sim.https, key or self.sim.info["customer_key"], CLIENT_ID,
                           password or SECRET, KA_OFFSET)

    def test_01_auth_and_envelope(self):
        c = self.client()
        res = c.call("GetProviders")
        self.assertTrue(c.records(res, "Providers", "ProviderData"))
        for bad, key_valid, text in ((self.client(key="wrong"), "false", "Invalid customer key"),
                                     (self.client(password="wrong"), "true", "Invalid user name and/or password")):
            r = bad.raw("GetPatients")
            self.assertEqual(r.status, 200)
            root = apiclient.ET.fromstring(r.body)
            sec = root.find(".//{%s}SecurityResponse" % apiclient.KNS)
            self.assertEqual(sec.findtext("{%s}SecurityResultSuccess" % apiclient.KNS), "false")
            self.assertEqual(sec.findtext("{%s}CustomerKeyValid" % apiclient.KNS), key_valid)
            self.assertEqual(sec.findtext("{%s}SecurityResult" % apiclient.KNS), text)
            self.assertEqual(root.findtext(".//{%s}ErrorResponse/{%s}IsError" % (apiclient.KNS, apiclient.KNS)), "false")
            self.assertIsNone(root.find(".//{%s}Patients" % apiclient.KNS))
            with self.assertRaises(apiclient.SecurityError):
                bad.call("GetPatients")
        r = c.raw("GetPatients", action="GetAppointments")
        self.assertEqual(r.status, 500)
        self.assertIn(b"ActionNotSupported", r.body)
        url = self.sim.https["soap"]
        r = self.sim.http.request("POST", url, {"Content-Type": "text/xml", "SOAPAction": '"%sKareoServices/GetPatients"' % apiclient.KNS}, b"<not-xml")
        self.assertEqual(r.status, 500)
        self.assertIn(b"faultcode>s:Client<", r.body)
        r = self.sim.http.request("POST", url, {"Content-Type": "application/json"}, b"{}")
        self.assertEqual(r.status, 415)
        with self.assertRaises(apiclient.InBandError) as cm:
            c.call("GetPatients", {"FromLastModifiedDate": "yesterday"})
        self.assertIn("not recognized as a valid DateTime", str(cm.exception))
        res = c.call("GetPatients", fields=["ID", "LastModifiedDate"])
        recs = c.records(res, "Patients", "PatientData")
        self.assertEqual(set(recs[0]), {"ID", "LastModifiedDate"})          # the rest is i:nil
        self.assertTrue(all(v.isdigit() or "M" in v for r in recs for v in r.values()))

    def test_02_sync(self):
        c = self.client()
        store = NativeStore("LastModifiedDate", ka_ts)
        c.sync(store, batch=4)
        self.assert_synced(store, "full sync")
        self.assertTrue(all(MARKER in v["rec"]["MiddleName"] for k, v in store.live.items() if k.startswith("Patients/")))
        self.mutate(create=6, update=10, delete=4, merge=1)
        c.sync(store)                                                # incremental: FromLastModifiedDate
        exp = self.assert_synced(store, "incremental sync", strict_vanished=False)
        self.assertTrue(exp["vanished"])
        self.assertFalse(exp["deleted"])                             # Kareo never signals deletions
        held = set(exp["vanished"]) & set(store.live)
        self.assertTrue(held)                                        # an incremental client cannot know
        self.churn(lambda: c.sync(store))
        c.sync(store)
        self.assert_synced(store, "after churn", strict_vanished=False)
        c.sync(store, batch=5, reconcile=True)
        self.assert_synced(store, "after full re-list")

    def test_03_batches(self):
        c = self.client()
        pats, calls = c.all_patients(batch=4)
        self.assertEqual(len(pats), len({p["ID"] for p in pats}))
        self.assertGreaterEqual(calls, 4)
        self.fault({"kind": "duplicate", "endpoint": "soap:GetAllPatients", "probability": 0.7})
        dup, _ = c.all_patients(batch=3)
        self.assertGreater(len(dup), len({p["ID"] for p in dup}))
        self.assertEqual({p["ID"] for p in dup}, {p["ID"] for p in pats})
        with self.assertRaises(apiclient.InBandError):
            c.call("GetAllPatients", {"BatchSize": "0"})

    def test_04_throttle(self):
        c = self.client()
        self.sim.admin("POST", "config", {"rate_limit": "3/1"})
        self.sim.admin("POST", "reset-stats")
        rs = [c.raw("GetProviders") for _ in range(5)]
        self.assertEqual({r.status for r in rs}, {200})
        errs = []
        for r in rs:
            try:
                c.parse_result("GetProviders", r.body)
            except apiclient.InBandError as exc:
                errs.append(str(exc))
        self.assertEqual(len(errs), 2)
        self.assertIn("throttled", errs[0])
        st = self.stats()
        self.assertEqual((st["rate_limit_violations"], st["throttled_inband"], st["throttled_429"]), (2, 2, 0))
        self.sim.admin("POST", "config", {"rate_limit": "3/1"})
        self.sim.admin("POST", "reset-stats")
        c.rh.limiters = [ClientLimiter(3, 1.0)]
        for _ in range(7):
            c.call("GetServiceLocations")
        self.assertEqual(self.stats()["rate_limit_violations"], 0)

    def test_05_faults(self):
        c = self.client()
        self.fault({"kind": "status", "status": 503})
        r = c.raw("GetProviders")
        self.assertEqual(r.status, 503)
        self.assertIn(b"<s:Fault>", r.body)
        self.fault({"kind": "malformed_xml"})
        r = c.raw("GetProviders")
        with self.assertRaises(ValueError):
            c.parse_result("GetProviders", r.body)
        self.fault({"kind": "truncate"})
        with self.assertRaises(apiclient.http.client.IncompleteRead):
            c.raw("GetProviders")
        self.fault({"kind": "status", "status": 500, "probability": 0.15, "max": 4},
                   {"kind": "malformed_xml", "probability": 0.15, "max": 4},
                   {"kind": "timeout", "hang_s": 1, "probability": 0.05, "max": 1})
        c.rh.http.timeout = 0.5
        store = NativeStore("LastModifiedDate", ka_ts)
        c.sync(store, batch=6)
        c.rh.http.timeout = 10
        self.sim.admin("DELETE", "faults")
        self.assert_synced(store, "sync through faults")


# =============================================================================================
# NextGen Enterprise
# =============================================================================================

def ng_ts(text):
    return parse_local(text.split(".")[0], 0, ("%Y-%m-%dT%H:%M:%S",))


class NextgenTest(Base):
    vendor = "nextgen"
    reset_config = {"rate_limit": "off", "token_ttl": 3600}

    def client(self):
        i = self.sim.info
        return NextGenClient(self.sim.http, self.sim.https, CLIENT_ID, SECRET, i["site_id"], i["enterprise_id"], i["practice_id"])

    def test_01_auth_session(self):
        c = self.client()
        r = c.token_request(site_id="")
        self.assertEqual((r.status, r.json()["error"]), (400, "invalid_request"))
        r = c.token_request(site_id="other-site")
        self.assertEqual((r.status, r.json()["error"]), (401, "invalid_client"))
        r = c.token_request(client_secret="wrong")
        self.assertEqual((r.status, r.json()["error"]), (401, "invalid_client"))
        tok = c.token_request().json()
        self.assertEqual((tok["token_type"], tok["expires_in"]), ("Bearer", 3600))
        bearer = {"Authorization": "Bearer " + tok["access_token"]}
        base = self.sim.https["base"]
        r = self.sim.http.request("GET", base + "/persons", bearer)
        self.assertEqual(r.status, 400)
        self.assertIn("X-NG-SessionId", r.json()["message"])
        r = self.sim.http.request("GET", base + "/persons")
        self.assertEqual((r.status, r.json()["message"]), (401, "Authorization has been denied for this request."))
        r = self.sim.http.request("GET", base + "/master/practices", bearer)
        self.assertEqual(r.json()["items"][0]["practiceId"], self.sim.info["practice_id"])
        r = self.sim.http.request("PUT", base + "/users/me/login-defaults", dict(bearer, **{"Content-Type": "application/json"}),
                                  json.dumps({"enterpriseId": "x", "practiceId": "y"}).encode())
        self.assertEqual(r.status, 400)
        c.authenticate()
        s1 = c.session
        c.session = None
        c.authenticate()
        self.assertEqual(c.session, s1)                       # deterministic, never expires
        self.sim.admin("POST", "revoke-tokens")
        self.assertEqual(c.list_all("master/locations")[0]["locationId"] is not None, True)
        self.assertEqual(c.session, s1)
        self.assertGreaterEqual(c.rh.events["reauth"], 1)

    def test_02_sync(self):
        c = self.client()
        store = NativeStore("modifyTimestamp", ng_ts)
        c.sync(store, top=10)
        self.assert_synced(store, "full sync")
        self.assertTrue(all(MARKER in v["rec"]["middleName"] for k, v in store.live.items() if k.startswith("persons/")))
        self.mutate(create=8, update=10, delete=4, merge=1)
        c.sync(store)
        exp = self.assert_synced(store, "incremental", strict_vanished=False)
        self.assertTrue(exp["vanished"])
        c.sync(store, reconcile=True)
        self.assert_synced(store, "after re-list")

    def test_03_odata_paging(self):
        c = self.client()
        c.authenticate()
        base = self.sim.https["base"]
        h = c._headers()

        def get(path, **q):
            r = self.sim.http.request("GET", base + path + "?" + urllib.parse.urlencode(q), h)
            return r.status, r.json()
        st, data = get("/persons", **{"$top": "3", "$count": "true"})
        self.assertEqual((st, len(data["items"]), "next" in data), (200, 3, False))
        total = data["count"]
        st, data = get("/persons", **{"$top": "1000"})
        self.assertEqual(len(data["items"]), total)
        st, data = get("/persons")
        self.assertEqual(len(data["items"]), min(25, total))
        st, data = get("/persons", **{"$filter": "nosuchfield eq 'x'"})
        self.assertEqual(st, 400)
        st, data = get("/persons", **{"$filter": "modifyTimestamp gt"})
        self.assertEqual(st, 400)
        st, data = get("/persons", **{"$orderby": "modifyTimestamp desc", "$top": "1000"})
        stamps = [p["modifyTimestamp"] for p in data["items"]]
        self.assertEqual(stamps, sorted(stamps, reverse=True))
        mid = stamps[len(stamps) // 2]
        st, data = get("/persons", **{"$filter": "modifyTimestamp ge datetime'%s' and sex eq 'F'" % mid, "$top": "1000"})
        self.assertTrue(all(p["modifyTimestamp"] >= mid and p["sex"] == "F" for p in data["items"]))
        st, week = get("/appointments", **{"$top": "1000"})
        st, every = get("/appointments", **{"$top": "1000", "$filter": "modifyTimestamp ge 1900-01-01T00:00:00"})
        self.assertLess(len(week["items"]), len(every["items"]))       # default window: next 7 days
        self.fault({"kind": "duplicate", "endpoint": "list:*", "probability": 0.6})
        got = c.list_all("persons", top=3)
        self.assertGreater(len(got), len({p["personId"] for p in got}))

    def test_04_rate_limit(self):
        c = self.client()
        c.authenticate()
        self.sim.admin("POST", "config", {"rate_limit": "4/1"})
        self.sim.admin("POST", "reset-stats")
        rs = [self.sim.http.request("GET", self.sim.https["base"] + "/master/providers", c._headers()) for _ in range(6)]
        self.assertEqual([r.status for r in rs[:4]], [200] * 4)
        t = next(r for r in rs if r.status == 429)
        self.assertEqual(t.json(), {"message": "Too many requests."})
        self.assertTrue(t.header("retry-after"))
        self.assertGreaterEqual(self.stats()["rate_limit_violations"], 2)

    def test_05_faults(self):
        c = self.client()
        self.fault({"kind": "status", "status": 502, "probability": 0.15, "max": 5},
                   {"kind": "truncate", "probability": 0.1, "max": 3},
                   {"kind": "malformed_json", "probability": 0.1, "max": 3},
                   {"kind": "revoke_token", "probability": 0.05, "max": 2})
        store = NativeStore("modifyTimestamp", ng_ts)
        c.sync(store, top=20)
        self.sim.admin("DELETE", "faults")
        self.assert_synced(store, "sync through faults")
        self.assertGreaterEqual(sum(c.rh.events.values()), 2)


# =============================================================================================
# Allscripts Unity
# =============================================================================================

class AllscriptsTest(Base):
    vendor = "allscripts"
    extra = ("--utc-offset=-05:00",)
    reset_config = {"rate_limit": "off", "token_idle_s": 1200, "token_ttl": 86400}

    def client(self):
        i = self.sim.info
        return UnityClient(self.sim.http, self.sim.https, CLIENT_ID, SECRET, i["appname"], i["app_user"])

    def test_01_auth(self):
        c = self.client()
        self.assertTrue(c.get_token(password="wrong").startswith("error:"))
        self.assertTrue(c.get_token(appname="Other.App").startswith("error:"))
        c.authenticate()
        uuid.UUID(c.token)                                    # a raw GUID, not JSON
        r, data = c.magic_raw("GetPatient", patient="12001", Token="bogus")
        self.assertEqual(r.status, 200)
        self.assertEqual(data, [{"Error": "Magic Error - Action: GetPatient - Invalid security token."}])
        r = self.sim.http.request("POST", self.sim.https["base"] + "/MagicJson", {"Content-Type": "application/json"},
                                  json.dumps({"Action": "GetPatient", "Token": c.token}).encode())
        self.assertIn("Missing parameter(s): AppUserID", r.json()[0]["Error"])
        r, data = c.magic_raw("GetPatient", patient="12001", AppUserID="nobody")
        self.assertIn("Invalid AppUserID", data[0]["Error"])
        r, data = c.magic_raw("GetPatient", patient="12001")
        self.assertIn(MARKER, data[0]["getpatientinfo"][0]["MiddleName"])
        # inactivity timeout, retirement, revocation -> in-band errors; the client re-acquires
        self.sim.admin("POST", "config", {"token_idle_s": 0.3})
        time.sleep(0.45)
        r, data = c.magic_raw("GetServerInfo")
        self.assertIn("logged out due to inactivity", data[0]["Error"])
        self.sim.admin("POST", "config", {"token_idle_s": 1200})
        c.authenticate()
        r = self.sim.http.request("POST", self.sim.https["base"] + "/RetireSecurityToken", {"Content-Type": "application/json"},
                                  json.dumps({"Token": c.token, "Appname": c.appname}).encode())
        self.assertEqual(r.status, 200)
        self.assertIn("Invalid security token", c.magic_raw("GetServerInfo")[1][0]["Error"])
        self.sim.admin("POST", "revoke-tokens")
        self.assertEqual(c.magic("GetServerInfo")[0]["System"], "Enterprise EHR")
        self.assertGreaterEqual(c.rh.events["reauth"], 1)
        self.assertGreaterEqual(self.stats()["auth_failures"], 4)

    def test_02_sync(self):
        c = self.client()
        store = NativeStore()
        changed = c.sync(store)
        self.assertEqual(len(changed), 15)
        self.assert_synced(store, "full sync")
        exp = self.expected()
        pats = [v["fhir"] for k, v in exp["resources"].items() if k.startswith("patients/")]
        self.mutate(create=6, update=8, delete=5, merge=1)
        self.mutate(ops=[{"op": "delete", "ref": pats[0]}])
        changed = c.sync(store)
        self.assertLess(len(changed), 15)
        exp = self.assert_synced(store, "incremental")             # whole lists: vanished records are gone
        self.assertTrue(exp["vanished"])
        # `since` has whole-second precision and is inclusive: changes in the same second as the
        # previous ServerTime come again (harmless); a second later nothing is reported
        time.sleep(1.05)
        c.sync(store)
        self.assertEqual(c.sync(store), [])

    def test_03_changed_patients(self):
        c = self.client()
        r, data = c.magic_raw("GetChangedPatients")
        c.authenticate()
        r, data = c.magic_raw("GetChangedPatients")
        self.assertIn("Parameter1", data[0]["Error"])
        time.sleep(1.0 - time.time() % 1.0 + 0.02)    # earlier changes fall in an earlier second
        since = c.magic("GetServerInfo")[0]["ServerTime"]
        exp = self.expected()
        prob = next(v["fhir"] for k, v in exp["resources"].items() if k.startswith("problems/"))
        self.mutate(ops=[{"op": "update", "ref": prob}])
        rows = c.magic("GetChangedPatients", Parameter1=since)
        log = self.sim.admin("GET", "changelog?since=%d" % (exp["lastSeq"]))["entries"]
        self.assertEqual([r["patientid"] for r in rows], [log[0]["patient"]])
        self.assertEqual(c.magic("GetPatient", "999999"), [])

    def test_04_throttle(self):
        c = self.client()
        c.authenticate()
        self.sim.admin("POST", "config", {"rate_limit": "3/1"})
        self.sim.admin("POST", "reset-stats")
        out = [c.magic_raw("GetServerInfo") for _ in range(5)]
        self.assertEqual({r.status for r, _ in out}, {200})
        errs = [d[0]["Error"] for _, d in out if "Error" in d[0]]
        self.assertEqual(len(errs), 2)
        self.assertIn("Too many requests", errs[0])
        self.assertEqual(self.stats()["rate_limit_violations"], 2)

    def test_05_faults(self):
        c = self.client()
        c.authenticate()
        self.fault({"kind": "status", "status": 503})
        r = self.sim.http.request("POST", self.sim.https["base"] + "/MagicJson", {"Content-Type": "application/json"}, b"{}")
        self.assertEqual((r.status, r.header("content-type")), (503, "text/html"))
        self.fault({"kind": "status", "status": 502, "probability": 0.1, "max": 5},
                   {"kind": "truncate", "probability": 0.1, "max": 4},
                   {"kind": "malformed_json", "probability": 0.1, "max": 4},
                   {"kind": "revoke_token", "probability": 0.05, "max": 2})
        store = NativeStore()
        c.sync(store)
        self.sim.admin("DELETE", "faults")
        self.assert_synced(store, "sync through faults")
        self.assertGreaterEqual(sum(c.rh.events.values()), 2)


class AdminApi(unittest.TestCase):
    """expected in native terms and as FHIR, the vendor admin endpoints."""

    def test_expected_views(self):
        sim = Sim("kareo", patients=5)
        try:
            native = sim.admin("GET", "expected")
            self.assertEqual(native["view"], "native")
            self.assertTrue(all("/" in k and k.split("/")[0] in ("Patients", "Appointments", "Charges", "Payments",
                                                               "Providers", "ServiceLocations") for k in native["resources"]))
            k, v = next(iter(native["resources"].items()))
            self.assertIn("LastModifiedDate", v)
            fhir = sim.admin("GET", "expected?view=fhir")
            self.assertEqual(len(fhir["resources"]), len(native["resources"]))
            rec = sim.admin("GET", "vendor/record?key=" + urllib.parse.quote(k))
            self.assertEqual(rec["record"]["LastModifiedDate"], v["LastModifiedDate"])
            m = sim.admin("GET", "vendor/map?ref=" + urllib.parse.quote(v["fhir"]))
            self.assertEqual(m["key"], k)
            log = sim.admin("GET", "vendor/changelog?limit=3")
            self.assertTrue(all(e["key"] for e in log["entries"]))
        finally:
            sim.stop()


if __name__ == "__main__":
    unittest.main()
