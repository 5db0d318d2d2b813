// SyncStrategy: how rest-poll syncs one vendor, chosen once from the profile's `strategy`:
//   since-list    - every collection listed with the vendor's "changed since" parameter
//                   (DrChrono `since`, NextGen OData `$filter ... ge datetime'...'`), paged by
//                   next link, offset or keyset, optionally fanned out per parent record
//                   (NextGen charts); deletions by periodic reconciliation where the vendor has
//                   none (sync_since_list.cpp).
//   athena-feeds  - subscribe, full lists once, then consume-on-read changed feeds; a lost
//                   consuming read is replayed from the last good server time
//                   (sync_athena_feeds.cpp).
//   kareo-soap    - SOAP Get* operations with FromLastModifiedDate, GetAllPatients StartKey/Key
//                   batches for the initial load; in-band errors and throttling
//                   (sync_kareo_soap.cpp).
//   unity-changed - GetServerInfo, GetChangedPatients(since), per-patient complete lists with
//                   deletions derived from them; the token is retired on stop
//                   (sync_unity_changed.cpp).
// The shared listing, paging and watermark helpers are RestSync (rest_sync.h).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "rest_sync.h"

namespace psa::adapters::api {

class SyncStrategy {
 public:
  virtual ~SyncStrategy() = default;

  /// Checks that the adapter's auth fits the vendor (prepare(), on the thread that starts the
  /// adapter, after the clients are built). Errors: Errc::invalid_argument with the fix.
  virtual Status checkAuth(AuthStrategy& /*auth*/) const { return {}; }
  /// One sync pass (worker thread). An error leaves every watermark as the last committed
  /// batch set it; the next pass resumes from there.
  virtual Status runOnce() = 0;
  /// Once, on the worker thread, after the last pass when stopping (the data transport is
  /// cancelled by then): give back server-side sessions, within a few seconds. No errors: the
  /// outcome is logged.
  virtual void shutdown() {}
};

using SyncStrategyPtr = std::unique_ptr<SyncStrategy>;

/// A strategy by its profile name, and what must be known of it before any exists (`check`).
struct StrategyInfo {
  std::string_view name;
  /// The vendor issues session tokens at base_url + this when auth has no token_url ("": none).
  std::string_view token_path;
  /// Makes the strategy over `sync` (which must outlive it).
  SyncStrategyPtr (*make)(RestSync& sync);
};

/// The strategy named `name`, or nullptr when there is none of that name.
const StrategyInfo* findStrategy(std::string_view name);

SyncStrategyPtr makeSinceListStrategy(RestSync& sync);
SyncStrategyPtr makeAthenaFeedsStrategy(RestSync& sync);
SyncStrategyPtr makeKareoSoapStrategy(RestSync& sync);
SyncStrategyPtr makeUnityChangedStrategy(RestSync& sync);

}  // namespace psa::adapters::api
