#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "psa/agent/service_host.h"

namespace psa::agent {
namespace {

class SystemdHost final : public ServiceHost {
 public:
  SystemdHost() {
    if (const char* s = std::getenv("NOTIFY_SOCKET"); s != nullptr && *s != '\0') {
      socket_path_ = s;
    }
    // WATCHDOG_USEC applies only if WATCHDOG_PID is unset or ours.
    const char* usec = std::getenv("WATCHDOG_USEC");
    const char* pid = std::getenv("WATCHDOG_PID");
    if (usec != nullptr && (pid == nullptr || std::atol(pid) == static_cast<long>(getpid()))) {
      watchdog_us_ = std::atol(usec);
    }
  }

  void ready() override { send("READY=1"); }
  void status(std::string_view text) override { send("STATUS=" + std::string(text)); }
  void stopping() override { send("STOPPING=1"); }
  void watchdog() override { send("WATCHDOG=1"); }
  long watchdogIntervalUs() const override { return watchdog_us_; }
  // systemd stops the service with SIGTERM, which the agent's signal set handles.
  void onStopRequest(std::function<void()>) override {}

 private:
  void send(const std::string& message) const {
    if (socket_path_.empty()) {
      return;
    }
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      return;
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string path = socket_path_;
    if (path.size() >= sizeof addr.sun_path) {
      ::close(fd);
      return;
    }
    std::memcpy(addr.sun_path, path.data(), path.size());
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
    if (path[0] == '@') {
      addr.sun_path[0] = '\0';  // abstract namespace
    } else {
      len += 1;
    }
    [[maybe_unused]] auto n = ::sendto(fd, message.data(), message.size(), MSG_NOSIGNAL,
                                       reinterpret_cast<sockaddr*>(&addr), len);
    ::close(fd);
  }

  std::string socket_path_;
  long watchdog_us_ = 0;
};

}  // namespace

ServiceHostPtr makeForegroundHost() { return std::make_unique<SystemdHost>(); }

int runService(bool, const std::function<int(ServiceHostPtr)>& body, std::ostream&) {
  return body(makeForegroundHost());
}

}  // namespace psa::agent
