"""Kareo / Tebra SOAP API 2.1 (practice management).  pms-interfaces.md section 9.

POST /services/soap/2.1/KareoServices.svc, SOAP 1.1, Content-Type text/xml,
SOAPAction "http://www.kareo.com/api/schemas/KareoServices/<Operation>", namespace
http://www.kareo.com/api/schemas/, request `<Op><request><RequestHeader>..</RequestHeader>
<Fields>..</Fields><Filter>..</Filter></request></Op>`.

- Auth in every call: RequestHeader {ClientVersion, CustomerKey, Password, User}. Wrong
  CustomerKey or credentials -> HTTP 200, ErrorResponse.IsError=false and SecurityResponse
  {SecurityResultSuccess: false, CustomerKeyValid / Authenticated false, SecurityResult text},
  no payload. No tokens, nothing expires.
- Fields: boolean projection; absent/empty Fields = every field; unrequested fields are
  serialised as i:nil="true". Every value is a string. Filter dates M/D/YYYY (a time part is
  accepted); From* is >=, To* is <= the given instant (a bare date means its midnight).
- Record timestamps CreatedDate / LastModifiedDate: "10/5/2021 9:03:08 AM" (practice local
  time, whole seconds).
- GetAllPatients pages by Filter {BatchSize (<= 1000), StartKey}: patients with ID >= StartKey
  in ID order; the result's Key is the next StartKey, i:nil after the last batch.
- Deletions are not exposed: a deleted record simply stops being returned.
- Errors: in-band ErrorResponse {IsError: true, ErrorMessage, StackTrace} with HTTP 200 (bad
  filter values, throttling); SOAP Faults (HTTP 500) for malformed envelopes, unknown
  operations and SOAPAction mismatches (a:ActionNotSupported); 415 for a non-XML content type.
- Throttle [U numbers]: per customer key, in-band ErrorResponse "... throttled ..." (HTTP 200).
"""

import time
import xml.etree.ElementTree as ET

from ..api.native import Collection, NativeVendor, coding, fhir_date_parts, fhir_ms, first, ref_id
from ..api.soap import SoapFault, add, child, envelope, fault_bytes, parse_envelope, text
from ..core.http import Response

NS = "http://www.kareo.com/api/schemas/"
PATH = "/services/soap/2.1/KareoServices.svc"
ACTION_PREFIX = "http://www.kareo.com/api/schemas/KareoServices/"
XML_CT = "text/xml; charset=utf-8"

PATIENT_FIELDS = ["ID", "MedicalRecordNumber", "FirstName", "MiddleName", "LastName", "PatientFullName",
                  "DOB", "Age", "Gender", "AddressLine1", "AddressLine2", "City", "State", "ZipCode", "Country",
                  "HomePhone", "MobilePhone", "WorkPhone", "EmailAddress", "MaritalStatus", "PracticeId",
                  "PracticeName", "DefaultRenderingProviderId", "DefaultRenderingProviderFullName",
                  "CreatedDate", "LastModifiedDate"]
APPOINTMENT_FIELDS = ["ID", "PatientID", "PatientFullName", "StartDate", "EndDate", "AppointmentDuration", "Type",
                      "ConfirmationStatus", "AppointmentReason1", "ResourceName1", "ServiceLocationName",
                      "Notes", "PracticeName", "CreatedDate", "LastModifiedDate"]
CHARGE_FIELDS = ["ID", "EncounterID", "PatientID", "PatientName", "ProcedureCode", "ProcedureName",
                 "ProcedureModifier1", "Units", "UnitCharge", "TotalCharges", "ServiceStartDate", "ServiceEndDate",
                 "PostingDate", "Status", "Receipts", "InsuranceBalance", "PatientBalance", "TotalBalance",
                 "RenderingProviderName", "PracticeName", "CreatedDate", "LastModifiedDate"]
PAYMENT_FIELDS = ["ID", "PatientID", "PayerName", "PayerType", "PaymentMethod", "ReferenceNumber", "Amount",
                  "Applied", "Unapplied", "PostDate", "PracticeName", "CreatedDate", "LastModifiedDate"]
