// libFuzzer target: write-back requests (issue 15) on arbitrary bytes.
// Input starting with 'B': byte 2 picks a format, the rest is a body for validateBodyFor().
// Input starting with 'K': the rest is an acknowledgement from the PMS for readAck().
// Anything else: the whole input is a request payload for parseWriteRequest(), whose body is
// then validated for its format. A body that passes hl7v2 validation must also prepare for
// sending (prepareOutbound), and the prepared message must pass validation again.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "psa/adapters/write/hl7_out_message.h"
#include "psa/adapters/write/write_request.h"

namespace w = psa::adapters::write;

namespace {

void checkBody(w::WriteFormat format, std::string_view body) {
  if (!w::validateBodyFor(format, body) || format != w::WriteFormat::hl7v2) {
    return;
  }
  auto prepared = w::prepareOutbound(body, "01JEKX4Z9Q8M3T6V7W2Y5B0C1D", 1796666400123);
  if (!prepared || !w::validateBodyFor(format, prepared->text)) {
    __builtin_trap();
  }
  (void)w::readAck(prepared->text, prepared->control_id);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  if (input.size() >= 2 && input[0] == 'B') {
    checkBody(static_cast<w::WriteFormat>(static_cast<unsigned char>(input[1]) % 4),
              input.substr(2));
    return 0;
  }
  if (!input.empty() && input[0] == 'K') {
    (void)w::readAck(input.substr(1), "C-1");
    return 0;
  }
  w::WriteLimits limits;
  limits.max_body_bytes = 64 * 1024;
  auto request = w::parseWriteRequest(input, limits);
  (void)w::requestIdOf(input);
  if (request) {
    checkBody(request->format, request->body);
  }
  return 0;
}
