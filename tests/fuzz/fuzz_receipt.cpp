// libFuzzer target: receipts from the cloud (P/receipt) and broker URLs from the config. Both
// are outside input for the cloud link: they must be rejected cleanly, never crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "psa/cloudlink/envelope.h"
#include "psa/cloudlink/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  psa::cloudlink::ReceiptLimits limits;
  limits.max_bytes = 64 * 1024;
  limits.max_ids = 1000;
  auto ids = psa::cloudlink::parseReceipt(text, limits);
  if (ids.ok()) {
    // Whatever was accepted round-trips through the formatter.
    auto again = psa::cloudlink::parseReceipt(psa::cloudlink::formatReceipt(*ids), limits);
    if (!again.ok() || *again != *ids) {
      __builtin_trap();
    }
  }
  auto url = psa::cloudlink::parseBrokerUrl(text);
  if (url.ok() && (url->host.empty() || url->port < 1 || url->port > 65535)) {
    __builtin_trap();
  }
  return 0;
}