PROVIDER_FIELDS = ["ID", "FirstName", "MiddleName", "LastName", "FullName", "Degree", "NationalProviderIdentifier",
                   "SpecialtyName", "Type", "Active", "WorkPhone", "PracticeName", "CreatedDate", "LastModifiedDate"]
LOCATION_FIELDS = ["ID", "Name", "AddressLine1", "City", "State", "ZipCode", "Phone", "PracticeName",
                   "CreatedDate", "LastModifiedDate"]

APPT_STATUS = {"booked": "Scheduled", "pending": "Scheduled", "arrived": "Check-in", "fulfilled": "Check-out",
               "cancelled": "Cancelled", "noshow": "No-show", "checked-in": "Check-in"}
CHARGE_STATUS = {"billable": "Ready To Send", "billed": "Billed", "not-billable": "Settled"}

# operation -> (collection, list element, record element, fields, filter handler name)
OPS = {
    "GetPatients": ("Patients", "Patients", "PatientData", PATIENT_FIELDS),
    "GetAppointments": ("Appointments", "Appointments", "AppointmentData", APPOINTMENT_FIELDS),
    "GetCharges": ("Charges", "Charges", "ChargeData", CHARGE_FIELDS),
    "GetPayments": ("Payments", "Payments", "PaymentData", PAYMENT_FIELDS),
    "GetProviders": ("Providers", "Providers", "ProviderData", PROVIDER_FIELDS),
    "GetServiceLocations": ("ServiceLocations", "ServiceLocations", "ServiceLocationData", LOCATION_FIELDS),
}
SINGLE_OPS = {"GetPatient": ("Patients", "Patient", "PatientID"),
              "GetAppointment": ("Appointments", "Appointment", "AppointmentID")}
OTHER_OPS = {"GetAllPatients", "GetThrottles", "GetPractices"}
WRITE_OPS = {"CreatePatient", "UpdatePatient", "CreateAppointment", "UpdateAppointment", "DeleteAppointment",
             "CreateEncounter", "UpdateEncounterStatus", "CreatePayment", "RegisterExternalVendor",
             "UpdatePatientsExternalID", "GetTransactions", "GetEncounterDetails", "GetProcedureCodes",
             "GetExternalVendors"}


def mdy_pad(text):
    p = fhir_date_parts(text)
    return "%02d/%02d/%04d" % (p[1], p[2], p[0]) if p else ""


def money(x):
    return "%.4f" % float(x or 0)


