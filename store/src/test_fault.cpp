#include "psa/store/test_fault.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <string>

namespace psa {
namespace detail {

// Read once, during static initialisation (before main and before any thread of ours).
extern const bool g_test_faults_armed = std::getenv("PSA_TEST_FAULT") != nullptr;

namespace {

struct Point {
  std::string name;
  uint64_t fire_at = 1;
  mutable std::atomic<uint64_t> passes{0};
};

// deque: Points are not movable (atomic), and stay where they were built.
const std::deque<Point>& armedPoints() {
  static const std::deque<Point>* points = [] {
    auto* out = new std::deque<Point>();  // never destroyed: points may pass during exit
    const char* env = std::getenv("PSA_TEST_FAULT");
    std::string_view spec = env != nullptr ? env : "";
    while (!spec.empty()) {
      const size_t comma = spec.find(',');
      std::string_view item = spec.substr(0, comma);
      spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
      if (item.empty()) {
        continue;
      }
      Point& p = out->emplace_back();
      const size_t at = item.find('@');
      p.name = std::string(item.substr(0, at));
      if (at != std::string_view::npos) {
        const uint64_t n = std::strtoull(std::string(item.substr(at + 1)).c_str(), nullptr, 10);
        p.fire_at = n > 0 ? n : 1;
      }
    }
    return out;
  }();
  return *points;
}

}  // namespace

void testFaultPass(std::string_view point) {
  for (const Point& p : armedPoints()) {
    if (p.name == point) {
      if (p.passes.fetch_add(1) + 1 == p.fire_at) {
        throw TestFault();
      }
    }
  }
}

}  // namespace detail
}  // namespace psa
