// Committed store databases written by earlier releases (tests/data/store/v<N>/queue.db), made
// by tests/helpers/make_store_fixture.cpp. Each release that changes the schema adds one, and
// tests/unit/store/schema_migration_test.cpp opens every one with the current code.
//
// The fixtures hold synthetic records only, sealed with the fixed test key below (never a real
// key: it protects nothing but these files). Tests write it to a key file beside a copy of the
// database.
#pragma once

#include <cstddef>
#include <string>

namespace psa::test::store_fixture {

/// Key file text for every fixture ("key <id> <hex>", psa/store key_ring.h format).
inline constexpr const char* kKeyFileText =
    "# test fixture key: synthetic records only\n"
    "key 1 6d2f0b0c5d1e4a7b8f9a0b1c2d3e4f506172839405a6b7c8d9eaf0b1c2d3e4f5\n";

/// What make_store_fixture writes (and the migration tests expect to find).
inline constexpr size_t kPending = 40;    ///< records still queued (state 0 or retry)
inline constexpr size_t kRetrying = 3;    ///< of kPending: nacked once, waiting for retry
inline constexpr size_t kDelivered = 10;  ///< appended, then acknowledged and deleted
inline constexpr size_t kDead = 2;        ///< dead letters (reason "fixture: bad segment")
inline constexpr const char* kWatermarkScope = "fixture-poll";
inline constexpr const char* kWatermarkKey = "Patient";
inline constexpr const char* kWatermarkValue = "2026-12-07T00:00:00Z";

/// Payload of appended record n (0-based, pending and delivered alike) and its dedupe identity.
inline std::string payload(size_t n) {
  return "MSH|^~\\&|FIXTURE|SITE|||20261207000000||ADT^A08|FX" + std::to_string(n) +
         "|P|2.5\rPID|1||MRN" + std::to_string(n) + "||FIXTURE^PATIENT" + std::to_string(n) + "\r";
}
inline std::string identity(size_t n) { return "fixture|FX" + std::to_string(n); }

}  // namespace psa::test::store_fixture
