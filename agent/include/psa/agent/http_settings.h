// The `http` section of the config: the local status page and Prometheus endpoint. Off when the
// section is absent. A local setting: remote config can never change it (remote_config.cpp
// refuses every key outside its settable list).
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "psa/adapters/net/address.h"
#include "psa/adapters/net/server_tls.h"
#include "psa/store/json.h"
#include "psa/store/result.h"
#include "psa/store/schema.h"

namespace psa::agent {

struct HttpSettings {
  adapters::net::ListenEndpoint listen;  ///< default 127.0.0.1:9465
  std::optional<adapters::net::ServerTlsSettings> tls;
  std::filesystem::path bearer_token_file;  ///< empty: no token asked for
  size_t max_connections = 16;
  std::chrono::seconds request_timeout{10};  ///< a whole request, and a keep-alive idle gap
  int refresh_s = 5;                         ///< how often the page refreshes itself
};

/// The `http` object's schema, including the rule that a non-loopback `listen` needs `tls` and
/// a client certificate (`tls.client_ca_file`) or `bearer_token_file`.
schema::ObjectSchemaPtr httpSchema();

/// Reads a validated `http` object; relative paths resolve against `state_dir`.
Result<HttpSettings> readHttpSettings(const json::Value& http,
                                      const std::filesystem::path& state_dir);

}  // namespace psa::agent
