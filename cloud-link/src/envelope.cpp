#include "psa/cloudlink/envelope.h"

#include <openssl/evp.h>

#include "psa/store/clock.h"
#include "psa/store/json.h"
#include "psa/store/os/per_thread.h"

namespace psa::cloudlink {

std::string_view contentTypeFor(std::string_view format) {
  namespace f = store::format;
  if (format == f::kHl7v2) {
    return "x-application/hl7-v2+er7";
  }
  if (format == f::kFhirJson) {
    return "application/fhir+json";
  }
  if (format == f::kCsvJson || format == f::kVendorJson) {
    return "application/json";
  }
  if (format == f::kVendorXml) {
    return "application/xml";
  }
  if (format == f::kX12) {
    return "application/edi-x12";
  }
  return "application/octet-stream";
}

std::vector<std::pair<std::string, std::string>> userProperties(const store::Record& record) {
  std::vector<std::pair<std::string, std::string>> props;
  props.reserve(7);
  props.emplace_back("msg-id", record.msg_id);
  props.emplace_back("source", record.source);
  props.emplace_back("vendor", record.vendor);
  props.emplace_back("kind", std::string(store::kindName(record.kind)));
  props.emplace_back("format", record.format);
  props.emplace_back("received-at", formatRfc3339(record.received_at_ms));
  props.emplace_back("sha256", sha256Hex(record.payload.reveal()));
  return props;
}

namespace {

bool validId(std::string_view id, size_t max_len) {
  if (id.empty() || id.size() > max_len) {
    return false;
  }
  for (char c : id) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '-' || c == '_';
    if (!ok) {
      return false;
    }
  }
  return true;
}

}  // namespace

Result<std::vector<std::string>> parseReceipt(std::string_view payload,
                                              const ReceiptLimits& limits) {
  if (payload.size() > limits.max_bytes) {
    return Error(Errc::limit, "receipt is " + std::to_string(payload.size()) + " bytes, limit " +
                                  std::to_string(limits.max_bytes));
  }
  json::Limits jl;
  jl.max_bytes = limits.max_bytes;
  jl.max_depth = 8;
  jl.max_string = limits.max_bytes;
  auto doc = json::parse(payload, jl);
  if (!doc) {
    return Error(doc.error().code, "receipt: " + doc.error().message);
  }
  if (!doc->isObject()) {
    return Error(Errc::invalid_input, "receipt: expected a JSON object");
  }
  const json::Value* ids = doc->find("msg_ids");
  if (ids == nullptr) {
    return Error(Errc::invalid_input, "receipt: missing \"msg_ids\"");
  }
  if (!ids->isArray()) {
    return Error(Errc::invalid_input, "receipt: \"msg_ids\" must be an array");
  }
  if (ids->items().size() > limits.max_ids) {
    return Error(Errc::limit, "receipt: " + std::to_string(ids->items().size()) +
                                  " msg_ids, limit " + std::to_string(limits.max_ids));
  }
  std::vector<std::string> out;
  out.reserve(ids->items().size());
  size_t index = 0;
  for (const json::Value& v : ids->items()) {
    if (!v.isString() || !validId(v.asString(), limits.max_id_length)) {
      return Error(Errc::invalid_input,
                   "receipt: msg_ids[" + std::to_string(index) + "] is not a valid msg-id");
    }
    out.push_back(v.asString());
    ++index;
  }
  return out;
}

std::string formatReceipt(const std::vector<std::string>& msg_ids) {
  std::string out = "{\"msg_ids\":[";
  for (size_t i = 0; i < msg_ids.size(); ++i) {
    if (i > 0) {
      out.push_back(',');
    }
    out += json::quote(msg_ids[i]);
  }
  out += "]}";
  return out;
}

}  // namespace psa::cloudlink
