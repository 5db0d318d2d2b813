// `pms-agent check` for an hl7-mllp adapter: are its TLS files usable, and does the agent (or
// another program, named) listen on each of its addresses.
#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>

#include "psa/adapters/net/listen_socket.h"
#include "hl7/mllp_listener.h"
#include "psa/adapters/net/server_tls.h"
#include "psa/adapters/hl7/mllp_client.h"
#include "psa/store/os/process_info.h"
#include "psa/store/os/secret_file.h"
#include "psa/store/os/tcp_listeners.h"

namespace psa::adapters::hl7 {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// The listening sockets that can have taken a connection to `ep` (the same address, or a
// wildcard; a wildcard endpoint was probed on loopback), else every one on its port; one per
// process.
std::vector<os::TcpListener> holdersOf(const ListenEndpoint& ep,
                                       const std::vector<os::TcpListener>& all) {
  const bool wildcard = ep.host == "0.0.0.0" || ep.host == "::";
  std::vector<os::TcpListener> out;
  for (const auto& l : all) {
    const bool match = l.address == ep.host || l.address == "0.0.0.0" || l.address == "::" ||
                       (wildcard && (l.address == "127.0.0.1" || l.address == "::1"));
    const bool seen = std::any_of(out.begin(), out.end(), [&](const os::TcpListener& o) {
      return o.pid == l.pid && o.user == l.user;
    });
    if (match && !seen) {
      out.push_back(l);
    }
  }
  if (out.empty() && !all.empty()) {
    out.push_back(all.front());
  }
  return out;
}

bool isThisProgram(const os::TcpListener& l) {
  return l.pid == os::currentProcessId() ||
         (l.pid >= 0 && !l.process.empty() && l.process == os::currentProcessName());
}

// "nc (pid 4242)", "pid 4242", "a process of user bob".
std::string holderText(const os::TcpListener& l) {
  if (l.pid < 0) {
    return "a process of user " + (l.user.empty() ? std::string("unknown") : l.user);
  }
  return l.process.empty() ? "pid " + std::to_string(l.pid)
                           : l.process + " (pid " + std::to_string(l.pid) + ")";
}

// Something accepted a connection on `ep`: the agent, or another program?
CheckResult listenerHolderCheck(const std::string& name, const ListenEndpoint& ep,
                                const std::filesystem::path& state_dir) {
  using Level = CheckResult::Level;
  auto all = os::tcpListenersOnPort(ep.port);
  if (!all) {
    return {Level::warn, name,
            "something listens on " + ep.text + " but which process could not be told (" +
                all.error().message + ") ▸ with the agent stopped, another program holds it"};
  }
  const std::vector<os::TcpListener> holders = holdersOf(ep, *all);
  if (holders.empty()) {  // it went away since the connection was made
    return {Level::warn, name, "something listened on " + ep.text + " a moment ago, gone now"};
  }
  for (const auto& h : holders) {
    if (h.pid >= 0 && !isThisProgram(h)) {
      return {Level::fail, name,
              ep.text + " is held by " + holderText(h) +
                  ", not the agent ▸ stop that program or change listen (the agent takes the "
                  "port as soon as it is free)"};
    }
  }
  const os::TcpListener& h = holders.front();
  if (h.pid < 0 && h.user.empty()) {
    return {Level::warn, name,
            "something listens on " + ep.text +
                " but the OS does not say which process ▸ with the agent stopped, another "
                "program holds it"};
  }
  if (h.pid >= 0) {
    return {Level::ok, name,
            "listening on " + ep.text + " (" + (h.process.empty() ? "" : h.process + " ") + "pid " +
                std::to_string(h.pid) + ")"};
  }
  // Another account's process, which only root may look into: the agent's account owns the
  // state dir.
  const std::string agent_user = os::describeSecretFile(state_dir).owner;
  if (!agent_user.empty() && h.user == agent_user) {
    return {Level::ok, name,
            "listening on " + ep.text + " (" + holderText(h) +
                ", the agent's account; run as root to see the process)"};
  }
  return {
      Level::fail, name,
      ep.text + " is held by " + holderText(h) + ", not the agent's account (" +
          (agent_user.empty() ? std::string("the owner of ") + state_dir.string() : agent_user) +
          ") ▸ run as root to see the process; stop it or change listen"};
}

}  // namespace

std::vector<CheckResult> checkMllpListener(const MllpSettings& settings,
                                           const std::filesystem::path& state_dir) {
  std::vector<CheckResult> out;
  const std::string name = "adapter " + settings.name;
  if (settings.tls) {
    std::string error;
    if (!net::makeServerTls(*settings.tls, error)) {
      out.push_back({CheckResult::Level::fail, name, error});
    } else {
      out.push_back(
          {CheckResult::Level::ok, name,
           std::string("TLS certificate and key usable") +
               (settings.tls->client_ca_file.empty() ? "" : "; client certificates required")});
    }
  }
  for (const auto& ep : settings.listen) {
    std::string host = ep.host;
    if (host == "0.0.0.0") {
      host = "127.0.0.1";
    } else if (host == "::") {
      host = "::1";
    }
    MllpClientOptions opts;
    opts.host = host;
    opts.port = ep.port;
    opts.timeout = std::chrono::milliseconds(1000);
    if (ep.port != 0 && MllpClient::connect(opts)) {
      out.push_back(listenerHolderCheck(name, ep, state_dir));
      continue;
    }
    asio::io_context io;
    error_code ec;
    const auto addr = asio::ip::make_address(ep.host, ec);
    tcp::acceptor acc(io);
    if (!ec) {
      acc.open(addr.is_v6() ? tcp::v6() : tcp::v4(), ec);
    }
    if (!ec) {
      net::setListenOptions(acc, ec);
    }
    if (!ec && addr.is_v6()) {
      acc.set_option(asio::ip::v6_only(true), ec);
    }
    if (!ec) {
      acc.bind(tcp::endpoint(addr, ep.port), ec);
    }
    if (!ec) {
      out.push_back({CheckResult::Level::warn, name,
                     "nothing listens on " + ep.text +
                         " but the port is free ▸ is the agent running? (" +
                         net::serviceStatusCommand() + ")"});
    } else if (ec == asio::error::access_denied) {
      out.push_back({CheckResult::Level::fail, name,
                     ep.text + ": permission denied ▸ " + net::listenAccessDeniedMeaning()});
    } else if (ec == boost::system::errc::address_not_available) {
      out.push_back(
          {CheckResult::Level::fail, name, ep.text + ": address not on this host ▸ fix listen"});
    } else {
      // In use, yet no connection was taken (held on another address, a full backlog).
      std::string who = "another program";
      if (auto all = os::tcpListenersOnPort(ep.port); all && !all->empty()) {
        who = holderText(all->front());
      }
      out.push_back({CheckResult::Level::fail, name,
                     ep.text + ": " + ec.message() + " ▸ " + who +
                         " holds the port; change listen or stop it"});
    }
  }
  return out;
}

}  // namespace psa::adapters::hl7
