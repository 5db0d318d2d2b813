// Linux: /proc/net/tcp{,6} list every socket of this network namespace with its state, owner
// uid and inode; /proc/PID/fd/N of the owning process links to "socket:[INODE]". Another
// user's /proc/PID/fd cannot be read without root, so such a socket keeps pid -1 (its owner's
// name is still known).
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "psa/store/os/system_error.h"
#include "psa/store/os/tcp_listeners.h"

namespace psa::os {
namespace {

constexpr const char* kListenState = "0A";  // TCP_LISTEN in include/net/tcp_states.h

std::string userName(unsigned long uid) {
  char buf[1024];
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwuid_r(static_cast<uid_t>(uid), &pw, buf, sizeof buf, &found) == 0 &&
      found != nullptr) {
    return found->pw_name;
  }
  return "uid " + std::to_string(uid);
}

// "0100007F" (IPv4) or 32 hex digits (IPv6): the kernel prints the address's 32-bit words as
// host-order integers, so copying each word back into memory restores the network-order bytes.
bool parseAddress(const std::string& hex, bool v6, std::string& out) {
  const size_t words = v6 ? 4 : 1;
  if (hex.size() != words * 8) {
    return false;
  }
  unsigned char bytes[16];
  for (size_t w = 0; w < words; ++w) {
    char* end = nullptr;
    const std::string part = hex.substr(w * 8, 8);
    const auto v = static_cast<uint32_t>(std::strtoul(part.c_str(), &end, 16));
    if (end != part.c_str() + 8) {
      return false;
    }
    std::memcpy(bytes + w * 4, &v, 4);
  }
  char text[INET6_ADDRSTRLEN] = {0};
  if (::inet_ntop(v6 ? AF_INET6 : AF_INET, bytes, text, sizeof text) == nullptr) {
    return false;
  }
  out = text;
  return true;
}

// Adds the LISTEN sockets on `port` from one table; false when the table cannot be read.
bool readTable(const char* file, bool v6, uint16_t port, std::vector<TcpListener>& out,
               std::vector<std::string>& inodes) {
  std::ifstream in(file);
  if (!in) {
    return false;
  }
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
    if (!(fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
          timeout >> inode)) {
      continue;
    }
    const size_t colon = local.find(':');
    if (state != kListenState || colon == std::string::npos) {
      continue;
    }
    if (std::strtoul(local.c_str() + colon + 1, nullptr, 16) != port) {
      continue;
    }
    TcpListener l;
    l.v6 = v6;
    if (!parseAddress(local.substr(0, colon), v6, l.address)) {
      continue;
    }
    l.user = userName(std::strtoul(uid.c_str(), nullptr, 10));
    out.push_back(std::move(l));
    inodes.push_back("socket:[" + inode + "]");
  }
  return true;
}

std::string firstLine(const std::string& file) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  return line;
}

bool numeric(const char* name) {
  if (*name == '\0') {
    return false;
  }
  for (const char* p = name; *p != '\0'; ++p) {
    if (*p < '0' || *p > '9') {
      return false;
    }
  }
  return true;
}

// Finds the processes whose descriptors are the sockets `links[k]` ("socket:[INODE]").
void findOwners(const std::vector<std::string>& links, std::vector<TcpListener>& out) {
  std::map<std::string, size_t> wanted;
  for (size_t k = 0; k < links.size(); ++k) {
    wanted.emplace(links[k], k);
  }
  size_t left = wanted.size();
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) {
    return;
  }
  while (left > 0) {
    const dirent* p = ::readdir(proc);
    if (p == nullptr) {
      break;
    }
    if (!numeric(p->d_name)) {
      continue;
    }
    const std::string fd_dir = std::string("/proc/") + p->d_name + "/fd";
    DIR* fds = ::opendir(fd_dir.c_str());
    if (fds == nullptr) {
      continue;  // another user's process (EACCES), or it just ended
    }
    while (const dirent* f = ::readdir(fds)) {
      if (!numeric(f->d_name)) {
        continue;
      }
      char target[64];
      const std::string link = fd_dir + "/" + f->d_name;
      const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
      if (n <= 0) {
        continue;
      }
      target[n] = '\0';
      auto it = wanted.find(target);
      if (it == wanted.end() || out[it->second].pid >= 0) {
        continue;
      }
      TcpListener& l = out[it->second];
      l.pid = std::strtoll(p->d_name, nullptr, 10);
      l.process = firstLine(std::string("/proc/") + p->d_name + "/comm");
      --left;
    }
    ::closedir(fds);
  }
  ::closedir(proc);
}

}  // namespace

Result<std::vector<TcpListener>> tcpListenersOnPort(uint16_t port) {
  std::vector<TcpListener> out;
  std::vector<std::string> links;
  const bool v4 = readTable("/proc/net/tcp", false, port, out, links);
  const int v4_errno = errno;
  const bool v6 = readTable("/proc/net/tcp6", true, port, out, links);
  if (!v4 && !v6) {
    return Error(Errc::io, "cannot read /proc/net/tcp: " + errnoText(v4_errno));
  }
  if (!links.empty()) {
    findOwners(links, out);
  }
  return out;
}

std::string currentProcessName() { return firstLine("/proc/self/comm"); }

}  // namespace psa::os
