#include "audit.h"

#include <cstdio>

#include "crypto.h"

namespace psa::store::audit {

const std::string& genesisHash() {
  static const std::string zeros(64, '0');
  return zeros;
}

std::string entryHash(std::string_view prev_hash, int64_t seq, int64_t at_ms,
                      std::string_view actor, std::string_view action, std::string_view detail) {
  std::string buf;
  buf.reserve(prev_hash.size() + actor.size() + action.size() + detail.size() + 64);
  auto field = [&buf](std::string_view v) {
    buf += std::to_string(v.size());
    buf += ':';
    buf += v;
    buf += '\n';
  };
  field(prev_hash);
  field(std::to_string(seq));
  field(std::to_string(at_ms));
  field(actor);
  field(action);
  field(detail);
  return crypto::toHex(crypto::sha256(buf));
}

std::string jsonString(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace psa::store::audit
