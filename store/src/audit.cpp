#include "audit.h"

#include <cstdio>

#include "crypto.h"
#include "psa/store/json.h"

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

std::string jsonString(std::string_view s) { return json::quote(s, json::QuoteStyle::audit); }

}  // namespace psa::store::audit
