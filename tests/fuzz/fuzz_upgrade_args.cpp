// libFuzzer target: the `upgrade` command's args (agent/src/upgrade_args.h) on arbitrary bytes:
// parsed as JSON, then parseArgs; when they parse, the checks before the download run against a
// fixed host, and the input itself is verified as the package. Any input: Args or a rejection,
// never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "psa/agent/signed_document.h"
#include "psa/store/json.h"
#include "upgrade_args.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace psa::agent;
  static const SigningKeys none;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  psa::json::Limits limits;
  limits.max_bytes = 1u << 16;
  limits.max_depth = 16;
  auto doc = psa::json::parse(input, limits);
  if (!doc) {
    return 0;
  }
  auto parsed = upgrade::parseArgs(*doc, 1'796'601'600'000);
  if (const auto* args = std::get_if<upgrade::Args>(&parsed)) {
    upgrade::Host host;
    host.running_version = "1.4.2";
    host.now_ms = 1'796'601'600'000;
    host.free_bytes = 1ull << 30;
    (void)upgrade::checkBeforeDownload(*args, host);
    (void)upgrade::verifyPackage(input, *args, none, none);
    (void)upgrade::compareVersions(args->version, host.running_version);
  }
  return 0;
}
