"""Knowledge about the canonical data model: FHIR R4 resources grouped into the agent's data kinds.

The simulator's data set is held as FHIR R4 JSON (the richest common model). Vendor modules
that speak something else (athenahealth v1, Unity, DrChrono, Kareo SOAP, NextGen) project these
resources into their own shapes; see README "Extending".
"""

# Data kind (agent MQTT topic `P/up/{kind}`) per resource type.
KIND_OF = {
    "Patient": "patient", "RelatedPerson": "patient",
    "Appointment": "appointment", "Schedule": "appointment", "Slot": "appointment",
    "Encounter": "clinical", "Condition": "clinical", "Observation": "clinical",
    "Procedure": "clinical", "MedicationRequest": "clinical", "AllergyIntolerance": "clinical",
    "Immunization": "clinical", "DiagnosticReport": "clinical", "DocumentReference": "clinical",
    "Coverage": "billing", "Account": "billing", "ChargeItem": "billing", "Claim": "billing",
    "Practitioner": "provider", "PractitionerRole": "provider", "Organization": "provider",
    "Location": "provider",
    "Device": "inventory", "SupplyDelivery": "inventory",
}

ALL_TYPES = list(KIND_OF)

# Where each patient-compartment type points at its patient, as (element, is_list).
# `Appointment` keeps its patient inside participant[].actor.
_PATIENT_ELEMENT = {
    "RelatedPerson": ("patient", False),
    "Encounter": ("subject", False),
    "Condition": ("subject", False),
    "Observation": ("subject", False),
    "Procedure": ("subject", False),
    "MedicationRequest": ("subject", False),
    "AllergyIntolerance": ("patient", False),
    "Immunization": ("patient", False),
    "DiagnosticReport": ("subject", False),
    "DocumentReference": ("subject", False),
    "Coverage": ("beneficiary", False),
    "Account": ("subject", True),
    "ChargeItem": ("subject", False),
    "Claim": ("patient", False),
    "Device": ("patient", False),
}

# Types whose search supports `patient=` (patient compartment).
PATIENT_SCOPED = set(_PATIENT_ELEMENT) | {"Appointment"}


def patient_ref(rtype, res):
    """Return the Patient id a resource belongs to (or None)."""
    if rtype == "Patient":
        return res.get("id")
    if rtype == "Appointment":
        for p in res.get("participant", ()):
            ref = (p.get("actor") or {}).get("reference", "")
            if ref.startswith("Patient/"):
                return ref[8:]
        return None
    spec = _PATIENT_ELEMENT.get(rtype)
    if not spec:
        return None
    val = res.get(spec[0])
    if spec[1]:
        val = val[0] if val else None
    ref = (val or {}).get("reference", "")
    return ref[8:] if ref.startswith("Patient/") else None


def set_patient_ref(rtype, res, patient_id, display=None):
    """Re-point a compartment resource at another patient (used by merges)."""
    new = {"reference": "Patient/" + patient_id}
    if display:
        new["display"] = display
    if rtype == "Appointment":
        for p in res.get("participant", ()):
            ref = (p.get("actor") or {}).get("reference", "")
            if ref.startswith("Patient/"):
                p["actor"] = new
        return
    spec = _PATIENT_ELEMENT.get(rtype)
    if not spec:
        return
    if spec[1]:
        res[spec[0]] = [new]
    else:
        res[spec[0]] = new


def patient_display(res):
    """Display text for a Patient resource (name.text or given + family)."""
    for n in res.get("name", ()):
        if n.get("text"):
            return n["text"]
        return " ".join(n.get("given", []) + [n.get("family", "")]).strip()
    return None
