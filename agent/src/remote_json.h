// Small JSON and rejection helpers shared by RemoteManager's source files (remote_*.cpp).
// Pure functions; any thread.
#pragma once

#include <string>
#include <vector>

#include "psa/agent/signed_document.h"
#include "psa/store/json.h"

namespace psa::agent::remote_json {

inline json::Value str(std::string s) { return json::Value::string(std::move(s)); }
inline json::Value i64(int64_t v) { return json::Value::integer(v); }

inline Rejection makeRejection(RejectReason reason, std::string message,
                               std::vector<PathError> errors = {}) {
  Rejection r;
  r.reason = reason;
  r.message = std::move(message);
  r.errors = std::move(errors);
  return r;
}

inline json::Value errorsJson(const std::vector<PathError>& errors) {
  json::Value list = json::Value::array();
  for (const auto& e : errors) {
    json::Value o = json::Value::object();
    o.set("path", str(e.path));
    o.set("message", str(e.message));
    list.push(std::move(o));
  }
  return list;
}

inline json::Value namesJson(const std::vector<std::string>& names) {
  json::Value list = json::Value::array();
  for (const auto& n : names) {
    list.push(str(n));
  }
  return list;
}

inline std::string firstErrors(const std::vector<PathError>& errors, size_t max = 3) {
  std::string out;
  for (size_t i = 0; i < errors.size() && i < max; ++i) {
    out += (i ? "; " : "") + errors[i].path + ": " + errors[i].message;
  }
  if (errors.size() > max) {
    out += "; and " + std::to_string(errors.size() - max) + " more";
  }
  return out;
}

}  // namespace psa::agent::remote_json
