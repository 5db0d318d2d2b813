"""pmssim: local simulators of PMS/EHR vendor interfaces (FHIR R4 family and, later,
vendor-specific REST/SOAP APIs).

Layout:
  pmssim.core     vendor-neutral building blocks (HTTP/TLS server, clock, data set,
                  change log, auth, rate limits, faults, stats, admin API)
  pmssim.fhir     the shared FHIR R4 server (search, read, history, Bulk $export)
  pmssim.vendors  one module per vendor profile; discovered automatically
"""
