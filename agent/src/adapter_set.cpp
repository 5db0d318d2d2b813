#include "adapter_set.h"

#include <atomic>
#include <condition_variable>
#include <set>

#include "psa/agent/remote_config.h"

namespace psa::agent {
namespace {

// The ports of an adapter's "listen": "HOST:PORT" or a list of them (empty: it does not listen).
std::set<std::string> listenPorts(const json::Value& config) {
  std::set<std::string> ports;
  auto add = [&ports](const std::string& listen) {
    const auto colon = listen.rfind(':');
    ports.insert(colon == std::string::npos ? listen : listen.substr(colon + 1));
  };
  if (const json::Value* l = config.find("listen")) {
    if (l->isString()) {
      add(l->asString());
    } else if (l->isArray()) {
      for (const auto& item : l->items()) {
        if (item.isString()) {
          add(item.asString());
        }
      }
    }
  }
  return ports;
}

bool intersects(const std::set<std::string>& a, const std::set<std::string>& b) {
  for (const auto& x : a) {
    if (b.count(x) != 0) {
      return true;
    }
  }
  return false;
}

}  // namespace

AdapterSet::AdapterSet(const adapters::SourceRegistry& registry, adapters::SourceContext& ctx)
    : registry_(registry), ctx_(ctx) {}

Result<adapters::SourcePtr> AdapterSet::create(const json::Value& config) const {
  const auto* factory = registry_.find(config.getString("type"));
  if (factory == nullptr || !factory->create) {
    return Error(Errc::invalid_input, "unknown adapter type \"" + config.getString("type") + "\"");
  }
  return factory->create(config, ctx_);
}

void AdapterSet::startAll(const Config& config) {
  for (const auto& acfg : config.adapters) {
    const std::string name = acfg.getString("name");
    if (!acfg.getBool("enabled", true)) {
      log_.info("adapter_disabled", {{"adapter", name}});
      continue;
    }
    auto created = create(acfg);
    if (!created) {
      log_.error("adapter_create_failed", {{"adapter", name}, {"error", created.error().message}});
      continue;
    }
    auto source = std::move(created).value();
    const Status st = source->start();
    if (!st) {
      const bool retrying = source->retryStartInBackground();
      log_.error("adapter_start_failed",
                 {{"adapter", name}, {"error", st.error().message}, {"retrying", retrying}});
    } else {
      log_.info("adapter_started", {{"adapter", name}, {"type", source->type()}});
    }
    std::lock_guard lock(mu_);
    running_[name] = Running{source, acfg, st.ok()};
  }
}

Result<ApplySummary> AdapterSet::apply(const Config& next) {
  std::map<std::string, Running> old;
  {
    std::lock_guard lock(mu_);
    old = running_;
  }
  struct Plan {
    std::string name;
    json::Value config;
    adapters::SourcePtr fresh;
    bool replaces = false;
    std::vector<std::string> handover;  ///< outgoing adapters to stop before this one starts
    bool started = false;
  };
  ApplySummary summary;
  std::vector<Plan> plans;
  std::set<std::string> desired;
  for (const auto& acfg : next.adapters) {
    if (!acfg.getBool("enabled", true)) {
      continue;
    }
    const std::string name = acfg.getString("name");
    desired.insert(name);
    auto it = old.find(name);
    if (it != old.end() && sameJson(it->second.config, acfg)) {
      summary.unchanged.push_back(name);
      continue;
    }
    Plan p;
    p.name = name;
    p.config = acfg;
    p.replaces = it != old.end();
    plans.push_back(std::move(p));
  }
  std::vector<std::string> outgoing;  // replaced or removed
  for (const auto& [name, r] : old) {
    if (desired.count(name) == 0) {
      summary.stopped.push_back(name);
      outgoing.push_back(name);
    }
  }
  for (const Plan& p : plans) {
    if (p.replaces) {
      outgoing.push_back(p.name);
    }
  }

  // 1. Build every new instance (nothing runs yet).
  for (Plan& p : plans) {
    auto created = create(p.config);
    if (!created) {
      return Error(Errc::invalid_input,
                   "adapter \"" + p.name + "\": cannot build it: " + created.error().message);
    }
    p.fresh = std::move(created).value();
    const std::set<std::string> ports = listenPorts(p.config);
    for (const std::string& o : outgoing) {
      const std::set<std::string> oports = listenPorts(old[o].config);
      const bool same_name = o == p.name;
      const bool needs_handover = same_name ? (ports.empty() || oports.empty() || intersects(ports, oports))
                                            : intersects(ports, oports);
      if (needs_handover) {
        p.handover.push_back(o);
      }
    }
  }

  std::set<std::string> stopped_old;
  auto rollback = [&](const std::string& failed, const Error& why) -> Error {
    std::vector<adapters::SourcePtr> started;
    for (Plan& p : plans) {
      if (p.started) {
        started.push_back(p.fresh);
      }
    }
    stopSync(started, std::chrono::seconds(30));
    for (const std::string& name : stopped_old) {
      const Running& was = old[name];
      auto again = create(was.config);
      Status st = again ? (*again)->start() : Status(again.error());
      if (!st) {
        const bool retrying = again && (*again)->retryStartInBackground();
        log_.error("rollback_restart_failed",
                   {{"adapter", name}, {"error", st.error().message}, {"retrying", retrying}});
      } else {
        log_.info("rollback_restarted", {{"adapter", name}});
      }
      std::lock_guard lock(mu_);
      running_[name] = Running{again ? *again : was.source, was.config, st.ok()};
    }
    log_.warn("apply_rolled_back", {{"adapter", failed}, {"error", why.message}});
    return Error(Errc::unavailable, "adapter \"" + failed + "\" failed to start: " + why.message +
                                        "; rolled back to the running config");
  };

  // 2. Start what can run beside the current set.
  for (Plan& p : plans) {
    if (!p.handover.empty()) {
      continue;
    }
    if (Status st = p.fresh->start(); !st) {
      return rollback(p.name, st.error());
    }
    p.started = true;
    log_.info("adapter_started", {{"adapter", p.name}, {"type", p.fresh->type()}, {"staged", true}});
  }
  // 3. Handovers: stop the holder of the resource, then start its successor.
  for (Plan& p : plans) {
    if (p.handover.empty()) {
      continue;
    }
    std::vector<adapters::SourcePtr> to_stop;
    for (const std::string& o : p.handover) {
      if (stopped_old.insert(o).second) {
        to_stop.push_back(old[o].source);
      }
    }
    stopSync(to_stop, std::chrono::seconds(30));
    if (Status st = p.fresh->start(); !st) {
      return rollback(p.name, st.error());
    }
    p.started = true;
    log_.info("adapter_started", {{"adapter", p.name}, {"type", p.fresh->type()}, {"handover", true}});
  }
  // 4. Switch.
  {
    std::lock_guard lock(mu_);
    for (const Plan& p : plans) {
      running_[p.name] = Running{p.fresh, p.config, true};
    }
    for (const std::string& name : summary.stopped) {
      running_.erase(name);
    }
  }
  // 5. Stop what was replaced (pending ACKs and commits finish first).
  std::vector<adapters::SourcePtr> retire;
  for (const std::string& o : outgoing) {
    if (stopped_old.count(o) == 0) {
      retire.push_back(old[o].source);
    }
  }
  stopSync(retire, std::chrono::seconds(30));
  for (const Plan& p : plans) {
    (p.replaces ? summary.replaced : summary.started).push_back(p.name);
  }
  for (const std::string& name : summary.stopped) {
    log_.info("adapter_stopped", {{"adapter", name}, {"reason", "removed by config"}});
  }
  return summary;
}

Status AdapterSet::restart(const std::string& name) {
  Running was;
  {
    std::lock_guard lock(mu_);
    auto it = running_.find(name);
    if (it == running_.end()) {
      return Error(Errc::not_found, "no running adapter named \"" + name + "\"");
    }
    was = it->second;
  }
  stopSync({was.source}, std::chrono::seconds(30));
  auto fresh = create(was.config);
  if (!fresh) {
    return Error(Errc::invalid_input, "cannot build adapter \"" + name + "\": " + fresh.error().message);
  }
  Status st = (*fresh)->start();
  {
    std::lock_guard lock(mu_);
    running_[name] = Running{*fresh, was.config, st.ok()};
  }
  if (!st) {
    const bool retrying = (*fresh)->retryStartInBackground();
    log_.error("adapter_start_failed",
               {{"adapter", name}, {"error", st.error().message}, {"retrying", retrying}});
    if (retrying) {
      return Error(st.error().code, st.error().message +
                                        "; it keeps retrying (pms-agent status shows the next "
                                        "attempt)");
    }
    return st;
  }
  log_.info("adapter_restarted", {{"adapter", name}});
  return {};
}

void AdapterSet::stopAll(std::chrono::seconds timeout) { stopSync(snapshot(), timeout); }

void AdapterSet::stopSync(const std::vector<adapters::SourcePtr>& list, std::chrono::seconds timeout) {
  if (list.empty()) {
    return;
  }
  struct Wait {
    std::mutex mu;
    std::condition_variable cv;
    size_t remaining = 0;
  };
  auto w = std::make_shared<Wait>();
  w->remaining = list.size();
  for (const auto& s : list) {
    s->stop([w] {
      std::lock_guard lock(w->mu);
      if (--w->remaining == 0) {
        w->cv.notify_all();
      }
    });
  }
  std::unique_lock lock(w->mu);
  if (!w->cv.wait_for(lock, timeout, [&] { return w->remaining == 0; })) {
    log_.error("stop_timeout", {{"sources_still_running", static_cast<uint64_t>(w->remaining)}});
  }
}

std::vector<adapters::SourcePtr> AdapterSet::snapshot() const {
  std::vector<adapters::SourcePtr> out;
  std::lock_guard lock(mu_);
  for (const auto& [name, r] : running_) {
    out.push_back(r.source);
  }
  return out;
}

size_t AdapterSet::size() const {
  std::lock_guard lock(mu_);
  return running_.size();
}

bool AdapterSet::has(const std::string& name) const {
  std::lock_guard lock(mu_);
  return running_.count(name) != 0;
}

}  // namespace psa::agent
