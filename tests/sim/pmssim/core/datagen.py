"""Deterministic, realistic fake data set in FHIR R4 (all six data kinds).

`DataGenerator(seed, marker, id_factory, types, epoch_ms).generate(patients)` yields the initial
data set; `new_resource()` / `modify()` produce realistic creates and updates for the mutation
API. The same seed and patient count always give the same content (ids come from the vendor's
`id_factory`, timestamps are relative to `epoch_ms`).

The marker string (`--marker`) is planted in every Patient's and RelatedPerson's name (a second
given name and the name text) and therefore also in every reference `display` naming a patient,
so tests can assert it never leaks into the client's logs or clear-text files.

Average resources per patient (all types enabled) is about 27; `RESOURCES_PER_PATIENT` gives
the per-type averages so callers can size a data set (`patients_for_resources`).
"""

import random

from .clock import fmt_date, fmt_dt_seconds


class FastRandom(random.Random):
    """random.Random with cheaper (still deterministic) randint/choice for bulk generation."""

    def randint(self, a, b):
        return a + int(self.random() * (b - a + 1))

    def choice(self, seq):
        return seq[int(self.random() * len(seq))]

FIRST_F = ["Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica",
           "Sarah", "Karen", "Lisa", "Nancy", "Betty", "Sandra", "Margaret", "Ashley", "Kimberly",
           "Emily", "Donna", "Michelle", "Carol", "Amanda", "Melissa", "Deborah", "Stephanie",
           "Rebecca", "Sharon", "Laura", "Cynthia", "Amy", "Maria", "Sofia", "Mei", "Aaliyah"]
FIRST_M = ["James", "Robert", "John", "Michael", "David", "William", "Richard", "Joseph",
           "Thomas", "Christopher", "Charles", "Daniel", "Matthew", "Anthony", "Mark", "Donald",
           "Steven", "Andrew", "Paul", "Joshua", "Kenneth", "Kevin", "Brian", "George", "Timothy",
           "Ronald", "Jason", "Edward", "Jeffrey", "Ryan", "Jose", "Wei", "Omar", "Luis"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
        "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas",
        "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris",
        "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King",
        "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson",
        "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "O'Brien",
        "Kowalski", "Chen", "Patel", "Kim", "Murphy"]
STREETS = ["Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Elm St", "Pine Rd", "Washington Blvd",
           "Lakeview Dr", "Sunset Ave", "Park Pl", "Highland Ave", "River Rd", "Church St"]
CITIES = [("Springfield", "IL", "627"), ("Madison", "WI", "537"), ("Columbus", "OH", "432"),
          ("Austin", "TX", "787"), ("Salem", "OR", "973"), ("Franklin", "TN", "370"),
          ("Greenville", "SC", "296"), ("Fairfield", "CA", "945"), ("Burlington", "VT", "054")]
SPECIALTIES = [("207Q00000X", "Family Medicine"), ("207R00000X", "Internal Medicine"),
               ("208000000X", "Pediatrics"), ("207V00000X", "Obstetrics & Gynecology"),
               ("207RC0000X", "Cardiovascular Disease"), ("363L00000X", "Nurse Practitioner"),
               ("207X00000X", "Orthopaedic Surgery"), ("2084P0800X", "Psychiatry")]
CONDITIONS = [("I10", "Essential (primary) hypertension", "38341003"),
              ("E11.9", "Type 2 diabetes mellitus without complications", "44054006"),
              ("J45.909", "Unspecified asthma, uncomplicated", "195967001"),
              ("E78.5", "Hyperlipidemia, unspecified", "55822004"),
              ("M54.5", "Low back pain", "279039007"),
              ("F41.1", "Generalized anxiety disorder", "21897009"),
              ("J06.9", "Acute upper respiratory infection, unspecified", "54150009"),
              ("K21.9", "Gastro-esophageal reflux disease without esophagitis", "235595009"),
              ("E66.9", "Obesity, unspecified", "414916001"),
              ("N39.0", "Urinary tract infection, site not specified", "68566005"),
              ("F32.9", "Major depressive disorder, single episode, unspecified", "35489007"),
              ("M17.11", "Unilateral primary osteoarthritis, right knee", "239873007")]
VITALS = [("8480-6", "Systolic blood pressure", "mm[Hg]", 100, 165, 0),
          ("8462-4", "Diastolic blood pressure", "mm[Hg]", 60, 100, 0),
          ("8867-4", "Heart rate", "/min", 52, 110, 0),
          ("29463-7", "Body weight", "kg", 45, 130, 1),
          ("8302-2", "Body height", "cm", 150, 195, 1),
          ("8310-5", "Body temperature", "Cel", 36.1, 38.4, 1),
          ("2708-6", "Oxygen saturation in Arterial blood", "%", 91, 100, 0),
          ("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", 18, 41, 1)]
