// The control socket protocol between the CLI and the running agent: one JSON request line,
// one JSON response line, then the connection closes.
//   request:  {"cmd":"queue.show","args":{"id":"01J..."}}\n
//   response: {"ok":true,"result":{...}}\n   or   {"ok":false,"error":"...","exit":1}\n
#pragma once

#include <string>
#include <string_view>

#include "psa/store/json.h"
#include "psa/store/result.h"

namespace psa::agent {

inline constexpr size_t kMaxControlRequest = 64 * 1024;
/// A reveal carries a payload of up to 64 MiB as base64 (4/3 of it) plus metadata.
inline constexpr size_t kMaxControlResponse = 96u << 20;

struct ControlRequest {
  std::string cmd;
  json::Value args = json::Value::object();
};

/// Parses one request line (outside input: size/depth limited). Errors: Errc::invalid_input
/// (not JSON, not an object, "cmd" not a 1-64 byte string, "args" not an object) and
/// Errc::limit (longer than kMaxControlRequest).
Result<ControlRequest> parseControlRequest(std::string_view line);
std::string encodeControlRequest(const ControlRequest& request);

struct ControlResponse {
  bool ok = true;
  json::Value result;      ///< when ok
  std::string error;       ///< when not ok: in words, PHI-free
  int exit_code = 0;       ///< suggested CLI exit code
};

Result<ControlResponse> parseControlResponse(std::string_view line);
std::string encodeControlResponse(const ControlResponse& response);

}  // namespace psa::agent
