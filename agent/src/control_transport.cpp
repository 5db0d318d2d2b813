#include "control_transport.h"

namespace psa::agent {

bool readLineWith(const std::function<long(char*, size_t)>& read_some, size_t limit,
                  std::string& out) {
  char buf[4096];
  while (out.size() <= limit) {
    const long n = read_some(buf, sizeof buf);
    if (n <= 0) {
      return false;
    }
    out.append(buf, static_cast<size_t>(n));
    const auto nl = out.find('\n');
    if (nl != std::string::npos) {
      out.resize(nl);
      return true;
    }
  }
  return false;
}

}  // namespace psa::agent
