// libFuzzer target: the small parsers of server-sent metadata in the API adapters: HTTP dates
// (Date, Retry-After as a date), Retry-After delay-seconds, base64url (JWT segments, JWKS
// members) and UTC offsets ("+05:30"). Invariants: never crash; a parsed HTTP date is whole
// seconds and survives format -> parse; a Retry-After delay lies in [0, max]; base64url that
// decodes re-encodes to a value that decodes to the same bytes; an offset is within +-24 h.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "psa/adapters/api/http_time.h"
#include "psa/adapters/api/jwt.h"
#include "psa/adapters/api/vendor.h"

namespace api = psa::adapters::api;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  if (auto ms = api::parseHttpDate(text)) {
    if (*ms % 1000 != 0) {
      __builtin_trap();
    }
    // Years 1970..9999 have one IMF-fixdate form; it must read back as the same instant.
    if (*ms >= 0 && *ms < 253402300800000) {
      auto again = api::parseHttpDate(api::formatHttpDate(*ms));
      if (!again || *again != *ms) {
        __builtin_trap();
      }
    }
  }

  const auto max = std::chrono::milliseconds(3600 * 1000);
  for (int64_t reference : {int64_t{0}, int64_t{1764000000000}, int64_t{-1}}) {
    if (auto d = api::parseRetryAfter(text, reference, max)) {
      if (d->count() < 0 || *d > max) {
        __builtin_trap();
      }
    }
  }

  if (auto bytes = api::base64UrlDecode(text)) {
    auto back = api::base64UrlDecode(api::base64UrlEncode(*bytes));
    if (!back || *back != *bytes) {
      __builtin_trap();
    }
  }

  if (auto off = api::parseUtcOffset(text)) {
    if (*off < -24 * 60 || *off > 24 * 60) {
      __builtin_trap();
    }
  }
  return 0;
}
