// Declarative vendor profiles of rest-poll (pms-interfaces.md §3, §4, §6, §8, §9 and
// tests/sim/README.md §12): endpoints, auth, paging, watermark parameters and formats, limits,
// the collection -> data kind map. The engine (rest_poll.cpp, with one SyncStrategy per
// mechanism: sync_strategy.h) implements the four sync strategies these vendors need; a new
// vendor with the same mechanics is a new profile (or a `profile_file`), not new C++.
#include <string>
#include <vector>

#include "psa/store/json.h"

namespace psa::adapters::api {

namespace {

constexpr const char* kProfiles = R"JSON({
"drchrono": {
  "strategy": "since-list", "format": "vendor+json", "interval_s": 300,
  "rate_limits": [{"requests": 500, "per_s": 3600, "fixed": true, "name": "hour"},
                  {"requests": 9, "per_s": 1}],
  "time_format": "%Y-%m-%dT%H:%M:%S",
  "paging": {"style": "next-url", "items": ["results", "data"], "next": "next",
             "page_size_param": "page_size", "page_size": 250},
  "since": {"param": "since", "template": "{}"},
  "tombstones": ["deleted_flag", "archived"],
  "headers": {"Accept": "application/json"},
  "collections": [
    {"name": "patients", "path": "/patients", "kind": "patient", "id": "id", "ts": "updated_at"},
    {"name": "appointments", "path": "/appointments", "kind": "appointment", "id": "id", "ts": "updated_at",
     "initial_since": "1900-01-01T00:00:00"},
    {"name": "line_items", "path": "/line_items", "kind": "billing", "id": "id", "ts": "updated_at"},
    {"name": "problems", "path": "/problems", "kind": "clinical", "id": "id", "ts": "updated_at"},
    {"name": "medications", "path": "/medications", "kind": "clinical", "id": "id", "ts": "updated_at"},
    {"name": "patient_vaccine_records", "path": "/patient_vaccine_records", "kind": "clinical", "id": "id", "ts": "updated_at"},
    {"name": "doctors", "path": "/doctors", "kind": "provider", "id": "id", "ts": "updated_at"},
    {"name": "offices", "path": "/offices", "kind": "provider", "id": "id", "ts": "updated_at"},
    {"name": "inventory_vaccines", "path": "/inventory_vaccines", "kind": "inventory", "id": "id", "ts": "updated_at"}
  ]
},
"nextgen": {
  "strategy": "since-list", "format": "vendor+json", "interval_s": 300, "deletions": "reconcile",
  "time_format": "%Y-%m-%dT%H:%M:%S",
  "paging": {"style": "keyset", "items": ["items"], "limit_param": "$top", "page_size": 1000,
             "order": "{id_field} asc", "after": "{id_field} gt '{id}'"},
  "since": {"param": "$filter", "template": "modifyTimestamp ge datetime'{}'",
            "initial": "1900-01-01T00:00:00"},
  "headers": {"Accept": "application/json"},
  "collections": [
    {"name": "persons", "path": "/persons", "kind": "patient", "id": "personId", "ts": "modifyTimestamp"},
    {"name": "appointments", "path": "/appointments", "kind": "appointment", "id": "appointmentId", "ts": "modifyTimestamp"},
    {"name": "providers", "path": "/master/providers", "kind": "provider", "id": "providerId", "ts": "modifyTimestamp"},
    {"name": "locations", "path": "/master/locations", "kind": "provider", "id": "locationId", "ts": "modifyTimestamp"},
    {"name": "encounters", "path": "/persons/{id}/chart/encounters", "per": "persons", "kind": "clinical", "id": "encounterId", "ts": "modifyTimestamp"},
    {"name": "problems", "path": "/persons/{id}/chart/problems", "per": "persons", "kind": "clinical", "id": "problemId", "ts": "modifyTimestamp"},
    {"name": "medications", "path": "/persons/{id}/chart/medications", "per": "persons", "kind": "clinical", "id": "medicationId", "ts": "modifyTimestamp"},
    {"name": "allergies", "path": "/persons/{id}/chart/allergies", "per": "persons", "kind": "clinical", "id": "allergyId", "ts": "modifyTimestamp"},
    {"name": "charges", "path": "/persons/{id}/charges", "per": "persons", "kind": "billing", "id": "chargeId", "ts": "modifyTimestamp"}
  ]
},
"athenahealth": {
  "strategy": "athena-feeds", "format": "vendor+json", "interval_s": 60,
  "rate_limits": [{"requests": 100, "per_s": 1},
                  {"requests": 500000, "per_s": 86400, "fixed": true, "name": "day"}],
  "token_rate_limits": [{"requests": 50, "per_s": 60}],
  "time_format": "%m/%d/%Y %H:%M:%S",
  "paging": {"style": "next-url", "items": [], "next": "next", "page_size_param": "limit",
             "page_size": 500, "total": "totalcount"},
  "tombstones": ["deleted"],
  "collections": [
    {"name": "patients", "path": "/patients", "items": "patients", "kind": "patient", "id": "patientid", "ts": "lastmodified",
     "feed": "patients"},
    {"name": "appointments", "path": "/appointments/booked", "items": "appointments", "kind": "appointment", "id": "appointmentid",
     "ts": "lastmodified", "feed": "appointments", "params": {"startdate": "01/01/1900", "enddate": "12/31/2100"}},
    {"name": "claims", "path": "/claims", "items": "claims", "kind": "billing", "id": "claimid", "feed": "claims"},
    {"name": "providers", "path": "/providers", "items": "providers", "kind": "provider", "id": "providerid", "feed": "providers"},
    {"name": "departments", "path": "/departments", "items": "departments", "kind": "provider", "id": "departmentid"},
    {"name": "problems", "path": "/chart/{id}/problems", "per": "patients", "items": "problems", "kind": "clinical",
     "id": "problemid", "feed": "chart/healthhistory/problems"},
    {"name": "prescriptions", "path": "/chart/{id}/medications", "per": "patients", "items": "medications", "feed_items": "prescriptions",
     "kind": "clinical", "id": "documentid", "feed": "prescriptions"}
  ]
},
"kareo": {
  "strategy": "kareo-soap", "format": "vendor+xml", "interval_s": 600, "deletions": "reconcile",
  "rate_limits": [{"requests": 60, "per_s": 60}],
  "time_format": "%-m/%-d/%Y %-I:%M:%S %p",
  "paging": {"page_size": 500},
  "collections": [
    {"name": "Patients", "op": "GetPatients", "all_op": "GetAllPatients", "item": "PatientData", "kind": "patient"},
    {"name": "Appointments", "op": "GetAppointments", "item": "AppointmentData", "kind": "appointment"},
    {"name": "Charges", "op": "GetCharges", "item": "ChargeData", "kind": "billing"},
    {"name": "Payments", "op": "GetPayments", "item": "PaymentData", "kind": "billing"},
    {"name": "Providers", "op": "GetProviders", "item": "ProviderData", "kind": "provider"},
    {"name": "ServiceLocations", "op": "GetServiceLocations", "item": "ServiceLocationData", "kind": "provider"}
  ]
},
"allscripts": {
  "strategy": "unity-changed", "format": "vendor+json", "interval_s": 300,
  "collections": [
    {"name": "patients", "action": "GetPatient", "kind": "patient", "id": "ID"},
    {"name": "appointments", "action": "GetSchedule", "kind": "appointment", "id": "ID",
     "params": {"Parameter1": "1/1/1900", "Parameter2": "12/31/2100"}},
    {"name": "encounters", "action": "GetEncounterList", "kind": "clinical", "id": "ID"},
    {"name": "problems", "action": "GetPatientProblems", "kind": "clinical", "id": "ID"},
    {"name": "medications", "action": "GetMedicationByTransID", "kind": "clinical", "id": "TransID",
     "params": {"Parameter1": "0"}},
    {"name": "charges", "action": "GetCharges", "kind": "billing", "id": "ChargeID"},
    {"name": "providers", "action": "GetProviders", "kind": "provider", "id": "personid", "global": true}
  ]
}
})JSON";

}  // namespace

const json::Value* restProfile(const std::string& name) {
  static const json::Value profiles = *json::parse(kProfiles);
  return profiles.find(name);
}

std::vector<std::string> restProfileNames() {
  static const json::Value profiles = *json::parse(kProfiles);
  std::vector<std::string> out;
  for (const auto& [k, v] : profiles.members()) {
    out.push_back(k);
  }
  return out;
}

}  // namespace psa::adapters::api
