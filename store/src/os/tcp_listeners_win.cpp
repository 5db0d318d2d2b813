// Windows: GetExtendedTcpTable(TCP_TABLE_OWNER_PID_LISTENER) lists the listening sockets with
// their owning process ids for any caller; the image name needs OpenProcess, which a process
// of another account may refuse to a non-elevated caller (the pid is then still known).
// clang-format off
// (Winsock before <windows.h>, and <iphlpapi.h> after both.)
#include <winsock2.h>
#include <ws2tcpip.h>
#include "psa/store/os/win32.h"
#include <iphlpapi.h>
// clang-format on

#include <vector>

#include "psa/store/os/tcp_listeners.h"

namespace psa::os {
namespace {

std::string imageName(DWORD pid) {
  win::UniqueHandle process(::OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid));
  if (!process) {
    return {};
  }
  std::vector<wchar_t> path(32768);
  DWORD n = static_cast<DWORD>(path.size());
  if (!::QueryFullProcessImageNameW(process.get(), 0, path.data(), &n)) {
    return {};
  }
  const std::wstring_view full(path.data(), n);
  const size_t slash = full.find_last_of(L"\\/");
  return win::narrow(slash == std::wstring_view::npos ? full : full.substr(slash + 1));
}

// The listener table of one address family; an empty buffer when the family is not installed.
Result<std::vector<char>> listenerTable(ULONG family) {
  std::vector<char> buf;
  ULONG size = 0;
  DWORD rc = ERROR_INSUFFICIENT_BUFFER;
  // The table may grow between the size query and the copy: ask again a few times.
  for (int attempt = 0; attempt < 5 && rc == ERROR_INSUFFICIENT_BUFFER; ++attempt) {
    buf.resize(size);
    rc = ::GetExtendedTcpTable(buf.empty() ? nullptr : buf.data(), &size, FALSE, family,
                               TCP_TABLE_OWNER_PID_LISTENER, 0);
  }
  if (rc == ERROR_NOT_SUPPORTED) {
    return std::vector<char>();
  }
  if (rc != NO_ERROR) {
    return Error(Errc::io, "GetExtendedTcpTable: " + win::errorText(rc));
  }
  return buf;
}

std::string addressText(int family, const void* addr) {
  char text[INET6_ADDRSTRLEN] = {0};
  if (::inet_ntop(family, addr, text, sizeof text) == nullptr) {
    return {};
  }
  return text;
}

TcpListener listener(std::string address, bool v6, DWORD pid) {
  TcpListener l;
  l.address = std::move(address);
  l.v6 = v6;
  if (pid == 0) {
    return l;  // no owner given (Wine 8 reports none): unknown
  }
  l.pid = static_cast<int64_t>(pid);
  l.process = imageName(pid);
  if (l.process.empty() && pid == 4) {
    l.process = "System (HTTP.sys: netsh http show servicestate)";
  }
  return l;
}

}  // namespace

Result<std::vector<TcpListener>> tcpListenersOnPort(uint16_t port) {
  std::vector<TcpListener> out;
  auto v4 = listenerTable(AF_INET);
  if (!v4) {
    return v4.error();
  }
  if (!v4->empty()) {
    const auto* t = reinterpret_cast<const MIB_TCPTABLE_OWNER_PID*>(v4->data());
    for (DWORD k = 0; k < t->dwNumEntries; ++k) {
      const MIB_TCPROW_OWNER_PID& row = t->table[k];
      if (::ntohs(static_cast<u_short>(row.dwLocalPort)) == port) {
        out.push_back(listener(addressText(AF_INET, &row.dwLocalAddr), false, row.dwOwningPid));
      }
    }
  }
  auto v6 = listenerTable(AF_INET6);
  if (!v6) {
    return v6.error();
  }
  if (!v6->empty()) {
    const auto* t = reinterpret_cast<const MIB_TCP6TABLE_OWNER_PID*>(v6->data());
    for (DWORD k = 0; k < t->dwNumEntries; ++k) {
      const MIB_TCP6ROW_OWNER_PID& row = t->table[k];
      if (::ntohs(static_cast<u_short>(row.dwLocalPort)) == port) {
        out.push_back(listener(addressText(AF_INET6, row.ucLocalAddr), true, row.dwOwningPid));
      }
    }
  }
  return out;
}

std::string currentProcessName() {
  std::vector<wchar_t> path(32768);
  const DWORD n = ::GetModuleFileNameW(nullptr, path.data(), static_cast<DWORD>(path.size()));
  const std::wstring_view full(path.data(), n);
  const size_t slash = full.find_last_of(L"\\/");
  return win::narrow(slash == std::wstring_view::npos ? full : full.substr(slash + 1));
}

}  // namespace psa::os
