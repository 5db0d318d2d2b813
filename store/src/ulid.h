// Monotonic ULID generation (https://github.com/ulid/spec): 48-bit ms time + 80 random bits,
// Crockford base32, 26 characters. Within one millisecond (or if the clock steps back) the
// random part is incremented, so ids from one generator sort in generation order. The store
// generates them on its writer thread, which makes msg_id order equal seq order.
#pragma once

#include <cstdint>
#include <string>

namespace psa::store {

class UlidGenerator {
 public:
  /// Not thread-safe: one generator per thread.
  std::string next(int64_t now_ms);
  /// True if `s` is 26 Crockford base32 characters (upper case) with a valid time part.
  static bool valid(std::string_view s);

 private:
  uint64_t last_ms_ = 0;
  uint16_t rand_hi_ = 0;  // top 16 of the 80 random bits
  uint64_t rand_lo_ = 0;  // low 64
};

}  // namespace psa::store
