#include "test_support.h"

#include <boost/asio/ip/tcp.hpp>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace psa::test {
namespace fs = std::filesystem;

namespace {
std::string randomHex(size_t n) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s.push_back(hex[rng() % 16]);
  }
  return s;
}
}  // namespace

TempDir::TempDir(std::string_view prefix) {
  const char* base = std::getenv("TMPDIR");
  fs::path root = base != nullptr ? fs::path(base) : fs::temp_directory_path();
  for (int i = 0; i < 100; ++i) {
    fs::path p = root / (std::string(prefix) + "-" + randomHex(10));
    std::error_code ec;
    if (fs::create_directory(p, ec)) {
      path_ = p;
      return;
    }
  }
  throw std::runtime_error("cannot create temp dir");
}

TempDir::~TempDir() {
  const char* keep = std::getenv("PSA_KEEP_TMP");
  if (keep != nullptr && std::string(keep) == "1") {
    return;
  }
  std::error_code ec;
  fs::remove_all(path_, ec);
}

bool waitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto delay = std::chrono::milliseconds(1);
  while (true) {
    if (condition()) {
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(50));
  }
}

int freePort() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::address_v4::loopback(), 0});
  return a.local_endpoint().port();
}

bool canConnect(const std::string& host, int port) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket sock(io);
  boost::system::error_code ec;
  const auto addr = boost::asio::ip::make_address(host, ec);
  if (ec) {
    return false;
  }
  sock.connect({addr, static_cast<unsigned short>(port)}, ec);
  return !ec;
}

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void writeFile(const fs::path& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::vector<fs::path> filesContaining(const fs::path& root, std::string_view needle) {
  std::vector<fs::path> hits;
  std::error_code ec;
  if (fs::is_regular_file(root, ec)) {
    if (readFile(root).find(needle) != std::string::npos) {
      hits.push_back(root);
    }
    return hits;
  }
  for (auto it = fs::recursive_directory_iterator(root, ec); it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (ec) {
      break;
    }
    if (it->is_regular_file(ec) && readFile(it->path()).find(needle) != std::string::npos) {
      hits.push_back(it->path());
    }
  }
  return hits;
}

fs::path binary(std::string_view name) { return fs::path(PSA_BIN_DIR) / name; }

std::string uniqueMarker() { return "PHIMARK" + randomHex(12); }

}  // namespace psa::test
