// The TLS server side of a listener the agent offers (hl7-mllp listeners, the HTTP status
// endpoint): its config object, and the context built from it. `pms-agent check` builds the
// same context to report a bad file before the agent does.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <filesystem>
#include <memory>
#include <string>

#include "psa/store/json.h"
#include "psa/store/result.h"
#include "psa/store/schema.h"

namespace psa::adapters::net {

struct ServerTlsSettings {
  std::filesystem::path cert_file;
  std::filesystem::path key_file;
  std::filesystem::path client_ca_file;  ///< empty: no client certificate asked for
  std::string min_version = "1.2";       ///< "1.2" or "1.3"
};

/// The `tls` object: cert_file, key_file (required), client_ca_file, min_version.
schema::ObjectSchemaPtr serverTlsSchema();

/// Reads a validated `tls` object; relative paths resolve against `state_dir`.
Result<ServerTlsSettings> readServerTls(const json::Value& tls,
                                        const std::filesystem::path& state_dir);

/// TLS 1.2 or later (1.3 with min_version "1.3"); client certificates required when
/// client_ca_file is set. Null with `error` naming the setting, the file and the cause when a
/// file cannot be read or loaded, or the key does not match the certificate.
std::unique_ptr<boost::asio::ssl::context> makeServerTls(const ServerTlsSettings& t,
                                                         std::string& error);

}  // namespace psa::adapters::net
