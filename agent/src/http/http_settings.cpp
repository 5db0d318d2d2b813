#include "psa/agent/http_settings.h"

#include "psa/store/os/utf8_path.h"

namespace psa::agent {
namespace {

using schema::Field;

std::optional<std::string> checkListen(const json::Value& v) {
  if (auto ep = adapters::net::parseListenEndpoint(v.asString()); !ep) {
    return ep.error().message;
  }
  return std::nullopt;
}

std::optional<std::string> checkNonEmpty(const json::Value& v) {
  if (v.asString().empty()) {
    return "must not be empty";
  }
  return std::nullopt;
}

// The page shows queue depths, adapter names, hosts and errors: on a LAN it is only served to
// someone who proves who they are, over TLS.
void checkExposure(const json::Value& http, const std::string& path,
                   std::vector<schema::Issue>& issues) {
  const json::Value* listen = http.find("listen");
  if (listen == nullptr || !listen->isString()) {
    return;
  }
  auto ep = adapters::net::parseListenEndpoint(listen->asString());
  if (!ep || adapters::net::isLoopback(*ep)) {
    return;
  }
  const json::Value* tls = http.find("tls");
  const bool client_certs = tls != nullptr && tls->isObject() && tls->find("client_ca_file");
  const bool token = http.find("bearer_token_file") != nullptr;
  std::string why;
  if (tls == nullptr) {
    why = "needs \"tls\" and a client certificate (tls.client_ca_file) or a bearer_token_file";
  } else if (!client_certs && !token) {
    why = "needs a client certificate (tls.client_ca_file) or a bearer_token_file";
  }
  if (!why.empty()) {
    issues.push_back(schema::Issue{
        schema::childPath(path, "listen"), listen->pos().line, listen->pos().column,
        "\"" + listen->asString() + "\" is not a loopback address: serving the status page and " +
            "metrics on the network " + why + " (or listen on 127.0.0.1)"});
  }
}

}  // namespace

schema::ObjectSchemaPtr httpSchema() {
  static const schema::ObjectSchemaPtr http = [] {
    auto s = std::make_shared<schema::ObjectSchema>();
    s->fields = {
        Field::str("listen")
            .def(json::Value::string("127.0.0.1:9465"))
            .verify(checkListen)
            .describe("HOST:PORT of the status page and /metrics (loopback unless TLS + auth)"),
        Field::obj("tls", adapters::net::serverTlsSchema()).describe("serve over HTTPS"),
        Field::str("bearer_token_file")
            .verify(checkNonEmpty)
            .describe("file (mode 0600) holding the token clients send as Authorization: Bearer"),
        Field::integer("max_connections").def(json::Value::integer(16)).range(1, 256),
        Field::integer("request_timeout_s").def(json::Value::integer(10)).range(1, 300),
        Field::integer("refresh_s").def(json::Value::integer(5)).range(1, 3600),
    };
    s->check = checkExposure;
    return s;
  }();
  return http;
}

Result<HttpSettings> readHttpSettings(const json::Value& http,
                                      const std::filesystem::path& state_dir) {
  HttpSettings s;
  auto ep = adapters::net::parseListenEndpoint(http.getString("listen", "127.0.0.1:9465"));
  if (!ep) {
    return Error(Errc::invalid_argument, "http.listen: " + ep.error().message);
  }
  s.listen = std::move(ep).value();
  if (const json::Value* tls = http.find("tls"); tls != nullptr && tls->isObject()) {
    auto t = adapters::net::readServerTls(*tls, state_dir);
    if (!t) {
      return Error(t.error().code, "http." + t.error().message);
    }
    s.tls = std::move(t).value();
  }
  if (std::string f = http.getString("bearer_token_file"); !f.empty()) {
    s.bearer_token_file = os::resolveUtf8Path(state_dir, f);
  }
  s.max_connections = static_cast<size_t>(http.getInt("max_connections", 16));
  s.request_timeout = std::chrono::seconds(http.getInt("request_timeout_s", 10));
  s.refresh_s = static_cast<int>(http.getInt("refresh_s", 5));
  return s;
}

}  // namespace psa::agent
