"""Deterministic vendor-flavoured resource ids (clients must treat ids as opaque strings).

Every factory maps (resource type, sequence number n >= 1) to a valid FHIR id
([A-Za-z0-9-.]{1,64}) that is unique per type.
"""

import base64
import hashlib


def _digest(rtype, n, salt):
    return hashlib.sha256(("%s|%s|%d" % (salt, rtype, n)).encode()).digest()


def epic_ids(salt=""):
    """Epic-like: 'e' + 23 base64url-ish chars, e.g. eXk3qL0vR9h2mYtB8aWcQzA3 (dots and dashes occur)."""
    def make(rtype, n):
        raw = base64.b64encode(_digest(rtype, n, salt)).decode()[:22]
        return "e" + raw.replace("+", ".").replace("/", "-") + "3"
    return make


def cerner_ids(salt=""):
    """Cerner-like numeric ids (unique per type)."""
    bases = {}

    def make(rtype, n):
        if rtype not in bases:
            bases[rtype] = 10_000_000 + int.from_bytes(_digest(rtype, 0, salt)[:3], "big") * 10
        return str(bases[rtype] + n * 7)
    return make


def athena_ids(practice="195900"):
    """athenahealth FHIR-like: a-195900.E-12 (Patient), a-195900.encounter-12, ..."""
    prefix = {"Patient": "E", "Practitioner": "Provider", "Organization": "Department",
              "Location": "Department"}

    def make(rtype, n):
        p = prefix.get(rtype, rtype.lower())
        if rtype == "Location":
            return "a-%s.%s-%d" % (practice, p, 1000 + n)
        return "a-%s.%s-%d" % (practice, p, n)
    return make


def uuid_ids(salt=""):
    """Name-based UUID (version 5 layout) from sha1(salt|type|n)."""
    def make(rtype, n):
        h = hashlib.sha1(("%s|%s|%d" % (salt, rtype, n)).encode()).hexdigest()
        return "%s-%s-5%s-%x%s-%s" % (h[:8], h[8:12], h[13:16], 8 | (int(h[16], 16) & 3), h[17:20], h[20:32])
    return make


def numeric_ids(start=1000):
    def make(rtype, n):
        return str(start + n)
    return make


def hex_ids(salt=""):
    def make(rtype, n):
        return _digest(rtype, n, salt).hex()[:32]
    return make


STYLES = {"epic": epic_ids, "cerner": cerner_ids, "athena": athena_ids, "uuid": uuid_ids,
          "numeric": numeric_ids, "hex": hex_ids}