LABS = [("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.8, 11.5, 1),
        ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 140, 290, 0),
        ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 70, 240, 0),
        ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.6, 1.9, 2),
        ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 10.5, 17.5, 1),
        ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 3.5, 13, 1)]
PROCEDURES = [("99213", "Office visit, established patient, low complexity", 110.0),
              ("99214", "Office visit, established patient, moderate complexity", 165.0),
              ("99203", "Office visit, new patient, low complexity", 150.0),
              ("93000", "Electrocardiogram, routine, with interpretation", 55.0),
              ("36415", "Collection of venous blood by venipuncture", 12.0),
              ("90471", "Immunization administration", 28.0),
              ("71046", "Radiologic examination, chest; 2 views", 95.0),
              ("81002", "Urinalysis, non-automated, without microscopy", 9.0),
              ("20610", "Arthrocentesis, major joint", 130.0)]
MEDS = [("197361", "amLODIPine 5 MG Oral Tablet"), ("860975", "metFORMIN 500 MG Oral Tablet"),
        ("617312", "atorvastatin 10 MG Oral Tablet"), ("314076", "lisinopril 10 MG Oral Tablet"),
        ("745679", "albuterol 0.09 MG/ACTUAT Metered Dose Inhaler"),
        ("310429", "furosemide 20 MG Oral Tablet"), ("198211", "simvastatin 40 MG Oral Tablet"),
        ("312938", "sertraline 50 MG Oral Tablet"), ("197517", "clarithromycin 500 MG Oral Tablet")]
ALLERGIES = [("7980", "Penicillin G"), ("2670", "Codeine"), ("1191", "Aspirin"),
             ("10831", "Sulfamethoxazole"), ("91936005", "Allergy to peanuts"),
             ("300916003", "Latex allergy"), ("419474003", "Allergy to mould")]
VACCINES = [("140", "Influenza, seasonal, injectable, preservative free"),
            ("208", "COVID-19, mRNA, LNP-S, PF, 30 mcg/0.3 mL dose"),
            ("115", "Tdap"), ("133", "Pneumococcal conjugate PCV 13"),
            ("43", "Hepatitis B, adult dosage"), ("121", "Zoster vaccine, live")]
PAYERS = [("Aetna", "60054"), ("Blue Cross Blue Shield", "00310"), ("Cigna", "62308"),
          ("UnitedHealthcare", "87726"), ("Humana", "61101"), ("Medicare Part B", "00882"),
          ("Medicaid", "77027"), ("Kaiser Permanente", "94135")]
DEVICES = [("706004007", "Implantable cardiac pacemaker"), ("468063009", "Coated femoral stem prosthesis"),
           ("360129009", "Intraocular lens"), ("23562009", "Coronary artery stent")]
SUPPLIES = [("Nitrile exam gloves, medium, box of 100", "box"),
            ("Influenza vaccine 0.5 mL prefilled syringe", "syringe"),
            ("Tongue depressor, sterile, pack of 100", "pack"),
            ("Alcohol prep pad, box of 200", "box"), ("Syringe 3 mL Luer-Lok, box of 100", "box")]
APPT_TYPES = [("ROUTINE", "Routine appointment"), ("FOLLOWUP", "A follow up visit"),
              ("WALKIN", "A previously unscheduled walk-in visit"), ("CHECKUP", "A routine check-up")]
DOC_TYPES = [("11506-3", "Progress note"), ("18842-5", "Discharge summary"),
             ("34117-2", "History and physical note"), ("11488-4", "Consult note")]

# Average count per patient of each patient-scoped type (used for sizing).
RESOURCES_PER_PATIENT = {
    "Patient": 1.0, "RelatedPerson": 0.4, "Appointment": 3.0, "Encounter": 2.5,
    "Condition": 2.0, "Observation": 7.0, "Procedure": 1.0, "MedicationRequest": 1.5,
    "AllergyIntolerance": 0.6, "Immunization": 1.5, "DiagnosticReport": 1.0,
    "DocumentReference": 1.0, "Coverage": 1.0, "Account": 1.0, "ChargeItem": 2.0,
    "Claim": 1.0, "Device": 0.15,
}
# Shared (non-patient) resources per patient, approximately.
SHARED_PER_PATIENT = {"Practitioner": 1 / 40, "PractitionerRole": 1 / 40, "Location": 1 / 150,
                      "SupplyDelivery": 1 / 20, "Organization": 0.0, "Device": 1 / 60}


