// WriteTarget: an adapter that takes write-back requests (design.md "Write-back"). A running
// adapter of a write-capable type implements Source (status, start/stop, config apply) and
// WriteTarget; the agent finds the target of a request by the adapter's name and asks it with
// dynamic_cast. The agent owns the durable queue, ordering and results; the target only
// delivers one request at a time and says what happened.
#pragma once

#include <functional>

#include "psa/adapters/source.h"
#include "psa/adapters/write/hl7_outbound.h"
#include "psa/adapters/write/write_request.h"

namespace psa::adapters::write {

class WriteTarget {
 public:
  virtual ~WriteTarget() = default;
  /// The adapter's `write` switch (enabled, dry_run). Any thread.
  virtual WriteSwitch writeSwitch() const = 0;
  /// Whether this target takes requests of `format` at all. Any thread.
  virtual bool acceptsFormat(WriteFormat format) const = 0;
  /// Delivers one request; `done` runs once, on some thread of the target (post onwards).
  /// Thread-safe.
  virtual void deliver(WriteRequest request, std::function<void(DeliveryOutcome)> done) = 0;
};

/// Registers `hl7-mllp-out` (Hl7Outbound behind a Source).
void registerWriteTargets(SourceRegistry& registry);

}  // namespace psa::adapters::write
