// The queue's disk budget (`store.max_bytes`) as a technician needs to hear about it: WARN from
// 80 % of the budget, FAIL when it is full — the store refuses new records (HL7 AR, files left
// in place, polling paused) — with what to do. One judgement shared by the running agent's
// status document, `pms-agent status` and `pms-agent check`. PHI-free; thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "intake_watch.h"
#include "psa/store/json.h"

namespace psa::agent {

/// From this share of `store.max_bytes` on, the queue line warns.
constexpr double kBudgetWarnPercent = 80.0;
/// With less room left than this the queue counts as full even before a refusal was seen:
/// max(16 KiB, 1 % of the budget). A record that does not fit is refused, and the next
/// message or file usually does not.
uint64_t budgetFullHeadroom(uint64_t max_bytes);

/// The `budget` member of a status document's `queue` object (additive to the contract):
/// {"state": "ok"|"warn"|"full", "used_percent": 97.5, "warn_percent": 80,
///  "full_percent": 98.4, "refusing": bool, "cause": "budget"|"disk"|null,
///  "refused_total": N, "last_refused_at": RFC 3339|null}
/// `refusing` is true when the running agent's last answer from the store was a refusal (and
/// for a budget refusal the queue is still at least at the warning level); `refused_total` and
/// `last_refused_at` are present only with `live` (the running agent).
json::Value queueBudgetJson(uint64_t db_bytes, uint64_t max_bytes, const IntakeRefusals* live);

/// What to tell people about the budget.
struct BudgetVerdict {
  enum class Level { ok, warn, full };
  Level level = Level::ok;
  std::string text;  ///< e.g. "FULL: refusing new records (1.0 MB of its 1.0 MB budget, ...)"
  std::string fix;   ///< the remedies in the order to try them, "; "-separated
};

/// Judges the `queue` object of a status document (its `budget` member, or db_bytes and
/// max_bytes when there is none) together with its `cloud` object (may be null), at `now_ms`.
BudgetVerdict judgeQueueBudget(const json::Value& queue, const json::Value* cloud, int64_t now_ms);

}  // namespace psa::agent
