#include "control_protocol.h"

namespace psa::agent {

Result<ControlRequest> parseControlRequest(std::string_view line) {
  if (line.size() > kMaxControlRequest) {
    return Error(Errc::limit, "request larger than " + std::to_string(kMaxControlRequest) + " bytes");
  }
  json::Limits limits;
  limits.max_bytes = kMaxControlRequest;
  limits.max_depth = 8;
  auto doc = json::parse(line, limits);
  if (!doc) {
    return Error(Errc::invalid_input, "malformed request: " + doc.error().message);
  }
  if (!doc->isObject()) {
    return Error(Errc::invalid_input, "malformed request: expected a JSON object");
  }
  const json::Value* cmd = doc->find("cmd");
  if (cmd == nullptr || !cmd->isString() || cmd->asString().empty() || cmd->asString().size() > 64) {
    return Error(Errc::invalid_input, "malformed request: \"cmd\" must be a short string");
  }
  ControlRequest req;
  req.cmd = cmd->asString();
  if (const json::Value* args = doc->find("args")) {
    if (!args->isObject()) {
      return Error(Errc::invalid_input, "malformed request: \"args\" must be an object");
    }
    req.args = *args;
  }
  return req;
}

std::string encodeControlRequest(const ControlRequest& request) {
  json::Value v = json::Value::object();
  v.set("cmd", json::Value::string(request.cmd));
  v.set("args", request.args.isObject() ? request.args : json::Value::object());
  return json::serialize(v) + "\n";
}

Result<ControlResponse> parseControlResponse(std::string_view line) {
  json::Limits limits;
  limits.max_bytes = kMaxControlResponse;
  auto doc = json::parse(line, limits);
  if (!doc || !doc->isObject()) {
    return Error(Errc::invalid_input, "malformed response from the agent");
  }
  ControlResponse r;
  r.ok = doc->getBool("ok", false);
  if (const json::Value* res = doc->find("result")) {
    r.result = *res;
  }
  r.error = doc->getString("error");
  r.exit_code = static_cast<int>(doc->getInt("exit", r.ok ? 0 : 1));
  return r;
}

std::string encodeControlResponse(const ControlResponse& response) {
  json::Value v = json::Value::object();
  v.set("ok", json::Value::boolean(response.ok));
  if (response.ok) {
    v.set("result", response.result);
  } else {
    v.set("error", json::Value::string(response.error));
    v.set("exit", json::Value::integer(response.exit_code == 0 ? 1 : response.exit_code));
  }
  return json::serialize(v) + "\n";
}

}  // namespace psa::agent
