// FHIR R4 wire formats the fhir-poll adapter reads (pms-interfaces.md §0.2, §0.3): searchset
// and history Bundle pages, Bulk Data NDJSON lines and manifests. Parsers are strict about
// structure, enforce size/depth limits, report byte offsets, and never copy payloads: items
// point into the text they were parsed from, so a record's payload is exactly the server's
// bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "psa/store/record.h"
#include "psa/store/result.h"

namespace psa::adapters::api {

/// Data kind of a FHIR resource type (pms-interfaces.md §0.4): Patient -> patient,
/// Appointment/Schedule/Slot -> appointment, Claim/Coverage/ChargeItem... -> billing,
/// Practitioner/Organization/Location... -> provider, Device/Supply* -> inventory, other
/// clinical types -> clinical; unknown types -> other.
store::Kind kindForFhirType(std::string_view resource_type);

/// Who a resource version is.
struct FhirRef {
  std::string type;
  std::string id;
  std::string version_id;    ///< meta.versionId (or a DELETE entry's etag), may be empty
  std::string last_updated;  ///< meta.lastUpdated, may be empty
};

/// The de-duplication identity of one resource version: "Type/id/_history/vid", else
/// "Type/id@lastUpdated", else "Type/id" + "#" + `fallback` (e.g. a content hash). Deletions
/// get "Type/id/_history/vid/deleted" (or "Type/id/deleted" when no version is known).
std::string fhirIdentity(const FhirRef& ref, bool deleted, std::string_view fallback = {});

/// One resource version (or deletion) found in a page: `text.substr(offset, length)` is its
/// payload (the resource, or the whole entry for a DELETE entry).
struct FhirItem {
  size_t offset = 0;
  size_t length = 0;
  FhirRef ref;
  bool deleted = false;
};

struct FhirPage {
  std::string bundle_type;   ///< "searchset", "history", ...
  std::string last_updated;  ///< Bundle.meta.lastUpdated ("" if absent)
  std::string next_url;      ///< link[relation=next].url, "" on the last page
  std::optional<int64_t> total;
  std::vector<FhirItem> items;  ///< entries with search.mode "outcome" are skipped
  size_t outcome_entries = 0;
};

struct FhirLimits {
  size_t max_bytes = 256u << 20;
  size_t max_depth = 64;
  size_t max_entries = 100000;
};

/// Parses a searchset or history Bundle. Errors (Errc::invalid_input, Errc::limit) name the
/// problem and its byte offset, e.g. "entry[3].resource: missing id (byte 1234)".
Result<FhirPage> parseBundlePage(std::string_view text, const FhirLimits& limits = {});

/// One line of a Bulk NDJSON output file: a resource (the whole line is the payload; a
/// trailing CR is excluded). `expected_type` non-empty: the resourceType must match.
Result<FhirItem> parseNdjsonResource(std::string_view line, std::string_view expected_type = {});

/// One line of a Bulk `deleted` file: a transaction Bundle whose entries are
/// {"request": {"method": "DELETE", "url": "Type/id"}}; one item per entry (payload = entry).
Result<std::vector<FhirItem>> parseNdjsonDeleted(std::string_view line);

struct BulkFile {
  std::string type;
  std::string url;
  int64_t count = -1;  ///< -1 when the manifest does not say
};

struct BulkManifest {
  std::string transaction_time;
  bool requires_access_token = true;
  std::vector<BulkFile> output;
  std::vector<BulkFile> deleted;
  std::vector<BulkFile> error;
};

/// The Bulk status answer once complete (HTTP 200). Errors: Errc::invalid_input.
Result<BulkManifest> parseBulkManifest(std::string_view text);

/// A parser error message with every quoted text ("...") blanked: the JSON parser quotes object
/// keys it choked on, and in a cut-off page such a "key" can be a piece of patient data.
std::string scrubParseError(std::string_view message);

/// A short PHI-free summary of an OperationOutcome or OAuth error body for status and logs:
/// "code=throttled: <diagnostics, 160 chars max, printable ASCII only>", or "" if the body is
/// neither.
std::string summarizeErrorBody(std::string_view body);

}  // namespace psa::adapters::api
