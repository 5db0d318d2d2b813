// SHA-256 for identities, checksums and fingerprints: the one implementation every library
// uses (OpenSSL 3; the algorithm is fetched once and each thread keeps its own context, since
// EVP_sha256() would look the algorithm up again on every call). Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace psa {

/// SHA-256 of `bytes`.
std::array<uint8_t, 32> sha256(std::string_view bytes);
/// SHA-256 of `bytes` as 64 lower-case hex digits.
std::string sha256Hex(std::string_view bytes);
/// Appends `bytes` as lower-case hex digits to `out`.
void appendHex(std::string& out, const uint8_t* bytes, size_t n);

}  // namespace psa
