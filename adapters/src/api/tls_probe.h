// After a TLS handshake failure inside cpprestsdk (which only says "Error in SSL handshake"),
// a direct OpenSSL handshake with the same trust settings tells the technician why: "certificate
// verify failed: unable to get local issuer certificate", a host name mismatch, ...
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

namespace psa::adapters::api {

/// Connects to the URL's host:port, handshakes with `ca_file` (empty: system store) and host name
/// verification, and returns a PHI-free reason for a failure, or "" when the handshake works.
std::string tlsFailureReason(const std::string& url, const std::filesystem::path& ca_file,
                             std::chrono::milliseconds timeout);

}  // namespace psa::adapters::api
