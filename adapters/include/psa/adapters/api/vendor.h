// Wire formats of the vendor-specific APIs the rest-poll adapter reads (pms-interfaces.md §3,
// §4, §6, §8, §9): JSON list pages (DrChrono, athenahealth, NextGen), Unity MagicJson answers
// and Kareo SOAP responses. Items point into the parsed text (payload = the server's bytes).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "psa/store/result.h"

namespace psa::adapters::api {

/// One record found in a vendor answer: `text.substr(offset, length)` is its payload.
struct VendorItem {
  size_t offset = 0;
  size_t length = 0;
  std::string id;         ///< the id field (numbers rendered as integers)
  std::string ts;         ///< the last-modified field, "" if the record has none
  bool tombstone = false; ///< a deletion marker (archived/deleted_flag/deleted = true)
};

struct VendorPage {
  std::vector<VendorItem> items;
  std::string next;              ///< next link (URL or path), "" when absent/null
  std::optional<int64_t> total;  ///< totalcount / count when present
};

/// Where a vendor's list answer keeps things.
struct VendorPageSpec {
  std::vector<std::string> items_keys;  ///< first present key holds the array; empty: the body is the array
  std::string id_field;
  std::string ts_field;
  std::string next_field = "next";
  std::string total_field;
  /// Fields that mark a tombstone when true (or "true").
  std::vector<std::string> tombstone_fields;
};

/// Parses a JSON list answer. Errors: Errc::invalid_input with the byte offset ("items[3]:
/// missing id (byte 120)"), Errc::limit.
Result<VendorPage> parseVendorPage(std::string_view text, const VendorPageSpec& spec);

/// A Unity MagicJson answer: `[{"<action>info": [rows]}]`, `[]` (no rows) or
/// `[{"Error": "..."}]` (always HTTP 200).
struct UnityAnswer {
  bool error = false;
  std::string message;  ///< the Error text (printable ASCII, 200 chars max)
  VendorPage rows;
};
Result<UnityAnswer> parseUnityAnswer(std::string_view text, std::string_view action,
                                     const VendorPageSpec& spec);

/// A Kareo SOAP 2.1 answer (HTTP 200 or a Fault).
struct KareoAnswer {
  bool fault = false;
  std::string fault_code;
  std::string fault_string;
  bool is_error = false;        ///< ErrorResponse/IsError
  std::string error_message;
  bool security_ok = true;      ///< SecurityResponse/SecurityResultSuccess
  std::string security_result;
  std::vector<VendorItem> items;  ///< list/item elements (payload = the item element's bytes)
  std::optional<std::string> next_key;  ///< GetAllPatients `Key` (nullopt: nil/absent = last batch)
};

/// Parses a Kareo answer to `operation`, whose records are `list_element/item_element` in the
/// result (id field "ID", timestamp "LastModifiedDate"). Errors: Errc::invalid_input for XML
/// that is broken or not the expected envelope (with the byte offset).
Result<KareoAnswer> parseKareoAnswer(std::string_view text, std::string_view operation,
                                     std::string_view list_element, std::string_view item_element);

/// The Kareo namespace and a request envelope for `operation` with the RequestHeader and
/// `filter` (element, value) pairs. Values are XML-escaped.
inline constexpr std::string_view kKareoNs = "http://www.kareo.com/api/schemas/";
std::string kareoEnvelope(std::string_view operation, std::string_view customer_key,
                          std::string_view user, std::string_view password,
                          std::string_view client_version,
                          const std::vector<std::pair<std::string, std::string>>& filter);

/// Formats Unix ms in a fixed UTC offset with a strftime-like pattern: %Y %m %d %H %M %S %I %p,
/// and %-m %-d %-I for unpadded numbers (Kareo's "M/D/YYYY h:mm:ss AM").
std::string formatLocalTime(int64_t unix_ms, int offset_minutes, std::string_view pattern);
/// "+05:30" / "-05:00" / "Z" -> minutes. nullopt if malformed.
std::optional<int> parseUtcOffset(std::string_view text);

}  // namespace psa::adapters::api
