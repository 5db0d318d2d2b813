// The client side of TLS for our outgoing TCP connections to a PMS (MLLP senders: the
// blocking MllpClient and the `hl7-mllp-out` write target): context set-up (TLS 1.2+, trust,
// optional client certificate, peer verification) and per-connection name checks.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>
#include <filesystem>
#include <string>

#include "psa/store/result.h"

namespace psa::adapters::net {

struct ClientTlsFiles {
  /// CA that signs the server's certificate (PEM); empty: the system's default trust store.
  std::filesystem::path ca_file;
  /// Client certificate and key (PEM) for servers that require one; both or neither.
  std::filesystem::path cert_file;
  std::filesystem::path key_file;
};

/// Sets up `ctx` (created as tls_client): TLS 1.2 minimum, trust, client certificate, verify
/// peer. Errors: Errc::invalid_argument (cert without key), Errc::io naming the file.
Status configureClientTls(boost::asio::ssl::context& ctx, const ClientTlsFiles& files);

/// Before the handshake: the server certificate must carry `name` (DNS name or IP literal);
/// a DNS name is also sent as SNI.
void expectServerName(SSL* ssl, const std::string& name);

/// Why a handshake failed: the certificate verification result when that failed, else the
/// error, plus OpenSSL's queued errors.
std::string handshakeFailure(SSL* ssl, const boost::system::error_code& ec);

}  // namespace psa::adapters::net
