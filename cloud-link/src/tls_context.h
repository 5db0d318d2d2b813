// The client TLS context for the broker connection, built by us rather than by libmosquitto
// (MOSQ_OPT_SSL_CTX with MOSQ_OPT_SSL_CTX_WITH_DEFAULTS off) so that we control the policy and
// can say in words why a handshake failed:
//   - TLS 1.2 minimum, OpenSSL's default secure ciphers, no renegotiation;
//   - the broker certificate must chain to ca_file (and nothing else: no system store);
//   - the host name (or IP literal) of the URL must match the certificate (X509_VERIFY_PARAM);
//   - our client certificate chain and key for mutual TLS.
// The verify callback records the first verification error, the info callback records TLS
// alerts received from the broker (e.g. it rejected our certificate). There is no switch to
// turn verification off.
#pragma once

#include <openssl/ssl.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "psa/store/result.h"

namespace psa::cloudlink::detail {

/// What went wrong during one handshake; filled from OpenSSL callbacks on the MQTT thread.
class TlsDiagnostics {
 public:
  void recordVerifyError(int code, int depth, std::string text);
  void recordAlert(bool received, std::string description);
  void recordLibraryError(std::string text);

  /// A sentence for LinkStatus::last_error, or "" if nothing was recorded.
  std::string describe(const std::string& host) const;
  bool hasVerifyError() const;

 private:
  mutable std::mutex mu_;
  int verify_code_ = 0;
  int verify_depth_ = 0;
  std::string verify_text_;
  std::string received_alert_;
  std::string sent_alert_;
  std::string library_error_;
};

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

struct TlsSettings {
  std::string host;  ///< checked against the certificate (DNS name or IP literal)
  std::filesystem::path ca_file;
  std::filesystem::path cert_file;
  std::filesystem::path key_file;
};

/// Builds a fresh context (files are re-read on every connection attempt, so a technician can
/// fix them without a restart). `diag` must outlive the context's connections.
/// Errors (Errc::io / Errc::invalid_input, message in words): unreadable or invalid CA,
/// certificate or key file; key not matching the certificate.
Result<SslCtxPtr> buildClientContext(const TlsSettings& settings, TlsDiagnostics* diag);

}  // namespace psa::cloudlink::detail
