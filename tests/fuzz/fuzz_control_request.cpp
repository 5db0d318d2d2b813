// libFuzzer target: the control socket's request parser (a local user may send anything). A
// parsed request must round-trip through encodeControlRequest, and the response codec must
// survive whatever it is given too.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "psa/agent/control_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto req = psa::agent::parseControlRequest(line);
  if (req.ok()) {
    if (req->cmd.empty() || req->cmd.size() > 64 || !req->args.isObject()) {
      __builtin_trap();
    }
    std::string again = psa::agent::encodeControlRequest(*req);
    if (again.empty() || again.back() != '\n') {
      __builtin_trap();
    }
    again.pop_back();
    auto req2 = psa::agent::parseControlRequest(again);
    if (!req2.ok() || req2->cmd != req->cmd || !(req2->args == req->args)) {
      __builtin_trap();
    }
  } else if (size <= psa::agent::kMaxControlRequest && req.error().is(psa::Errc::limit)) {
    __builtin_trap();  // only oversize requests are a limit error
  }
  auto resp = psa::agent::parseControlResponse(line);
  if (resp.ok()) {
    (void)psa::agent::encodeControlResponse(*resp);
  }
  return 0;
}
