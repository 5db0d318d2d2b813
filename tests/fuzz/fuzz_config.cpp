// libFuzzer target: config validation (schema, adapter schemas, masking) on arbitrary text.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "psa/agent/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const psa::adapters::SourceRegistry registry = [] {
    psa::adapters::SourceRegistry r;
    psa::adapters::registerBuiltinSources(r);
    return r;
  }();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto load = psa::agent::parseConfig(text, "fuzz.json", registry);
  if (load.config) {
    (void)psa::agent::maskedConfig(*load.config, registry);
  }
  return 0;
}
