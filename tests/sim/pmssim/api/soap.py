"""SOAP 1.1 over HTTP with the standard library's xml.etree (Kareo's WCF service).

Parsing is namespace-aware like WCF: request elements must be in the service namespace, or they
are treated as absent. Responses are serialised with the service namespace as the default
namespace and `i` for XML Schema instance (`i:nil="true"` for null members), as WCF does.
"""

import xml.etree.ElementTree as ET

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
MAX_DEPTH = 64

ET.register_namespace("s", SOAP_NS)
ET.register_namespace("i", XSI_NS)


class SoapFault(Exception):
    """A SOAP 1.1 Fault to return (HTTP 500 unless status says otherwise)."""

    def __init__(self, code, text, status=500):
        super().__init__(text)
        self.code = code
        self.text = text
        self.status = status


def _depth_ok(el, depth=0):
    if depth > MAX_DEPTH:
        return False
    return all(_depth_ok(c, depth + 1) for c in el)


def parse_envelope(body):
    """Parse a SOAP 1.1 envelope -> the first child element of Body (the operation element).
    Raises SoapFault(s:Client) for anything that is not a SOAP 1.1 envelope."""
    if b"<!DOCTYPE" in body[:4096] or b"<!ENTITY" in body:
        raise SoapFault("s:Client", "DTDs are not allowed in SOAP messages")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise SoapFault("s:Client", "The message is not well-formed XML: %s" % exc) from None
    if not _depth_ok(root):
        raise SoapFault("s:Client", "XML nesting too deep")
    if root.tag == "{http://www.w3.org/2003/05/soap-envelope}Envelope":
        raise SoapFault("s:VersionMismatch", "SOAP 1.2 envelopes are not accepted by this endpoint (SOAP 1.1 only)")
    if root.tag != "{%s}Envelope" % SOAP_NS:
        raise SoapFault("s:Client", "Root element is not a SOAP 1.1 Envelope")
    body_el = root.find("{%s}Body" % SOAP_NS)
    if body_el is None or len(body_el) == 0:
        raise SoapFault("s:Client", "SOAP Body is missing or empty")
    return body_el[0]


def child(el, ns, name):
    return None if el is None else el.find("{%s}%s" % (ns, name))


def text(el, ns, name, default=None):
    c = child(el, ns, name)
    if c is None:
        return default
    if c.get("{%s}nil" % XSI_NS) == "true":
        return default
    return (c.text or "").strip()


def envelope(ns, op, result_builder):
    """Build `<s:Envelope><s:Body><{op}Response xmlns=ns><{op}Result>...` ; result_builder(result_el)
    fills the result element. Returns UTF-8 bytes with an XML declaration."""
    env = ET.Element("{%s}Envelope" % SOAP_NS)
    body = ET.SubElement(env, "{%s}Body" % SOAP_NS)
    resp = ET.SubElement(body, "{%s}%sResponse" % (ns, op))
    result = ET.SubElement(resp, "{%s}%sResult" % (ns, op))
    result_builder(result)
    return ET.tostring(env, encoding="utf-8", xml_declaration=True, default_namespace=ns)


def add(parent, ns, name, value=None, nil=False):
    el = ET.SubElement(parent, "{%s}%s" % (ns, name))
    if nil or value is None:
        if nil:
            el.set("{%s}nil" % XSI_NS, "true")
    else:
        el.text = str(value)
    return el


def fault_bytes(code, message):
    env = ET.Element("{%s}Envelope" % SOAP_NS)
    body = ET.SubElement(env, "{%s}Body" % SOAP_NS)
    f = ET.SubElement(body, "{%s}Fault" % SOAP_NS)
    if code.startswith("a:"):
        f.set("xmlns:a", "http://www.w3.org/2005/08/addressing")
    ET.SubElement(f, "faultcode").text = code
    fs = ET.SubElement(f, "faultstring")
    fs.set("{http://www.w3.org/XML/1998/namespace}lang", "en-US")
    fs.text = message
    return ET.tostring(env, encoding="utf-8", xml_declaration=True)
