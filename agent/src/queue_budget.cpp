#include "queue_budget.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "cli_support.h"
#include "psa/store/clock.h"

namespace psa::agent {
namespace {

constexpr uint64_t kMinFullHeadroom = 16u << 10;

std::string percentText(double p) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.0f%%", std::min(p, 999.0));
  return buf;
}

double number(const json::Value& o, const char* key, double fallback) {
  const json::Value* v = o.find(key);
  return v != nullptr && v->isNumber() ? v->asNumber() : fallback;
}

}  // namespace

uint64_t budgetFullHeadroom(uint64_t max_bytes) {
  return std::max(kMinFullHeadroom, max_bytes / 100);
}

json::Value queueBudgetJson(uint64_t db_bytes, uint64_t max_bytes, const IntakeRefusals* live) {
  const uint64_t max = std::max<uint64_t>(1, max_bytes);
  const double used = 100.0 * static_cast<double>(db_bytes) / static_cast<double>(max);
  const uint64_t headroom = budgetFullHeadroom(max);
  const double full_at =
      headroom >= max ? 0.0
                      : 100.0 * static_cast<double>(max - headroom) / static_cast<double>(max);
  // A budget refusal counts while the queue is still at the warning level: once it has drained
  // below that, the next record fits, whatever the store said last.
  const bool refusing = live != nullptr && live->refusing() &&
                        (live->last_refusal_disk || used >= kBudgetWarnPercent);
  const bool full = refusing || db_bytes + headroom >= max;
  json::Value b = json::Value::object();
  b.set("state", json::Value::string(full ? "full" : used >= kBudgetWarnPercent ? "warn" : "ok"));
  b.set("used_percent", json::Value::number(std::round(used * 10.0) / 10.0));
  b.set("warn_percent", json::Value::number(kBudgetWarnPercent));
  b.set("full_percent", json::Value::number(std::floor(full_at * 10.0) / 10.0));
  b.set("refusing", json::Value::boolean(refusing));
  b.set("cause", !full                                 ? json::Value::null()
                 : refusing && live->last_refusal_disk ? json::Value::string("disk")
                                                       : json::Value::string("budget"));
  if (live != nullptr) {
    b.set("refused_total", json::Value::integer(static_cast<int64_t>(live->refused_total)));
    b.set("last_refused_at", live->last_refused_ms
                                 ? json::Value::string(formatRfc3339(live->last_refused_ms))
                                 : json::Value::null());
  }
  return b;
}

BudgetVerdict judgeQueueBudget(const json::Value& queue, const json::Value* cloud, int64_t now_ms) {
  const uint64_t db = static_cast<uint64_t>(std::max<int64_t>(0, queue.getInt("db_bytes")));
  const uint64_t max = static_cast<uint64_t>(std::max<int64_t>(0, queue.getInt("max_bytes")));
  json::Value computed;
  const json::Value* b = queue.find("budget");
  if (b == nullptr || !b->isObject()) {
    computed = queueBudgetJson(db, max, nullptr);
    b = &computed;
  }
  BudgetVerdict v;
  const std::string state = b->getString("state");
  const double used = number(*b, "used_percent", 0);
  const std::string of_budget =
      humanBytes(db) + " of its " + humanBytes(max) + " budget, " + percentText(used);
  if (state == "ok") {
    return v;
  }
  const int64_t dead = queue.getInt("dead");
  if (state == "warn") {
    v.level = BudgetVerdict::Level::warn;
    v.text = "the queue is filling its disk budget (" + of_budget +
             "); new records are refused when it is full";
  } else {
    v.level = BudgetVerdict::Level::full;
    if (b->getBool("refusing")) {
      v.text = std::string("FULL: refusing new records") +
               (b->getString("cause") == "disk" ? ": the disk holding the queue is full" : "") +
               " (" + of_budget;
      const int64_t refused = b->getInt("refused_total");
      const std::string ago = agoText(b->getString("last_refused_at"), now_ms);
      if (refused > 0) {
        v.text += "; refused " + humanCount(static_cast<uint64_t>(refused)) +
                  (refused == 1 ? " time" : " times") + (ago.empty() ? "" : ", last " + ago);
      }
      v.text += ")";
    } else {
      v.text = "FULL: the queue is at its disk budget (" + of_budget + "); new records are refused";
    }
  }
  // The remedies, in the order that frees room soonest without losing anything.
  std::vector<std::string> fixes;
  if (b->getString("cause") == "disk") {
    fixes.push_back("free disk space (see the disk line)");
  }
  const bool cloud_configured = cloud == nullptr || cloud->getBool("configured", true);
  if (!cloud_configured) {
    fixes.push_back("records leave only through the cloud link: add a \"cloud\" section");
  } else if (cloud != nullptr && !cloud->getBool("connected")) {
    fixes.push_back(cloud->getString("state") == "not running"
                        ? "start the agent so its cloud link drains the queue"
                        : "restore the cloud link so pending records drain (see CLOUD)");
  }
  if (dead > 0) {
    fixes.push_back("pms-agent queue purge-dead deletes the " +
                    humanCount(static_cast<uint64_t>(dead)) + " dead letter" +
                    (dead == 1 ? "" : "s") +
                    " (look first: pms-agent queue dead), or pms-agent queue retry-all sends "
                    "them again");
  }
  fixes.push_back("raise store.max_bytes");
  for (const auto& f : fixes) {
    v.fix += (v.fix.empty() ? "" : "; ") + f;
  }
  return v;
}

}  // namespace psa::agent