def patients_for_resources(total, types):
    per = sum(RESOURCES_PER_PATIENT.get(t, 0) for t in types)
    per += sum(SHARED_PER_PATIENT.get(t, 0) for t in types)
    return max(1, int(round(total / max(per, 0.5))))


def _count(rng, avg):
    """Random non-negative count with the given mean (0..2*avg, integer)."""
    whole = int(avg)
    frac = avg - whole
    n = whole + (1 if rng.random() < frac else 0)
    if n >= 2:
        n += rng.randint(-1, 1)
    return max(0, n)


class DataGenerator:
    def __init__(self, seed, marker, id_factory, types, epoch_ms):
        self.seed = seed
        self.marker = marker or ""
        self.id_factory = id_factory
        self.types = set(types)
        self.epoch_ms = epoch_ms
        self._n = {}
        self.practice_org = None
        self.payers = []
        self.practitioners = []   # (id, display)
        self.locations = []       # (id, display)
        self.roles = []

    # -- ids / helpers -----------------------------------------------------------------------
    def next_id(self, rtype):
        n = self._n.get(rtype, 0) + 1
        self._n[rtype] = n
        return self.id_factory(rtype, n)

    def _past(self, rng, max_days=400):
        return self.epoch_ms - rng.randint(60_000, max_days * 86_400_000)

    _date = staticmethod(fmt_date)
    _dt = staticmethod(fmt_dt_seconds)

    def _pick_prac(self, rng):
        if not self.practitioners:
            return {"display": "Unassigned"}
        pid, disp = rng.choice(self.practitioners)
        return {"reference": "Practitioner/" + pid, "display": disp}

    def _pick_loc(self, rng):
        if not self.locations:
            return {"display": "Main clinic"}
        lid, disp = rng.choice(self.locations)
        return {"reference": "Location/" + lid, "display": disp}

    def _org_ref(self):
        if not self.practice_org:
            return {"display": "Practice"}
        return {"reference": "Organization/" + self.practice_org[0], "display": self.practice_org[1]}

    # -- shared resources --------------------------------------------------------------------
    def organization_practice(self, rng):
        oid = self.next_id("Organization")
        city, st, zip3 = rng.choice(CITIES)
        name = "%s %s Family Medicine" % (city, rng.choice(["Valley", "Riverside", "Lakeside", "Summit"]))
        self.practice_org = (oid, name)
        return oid, {
            "resourceType": "Organization", "active": True,
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1%09d" % rng.randint(0, 10**9 - 1)}],
            "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov", "display": "Healthcare Provider"}]}],
            "name": name,
            "telecom": [{"system": "phone", "value": "(%03d) 555-%04d" % (rng.randint(201, 989), rng.randint(0, 9999)), "use": "work"}],
            "address": [{"line": ["%d %s" % (rng.randint(10, 9999), rng.choice(STREETS))], "city": city, "state": st, "postalCode": "%s%02d" % (zip3, rng.randint(0, 99)), "country": "US"}],
        }

    def organization_payer(self, rng, name, payer_id):
        oid = self.next_id("Organization")
        self.payers.append((oid, name))
        return oid, {
            "resourceType": "Organization", "active": True,
            "identifier": [{"system": "urn:oid:2.16.840.1.113883.6.300", "value": payer_id}],
            "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "pay", "display": "Payer"}]}],
            "name": name,
        }

    def practitioner(self, rng):
        pid = self.next_id("Practitioner")
        female = rng.random() < 0.5
        given = rng.choice(FIRST_F if female else FIRST_M)
        family = rng.choice(LAST)
        cred = rng.choice(["MD", "MD", "DO", "NP", "PA-C"])
        disp = "%s %s, %s" % (given, family, cred)
        self.practitioners.append((pid, disp))
        return pid, {
            "resourceType": "Practitioner", "active": True,
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1%09d" % rng.randint(0, 10**9 - 1)}],
            "name": [{"use": "official", "family": family, "given": [given], "suffix": [cred], "text": disp}],
            "telecom": [{"system": "phone", "value": "(%03d) 555-%04d" % (rng.randint(201, 989), rng.randint(0, 9999)), "use": "work"}],
            "gender": "female" if female else "male",
            "qualification": [{"code": {"text": cred}}],
        }

    def practitioner_role(self, rng, prac):
        rid = self.next_id("PractitionerRole")
        code, spec = rng.choice(SPECIALTIES)
        self.roles.append(rid)
        return rid, {
            "resourceType": "PractitionerRole", "active": True,
            "practitioner": {"reference": "Practitioner/" + prac[0], "display": prac[1]},
            "organization": self._org_ref(),
            "location": [self._pick_loc(rng)],
            "code": [{"coding": [{"system": "http://nucc.org/provider-taxonomy", "code": code, "display": spec}]}],
            "specialty": [{"coding": [{"system": "http://nucc.org/provider-taxonomy", "code": code, "display": spec}]}],
        }

    def location(self, rng):
        lid = self.next_id("Location")
        city, st, zip3 = rng.choice(CITIES)
        name = "%s %s" % (city, rng.choice(["Main Clinic", "North Office", "Urgent Care", "Pediatrics Suite", "Lab"]))
        self.locations.append((lid, name))
        return lid, {
            "resourceType": "Location", "status": "active", "name": name, "mode": "instance",
            "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "OF", "display": "Outpatient facility"}]}],
            "telecom": [{"system": "phone", "value": "(%03d) 555-%04d" % (rng.randint(201, 989), rng.randint(0, 9999))}],
            "address": {"line": ["%d %s" % (rng.randint(10, 9999), rng.choice(STREETS))], "city": city, "state": st, "postalCode": "%s%02d" % (zip3, rng.randint(0, 99))},
            "managingOrganization": self._org_ref(),
        }

    def supply_delivery(self, rng):
        sid = self.next_id("SupplyDelivery")
        item, unit = rng.choice(SUPPLIES)
        when = self._past(rng, 200)
        return sid, {
            "resourceType": "SupplyDelivery", "status": rng.choice(["completed", "completed", "in-progress"]),
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/supply-item-type", "code": "device", "display": "Device"}]},
            "suppliedItem": {"quantity": {"value": rng.randint(1, 40), "unit": unit}, "itemCodeableConcept": {"text": item}},
            "occurrenceDateTime": self._dt(when),
            "supplier": {"display": rng.choice(["Henry Schein", "McKesson Medical-Surgical", "Medline Industries"])},
            "destination": self._pick_loc(rng),
        }

    def inventory_device(self, rng):
        did = self.next_id("Device")
        code, name = rng.choice([("19257004", "Defibrillator"), ("469164001", "Blood pressure cuff"), ("706172005", "Ophthalmoscope")])
        return did, {
            "resourceType": "Device", "status": "active",
            "serialNumber": "SN%08d" % rng.randint(0, 10**8 - 1),
            "deviceName": [{"name": name, "type": "user-friendly-name"}],
            "type": {"coding": [{"system": "http://snomed.info/sct", "code": code, "display": name}]},
            "owner": self._org_ref(), "location": self._pick_loc(rng),
        }

    # -- patient compartment -----------------------------------------------------------------
    def patient(self, rng):
        pid = self.next_id("Patient")
        female = rng.random() < 0.52
        given = rng.choice(FIRST_F if female else FIRST_M)
        family = rng.choice(LAST)
        given_list = [given] + ([self.marker] if self.marker else [])
        text = " ".join(given_list + [family])
        city, st, zip3 = rng.choice(CITIES)
        birth = self.epoch_ms - rng.randint(1, 95 * 365) * 86_400_000
        res = {
            "resourceType": "Patient", "active": True,
            "identifier": [
                {"use": "usual", "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}], "text": "MRN"},
                 "system": "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.14", "value": "MRN%07d" % rng.randint(0, 10**7 - 1)}],
            "name": [{"use": "official", "text": text, "family": family, "given": given_list}],
            "telecom": [{"system": "phone", "value": "(%03d) 555-%04d" % (rng.randint(201, 989), rng.randint(0, 9999)), "use": rng.choice(["home", "mobile"])},
                        {"system": "email", "value": "%s.%s%d@example.com" % (given.lower(), family.lower().replace("'", ""), rng.randint(1, 99))}],
            "gender": "female" if female else "male",
            "birthDate": self._date(birth),
            "address": [{"use": "home", "line": ["%d %s" % (rng.randint(10, 9999), rng.choice(STREETS))], "city": city, "state": st, "postalCode": "%s%02d" % (zip3, rng.randint(0, 99)), "country": "US"}],
            "maritalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": rng.choice(["M", "S", "D", "W"])}]},
            "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": rng.choice(["en", "en", "en", "es", "zh"])}]}, "preferred": True}],
            "generalPractitioner": [self._pick_prac(rng)],
            "managingOrganization": self._org_ref(),
        }
        return pid, res, {"reference": "Patient/" + pid, "display": text}

    def related_person(self, rng, pref):
        rid = self.next_id("RelatedPerson")
        given = rng.choice(FIRST_F + FIRST_M)
        family = rng.choice(LAST)
        given_list = [given] + ([self.marker] if self.marker else [])
        rel = rng.choice([("SPS", "spouse"), ("MTH", "mother"), ("FTH", "father"), ("CHILD", "child")])
        return rid, {
            "resourceType": "RelatedPerson", "active": True, "patient": pref,
            "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": rel[0], "display": rel[1]}]}],
            "name": [{"text": " ".join(given_list + [family]), "family": family, "given": given_list}],
            "telecom": [{"system": "phone", "value": "(%03d) 555-%04d" % (rng.randint(201, 989), rng.randint(0, 9999))}],
        }

    def appointment(self, rng, pref, when=None):
        aid = self.next_id("Appointment")
        start = when if when is not None else self.epoch_ms + rng.randint(-200, 60) * 86_400_000
        start -= start % (15 * 60_000)
        dur = rng.choice([15, 20, 30, 30, 45, 60])
        past = start < self.epoch_ms
        status = rng.choice(["fulfilled", "fulfilled", "fulfilled", "noshow", "cancelled"]) if past else rng.choice(["booked", "booked", "pending", "cancelled"])
        code, disp = rng.choice(APPT_TYPES)
        reason = rng.choice(CONDITIONS)
        return aid, {
            "resourceType": "Appointment", "status": status,
            "appointmentType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0276", "code": code, "display": disp}]},
            "reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": reason[0], "display": reason[1]}]}],
            "description": disp,
            "start": self._dt(start), "end": self._dt(start + dur * 60_000), "minutesDuration": dur,
            "participant": [{"actor": pref, "status": "accepted"},
                            {"actor": self._pick_prac(rng), "status": "accepted"},
                            {"actor": self._pick_loc(rng), "status": "accepted"}],
        }

    def encounter(self, rng, pref):
        eid = self.next_id("Encounter")
        start = self._past(rng, 365)
        code, disp, _ = rng.choice(PROCEDURES[:3])
        reason = rng.choice(CONDITIONS)
        return eid, {
            "resourceType": "Encounter", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "ambulatory"},
            "type": [{"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": code, "display": disp}]}],
            "subject": pref,
            "participant": [{"individual": self._pick_prac(rng)}],
            "period": {"start": self._dt(start), "end": self._dt(start + rng.choice([15, 20, 30, 40]) * 60_000)},
            "reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": reason[0], "display": reason[1]}]}],
            "location": [{"location": self._pick_loc(rng)}],
            "serviceProvider": self._org_ref(),
        }

    def condition(self, rng, pref):
        cid = self.next_id("Condition")
        icd, disp, sct = rng.choice(CONDITIONS)
        onset = self._past(rng, 3000)
        cat = rng.choice(["problem-list-item", "problem-list-item", "encounter-diagnosis"])
        return cid, {
            "resourceType": "Condition",
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": rng.choice(["active", "active", "resolved"])}]},
            "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": cat}]}],
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": icd, "display": disp},
                                {"system": "http://snomed.info/sct", "code": sct}], "text": disp},
            "subject": pref, "onsetDateTime": self._dt(onset), "recordedDate": self._date(onset),
            "recorder": self._pick_prac(rng),
        }

    def observation(self, rng, pref):
        oid = self.next_id("Observation")
        is_lab = rng.random() < 0.35
        code, disp, unit, lo, hi, dec = rng.choice(LABS if is_lab else VITALS)
        val = round(rng.uniform(lo, hi), dec)
        if dec == 0:
            val = int(val)
        when = self._past(rng, 365)
        cat = "laboratory" if is_lab else "vital-signs"
        return oid, {
            "resourceType": "Observation", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": cat}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": disp}], "text": disp},
            "subject": pref, "effectiveDateTime": self._dt(when), "issued": self._dt(when + 3_600_000),
            "performer": [self._pick_prac(rng)],
            "valueQuantity": {"value": val, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
        }

    def procedure(self, rng, pref):
        pid = self.next_id("Procedure")
        code, disp, _ = rng.choice(PROCEDURES[3:])
        return pid, {
            "resourceType": "Procedure", "status": "completed",
            "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": code, "display": disp}], "text": disp},
            "subject": pref, "performedDateTime": self._dt(self._past(rng, 365)),
            "performer": [{"actor": self._pick_prac(rng)}], "location": self._pick_loc(rng),
        }

    def medication_request(self, rng, pref):
        mid = self.next_id("MedicationRequest")
        code, disp = rng.choice(MEDS)
        return mid, {
            "resourceType": "MedicationRequest", "status": rng.choice(["active", "active", "completed", "stopped"]),
            "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code, "display": disp}], "text": disp},
            "subject": pref, "authoredOn": self._dt(self._past(rng, 365)), "requester": self._pick_prac(rng),
            "dosageInstruction": [{"text": rng.choice(["Take 1 tablet by mouth daily", "Take 1 tablet by mouth twice daily", "Inhale 2 puffs every 4-6 hours as needed"])}],
            "dispenseRequest": {"numberOfRepeatsAllowed": rng.randint(0, 5), "quantity": {"value": rng.choice([30, 60, 90]), "unit": "tablet"}},
        }

    def allergy(self, rng, pref):
        aid = self.next_id("AllergyIntolerance")
        code, disp = rng.choice(ALLERGIES)
        return aid, {
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]},
            "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "code": "confirmed"}]},
            "category": [rng.choice(["medication", "food", "environment"])], "criticality": rng.choice(["low", "high"]),
            "code": {"coding": [{"code": code, "display": disp}], "text": disp},
            "patient": pref, "recordedDate": self._dt(self._past(rng, 2000)),
            "reaction": [{"manifestation": [{"text": rng.choice(["Hives", "Rash", "Anaphylaxis", "Nausea"])}]}],
        }

    def immunization(self, rng, pref):
        iid = self.next_id("Immunization")
        code, disp = rng.choice(VACCINES)
        return iid, {
            "resourceType": "Immunization", "status": "completed",
            "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": code, "display": disp}], "text": disp},
            "patient": pref, "occurrenceDateTime": self._dt(self._past(rng, 900)), "primarySource": True,
            "lotNumber": "L%05d%s" % (rng.randint(0, 99999), rng.choice("ABCDEF")),
            "performer": [{"actor": self._pick_prac(rng)}], "location": self._pick_loc(rng),
        }

    def diagnostic_report(self, rng, pref):
        did = self.next_id("DiagnosticReport")
        code, disp = rng.choice([("24323-8", "Comprehensive metabolic panel"), ("58410-2", "CBC panel"), ("57698-3", "Lipid panel")])
        when = self._past(rng, 365)
        return did, {
            "resourceType": "DiagnosticReport", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": disp}], "text": disp},
            "subject": pref, "effectiveDateTime": self._dt(when), "issued": self._dt(when + 7_200_000),
            "performer": [self._org_ref()], "conclusion": rng.choice(["Within normal limits.", "See individual results.", "Mildly abnormal; follow up advised."]),
        }

    def document_reference(self, rng, pref):
        did = self.next_id("DocumentReference")
        code, disp = rng.choice(DOC_TYPES)
        return did, {
            "resourceType": "DocumentReference", "status": "current",
            "type": {"coding": [{"system": "http://loinc.org", "code": code, "display": disp}], "text": disp},
            "category": [{"coding": [{"system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category", "code": "clinical-note"}]}],
            "subject": pref, "date": self._dt(self._past(rng, 365)), "author": [self._pick_prac(rng)],
            "content": [{"attachment": {"contentType": "text/plain", "title": disp,
                                        "data": "UGF0aWVudCBzZWVuIGZvciBmb2xsb3ctdXAuIFN0YWJsZS4="}}],
        }

    def coverage(self, rng, pref):
        cid = self.next_id("Coverage")
        payer = rng.choice(self.payers) if self.payers else ("", "Self-pay")
        start = self._past(rng, 1500)
        return cid, {
            "resourceType": "Coverage", "status": "active",
            "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.221.5", "value": "%s%09d" % (rng.choice("ABCXYZ"), rng.randint(0, 10**9 - 1))}],
            "type": {"coding": [{"system": "https://nahdo.org/sopt", "code": rng.choice(["5", "1", "2", "81"])}]},
            "subscriberId": "%09d" % rng.randint(0, 10**9 - 1),
            "beneficiary": pref, "relationship": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship", "code": "self"}]},
            "period": {"start": self._date(start)},
            "payor": [{"reference": "Organization/" + payer[0], "display": payer[1]} if payer[0] else {"display": payer[1]}],
            "class": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-class", "code": "group"}]}, "value": "GRP%05d" % rng.randint(0, 99999)}],
        }

    def account(self, rng, pref):
        aid = self.next_id("Account")
        return aid, {
            "resourceType": "Account", "status": "active",
            "identifier": [{"system": "urn:example:account", "value": "ACCT%07d" % rng.randint(0, 10**7 - 1)}],
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PBILLACCT", "display": "patient billing account"}]},
            "name": "Patient account", "subject": [pref],
            "servicePeriod": {"start": self._date(self._past(rng, 1500))}, "owner": self._org_ref(),
            "description": "Balance %.2f USD" % rng.uniform(0, 900),
        }

    def charge_item(self, rng, pref):
        cid = self.next_id("ChargeItem")
        code, disp, price = rng.choice(PROCEDURES)
        units = rng.choice([1, 1, 1, 2])
        return cid, {
            "resourceType": "ChargeItem", "status": rng.choice(["billable", "billed", "billed", "not-billable"]),
            "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": code, "display": disp}], "text": disp},
            "subject": pref, "occurrenceDateTime": self._dt(self._past(rng, 365)),
            "performer": [{"actor": self._pick_prac(rng)}], "quantity": {"value": units},
            "priceOverride": {"value": round(price * units, 2), "currency": "USD"},
            "enteredDate": self._dt(self._past(rng, 300)),
        }

    def claim(self, rng, pref):
        cid = self.next_id("Claim")
        code, disp, price = rng.choice(PROCEDURES)
        icd, cdisp, _ = rng.choice(CONDITIONS)
        payer = rng.choice(self.payers) if self.payers else ("", "Self-pay")
        created = self._past(rng, 365)
        return cid, {
            "resourceType": "Claim", "status": "active",
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]},
            "use": "claim", "patient": pref, "created": self._dt(created),
            "provider": self._org_ref(), "priority": {"coding": [{"code": "normal"}]},
            "insurer": {"reference": "Organization/" + payer[0], "display": payer[1]} if payer[0] else {"display": payer[1]},
            "diagnosis": [{"sequence": 1, "diagnosisCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": icd, "display": cdisp}]}}],
            "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": payer[1]}}],
            "item": [{"sequence": 1, "productOrService": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": code, "display": disp}]},
                      "servicedDate": self._date(created), "unitPrice": {"value": price, "currency": "USD"}, "net": {"value": price, "currency": "USD"}}],
            "total": {"value": price, "currency": "USD"},
        }

    def implant_device(self, rng, pref):
        did = self.next_id("Device")
        code, name = rng.choice(DEVICES)
        return did, {
            "resourceType": "Device", "status": "active",
            "udiCarrier": [{"deviceIdentifier": "%014d" % rng.randint(0, 10**14 - 1),
                            "carrierHRF": "(01)%014d(17)2801(10)A%04d" % (rng.randint(0, 10**14 - 1), rng.randint(0, 9999))}],
            "distinctIdentifier": "A%04d" % rng.randint(0, 9999),
            "manufactureDate": self._date(self._past(rng, 3000)),
            "lotNumber": "LOT%05d" % rng.randint(0, 99999),
            "type": {"coding": [{"system": "http://snomed.info/sct", "code": code, "display": name}]},
            "patient": pref,
        }

    _PATIENT_MAKERS = {
        "RelatedPerson": "related_person", "Appointment": "appointment", "Encounter": "encounter",
        "Condition": "condition", "Observation": "observation", "Procedure": "procedure",
        "MedicationRequest": "medication_request", "AllergyIntolerance": "allergy",
        "Immunization": "immunization", "DiagnosticReport": "diagnostic_report",
        "DocumentReference": "document_reference", "Coverage": "coverage", "Account": "account",
        "ChargeItem": "charge_item", "Claim": "claim", "Device": "implant_device",
    }

    # -- initial data set --------------------------------------------------------------------
    def generate(self, patients):
        """Yield (type, id, resource, versionId, ts_ms) for the initial data set (a generator,
        so a large data set is never held as dicts all at once)."""
        rng = FastRandom("pmssim:%s" % self.seed)
        T = self.types
        out = []

        def emit(rtype, rid, res):
            if rtype in T:
                vid = 1 if rng.random() < 0.7 else rng.randint(2, 4)
                out.append((rtype, rid, res, vid, self._past(rng, 400)))

        rid, res = self.organization_practice(rng)
        emit("Organization", rid, res)
        for name, payer_id in PAYERS:
            rid, res = self.organization_payer(rng, name, payer_id)
            emit("Organization", rid, res)
        for _ in range(max(2, int(patients * SHARED_PER_PATIENT["Location"]) + 1)):
            rid, res = self.location(rng)
            emit("Location", rid, res)
        pracs = []
        for _ in range(max(3, int(patients * SHARED_PER_PATIENT["Practitioner"]) + 2)):
            rid, res = self.practitioner(rng)
            pracs.append((rid, self.practitioners[-1][1]))
            emit("Practitioner", rid, res)
        for prac in pracs:
            rid, res = self.practitioner_role(rng, prac)
            emit("PractitionerRole", rid, res)
        for _ in range(int(patients * SHARED_PER_PATIENT["Device"]) + 1):
            rid, res = self.inventory_device(rng)
            emit("Device", rid, res)
        for _ in range(int(patients * SHARED_PER_PATIENT["SupplyDelivery"]) + 1):
            rid, res = self.supply_delivery(rng)
            emit("SupplyDelivery", rid, res)

        yield from out
        out.clear()
        makers = [(t, getattr(self, m), RESOURCES_PER_PATIENT[t]) for t, m in self._PATIENT_MAKERS.items() if t in T]
        for _ in range(patients):
            pid, res, pref = self.patient(rng)
            emit("Patient", pid, res)
            for rtype, fn, avg in makers:
                for _ in range(_count(rng, avg)):
                    rid, r = fn(rng, pref)
                    emit(rtype, rid, r)
            yield from out
            out.clear()

    # -- mutations ---------------------------------------------------------------------------
    def new_resource(self, rng, rtype, pref=None):
        """A new resource of `rtype` (patient-scoped types need `pref`, a Patient reference)."""
        if rtype == "Patient":
            pid, res, _ = self.patient(rng)
            return pid, res
        if rtype in self._PATIENT_MAKERS and (rtype != "Device" or pref is not None):
            if rtype == "Appointment":
                return self.appointment(rng, pref, self.epoch_ms + rng.randint(1, 60) * 86_400_000)
            return getattr(self, self._PATIENT_MAKERS[rtype])(rng, pref)
        maker = {"Practitioner": self.practitioner, "Location": self.location,
                 "SupplyDelivery": self.supply_delivery, "Device": self.inventory_device,
                 "Organization": lambda r: self.organization_payer(r, "%s Health Plan" % r.choice(LAST), "%05d" % r.randint(0, 99999))}
        if rtype == "PractitionerRole":
            if not self.practitioners:
                raise ValueError("no practitioners to give a role")
            return self.practitioner_role(rng, rng.choice(self.practitioners))
        if rtype in maker:
            return maker[rtype](rng)
        raise ValueError("cannot generate %s" % rtype)

    def modify(self, rng, rtype, res):
        """Apply a realistic change to a resource dict in place; returns it."""
        phone = "(%03d) 555-%04d" % (rng.randint(201, 989), rng.randint(0, 9999))
        if rtype == "Patient":
            choice = rng.randint(0, 2)
            if choice == 0:
                res.setdefault("telecom", [{}])[0] = {"system": "phone", "value": phone, "use": "mobile"}
            elif choice == 1:
                city, st, zip3 = rng.choice(CITIES)
                res["address"] = [{"use": "home", "line": ["%d %s" % (rng.randint(10, 9999), rng.choice(STREETS))], "city": city, "state": st, "postalCode": "%s%02d" % (zip3, rng.randint(0, 99)), "country": "US"}]
            else:
                res["maritalStatus"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": rng.choice(["M", "S", "D", "W"])}]}
        elif rtype == "Appointment":
            res["status"] = rng.choice(["booked", "arrived", "fulfilled", "cancelled", "noshow"])
            if res["status"] == "cancelled":
                res["cancelationReason"] = {"text": rng.choice(["Patient request", "Provider unavailable", "Weather"])}
        elif rtype == "Observation":
            q = res.get("valueQuantity") or {}
            if isinstance(q.get("value"), (int, float)):
                q["value"] = round(q["value"] * rng.uniform(0.95, 1.05), 1)
            res["status"] = "amended"
        elif rtype in ("Condition", "AllergyIntolerance"):
            res["clinicalStatus"]["coding"][0]["code"] = rng.choice(["active", "inactive", "resolved"]) if rtype == "Condition" else rng.choice(["active", "inactive"])
        elif rtype == "MedicationRequest":
            res["status"] = rng.choice(["active", "completed", "stopped", "on-hold"])
        elif rtype == "ChargeItem":
            res["status"] = rng.choice(["billable", "billed", "not-billable"])
        elif rtype == "Claim":
            res["status"] = rng.choice(["active", "cancelled"])
        elif rtype == "Account":
            res["description"] = "Balance %.2f USD" % rng.uniform(0, 900)
        elif rtype == "Encounter":
            res["status"] = rng.choice(["finished", "finished", "entered-in-error"])
        elif rtype in ("Practitioner", "Organization", "Location", "RelatedPerson"):
            res["telecom"] = [{"system": "phone", "value": phone, "use": "work"}]
        elif rtype == "Coverage":
            res["status"] = rng.choice(["active", "cancelled"])
        elif rtype == "SupplyDelivery":
            res["status"] = rng.choice(["completed", "in-progress", "abandoned"])
        elif rtype == "Device":
            res["status"] = rng.choice(["active", "inactive"])
        elif rtype == "DocumentReference":
            res["status"] = rng.choice(["current", "superseded"])
        else:
            res["status"] = res.get("status", "final")
            res.setdefault("meta", {})
            res["meta"]["tag"] = [{"system": "urn:pmssim", "code": "touched-%d" % rng.randint(0, 999)}]
        return res