class Kareo(NativeVendor):
    name = "kareo"
    summary = "Kareo / Tebra SOAP API 2.1 (RequestHeader auth, Fields/Filter, GetAllPatients batches)"
    id_bases = {"Patient": 1300, "Appointment": 52000, "ChargeItem": 310000, "Claim": 77000,
                "Practitioner": 0, "Location": 0}
    defaults = {"rate_limit": "60/60", "rate_limit_mode": "rolling", "retry_after_style": "none"}
    deletion_summary = "not exposed: deleted records stop being returned (detect only by a full re-list)"

    @classmethod
    def add_arguments(cls, parser):
        super().add_arguments(parser)
        parser.add_argument("--customer-key", default="pmssim-customer-key", help="valid CustomerKey")
        parser.add_argument("--practice-name", default="Riverside Family Medicine", help="PracticeName")
        parser.add_argument("--practice-id", default="1", help="PracticeID")
        parser.add_argument("--max-batch", type=int, default=1000, help="largest GetAllPatients BatchSize")

    def __init__(self, ctx):
        super().__init__(ctx)
        a = ctx.args
        self.customer_key = a.customer_key
        self.practice_name = a.practice_name
        self.practice_id = a.practice_id
        self.customer_id = "77067"

    # -- collections -------------------------------------------------------------------------
    def build_collections(self):
        lm = self.tz.mdy_hms_ampm

        def C(name, ftype, proj, pf="PatientID"):
            return Collection(name, ftype, "ID", proj, "LastModifiedDate", lm, "absent", None, pf)
        return [
            C("Patients", "Patient", self.p_patient, None),
            C("Appointments", "Appointment", self.p_appointment),
            C("Charges", "ChargeItem", self.p_charge),
            C("Payments", "Claim", self.p_payment),
            C("Providers", "Practitioner", self.p_provider, None),
            C("ServiceLocations", "Location", self.p_location, None),
        ]

    def _created(self, v):
        hist = self.ctx.store.history.get(v.key, ())
        return self.tz.mdy_hms_ampm(hist[0].ts if hist else v.ts)

    def p_patient(self, r, v):
        name = first(r.get("name"), {})
        given = name.get("given") or [""]
        addr = first(r.get("address"), {})
        phones = {t.get("use"): t.get("value") for t in r.get("telecom", ()) if t.get("system") == "phone"}
        email = first([t.get("value") for t in r.get("telecom", ()) if t.get("system") == "email"], "")
        bd = fhir_date_parts(r.get("birthDate"))
        age = ""
        if bd:
            ep = self.ctx.gen.epoch_ms if self.ctx.gen else 0
            e = time.gmtime(ep / 1000)
            age = str(e.tm_year - bd[0] - ((e.tm_mon, e.tm_mday) < (bd[1], bd[2])))
        prac = first(r.get("generalPractitioner"), {})
        full = " ".join([given[0]] + given[1:] + [name.get("family", "")]).strip()
        return {"ID": v.id, "MedicalRecordNumber": first([i.get("value") for i in r.get("identifier", ())], ""),
                "FirstName": given[0].upper(), "MiddleName": " ".join(given[1:]), "LastName": name.get("family", "").upper(),
                "PatientFullName": full.upper(), "DOB": mdy_pad(r.get("birthDate")), "Age": age,
                "Gender": {"female": "F", "male": "M"}.get(r.get("gender"), "U"),
                "AddressLine1": first(addr.get("line"), ""), "AddressLine2": "", "City": addr.get("city", ""),
                "State": addr.get("state", ""), "ZipCode": addr.get("postalCode", ""), "Country": "",
                "HomePhone": phones.get("home", ""), "MobilePhone": phones.get("mobile", ""), "WorkPhone": "",
                "EmailAddress": email, "MaritalStatus": coding(r.get("maritalStatus")).get("code", "U"),
                "PracticeId": self.practice_id, "PracticeName": self.practice_name,
                "DefaultRenderingProviderId": ref_id(prac, "Practitioner") or "",
                "DefaultRenderingProviderFullName": (prac.get("display") or "").split(",")[0],
                "CreatedDate": self._created(v)}

    def p_appointment(self, r, v):
        pat = prac = loc = None
        for p in r.get("participant", ()):
            a = p.get("actor") or {}
            ref = a.get("reference", "")
            if ref.startswith("Patient/"):
                pat = a
            elif ref.startswith("Practitioner/"):
                prac = a
            elif ref.startswith("Location/"):
                loc = a
        start = fhir_ms(r.get("start")) or 0
        end = fhir_ms(r.get("end")) or start
        return {"ID": v.id, "PatientID": ref_id(pat, "Patient") or "", "PatientFullName": ((pat or {}).get("display") or "").upper(),
                "StartDate": self.tz.mdy_hms_ampm(start), "EndDate": self.tz.mdy_hms_ampm(end),
                "AppointmentDuration": str(r.get("minutesDuration", 30)), "Type": "P",
                "ConfirmationStatus": APPT_STATUS.get(r.get("status"), "Scheduled"),
                "AppointmentReason1": r.get("description", ""), "ResourceName1": ((prac or {}).get("display") or "").split(",")[0],
                "ServiceLocationName": (loc or {}).get("display", ""),
                "Notes": (r.get("cancelationReason") or {}).get("text", ""), "PracticeName": self.practice_name,
                "CreatedDate": self._created(v)}

    def p_charge(self, r, v):
        c = coding(r.get("code"))
        units = (r.get("quantity") or {}).get("value", 1)
        total = (r.get("priceOverride") or {}).get("value", 0.0)
        paid = round(total * 0.8, 2) if r.get("status") == "billed" else 0.0
        subj = r.get("subject") or {}
        return {"ID": v.id, "EncounterID": str(200000 + int(v.id) % 100000), "PatientID": ref_id(subj, "Patient") or "",
                "PatientName": (subj.get("display") or "").upper(), "ProcedureCode": c.get("code", ""),
                "ProcedureName": c.get("display", ""), "ProcedureModifier1": "", "Units": "%.4f" % units,
                "UnitCharge": money(total / units if units else total), "TotalCharges": money(total),
                "ServiceStartDate": mdy_pad(r.get("occurrenceDateTime")), "ServiceEndDate": mdy_pad(r.get("occurrenceDateTime")),
                "PostingDate": mdy_pad(r.get("enteredDate")), "Status": CHARGE_STATUS.get(r.get("status"), "Draft"),
                "Receipts": money(paid), "InsuranceBalance": money(total - paid if r.get("status") == "billed" else 0),
                "PatientBalance": money(0 if r.get("status") == "billed" else total - paid), "TotalBalance": money(total - paid),
                "RenderingProviderName": ((first(r.get("performer"), {}).get("actor") or {}).get("display") or "").split(",")[0],
                "PracticeName": self.practice_name, "CreatedDate": self._created(v)}

    def p_payment(self, r, v):
        total = (r.get("total") or {}).get("value", 0.0)
        amount = round(total * 0.8, 2) if r.get("status") != "cancelled" else 0.0
        applied = amount if int(v.id) % 3 else round(amount / 2, 2)
        created = fhir_ms(r.get("created")) or 0
        return {"ID": v.id, "PatientID": ref_id(r.get("patient"), "Patient") or "",
                "PayerName": (r.get("insurer") or {}).get("display", ""), "PayerType": "Insurance",
                "PaymentMethod": "EFT", "ReferenceNumber": "EFT%08d" % (int(v.id) * 7919 % 10**8),
                "Amount": money(amount), "Applied": money(applied), "Unapplied": money(amount - applied),
                "PostDate": self.tz.mdy(created + 21 * 86_400_000), "PracticeName": self.practice_name,
                "CreatedDate": self._created(v)}

    def p_provider(self, r, v):
        name = first(r.get("name"), {})
        spec = ""
        return {"ID": v.id, "FirstName": first(name.get("given"), ""), "MiddleName": "", "LastName": name.get("family", ""),
                "FullName": (name.get("text") or "").split(",")[0], "Degree": first(name.get("suffix"), ""),
                "NationalProviderIdentifier": first([i.get("value") for i in r.get("identifier", ())], ""),
                "SpecialtyName": spec, "Type": "Normal Provider", "Active": "True" if r.get("active", True) else "False",
                "WorkPhone": first([t.get("value") for t in r.get("telecom", ()) if t.get("system") == "phone"], ""),
                "PracticeName": self.practice_name, "CreatedDate": self._created(v)}

    def p_location(self, r, v):
        addr = r.get("address") or {}
        return {"ID": v.id, "Name": r.get("name", ""), "AddressLine1": first(addr.get("line"), ""),
                "City": addr.get("city", ""), "State": addr.get("state", ""), "ZipCode": addr.get("postalCode", ""),
                "Phone": first([t.get("value") for t in r.get("telecom", ()) if t.get("system") == "phone"], ""),
                "PracticeName": self.practice_name, "CreatedDate": self._created(v)}

    # -- responses ---------------------------------------------------------------------------
    def _fault(self, code, message, status=500):
        return Response(status, fault_bytes(code, message), content_type=XML_CT)

    def error_response(self, req, status, code, message, headers=None):
        resp = self._fault("s:Server" if status >= 500 else "s:Client", message, status)
        resp.headers += list(headers or [])
        return resp

    def not_found(self, req):
        return Response(404, b"", content_type="text/html")

    def _op_from_action(self, req):
        action = (req.header("soapaction") or "").strip().strip('"')
        return action[len(ACTION_PREFIX):] if action.startswith(ACTION_PREFIX) else None

    def _inband(self, op, message, security_ok=True):
        def build(res):
            self._error_response(res, message)
            self._security(res, security_ok)
        return Response(200, envelope(NS, op, build), content_type=XML_CT)

    def throttle_response(self, req, retry_after_s, style=None):
        op = self._op_from_action(req)
        if not op:
            return self._fault("s:Server", "Request throttled")
        self.ctx.stats.inc("throttled_inband")
        return self._inband(op, "The request was throttled: the API rate limit for this customer key was exceeded. "
                                "Please wait before retrying.")

    def _error_response(self, res, message=None):
        er = add(res, NS, "ErrorResponse")
        if message:
            add(er, NS, "ErrorMessage", message)
            add(er, NS, "IsError", "true")
            add(er, NS, "StackTrace", "   at KareoServicesWCF.KareoServices.Execute()")
        else:
            add(er, NS, "ErrorMessage", nil=True)
            add(er, NS, "IsError", "false")
            add(er, NS, "StackTrace", nil=True)

    def _security(self, res, ok=True, key_valid=True, authenticated=True, result="Success"):
        sr = add(res, NS, "SecurityResponse")
        add(sr, NS, "Authenticated", "true" if authenticated else "false")
        add(sr, NS, "Authorized", "true" if ok else "false")
        add(sr, NS, "CustomerId", self.customer_id if key_valid else None, nil=not key_valid)
        add(sr, NS, "CustomerKeyValid", "true" if key_valid else "false")
        add(sr, NS, "PermissionsMissing")
        pa = add(sr, NS, "PracticesAuthorized")
        if ok:
            add(add(pa, NS, "PracticeID"), NS, "int", self.practice_id)
        add(sr, NS, "SecurityResult", result)
        add(sr, NS, "SecurityResultSuccess", "true" if ok else "false")

    # -- routing -----------------------------------------------------------------------------
    def route(self, req):
        if req.path.rstrip("/") != PATH:
            return None
        if req.method == "GET":
            return "wsdl", self.h_wsdl, "api"
        op = self._op_from_action(req) or "unknown"
        return "soap:" + op, self.h_soap, "api"

    def h_wsdl(self, req):
        ops = sorted(set(OPS) | set(SINGLE_OPS) | {"GetAllPatients", "GetThrottles"})
        defs = ET.Element("{http://schemas.xmlsoap.org/wsdl/}definitions", {"name": "KareoServices", "targetNamespace": NS})
        pt = ET.SubElement(defs, "{http://schemas.xmlsoap.org/wsdl/}portType", {"name": "KareoServices"})
        for op in ops:
            ET.SubElement(pt, "{http://schemas.xmlsoap.org/wsdl/}operation", {"name": op})
        return Response(200, ET.tostring(defs, encoding="utf-8", xml_declaration=True), content_type=XML_CT)

    def h_soap(self, req):
        if req.method != "POST":
            return Response(405, b"", content_type="text/html")
        ctype = (req.header("content-type") or "").lower()
        if not ctype.startswith("text/xml"):
            return Response(415, ("Cannot process the message because the content type '%s' was not the "
                                  "expected type 'text/xml; charset=utf-8'." % ctype).encode(), content_type="text/plain")
        try:
            op_el = parse_envelope(req.body)
        except SoapFault as f:
            return self._fault(f.code, f.text, f.status)
        if not op_el.tag.startswith("{%s}" % NS):
            return self._fault("s:Client", "Operation element %s is not in namespace %s" % (op_el.tag, NS))
        op = op_el.tag[len(NS) + 2:]
        action = (req.header("soapaction") or "").strip().strip('"')
        if action != ACTION_PREFIX + op:
            return self._fault("a:ActionNotSupported",
                               "The message with Action '%s' cannot be processed at the receiver, due to a "
                               "ContractFilter mismatch at the EndpointDispatcher." % action)
        if op not in OPS and op not in SINGLE_OPS and op not in OTHER_OPS:
            if op in WRITE_OPS:
                return self._fault("s:Client", "Operation %s is not simulated (read-only simulator)" % op)
            return self._fault("a:ActionNotSupported", "The message with Action '%s' cannot be processed at the "
                                                       "receiver, due to a ContractFilter mismatch at the EndpointDispatcher." % action)
        request = child(op_el, NS, "request")
        if request is None:
            return self._fault("s:Client", "The request element is missing from %s" % op)
        denied = self._check_auth(req, request)
        if denied is not None:
            self.ctx.stats.inc("auth_failures")

            def build_denied(res):
                self._error_response(res)
                self._security(res, ok=False, **denied)
            return Response(200, envelope(NS, op, build_denied), content_type=XML_CT)
        try:
            if op in OPS:
                return self._list_op(req, op, request)
            if op in SINGLE_OPS:
                return self._single_op(op, request)
            if op == "GetAllPatients":
                return self._all_patients(req, request)
            if op == "GetThrottles":
                return self._throttles(request)
            return self._practices(request)
        except ValueError as exc:
            return self._inband(op, str(exc))

    def _check_auth(self, req, request):
        hdr = child(request, NS, "RequestHeader")
        key = text(hdr, NS, "CustomerKey", "")
        user = text(hdr, NS, "User", "")
        pw = text(hdr, NS, "Password", "")
        if req.fault is not None and req.fault.kind == "revoke_token":
            return {"key_valid": True, "authenticated": False, "result": "Invalid user name and/or password"}
        if hdr is None or key != self.customer_key:
            return {"key_valid": False, "authenticated": False, "result": "Invalid customer key"}
        client = self.ctx.registry.get(user)
        if client is None or not client.secret or client.secret != pw:
            return {"key_valid": True, "authenticated": False, "result": "Invalid user name and/or password"}
        return None

    # -- filters -----------------------------------------------------------------------------
    def _date(self, filt, name):
        raw = text(filt, NS, name)
        if not raw:
            return None
        try:
            return self.tz.parse(raw, ("%m/%d/%Y", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M",
                                       "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"))
        except ValueError:
            raise ValueError("String was not recognized as a valid DateTime. (Filter.%s = %r)" % (name, raw)) from None

    def _fields(self, request, all_fields):
        f = child(request, NS, "Fields")
        if f is None or len(f) == 0:
            return set(all_fields)
        want = set()
        for c in f:
            if c.tag.startswith("{%s}" % NS) and (c.text or "").strip().lower() == "true":
                want.add(c.tag[len(NS) + 2:])
        return want

    def _serialise(self, parent, rec_el, rec, fields, order):
        el = add(parent, NS, rec_el)
        for name in order:
            if name in fields:
                val = rec.get(name, "")
                add(el, NS, name, val if val != "" else None)
            else:
                add(el, NS, name, nil=True)

    def _list_op(self, req, op, request):
        cname, list_el, rec_el, order = OPS[op]
        coll = self.by_name[cname]
        filt = child(request, NS, "Filter")
        fields = self._fields(request, order)
        frm, to = self._date(filt, "FromLastModifiedDate"), self._date(filt, "ToLastModifiedDate")
        fc, tc = self._date(filt, "FromCreatedDate"), self._date(filt, "ToCreatedDate")
        sd, ed = self._date(filt, "StartDate"), self._date(filt, "EndDate")
        pid = text(filt, NS, "PatientID")
        pname = text(filt, NS, "PracticeName")
        first_name, last_name = text(filt, NS, "FirstName"), text(filt, NS, "LastName")
        recs = []
        if pname and pname != self.practice_name:
            vs = []
        else:
            vs = self.versions(coll, since_ms=frm, patient=pid if (pid and coll.patient_field) else None)
        for v in vs:
            if to is not None and v.ts > to:
                continue
            hist = self.ctx.store.history.get(v.key, ())
            created = hist[0].ts if hist else v.ts
            if (fc is not None and created < fc) or (tc is not None and created > tc):
                continue
            rec = self.record(v, coll)
            if op == "GetAppointments" and (sd is not None or ed is not None):
                st = self.tz.parse(rec["StartDate"], ("%m/%d/%Y %I:%M:%S %p",))
                if (sd is not None and st < sd) or (ed is not None and st > ed + 86_399_999):
                    continue
            if first_name and not rec.get("FirstName", "").lower().startswith(first_name.lower()):
                continue
            if last_name and not rec.get("LastName", "").lower().startswith(last_name.lower()):
                continue
            recs.append(rec)

        def build(res):
            self._error_response(res)
            self._security(res)
            lst = add(res, NS, list_el)
            for rec in recs:
                self._serialise(lst, rec_el, rec, fields, order)
        return Response(200, envelope(NS, op, build), content_type=XML_CT)

    def _single_op(self, op, request):
        cname, el_name, id_name = SINGLE_OPS[op]
        coll = self.by_name[cname]
        filt = child(request, NS, "Filter")
        nid = text(filt, NS, id_name) or text(request, NS, id_name)
        if not nid:
            raise ValueError("%s is required" % id_name)
        v = self.get_version(coll, nid)
        if v is None or v.deleted:
            raise ValueError("%s %s was not found" % (el_name, nid))
        order = OPS["Get" + cname][3]
        rec = self.record(v, coll)

        def build(res):
            self._error_response(res)
            self._security(res)
            el = add(res, NS, el_name)
            for name in order:
                add(el, NS, name, rec.get(name) if rec.get(name, "") != "" else None)
        return Response(200, envelope(NS, op, build), content_type=XML_CT)

    def _all_patients(self, req, request):
        filt = child(request, NS, "Filter")
        raw_size = text(filt, NS, "BatchSize")
        raw_key = text(filt, NS, "StartKey")
        try:
            size = int(raw_size) if raw_size else 100
        except ValueError:
            raise ValueError("Input string was not in a correct format. (Filter.BatchSize = %r)" % raw_size) from None
        if size < 1 or size > self.ctx.args.max_batch:
            raise ValueError("BatchSize must be between 1 and %d" % self.ctx.args.max_batch)
        try:
            start = int(raw_key) if raw_key else 0
        except ValueError:
            raise ValueError("Input string was not in a correct format. (Filter.StartKey = %r)" % raw_key) from None
        coll = self.by_name["Patients"]
        fields = self._fields(request, PATIENT_FIELDS)
        vs = sorted((v for v in self.versions(coll) if int(v.id) >= start), key=lambda v: int(v.id))
        batch = vs[:size]
        more = len(vs) > size
        key = None
        if more:
            anchor = batch[-2] if (self.is_dup(req) and len(batch) >= 2) else batch[-1]
            key = str(int(anchor.id) + 1)
        recs = [self.record(v, coll) for v in batch]

        def build(res):
            self._error_response(res)
            self._security(res)
            add(res, NS, "Key", key, nil=key is None)
            lst = add(res, NS, "Patients")
            for rec in recs:
                self._serialise(lst, "PatientData", rec, fields, PATIENT_FIELDS)
        return Response(200, envelope(NS, "GetAllPatients", build), content_type=XML_CT)

    def _throttles(self, request):
        lim = self.ctx.limiters.get("api")

        def build(res):
            self._error_response(res)
            self._security(res)
            th = add(res, NS, "Throttles")
            for op in sorted(OPS) + ["GetAllPatients"]:
                t = add(th, NS, "ThrottleData")
                add(t, NS, "MethodName", op)
                add(t, NS, "MaxCalls", str(lim.limit) if lim else "0")
                add(t, NS, "Seconds", "%g" % lim.window if lim else "0")
        return Response(200, envelope(NS, "GetThrottles", build), content_type=XML_CT)

    def _practices(self, request):
        def build(res):
            self._error_response(res)
            self._security(res)
            pr = add(add(res, NS, "Practices"), NS, "PracticeData")
            add(pr, NS, "ID", self.practice_id)
            add(pr, NS, "PracticeName", self.practice_name)
            add(pr, NS, "Active", "True")
        return Response(200, envelope(NS, "GetPractices", build), content_type=XML_CT)

    # -- info --------------------------------------------------------------------------------
    def ready_info(self, urls):
        out = {}
        for scheme, u in urls.items():
            out[scheme] = {"base": u + PATH, "soap": u + PATH, "admin": u + "/_sim"}
        primary = out.get("https") or out.get("http")
        return {"api_base": primary["base"], "soap_url": primary["base"], "endpoints": out,
                "customer_key": self.customer_key, "namespace": NS, "soap_action_prefix": ACTION_PREFIX}


VENDORS = {"kareo": Kareo}
