#include "tls_context.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "psa/store/fatal.h"
#include "psa/store/os/system_error.h"
#include "psa/store/os/utf8_path.h"

namespace psa::cloudlink::detail {
namespace {

int diagIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

TlsDiagnostics* diagFrom(const SSL* ssl) {
  if (ssl == nullptr) {
    return nullptr;
  }
  return static_cast<TlsDiagnostics*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), diagIndex()));
}

int verifyCallback(int preverify_ok, X509_STORE_CTX* store) {
  if (preverify_ok == 0) {
    auto* ssl = static_cast<SSL*>(
        X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    if (TlsDiagnostics* diag = diagFrom(ssl)) {
      const int err = X509_STORE_CTX_get_error(store);
      diag->recordVerifyError(err, X509_STORE_CTX_get_error_depth(store),
                              X509_verify_cert_error_string(err));
    }
  }
  return preverify_ok;  // never override OpenSSL's verdict
}

void infoCallback(const SSL* ssl, int where, int ret) {
  if ((where & SSL_CB_ALERT) == 0) {
    return;
  }
  if (TlsDiagnostics* diag = diagFrom(ssl)) {
    const bool received = (where & SSL_CB_READ) != 0;
    // A close_notify is a normal end, not a cause.
    if (std::strcmp(SSL_alert_type_string(ret), "W") == 0 &&
        std::strcmp(SSL_alert_desc_string(ret), "CN") == 0) {
      return;
    }
    diag->recordAlert(received, SSL_alert_desc_string_long(ret));
  }
}

std::string lastOpensslError() {
  unsigned long code = 0;
  unsigned long last = 0;
  while ((code = ERR_get_error()) != 0) {
    last = code;
  }
  if (last == 0) {
    return "unknown error";
  }
  const char* reason = ERR_reason_error_string(last);
  return reason != nullptr ? reason : "unknown error";
}

/// Checks that `path` is a readable file; the error names the role and the OS reason.
Status readable(const std::filesystem::path& path, const char* role) {
  if (path.empty()) {
    return Error(Errc::invalid_argument, std::string("TLS: no ") + role + " configured");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    return Error(Errc::io, std::string("TLS: cannot read ") + role + " " + path.string() + ": " +
                               os::errnoText(err));
  }
  return {};
}

bool isIpLiteral(const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

void TlsDiagnostics::recordVerifyError(int code, int depth, std::string text) {
  std::lock_guard lock(mu_);
  if (verify_code_ == 0) {
    verify_code_ = code;
    verify_depth_ = depth;
    verify_text_ = std::move(text);
  }
}

void TlsDiagnostics::recordAlert(bool received, std::string description) {
  std::lock_guard lock(mu_);
  (received ? received_alert_ : sent_alert_) = std::move(description);
}

void TlsDiagnostics::recordLibraryError(std::string text) {
  std::lock_guard lock(mu_);
  library_error_ = std::move(text);
}

bool TlsDiagnostics::hasVerifyError() const {
  std::lock_guard lock(mu_);
  return verify_code_ != 0;
}

std::string TlsDiagnostics::describe(const std::string& host) const {
  std::lock_guard lock(mu_);
  if (verify_code_ == X509_V_ERR_HOSTNAME_MISMATCH) {
    return "TLS: hostname mismatch: the broker certificate is not valid for " + host;
  }
  if (verify_code_ == X509_V_ERR_IP_ADDRESS_MISMATCH) {
    return "TLS: IP address mismatch: the broker certificate is not valid for " + host;
  }
  if (verify_code_ != 0) {
    std::string words = "TLS: certificate verify failed: " + verify_text_;
    switch (verify_code_) {
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
      case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        words += " (the configured CA file does not sign the broker's certificate)";
        break;
      case X509_V_ERR_CERT_HAS_EXPIRED:
      case X509_V_ERR_CERT_NOT_YET_VALID:
        words += " (check the broker's certificate and this machine's clock)";
        break;
      default: break;
    }
    return words;
  }
  if (!received_alert_.empty()) {
    static constexpr const char* kCertAlerts[] = {"unknown CA", "bad certificate",
                                                  "certificate required", "certificate unknown",
                                                  "certificate expired", "certificate revoked",
                                                  "unsupported certificate", "access denied",
                                                  "handshake failure", "decrypt error"};
    for (const char* alert : kCertAlerts) {
      if (received_alert_ == alert) {
        return "TLS: the broker rejected our client certificate (alert: " + received_alert_ + ")";
      }
    }
    return "TLS: the broker aborted the handshake (alert: " + received_alert_ + ")";
  }
  if (!library_error_.empty()) {
    return "TLS: handshake failed: " + library_error_;
  }
  if (!sent_alert_.empty()) {
    return "TLS: handshake failed (we sent alert: " + sent_alert_ + ")";
  }
  return {};
}

Result<SslCtxPtr> buildClientContext(const TlsSettings& s, TlsDiagnostics* diag) {
  PSA_TRY(readable(s.ca_file, "CA file"));
  PSA_TRY(readable(s.cert_file, "client certificate"));
  PSA_TRY(readable(s.key_file, "client key"));

  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) {
    return Error(Errc::internal, "TLS: cannot create context: " + lastOpensslError());
  }
  if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1) {
    return Error(Errc::internal, "TLS: cannot require TLS 1.2: " + lastOpensslError());
  }
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // Trust exactly the configured CA file (no system store).
  if (SSL_CTX_load_verify_locations(ctx.get(), os::pathToUtf8(s.ca_file).c_str(), nullptr) != 1) {
    return Error(Errc::invalid_input, "TLS: cannot load CA file " + s.ca_file.string() + ": " +
                                          lastOpensslError());
  }
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), os::pathToUtf8(s.cert_file).c_str()) != 1) {
    return Error(Errc::invalid_input, "TLS: cannot load client certificate " +
                                          s.cert_file.string() + ": " + lastOpensslError());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), os::pathToUtf8(s.key_file).c_str(),
                                  SSL_FILETYPE_PEM) != 1) {
    return Error(Errc::invalid_input, "TLS: cannot load client key " + s.key_file.string() +
                                          ": " + lastOpensslError());
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    return Error(Errc::invalid_input, "TLS: client key " + s.key_file.string() +
                                          " does not match certificate " + s.cert_file.string());
  }
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  const int host_ok = isIpLiteral(s.host)
                          ? X509_VERIFY_PARAM_set1_ip_asc(param, s.host.c_str())
                          : X509_VERIFY_PARAM_set1_host(param, s.host.c_str(), s.host.size());
  if (host_ok != 1) {
    return Error(Errc::invalid_argument, "TLS: cannot use host name " + s.host);
  }
  // OpenSSL is C: nothing may unwind through it (fatal.h).
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, [](int preverify_ok, X509_STORE_CTX* store) {
    return guardInvariant("tls.verify_callback",
                          [&] { return verifyCallback(preverify_ok, store); });
  });
  SSL_CTX_set_info_callback(ctx.get(), [](const SSL* ssl, int where, int ret) {
    guardInvariant("tls.info_callback", [&] { infoCallback(ssl, where, ret); });
  });
  SSL_CTX_set_ex_data(ctx.get(), diagIndex(), diag);
  return ctx;
}

}  // namespace psa::cloudlink::detail
