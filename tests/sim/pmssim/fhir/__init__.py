"""FHIR R4 server shared by the FHIR vendor profiles (search, read, history, Bulk $export)."""
