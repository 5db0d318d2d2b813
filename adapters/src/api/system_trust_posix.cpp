#include <openssl/err.h>

#include "system_trust.h"

namespace psa::adapters::api {

Status loadSystemTrust(SSL_CTX* ctx) {
  // The directory and bundle OpenSSL was built with (or SSL_CERT_DIR / SSL_CERT_FILE); the
  // directory is read lazily, per certificate looked up during verification.
  if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
    char reason[256];
    ERR_error_string_n(ERR_peek_last_error(), reason, sizeof reason);
    ERR_clear_error();
    return Error(Errc::io, std::string("cannot load the system trust store: ") + reason);
  }
  return {};
}

}  // namespace psa::adapters::api
