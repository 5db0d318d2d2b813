"""Shared building blocks for the vendor-specific (non-FHIR) API simulators: athenahealth v1,
Allscripts Unity, DrChrono, Kareo SOAP and NextGen Enterprise.

  native.py   NativeVendor base class: native collections projected from the FHIR store,
              vendor-identity `expected`, change queries, local-time formatting, paging helpers
  soap.py     SOAP 1.1 envelope parsing and building (stdlib xml.etree)
"""
