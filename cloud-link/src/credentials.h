// The MQTT user name and password some brokers want beside (or instead of checking) the client
// certificate: `cloud.username` or the certificate's common name (`username_from_certificate`),
// and a password read from `cloud.password_file`. Read on every connection attempt (like the
// TLS files), so a rotated password takes effect at the next reconnect without a restart. The
// password never reaches a log or a status line.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "psa/cloudlink/cloud_link.h"
#include "psa/store/result.h"

namespace psa::cloudlink::detail {

struct CredentialSources {
  std::string username;
  std::filesystem::path password_file;
  bool username_from_certificate = false;
  std::filesystem::path cert_file;  ///< for username_from_certificate
};

CredentialSources credentialSources(const CloudLinkOptions& options);

struct MqttCredentials {
  std::optional<std::string> username;  ///< nullopt: CONNECT carries no user name
  std::optional<std::string> password;
};

/// Errors, in words naming the setting: an unsafe or unreadable password file
/// (Errc::key_file / Errc::io), an empty one (Errc::invalid_input), a certificate without a
/// common name.
Result<MqttCredentials> loadCredentials(const CredentialSources& sources);

/// The subject common name of the first certificate in a PEM file.
Result<std::string> certificateCommonName(const std::filesystem::path& cert_file);

}  // namespace psa::cloudlink::detail
