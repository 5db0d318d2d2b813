// The operating system's trusted root certificates, loaded into an OpenSSL context: the one
// OS-specific piece of the HTTP transport. system_trust_posix.cpp uses OpenSSL's default
// verify paths (Debian's /etc/ssl/certs); system_trust_win.cpp copies the Windows "ROOT"
// store, so a site whose PMS certificate chains to a root the machine trusts needs no ca_file
// on either OS.
#pragma once

#include <openssl/ssl.h>

#include "psa/store/result.h"

namespace psa::adapters::api {

/// Adds the operating system's trusted root CAs to `ctx`'s certificate store (`ctx` stays owned
/// by the caller). Called once per transport, on the thread that makes it. Errors: Errc::io
/// when the store cannot be opened or yields no certificate OpenSSL can use (message PHI-free,
/// with the OS's reason).
Status loadSystemTrust(SSL_CTX* ctx);

}  // namespace psa::adapters::api
