// The OS-independent part of the diagnostics' TCP probe (tcp_probe.h).
#include "psa/store/os/tcp_probe.h"

#include "call_with_deadline.h"
#include "tcp_probe_os.h"

namespace psa::os {

bool resolveTcp(const std::string& host, int port, std::chrono::milliseconds timeout,
                std::vector<ResolvedAddress>& out, std::string& error) {
  auto got = callWithDeadline<detail::Lookup>(
      [host, port] { return detail::lookupTcp(host, port); }, timeout);
  if (!got) {
    error = "no answer within " + std::to_string(timeout.count() / 1000) + " s";
    return false;
  }
  if (got->rc != 0) {
    error = detail::resolverErrorText(got->rc);
    return false;
  }
  out = std::move(got->addrs);
  return !out.empty();
}

}  // namespace psa::os
