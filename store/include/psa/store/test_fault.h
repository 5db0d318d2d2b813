// Test-only fault injection: lets an integration test make a real agent process break an
// invariant at a chosen place, to prove the fatal path (fatal.h) end to end.
//
// PSA_TEST_FAULT=<point>[@N][,<point>[@N]...] in the environment of the process arms the named
// points; it is read once, before main(). An armed point throws TestFault on its Nth pass (default
// 1), once; a point that is not armed does nothing. Never set it on a real installation: the
// agent then exits with code 70 on purpose. Unset (production), a point costs one load of a
// constant flag and a not-taken branch.
//
// Points: "store.writer" (a write round of the store, inside its transaction, before COMMIT),
// "cloud_link.puback" (a batch of PUBACKs on the cloud link's strand).
#pragma once

#include <stdexcept>
#include <string_view>

namespace psa {

/// What a TestFault's what() says. It stands for exception text that may carry anything
/// (patient data, say): tests check that it reaches no log line.
inline constexpr const char* kTestFaultWhat = "injected-fault-what-text-must-never-be-logged";

/// The exception an armed fault point throws.
class TestFault : public std::runtime_error {
 public:
  TestFault() : std::runtime_error(kTestFaultWhat) {}
};

namespace detail {
extern const bool g_test_faults_armed;  ///< PSA_TEST_FAULT was set at start
void testFaultPass(std::string_view point);
}  // namespace detail

/// A fault point: throws TestFault if PSA_TEST_FAULT armed `point` and this is its Nth pass.
/// Thread-safe.
inline void testFaultPoint(std::string_view point) {
  if (detail::g_test_faults_armed) {
    detail::testFaultPass(point);
  }
}

}  // namespace psa
