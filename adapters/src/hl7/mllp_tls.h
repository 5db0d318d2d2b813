// The TLS server context of an hl7-mllp listener (certificate chain, key, optional client
// CAs), shared by the listener and `pms-agent check`.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

#include "hl7/mllp_settings.h"

namespace psa::adapters::hl7 {

/// TLS 1.2 or later (1.3 with min_version "1.3"); client certificates required when
/// client_ca_file is set. Null with `error` naming the setting, the file and the cause when a
/// file cannot be read or loaded, or the key does not match the certificate.
std::unique_ptr<boost::asio::ssl::context> makeServerTls(const MllpTlsSettings& t,
                                                         std::string& error);

}  // namespace psa::adapters::hl7
