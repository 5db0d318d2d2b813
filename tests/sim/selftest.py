#!/usr/bin/python3
"""Self-test of the FHIR vendor simulators.  Run:  /usr/bin/python3 tests/sim/selftest.py [-v] [-k epic]

For every FHIR vendor profile it starts the simulator over HTTPS (a private CA generated here),
authenticates (RS384 / ES384 client assertions or client secrets, as the vendor allows), runs a
full + incremental sync with the vendor's documented mechanisms, compares with /_sim/expected,
and exercises faults, rate limits and authentication failures.
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
import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import simclient  # noqa: E402
from simclient import ClientLimiter, FhirClient, Http, LocalStore, assertion  # noqa: E402

MARKER = "ZQXMARKER7"
CLIENT_ID = "selftest-client"
SECRET = "s3cr3t-%s" % uuid.uuid4().hex[:8]


# ---------------------------------------------------------------------------------------------
# Test PKI and client keys
# ---------------------------------------------------------------------------------------------

class Material:
    def __init__(self, root):
        self.root = root
        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pmssim test CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(days=1))
              .not_valid_after(now + datetime.timedelta(days=30))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(ca_key, hashes.SHA256()))
        srv_key = ec.generate_private_key(ec.SECP256R1())
        import ipaddress
        srv = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
               .issuer_name(ca_name).public_key(srv_key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(now + datetime.timedelta(days=30))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
               .sign(ca_key, hashes.SHA256()))
        self.ca = self._write("ca.pem", ca.public_bytes(serialization.Encoding.PEM))
        self.cert = self._write("server.pem", srv.public_bytes(serialization.Encoding.PEM))
        self.key = self._write("server.key", srv_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP384R1())
        self.other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwks = self._write("client.jwks", json.dumps({"keys": [
            self._jwk(self.rsa.public_key(), "rsa-1", "RS384"),
            self._jwk(self.ec.public_key(), "ec-1", "ES384")]}).encode())
        self.rsa_pub = self._write("client-rsa.pub.pem", self.rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    def _write(self, name, data):
        p = os.path.join(self.root, name)
        with open(p, "wb") as fh:
            fh.write(data)
        return p

    @staticmethod
    def _jwk(pub, kid, alg):
        b = lambda n, size=None: simclient.b64url(n.to_bytes(size or (n.bit_length() + 7) // 8, "big"))  # noqa: E731
        if isinstance(pub, rsa.RSAPublicKey):
            nums = pub.public_numbers()
            return {"kty": "RSA", "kid": kid, "alg": alg, "use": "sig", "n": b(nums.n), "e": b(nums.e)}
        nums = pub.public_numbers()
        return {"kty": "EC", "kid": kid, "alg": alg, "use": "sig", "crv": "P-384",
                "x": b(nums.x, 48), "y": b(nums.y, 48)}


MAT = None
TMP = None


def setUpModule():
    global MAT, TMP
    TMP = tempfile.mkdtemp(prefix="pmssim-selftest-")
    MAT = Material(TMP)


def tearDownModule():
    if os.environ.get("PMSSIM_KEEP"):
        sys.stderr.write("pmssim selftest: keeping %s (simulator logs: sim-*.log)\n" % TMP)
    else:
        shutil.rmtree(TMP, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Simulator process
# ---------------------------------------------------------------------------------------------

class Sim:
    def __init__(self, vendor, *extra, patients=25):
        self.vendor = vendor
        self.ready_file = os.path.join(TMP, "ready-%s-%s.json" % (vendor, uuid.uuid4().hex[:6]))
        self.log = open(os.path.join(TMP, "sim-%s.log" % vendor), "ab")
        args = [sys.executable, os.path.join(HERE, "pms_sim.py"), "--vendor", vendor,
                "--ready-file", self.ready_file, "--cert", MAT.cert, "--key", MAT.key, "--plain",
                "--seed", "42", "--patients", str(patients), "--marker", MARKER,
                "--client-id", CLIENT_ID, "--client-secret", SECRET,
                "--bulk-job-seconds", "0.3", "--bulk-retry-after", "1"] + list(extra)
        if MAT.jwks:
            args += ["--client-jwks", MAT.jwks]
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


class SimNoJwks(Sim):
    """A simulator whose client is registered with --client-public-key only."""

    def __init__(self, vendor, *extra):
        orig = MAT.jwks
        try:
            MAT.jwks = None
            super().__init__(vendor, *extra)
        finally:
            MAT.jwks = orig


# Per-vendor test configuration: auth methods to use and documented behaviour to expect.
VENDORS = {
    "epic": {"auth": [("jwt", "RS384"), ("jwt", "ES384")], "strict": True, "history": False,
             "throttle_retry_after": True},
    "cerner": {"auth": [("basic",), ("jwt", "ES384")], "strict": True, "history": False,
               "throttle_retry_after": False},
    "eclinicalworks": {"auth": [("jwt", "RS384")], "strict": False, "history": True,
                       "throttle_retry_after": False, "limit": (250, 60), "bulk_split": True},
    "meditech": {"auth": [("post",), ("jwt", "ES384")], "strict": False, "history": True,
                 "throttle_retry_after": True},
    "practice-fusion": {"auth": [("basic",), ("jwt", "RS384")], "strict": False, "history": True,
                        "throttle_retry_after": False},
    "athenahealth-fhir": {"auth": [("basic",), ("jwt", "ES384")], "strict": True, "history": False,
                          "throttle_retry_after": True, "limit": (100, 1),
                          "extra": [("ah-practice", "Organization/a-1.Practice-195900")]},
    "tebra-fhir": {"auth": [("post",), ("basic",)], "strict": False, "history": True,
                   "throttle_retry_after": False},
    "nextgen-fhir": {"auth": [("jwt", "RS384"), ("jwt", "ES384")], "strict": True, "history": False,
                     "throttle_retry_after": True},
}


def make_auth(spec):
    if spec[0] == "jwt":
        key = MAT.rsa if spec[1].startswith("RS") else MAT.ec
        return ("jwt", key, spec[1], "rsa-1" if spec[1].startswith("RS") else "ec-1")
    return (spec[0], SECRET)


class VendorTestBase(unittest.TestCase):
    vendor = None

    @classmethod
    def setUpClass(cls):
        cls.cfg = VENDORS[cls.vendor]
        cls.sim = Sim(cls.vendor)

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()

    def setUp(self):
        self.sim.admin("DELETE", "faults")
        self.sim.admin("POST", "config", {"rate_limit": ("%d/%d" % self.cfg["limit"]) if "limit" in self.cfg else "off",
                                          "token_ttl": 3600, "bulk_retry_after": 0, "bulk_job_seconds": 0.2})
        self.sim.admin("POST", "clock", {"skew_s": 0})

    def client(self, auth_index=0, scope="system/*.read", limiter=True):
        lim = ClientLimiter(*self.cfg["limit"]) if (limiter and "limit" in self.cfg) else None
        return FhirClient(self.sim.http, self.sim.https["base"], self.sim.https["token"], CLIENT_ID,
                          make_auth(self.cfg["auth"][auth_index]), scope=scope, limiter=lim,
                          extra_params=self.cfg.get("extra"))

    def search_client(self, auth_index=0):
        """eCW: searches need a token without system/Group.read."""
        if self.cfg.get("bulk_split"):
            types = self.sim.admin("GET", "info")["types"]
            return self.client(auth_index, scope=" ".join("system/%s.read" % t for t in types))
        return self.client(auth_index)

    def assert_matches_expected(self, store, msg=""):
        exp = self.sim.admin("GET", "expected")
        expected = {k: v["versionId"] for k, v in exp["resources"].items()}
        got = store.versions()
        missing = sorted(set(expected) - set(got))[:5]
        extra = sorted(set(got) - set(expected))[:5]
        wrong = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])[:5]
        self.assertFalse(missing or extra or wrong,
                         "%s: %d missing %s, %d extra %s, stale versions %s" % (
                             msg, len(set(expected) - set(got)), missing, len(set(got) - set(expected)), extra,
                             [(k, got[k], expected[k]) for k in wrong]))
        for k in exp["deleted"]:
            self.assertNotIn(k, store.live)
        return exp

    def group_path(self):
        return "/Group/%s/$export" % self.sim.info["group_id"]

    # -- tests -----------------------------------------------------------------------------
    def test_01_discovery_and_auth(self):
        r = self.sim.http.request("GET", self.sim.https["smart_configuration"])
        self.assertEqual(r.status, 200)
        cfg = r.json()
        self.assertEqual(cfg["token_endpoint"], self.sim.https["token"])
        self.assertIn("client_credentials", cfg["grant_types_supported"])
        r = self.sim.http.request("GET", self.sim.https["base"] + "/metadata")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["resourceType"], "CapabilityStatement")
        for i in range(len(self.cfg["auth"])):
            c = self.client(i)
            tok = c.authenticate()
            self.assertEqual(tok["token_type"].lower(), "bearer")
            self.assertIsInstance(tok["expires_in"], str if self.vendor == "athenahealth-fhir" else int)
            self.assertIn("system/Patient.read", tok["scope"].split())
        # plain HTTP listener serves the same API
        plain = Http()
        r = plain.request("GET", self.sim.info["endpoints"]["http"]["base"] + "/metadata")
        plain.close()
        self.assertEqual(r.status, 200)

    def test_02_bulk_full_and_incremental(self):
        c = self.client()
        store = LocalStore()
        manifest, counts = c.bulk_export(self.group_path(), store=store)
        self.assertTrue(manifest["requiresAccessToken"])
        self.assertGreater(sum(counts.values()), 100)
        names = [r["name"][0]["given"] for k, (v, r) in store.live.items() if k.startswith("Patient/")]
        self.assertTrue(names and all(MARKER in g for g in names))
        self.assert_matches_expected(store, "after full bulk export")
        wm = manifest["transactionTime"]
        for round_no in range(2):
            out = self.sim.admin("POST", "mutate", {"create": 6, "update": 8, "delete": 3, "merge": 1})
            self.assertGreater(out["count"], 10)
            manifest, counts = c.bulk_export(self.group_path(), [("_since", wm)], store=store)
            self.assertGreaterEqual(counts["deleted"], 3)
            self.assert_matches_expected(store, "after incremental export %d" % round_no)
            wm = manifest["transactionTime"]
        # churn while exporting: changes after transactionTime come with the next _since export
        self.sim.admin("POST", "mutate", {"background": {"rate_per_s": 50, "duration_s": 0.6}})
        manifest, _ = c.bulk_export(self.group_path(), [("_since", wm)], store=store)
        time.sleep(0.6)
        self.sim.admin("POST", "mutate/stop")
        manifest, _ = c.bulk_export(self.group_path(), [("_since", manifest["transactionTime"])], store=store)
        self.assert_matches_expected(store, "after churn")

    def test_03_search_sync(self):
        c = self.search_client()
        types = self.sim.admin("GET", "info")["types"]
        if self.cfg["strict"]:
            r = c.get(c.url("/Observation", [("_count", "10")]), ok=())
            self.assertEqual(r.status, 400)
            self.assertEqual(r.json()["resourceType"], "OperationOutcome")
            # per-patient fan-out from the Group member list
            g = c.get(c.url("/Group/" + self.sim.info["group_id"])).data
            pids = [m["entity"]["reference"].split("/")[1] for m in g["member"]][:4]
            exp = self.sim.admin("GET", "expected")
            log = self.sim.admin("GET", "changelog?limit=100000")["entries"]
            owner = {e["ref"]: e["patient"] for e in log}
            for pid in pids:
                for t in ("Observation", "Condition", "Encounter"):
                    if t not in types:
                        continue
                    got, _, _ = c.search_all(t, [("patient", pid), ("_count", "5")])
                    want = {k for k in exp["resources"] if k.startswith(t + "/") and owner.get(k) == pid}
                    self.assertEqual({"%s/%s" % (t, r["id"]) for r in got}, want)
            r, _, _ = c.search_all("Patient", [("_id", pids[0])])
            self.assertEqual(len(r), 1)
            # many small pages through the vendor's paging style (cursor state round trips)
            got, _, pages = c.search_all("Observation", [("patient", pids[0]), ("_count", "1")])
            self.assertEqual(pages, max(1, len(got)))
            return
        store = LocalStore()
        # full sync by paged population search, with the duplicate-across-pages hazard active
        self.sim.admin("POST", "faults", {"rules": [{"kind": "duplicate", "endpoint": "search:*", "probability": 0.3}]})
        watermarks = {}
        for t in types:
            _, meta, _ = c.search_all(t, [("_count", "7")], store=store)
            watermarks[t] = meta
        self.assertGreater(store.received, len(store.live))   # duplicates were served
        self.assert_matches_expected(store, "after full search sync")
        self.sim.admin("DELETE", "faults")
        # incremental (creates + updates) by _lastUpdated=ge<first page Bundle.meta.lastUpdated>
        self.sim.admin("POST", "mutate", {"create": 8, "update": 10})
        for t in types:
            _, meta, _ = c.search_all(t, [("_lastUpdated", "ge" + watermarks[t]), ("_count", "50")], store=store)
            watermarks[t] = meta
        self.assert_matches_expected(store, "after _lastUpdated incremental")
        if self.cfg["history"]:
            first, _ = c.history_all(None, None, LocalStore())
            self.sim.admin("POST", "mutate", {"create": 5, "update": 5, "delete": 4, "merge": 1})
            since = min(watermarks.values())
            c.history_all(None, since, store)
            self.assert_matches_expected(store, "after _history incremental")
        else:
            r = c.get(c.url("/Patient/_history"), ok=())
            self.assertIn(r.status, (400, 404))

    def test_04_faults(self):
        c = self.search_client()
        pid = next(k for k in self.sim.admin("GET", "expected")["resources"] if k.startswith("Patient/")).split("/")[1]
        probe = c.url("/Patient", [("_id", pid)])
        c.authenticate()

        def fault(rule):
            self.sim.admin("POST", "faults", {"rules": [dict({"endpoint": "search:*"}, **rule)], "replace": True})

        fault({"kind": "status", "status": 503})
        r = c.raw("GET", probe)
        self.assertEqual(r.status, 503)
        self.assertEqual(r.json()["issue"][0]["code"], "transient")
        self.assertEqual(c.raw("GET", probe).status, 200)

        fault({"kind": "429", "retry_after": "seconds", "retry_after_s": 1})
        r = c.raw("GET", probe)
        self.assertEqual((r.status, r.header("retry-after")), (429, "1"))
        self.assertEqual(r.json()["issue"][0]["code"], "throttled")
        fault({"kind": "429", "retry_after": "http-date", "retry_after_s": 1})
        r = c.raw("GET", probe)
        self.assertEqual(r.status, 429)
        self.assertTrue(r.header("retry-after").endswith("GMT"))
        time.sleep(simclient._retry_after_seconds(r.header("retry-after")))
        self.assertEqual(c.get(probe).status, 200)

        fault({"kind": "timeout", "hang_s": 3})
        with self.assertRaises(OSError):
            c.raw("GET", probe, timeout=0.5)
        self.assertEqual(c.raw("GET", probe).status, 200)

        fault({"kind": "reset"})
        with self.assertRaises((OSError, simclient.http.client.HTTPException)):
            c.raw("GET", probe)
        self.assertEqual(c.raw("GET", probe).status, 200)

        fault({"kind": "truncate"})
        with self.assertRaises(simclient.http.client.IncompleteRead):
            c.raw("GET", probe)
        self.assertEqual(c.raw("GET", probe).status, 200)

        fault({"kind": "malformed_json"})
        r = c.raw("GET", probe)
        self.assertEqual(r.status, 200)
        with self.assertRaises(ValueError):
            json.loads(r.body)

        fault({"kind": "revoke_token"})
        r = c.raw("GET", probe)
        self.assertEqual(r.status, 401)
        self.assertIn("invalid_token", r.header("www-authenticate"))
        self.assertEqual(c.get(probe).status, 200)        # client re-authenticates

        self.sim.admin("POST", "revoke-tokens")
        self.assertEqual(c.raw("GET", probe).status, 401)
        self.assertEqual(c.get(probe).status, 200)

        fault({"kind": "delay", "delay_s": 0.4})
        t0 = time.monotonic()
        self.assertEqual(c.raw("GET", probe).status, 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.35)

        # bulk faults: truncated NDJSON download (retry succeeds), failed job
        bc = self.client()
        self.sim.admin("POST", "faults", {"rules": [{"kind": "truncate", "endpoint": "bulk-file"}], "replace": True})
        store = LocalStore()
        bc.bulk_export(self.group_path(), [("_type", "Patient")], store=store)
        self.assertGreaterEqual(bc.events["transport_error"] + bc.events["bad_ndjson"], 1)
        self.sim.admin("POST", "faults", {"rules": [{"kind": "bulk_fail", "endpoint": "bulk-status"}], "replace": True})
        r = bc.bulk_kickoff(self.group_path(), [("_type", "Patient")])
        loc = r.header("content-location")
        time.sleep(float(r.header("retry-after") or 0))
        r = bc.raw("GET", loc)
        self.assertEqual(r.status, 500)
        self.assertEqual(r.json()["resourceType"], "OperationOutcome")
        self.sim.admin("DELETE", "faults")

        # clock skew: server timestamps and the Date header follow the server clock
        self.sim.admin("POST", "clock", {"skew_s": 3600})
        out = self.sim.admin("POST", "mutate", {"ops": [{"op": "create", "type": "Patient"}]})
        lu = out["changes"][0]["lastUpdated"]
        lu_s = datetime.datetime.strptime(lu[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc).timestamp()
        self.assertAlmostEqual(lu_s - time.time(), 3600, delta=30)
        r = c.raw("GET", probe)
        import email.utils
        self.assertAlmostEqual(email.utils.parsedate_to_datetime(r.header("date")).timestamp() - time.time(), 3600, delta=30)
        self.sim.admin("POST", "clock", {"skew_s": 0})
        stats = self.sim.admin("GET", "stats")
        self.assertGreaterEqual(stats["faults_injected"], 11)

    def test_05_rate_limit(self):
        c = self.search_client()
        c.limiter = None
        c.authenticate()
        probe = c.url("/metadata")
        self.sim.admin("POST", "config", {"rate_limit": "5/1"})
        self.sim.admin("POST", "reset-stats")
        statuses = [c.raw("GET", probe) for _ in range(9)]
        codes = [r.status for r in statuses]
        self.assertEqual(codes[:5], [200] * 5)
        self.assertIn(429, codes[5:])
        throttled = next(r for r in statuses if r.status == 429)
        self.assertEqual(throttled.json()["issue"][0]["code"], "throttled")
        self.assertEqual(throttled.header("retry-after") is not None, self.cfg["throttle_retry_after"])
        st = self.sim.admin("GET", "stats")
        self.assertGreaterEqual(st["rate_limit_violations"], 4)
        self.assertGreaterEqual(st["observed_max_per_1s"], 9)
        # a client that respects the limit causes no violations
        self.sim.admin("POST", "config", {"rate_limit": "5/1"})     # fresh window
        self.sim.admin("POST", "reset-stats")
        c.limiter = ClientLimiter(5, 1.0)
        for _ in range(5):
            self.assertEqual(c.raw("GET", probe).status, 200)
        st = self.sim.admin("GET", "stats")
        self.assertEqual(st["rate_limit_violations"], 0)
        self.assertEqual(st["retry_after_violations"], 0)
        self.sim.admin("POST", "config", {"rate_limit": "off"})

    def test_06_auth_failures(self):
        aud = self.sim.https["token"]
        jwt_specs = [a for a in self.cfg["auth"] if a[0] == "jwt"]
        secret_specs = [a for a in self.cfg["auth"] if a[0] != "jwt"]

        def post_assertion(jwt_text):
            form = {"grant_type": "client_credentials", "scope": "system/Patient.read",
                    "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    "client_assertion": jwt_text}
            return self.sim.http.request("POST", aud, {"Content-Type": "application/x-www-form-urlencoded"},
                                         urllib.parse.urlencode(form).encode())

        def err(r):
            return r.status, r.json()["error"]

        if jwt_specs:
            alg = jwt_specs[0][1]
            key, kid = (MAT.rsa, "rsa-1") if alg.startswith("RS") else (MAT.ec, "ec-1")
            self.assertEqual(post_assertion(assertion(CLIENT_ID, aud, key, alg, kid)).status, 200)
            bad_sig = assertion(CLIENT_ID, aud, MAT.other_rsa, "RS384", "rsa-1")
            self.assertEqual(err(post_assertion(bad_sig)), (401, "invalid_client"))
            expired = assertion(CLIENT_ID, aud, key, alg, kid, exp_in=-120)
            self.assertEqual(err(post_assertion(expired)), (400, "invalid_grant"))
            too_long = assertion(CLIENT_ID, aud, key, alg, kid, exp_in=3600)
            self.assertEqual(err(post_assertion(too_long)), (400, "invalid_grant"))
            once = assertion(CLIENT_ID, aud, key, alg, kid, jti="jti-" + uuid.uuid4().hex)
            self.assertEqual(post_assertion(once).status, 200)
            self.assertEqual(err(post_assertion(once)), (400, "invalid_grant"))
            wrong_aud = assertion(CLIENT_ID, aud + "x", key, alg, kid)
            self.assertEqual(err(post_assertion(wrong_aud)), (401, "invalid_client"))
            unknown = assertion("nobody", aud, key, alg, kid)
            self.assertEqual(err(post_assertion(unknown)), (401, "invalid_client"))
            if self.vendor == "eclinicalworks":
                es = assertion(CLIENT_ID, aud, MAT.ec, "ES384", "ec-1")
                self.assertEqual(err(post_assertion(es)), (401, "invalid_client"))
            if self.vendor != "cerner":
                self.assertIn("already been used", post_assertion(once).json()["error_description"])
        else:
            r = post_assertion(assertion(CLIENT_ID, aud, MAT.rsa, "RS384", "rsa-1"))
            self.assertEqual(err(r), (401, "invalid_client"))
        for spec in secret_specs:
            cl = self.client(self.cfg["auth"].index(spec))
            r = cl.token_request(secret="wrong")
            self.assertEqual(err(r), (401, "invalid_client"))
            if spec[0] == "basic":
                self.assertTrue(r.header("www-authenticate").startswith("Basic"))
            if self.vendor == "cerner":
                self.assertIn("error_uri", r.json())
        # scope handling
        cl = self.client()
        r = cl.token_request(scope="system/Unknown.read")
        self.assertEqual(err(r), (400, "invalid_scope"))
        cl.scope = "system/Patient.read"
        tok = cl.authenticate()
        self.assertEqual(tok["scope"], "system/Patient.read")
        pid = next(k for k in self.sim.admin("GET", "expected")["resources"] if k.startswith("Patient/")).split("/")[1]
        r = cl.raw("GET", cl.url("/Observation", [("patient", pid)]))
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json()["issue"][0]["code"], "forbidden")
        r = self.sim.http.request("GET", cl.url("/Patient/" + pid))
        self.assertEqual(r.status, 401)
        self.assertTrue(r.header("www-authenticate").startswith("Bearer"))
        # token expiry
        self.sim.admin("POST", "config", {"token_ttl": 1})
        cl = self.search_client()
        cl.authenticate()
        self.assertEqual(cl.raw("GET", cl.url("/Patient/" + pid)).status, 200)
        time.sleep(1.1)
        r = cl.raw("GET", cl.url("/Patient/" + pid))
        self.assertEqual(r.status, 401)
        self.assertIn("expired", r.header("www-authenticate"))

    def test_07_bulk_protocol(self):
        c = self.client()
        c.authenticate()
        url = c.url(self.group_path(), [("_type", "Patient,Observation")])
        r = c.raw("GET", url)       # no Prefer: respond-async
        self.assertEqual(r.status, 400)
        r = c.raw("GET", c.url(self.group_path(), [("_outputFormat", "text/csv")]), {"Prefer": "respond-async"})
        self.assertEqual(r.status, 400)
        r = c.raw("GET", c.url(self.group_path(), [("_typeFilter", "Observation?category=laboratory")]), {"Prefer": "respond-async"})
        self.assertEqual(r.status, 400)
        self.sim.admin("POST", "config", {"bulk_job_seconds": 3, "bulk_retry_after": 1})
        r = c.raw("GET", url, {"Prefer": "respond-async"})
        self.assertEqual(r.status, 202)
        loc = r.header("content-location")
        if self.vendor == "eclinicalworks":
            self.assertIn("/$export-poll-location?job_id=", loc)
            self.assertEqual(r.header("retry-after"), "1")
            dup = c.raw("GET", url, {"Prefer": "respond-async"})
            self.assertEqual(dup.status, 429)
            time.sleep(1)
        p1 = c.raw("GET", loc)
        self.assertEqual(p1.status, 202)
        self.assertTrue(p1.header("x-progress"))
        self.assertEqual(p1.header("retry-after"), "1")
        p2 = c.raw("GET", loc)          # too fast
        self.assertEqual(p2.status, 429)
        self.assertTrue(p2.header("retry-after"))
        self.assertEqual(c.raw("DELETE", loc).status, 202)
        self.assertEqual(c.raw("GET", loc).status, 404)
        self.sim.admin("POST", "config", {"bulk_job_seconds": 0.2, "bulk_retry_after": 0})
        st = self.sim.admin("GET", "stats")
        self.assertGreaterEqual(st["bulk_poll_too_early"], 1)
        # file downloads need the token
        m, _ = c.bulk_export(self.group_path(), [("_type", "Patient")])
        # (the job was deleted by bulk_export; downloads now 404)
        self.assertEqual(c.raw("GET", m["output"][0]["url"]).status, 404)
        r = c.bulk_kickoff(self.group_path(), [("_type", "Patient")])
        loc = r.header("content-location")
        m = c.bulk_wait(loc, first_wait=float(r.header("retry-after") or 0))
        self.assertEqual(self.sim.http.request("GET", m["output"][0]["url"]).status, 401)
        ok = c.raw("GET", m["output"][0]["url"])
        self.assertEqual(ok.status, 200)
        self.assertEqual(ok.header("content-type"), "application/fhir+ndjson")
        c.raw("DELETE", loc)
        if self.cfg.get("bulk_split"):
            r = c.raw("GET", c.url("/Patient", [("_count", "1")]))
            self.assertEqual(r.status, 403)


# ---- vendor-specific checks ------------------------------------------------------------------

class CernerSpecific:
    """Extra checks for cerner (mixed into its vendor test class)."""

    def test_10_tenant_dates_paging(self):
        c = self.client()
        c.authenticate()
        bad = c.base.replace(self.sim.info["tenant"], "00000000-0000-0000-0000-000000000000")
        r = c.raw("GET", bad + "/Patient?_id=1")
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json()["issue"][0]["diagnostics"], "Tenant not valid or accessible")
        pid = next(k for k in self.sim.admin("GET", "expected")["resources"] if k.startswith("Patient/")).split("/")[1]
        ok = c.raw("GET", c.url("/Observation", [("patient", pid), ("_lastUpdated", "ge2020-01-01T00:00:00Z"),
                                                 ("_lastUpdated", "le2100-01-01T00:00:00Z"), ("_count", "2")]))
        self.assertEqual(ok.status, 200)
        nxt = [l["url"] for l in ok.json()["link"] if l["relation"] == "next"]
        self.assertTrue(nxt and "pageContext=" in nxt[0] and "direction=NEXT" in nxt[0])
        self.assertNotIn("total", ok.json())
        r = c.raw("GET", c.url("/Observation", [("patient", pid), ("_lastUpdated", "ge2020-01-01T00:00:00Z"),
                                                ("_lastUpdated", "gt2021-01-01T00:00:00Z")]))
        self.assertEqual(r.status, 400)
        r = c.raw("GET", c.url("/Observation", [("_count", "5")]))
        self.assertEqual(r.json()["issue"][0]["diagnostics"], "No supported search parameters provided")
        r = c.raw("GET", nxt[0].replace("pageContext=", "pageContext=x"))
        self.assertEqual(r.status, 400)


class AthenaSpecific:
    """Extra checks for athenahealth-fhir (mixed into its vendor test class)."""

    def test_10_practice_and_cursor(self):
        c = self.client()
        c.authenticate()
        pid = next(k for k in self.sim.admin("GET", "expected")["resources"] if k.startswith("Patient/")).split("/")[1]
        self.assertTrue(pid.startswith("a-195900.E-"))
        r = c.raw("GET", c.base + "/Observation?patient=" + pid)
        self.assertEqual(r.status, 400)
        r = c.raw("GET", c.base + "/Observation?patient=%s&ah-practice=Organization/a-1.Practice-1" % pid)
        self.assertEqual(r.status, 403)
        r = c.raw("GET", c.url("/Observation", [("patient", pid), ("_count", "1")]))
        nxt = [l["url"] for l in r.json()["link"] if l["relation"] == "next"]
        self.assertTrue(nxt and "cursor=" in nxt[0])


class EpicSpecific:
    """Extra checks for epic (mixed into its vendor test class)."""

    def test_10_patient_search_rules(self):
        c = self.client()
        exp = self.sim.admin("GET", "expected")
        pid = next(k for k in exp["resources"] if k.startswith("Patient/")).split("/")[1]
        pat = c.get(c.url("/Patient/" + pid)).data
        r = c.raw("GET", c.url("/Patient", [("family", pat["name"][0]["family"])]))
        self.assertEqual(r.status, 400)
        got, _, _ = c.search_all("Patient", [("family", pat["name"][0]["family"]), ("birthdate", pat["birthDate"])])
        self.assertIn(pid, [p["id"] for p in got])
        self.assertIn(MARKER, pat["name"][0]["given"])

    def test_11_history_when_enabled(self):
        # _history is off for Epic by default; switched on it pages with Epic's link style
        self.sim.admin("POST", "config", {"history": "on"})
        try:
            c = self.client()
            self.sim.admin("POST", "mutate", {"update": 3, "delete": 2})
            store = LocalStore()
            _, n = c.history_all("Observation", "2000-01-01", store)
            log = self.sim.admin("GET", "changelog?limit=100000&types=Observation")["entries"]
            self.assertEqual(n, len(log))
            first, n2 = c.history_all(None, None, LocalStore())
            self.assertEqual(n2, self.sim.admin("GET", "expected")["lastSeq"])
        finally:
            self.sim.admin("POST", "config", {"history": "off"})


class PracticeFusionSpecific:
    """Extra checks for practice-fusion (mixed into its vendor test class)."""

    def test_10_introspect_and_throttle_shape(self):
        c = self.client()
        c.authenticate()
        r = self.sim.http.request("POST", c.base + "/introspect", {"Content-Type": "application/x-www-form-urlencoded"},
                                  urllib.parse.urlencode({"token": c.token}).encode())
        self.assertTrue(r.json()["active"])
        self.sim.admin("POST", "config", {"rate_limit": "1/5"})
        c.raw("GET", c.url("/metadata"))
        r = c.raw("GET", c.url("/metadata"))
        self.assertEqual(r.status, 429)
        self.assertIsNone(r.header("retry-after"))
        self.assertEqual(r.json()["issue"][0]["code"], "throttled")
        self.sim.admin("POST", "config", {"rate_limit": "off"})


class AdminApi(unittest.TestCase):
    """Admin API and data-set properties (one simulator)."""

    @classmethod
    def setUpClass(cls):
        cls.sim = Sim("meditech", "--types", "all", patients=10)

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()

    def test_deterministic_and_kinds(self):
        other = Sim("meditech", "--types", "all", patients=10)
        try:
            a = self.sim.admin("GET", "changelog?limit=100000")["entries"]
            b = other.admin("GET", "changelog?limit=100000")["entries"]
            self.assertEqual([(e["ref"], e["versionId"]) for e in a], [(e["ref"], e["versionId"]) for e in b])
        finally:
            other.stop()
        types = set(self.sim.admin("GET", "info")["types"])
        for t in ("Patient", "Appointment", "Encounter", "Condition", "Observation", "Coverage", "ChargeItem",
                  "Account", "Claim", "Practitioner", "PractitionerRole", "Organization", "Location", "Device",
                  "SupplyDelivery"):
            self.assertIn(t, types)

    def test_mutate_explicit_and_changelog(self):
        exp = self.sim.admin("GET", "expected")
        pids = [k.split("/")[1] for k in exp["resources"] if k.startswith("Patient/")]
        obs = next(k for k in exp["resources"] if k.startswith("Observation/"))
        out = self.sim.admin("POST", "mutate", {"ops": [
            {"op": "create", "type": "Observation", "patient": pids[0]},
            {"op": "update", "ref": obs},
            {"op": "delete", "ref": obs},
            {"op": "merge", "source": "Patient/" + pids[1], "target": "Patient/" + pids[2]}]})
        ops = [c["op"] for c in out["changes"]]
        self.assertEqual(ops[:5], ["create", "update", "delete", "update", "update"])
        self.assertTrue(all(o == "merge" for o in ops[5:]))
        exp2 = self.sim.admin("GET", "expected")
        self.assertIn(obs, exp2["deleted"])
        self.assertEqual(exp2["deleted"][obs]["versionId"], str(int(exp["resources"][obs]["versionId"]) + 2))
        log = self.sim.admin("GET", "changelog?since=%d" % exp["lastSeq"])
        self.assertEqual(len(log["entries"]), out["count"])
        stamps = [c["lastUpdated"] for c in out["changes"]]
        self.assertEqual(stamps, sorted(stamps))
        r = self.sim.http.request("POST", self.sim.admin_url + "/mutate", {"Content-Type": "application/json"},
                                  json.dumps({"ops": [{"op": "delete", "ref": obs}]}).encode())
        self.assertEqual(r.status, 400)
        # deleting a patient deletes its chart
        log = self.sim.admin("GET", "changelog?limit=100000")["entries"]
        owned = {e["ref"] for e in log if e["patient"] == pids[3] and not e["ref"].startswith("Patient/")}
        out = self.sim.admin("POST", "mutate", {"ops": [{"op": "delete", "ref": "Patient/" + pids[3]}]})
        self.assertEqual(out["changes"][-1]["ref"], "Patient/" + pids[3])
        exp3 = self.sim.admin("GET", "expected")
        self.assertTrue(owned)
        self.assertFalse(owned & set(exp3["resources"]))

    def test_pem_public_key_registration(self):
        # --client-public-key with a PEM key (no kid) instead of a JWKS file
        sim = SimNoJwks("eclinicalworks", "--client-public-key", MAT.rsa_pub)
        try:
            c = FhirClient(sim.http, sim.https["base"], sim.https["token"], CLIENT_ID,
                           ("jwt", MAT.rsa, "RS384", None))
            self.assertIn("access_token", c.authenticate())
            c2 = FhirClient(sim.http, sim.https["base"], sim.https["token"], CLIENT_ID,
                            ("jwt", MAT.ec, "ES384", None))
            self.assertEqual(c2.token_request().status, 401)
        finally:
            sim.stop()

    def test_faults_validation(self):
        r = self.sim.http.request("POST", self.sim.admin_url + "/faults", {"Content-Type": "application/json"},
                                  json.dumps({"rules": [{"kind": "nonsense"}]}).encode())
        self.assertEqual(r.status, 400)
        self.assertIn("unknown fault kind", r.json()["error"])


SPECIFIC = {"cerner": CernerSpecific, "athenahealth-fhir": AthenaSpecific, "epic": EpicSpecific,
            "practice-fusion": PracticeFusionSpecific}


def _vendor_class(vendor):
    name = "".join(p.capitalize() for p in vendor.replace("-", " ").split()) + "Test"
    bases = ((SPECIFIC[vendor],) if vendor in SPECIFIC else ()) + (VendorTestBase,)
    return type(name, bases, {"vendor": vendor})


for _v in VENDORS:
    _cls = _vendor_class(_v)
    globals()[_cls.__name__] = _cls
del _v, _cls


def load_tests(loader, tests, pattern):
    suite = unittest.TestSuite()
    for name, obj in sorted(globals().items()):
        if isinstance(obj, type) and issubclass(obj, unittest.TestCase) and obj is not VendorTestBase:
            suite.addTests(loader.loadTestsFromTestCase(obj))
    return suite


if __name__ == "__main__":
    unittest.main()
