// SHA-256 for identities and secret fingerprints (OpenSSL).
#pragma once

#include <string>
#include <string_view>

namespace psa::adapters::api {

/// Lowercase hex SHA-256 of `data`.
std::string sha256Hex(std::string_view data);

}  // namespace psa::adapters::api
