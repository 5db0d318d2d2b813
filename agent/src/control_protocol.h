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
inline constexpr size_t kMaxControlResponse = 64u << 20;  // bundles travel as files, not here

struct ControlRequest {
  std::string cmd;
  json::Value args = json::Value::object();
};

/// Parses one request line (outside input: size/depth limited). Errors: Errc::invalid_input.
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
