#include "ulid.h"

#include <cstring>

#include "crypto.h"

namespace psa::store {
namespace {
constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
}

std::string UlidGenerator::next(int64_t now_ms) {
  const uint64_t ms = now_ms < 0 ? 0 : static_cast<uint64_t>(now_ms) & 0xFFFFFFFFFFFFull;
  if (ms > last_ms_) {
    last_ms_ = ms;
    uint8_t r[10];
    if (!crypto::randomBytes(r, sizeof r)) {
      // Extremely unlikely; fall back to incrementing (still unique and ordered).
      std::memset(r, 0, sizeof r);
    }
    rand_hi_ = static_cast<uint16_t>(r[0] << 8 | r[1]);
    rand_lo_ = 0;
    for (int i = 2; i < 10; ++i) {
      rand_lo_ = rand_lo_ << 8 | r[i];
    }
    // Leave headroom so increments within one ms never overflow into the time part.
    rand_hi_ &= 0x7FFF;
  } else {
    if (++rand_lo_ == 0) {
      ++rand_hi_;
    }
  }
  // 128 bits: time(48) | rand_hi(16) | rand_lo(64); emit 26 chars of 5 bits (first char 3 bits).
  const uint64_t hi = last_ms_ << 16 | rand_hi_;  // top 64 bits
  const uint64_t lo = rand_lo_;
  std::string out(26, '0');
  for (int i = 25; i >= 0; --i) {
    const int bit = (25 - i) * 5;  // position of this char's lowest bit
    uint64_t v;
    if (bit + 5 <= 64) {
      v = lo >> bit;
    } else if (bit >= 64) {
      v = hi >> (bit - 64);
    } else {
      v = (lo >> bit) | (hi << (64 - bit));
    }
    out[static_cast<size_t>(i)] = kAlphabet[v & 31];
  }
  return out;
}

bool UlidGenerator::valid(std::string_view s) {
  if (s.size() != 26 || s[0] > '7') {
    return false;
  }
  for (char c : s) {
    if (std::strchr(kAlphabet, c) == nullptr || c == '\0') {
      return false;
    }
  }
  return true;
}

}  // namespace psa::store
