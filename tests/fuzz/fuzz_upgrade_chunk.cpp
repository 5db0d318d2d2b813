// libFuzzer target: P/upgrade/chunk payloads (agent/src/upgrade_download.h parseChunk) on
// arbitrary bytes: a chunk or a clean error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "upgrade_download.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto chunk =
      psa::agent::upgrade::parseChunk(std::string_view(reinterpret_cast<const char*>(data), size));
  if (chunk && (chunk->index == 0 || chunk->index > chunk->count || chunk->bytes.empty())) {
    __builtin_trap();  // parseChunk promised these
  }
  return 0;
}
