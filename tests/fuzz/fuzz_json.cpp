// libFuzzer target: the JSON parser (config files, MQTT payloads, FHIR/vendor pages).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "psa/store/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  psa::json::Limits limits;
  limits.max_depth = 48;
  limits.allow_duplicate_keys = (size % 2) == 0;
  auto r = psa::json::parse(text, limits);
  if (r.ok()) {
    // Round trip: serialising and re-parsing a parsed value must succeed and be equal.
    std::string again = psa::json::serialize(*r, size % 3 == 0);
    auto r2 = psa::json::parse(again, limits);
    if (!r2.ok() || !(*r2 == *r)) {
      __builtin_trap();
    }
    (void)r->raw(text);
  }
  return 0;
}
