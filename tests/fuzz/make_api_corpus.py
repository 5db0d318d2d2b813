#!/usr/bin/python3
"""Regenerates the seed corpora of fuzz_fhir_bundle and fuzz_soap from the simulators
(tests/sim, plain HTTP, 2 patients) plus hand-written hostile cases. Run from the repo root:
    /usr/bin/python3 tests/fuzz/make_api_corpus.py
"""
import json, os, subprocess, sys, tempfile, time, urllib.parse, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FHIR = os.path.join(ROOT, "tests/fuzz/corpus/fuzz_fhir_bundle")
SOAP = os.path.join(ROOT, "tests/fuzz/corpus/fuzz_soap")


def start(vendor, *args):
    d = tempfile.mkdtemp()
    ready = os.path.join(d, "ready.json")
    p = subprocess.Popen(["/usr/bin/python3", os.path.join(ROOT, "tests/sim/pms_sim.py"), "--vendor", vendor,
                          "--ready-file", ready, "--patients", "2", "--marker", "FUZZSEED"] + list(args),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        if os.path.exists(ready):
            return p, json.load(open(ready))
        time.sleep(0.1)
    raise SystemExit("simulator did not start")


def req(method, url, body=None, headers=None):
    r = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(r) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def save(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def fhir():
    p, info = start("meditech", "--client-id", "c", "--client-secret", "s", "--page-size", "3")
    try:
        base = info["fhir_base"]
        tok = json.loads(req("POST", info["token_url"], urllib.parse.urlencode(
            {"grant_type": "client_credentials", "scope": "system/*.read", "client_id": "c",
             "client_secret": "s"}).encode(), {"Content-Type": "application/x-www-form-urlencoded"})[2])["access_token"]
        h = {"Authorization": "Bearer " + tok, "Accept": "application/fhir+json"}
        save(FHIR, "searchset_page", req("GET", base + "/Observation?_count=3", headers=h)[2])
        admin = info["admin"]["http"]
        obs = json.loads(req("GET", base + "/Observation?_count=1", headers=h)[2])["entry"][0]["resource"]["id"]
        req("POST", admin + "/mutate", json.dumps({"ops": [{"op": "delete", "ref": "Observation/" + obs}]}).encode(),
            {"Content-Type": "application/json"})
        save(FHIR, "history_with_delete", req("GET", base + "/Observation/_history?_count=5", headers=h)[2])
        save(FHIR, "operation_outcome", req("GET", base + "/Observation?_count=-1", headers=h)[2])
        st, hd, _ = req("GET", base + "/$export?_type=Patient,Observation&_since=2000-01-01T00:00:00Z",
                        headers=dict(h, Prefer="respond-async"))
        loc = hd.get("Content-Location")
        for _ in range(100):
            st, _, body = req("GET", loc, headers=h)
            if st == 200:
                break
            time.sleep(0.2)
        save(FHIR, "bulk_manifest", body)
        m = json.loads(body)
        lines = req("GET", m["output"][0]["url"], headers=h)[2].split(b"\n")
        save(FHIR, "ndjson_line", lines[0])
        if m.get("deleted"):
            save(FHIR, "ndjson_deleted_line", req("GET", m["deleted"][0]["url"], headers=h)[2].split(b"\n")[0])
    finally:
        p.terminate()
    p, info = start("drchrono", "--client-id", "c", "--client-secret", "s", "--refresh-token", "rt")
    try:
        t = json.loads(req("POST", info["token_url"], urllib.parse.urlencode(
            {"grant_type": "refresh_token", "refresh_token": "rt", "client_id": "c", "client_secret": "s"}).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"})[2])
        save(FHIR, "drchrono_page", req("GET", info["api_base"] + "/patients?page_size=1",
                                        headers={"Authorization": "Bearer " + t["access_token"]})[2])
    finally:
        p.terminate()
    p, info = start("allscripts", "--client-id", "u", "--client-secret", "pw")
    try:
        base = info["api_base"]
        tok = req("POST", base + "/GetToken", json.dumps({"Username": "u", "Password": "pw", "Appname": info["appname"]}).encode(),
                  {"Content-Type": "application/json"})[2].decode()
        keys = ["Action", "AppUserID", "Appname", "PatientID", "Token"] + ["Parameter%d" % i for i in range(1, 7)] + ["Data"]
        def magic(action, **kw):
            b = {k: "" for k in keys}
            b.update(Action=action, AppUserID=info["app_user"], Appname=info["appname"], Token=tok, **kw)
            return req("POST", base + "/MagicJson", json.dumps(b).encode(), {"Content-Type": "application/json"})[2]
        changed = json.loads(magic("GetChangedPatients", Parameter1="1/1/1900"))
        save(FHIR, "unity_changed", json.dumps(changed))
        save(FHIR, "unity_patient", magic("GetPatient", PatientID=changed[0]["getchangedpatientsinfo"][0]["patientid"]))
        save(FHIR, "unity_error", magic("Nope"))
    finally:
        p.terminate()
    save(FHIR, "hostile_deep", "{" + '"a":[' * 200)
    save(FHIR, "hostile_cut_name", '{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"1","name":[{"family":"Smi,"x":]}')
    save(FHIR, "hostile_surrogate", '{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"\\ud800"}}]}')


def soap():
    p, info = start("kareo", "--client-id", "u", "--client-secret", "pw")
    try:
        ns = info["namespace"]
        def call(op, key=None, filt=""):
            env = ('<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sch="%s"><soapenv:Body>'
                   '<sch:%s><sch:request><sch:RequestHeader><sch:ClientVersion>f</sch:ClientVersion><sch:CustomerKey>%s</sch:CustomerKey>'
                   '<sch:Password>pw</sch:Password><sch:User>u</sch:User></sch:RequestHeader>%s</sch:request></sch:%s>'
                   '</soapenv:Body></soapenv:Envelope>') % (ns, op, key or info["customer_key"], filt, op)
            return req("POST", info["soap_url"], env.encode(), {"Content-Type": "text/xml; charset=utf-8",
                                                                "SOAPAction": '"%s%s"' % (info["soap_action_prefix"], op)})[2]
        save(SOAP, "get_all_patients", call("GetAllPatients", filt="<sch:Filter><sch:BatchSize>1</sch:BatchSize></sch:Filter>"))
        save(SOAP, "get_patients", call("GetPatients"))
        save(SOAP, "get_appointments", call("GetAppointments"))
        save(SOAP, "security_failure", call("GetPatients", key="wrong"))
        save(SOAP, "inband_error", call("GetPatients", filt="<sch:Filter><sch:FromLastModifiedDate>nope</sch:FromLastModifiedDate></sch:Filter>"))
        save(SOAP, "soap_fault", req("POST", info["soap_url"], b"<broken", {"Content-Type": "text/xml; charset=utf-8",
                                                                          "SOAPAction": '"x"'})[2])
    finally:
        p.terminate()
    save(SOAP, "hostile_doctype", '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>')
    save(SOAP, "hostile_unclosed", '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><a><b>')
    save(SOAP, "hostile_entities", '<a x="&#x110000;">&lt;&#65;&#x42;&amp;<![CDATA[<raw>]]></a>')


if __name__ == "__main__":
    fhir()
    soap()
    print("corpora written to", FHIR, "and", SOAP)
