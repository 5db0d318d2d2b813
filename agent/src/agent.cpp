#include "psa/agent/agent.h"

#include <sys/stat.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <csignal>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "agent_context.h"
#include "control_server.h"
#include "psa/adapters/source.h"
#include "psa/cloudlink/cloud_link.h"
#include "psa/store/log.h"
#include "psa/store/sqlite_store.h"

namespace psa::agent {

namespace asio = boost::asio;

struct Agent::Impl {
  ConfigPtr config;
  std::unique_ptr<ServiceHost> host;
  log::Logger logger{"agent"};
  asio::io_context io{2};
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  asio::signal_set signals{io};
  asio::steady_timer watchdog_timer{io};
  std::vector<std::thread> threads;
  adapters::SourceRegistry registry;
  store::SqliteStorePtr store;
  std::unique_ptr<ControlServer> control;
  cloudlink::CloudLinkPtr link;
  AgentContext context;
  struct Running {
    adapters::SourcePtr source;
    json::Value config;
  };
  mutable std::mutex mu;
  std::map<std::string, Running> sources;
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stop_requested = false;
  int64_t started_ms = 0;

  void onSignal(const boost::system::error_code& ec, int sig) {
    if (ec) {
      return;
    }
    if (sig == SIGHUP) {
      logger.warn("reload_unsupported", {{"hint", "restart the service to apply a changed config"}});
      armSignals();
      return;
    }
    logger.info("signal", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    requestStop();
  }

  void armSignals() {
    signals.async_wait([this](const boost::system::error_code& ec, int sig) { onSignal(ec, sig); });
  }

  void armWatchdog() {
    const long us = host->watchdogIntervalUs();
    if (us <= 0) {
      return;
    }
    // Ping at half the interval, from the event loop: a hung loop stops the pings and the
    // service manager restarts us.
    watchdog_timer.expires_after(std::chrono::microseconds(us / 2));
    watchdog_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec) {
        return;
      }
      host->watchdog();
      armWatchdog();
    });
  }

  void requestStop() {
    std::lock_guard lock(stop_mu);
    stop_requested = true;
    stop_cv.notify_all();
  }

  void stopSources() {
    std::vector<adapters::SourcePtr> list;
    {
      std::lock_guard lock(mu);
      for (auto& [name, r] : sources) {
        list.push_back(r.source);
      }
    }
    auto remaining = std::make_shared<std::atomic<size_t>>(list.size());
    std::mutex done_mu;
    std::condition_variable done_cv;
    for (auto& s : list) {
      s->stop([&, remaining] {
        if (remaining->fetch_sub(1) == 1) {
          std::lock_guard lock(done_mu);
          done_cv.notify_all();
        }
      });
    }
    std::unique_lock lock(done_mu);
    if (!done_cv.wait_for(lock, std::chrono::seconds(30), [&] { return remaining->load() == 0; })) {
      logger.error("stop_timeout", {{"sources_still_running", static_cast<uint64_t>(remaining->load())}});
    }
  }
};

namespace {

cloudlink::CloudLinkOptions linkOptions(const Config& cfg) {
  const CloudSettings& c = cfg.cloud;
  cloudlink::CloudLinkOptions o;
  o.url = c.url;
  o.ca_file = c.ca_file;
  o.cert_file = c.cert_file;
  o.key_file = c.key_file;
  o.tenant = cfg.tenant;
  o.agent_id = cfg.agent_id;
  o.max_inflight = static_cast<size_t>(c.max_inflight);
  o.confirm = cloudlink::parseConfirm(c.confirm).value_or(cloudlink::Confirm::broker);
  o.keepalive = std::chrono::seconds(c.keepalive_s);
  o.session_expiry = std::chrono::seconds(c.session_expiry_s);
  o.receipt_timeout = std::chrono::seconds(c.receipt_timeout_s);
  o.puback_timeout = std::chrono::seconds(c.puback_timeout_s);
  o.status_interval = std::chrono::seconds(c.status_interval_s);
  return o;
}

}  // namespace

Agent::Agent(ConfigPtr config, std::unique_ptr<ServiceHost> host) : impl_(std::make_unique<Impl>()) {
  impl_->config = std::move(config);
  impl_->context.config = impl_->config;
  impl_->host = host ? std::move(host) : makeSystemdHost();
  adapters::registerBuiltinSources(impl_->registry);
}

Agent::~Agent() {
  if (impl_->control) {
    impl_->control->stop();
  }
  impl_->link.reset();
  if (impl_->store) {
    impl_->store->close();
  }
  impl_->io.stop();
  for (auto& t : impl_->threads) {
    if (t.joinable()) {
      t.join();
    }
  }
}

Status Agent::start() {
  Impl& d = *impl_;
  const Config& cfg = *d.config;
  d.started_ms = Clock::system()->nowMs();
  std::error_code ec;
  if (!std::filesystem::exists(cfg.state_dir, ec)) {
    std::filesystem::create_directories(cfg.state_dir, ec);
    if (ec) {
      return Error(Errc::io, "cannot create state_dir " + cfg.state_dir.string() + ": " + ec.message());
    }
    ::chmod(cfg.state_dir.c_str(), 0750);
  }
  auto opened = store::SqliteStore::open(cfg.store);
  if (!opened) {
    return opened.error();
  }
  d.store = std::move(opened).value();
  const auto& report = d.store->openReport();
  if (report.recovered_from_corruption) {
    d.logger.error("store_recovered_from_corruption",
                   {{"moved_aside", report.moved_aside.string()}, {"reason", report.corruption_reason},
                    {"hint", "pms-agent queue salvage FILE re-imports readable rows"}});
  }
  d.logger.info("store_opened", {{"path", cfg.store.db_path.string()}, {"pending", report.pending},
                                 {"created", report.created}});

  d.context.config = d.config;
  d.context.registry = &d.registry;
  d.context.store = d.store.get();
  d.context.started_ms = d.started_ms;
  d.context.sources = [&d] {
    std::vector<adapters::SourcePtr> out;
    std::lock_guard lock(d.mu);
    for (const auto& [name, r] : d.sources) {
      out.push_back(r.source);
    }
    return out;
  };
  d.context.status = [&d] { return buildStatus(d.context); };

  // The control socket comes up before anything else so a technician can look at an agent
  // whose adapters or link are failing; a second agent on the same config stops here.
  d.control = std::make_unique<ControlServer>(d.io, cfg.control_socket);
  registerControlHandlers(*d.control, d.context);
  if (auto st = d.control->start(); !st) {
    d.store->close();
    return st;
  }

  d.signals.add(SIGTERM);
  d.signals.add(SIGINT);
  d.signals.add(SIGHUP);
  d.armSignals();
  for (int i = 0; i < 2; ++i) {
    d.threads.emplace_back([&d] {
      try {
        d.io.run();
      } catch (const std::exception& e) {
        d.logger.error("io_thread_exception", {{"what", e.what()}});
        std::abort();  // broken invariant: let the service manager restart us
      }
    });
  }

  adapters::SourceContext sctx{d.io, *d.store, Clock::system(), cfg.state_dir};
  for (const auto& acfg : cfg.adapters) {
    const std::string name = acfg.getString("name");
    if (!acfg.getBool("enabled", true)) {
      d.logger.info("adapter_disabled", {{"adapter", name}});
      continue;
    }
    const auto* factory = d.registry.find(acfg.getString("type"));
    if (factory == nullptr) {
      continue;  // validation already rejected unknown types
    }
    auto created = factory->create(acfg, sctx);
    if (!created) {
      d.logger.error("adapter_create_failed", {{"adapter", name}, {"error", created.error().message}});
      continue;
    }
    auto source = std::move(created).value();
    if (auto st = source->start(); !st) {
      d.logger.error("adapter_start_failed", {{"adapter", name}, {"error", st.error().message}});
    } else {
      d.logger.info("adapter_started", {{"adapter", name}, {"type", source->type()}});
    }
    std::lock_guard lock(d.mu);
    d.sources[name] = Impl::Running{source, acfg};
  }
  if (cfg.cloud.configured) {
    auto link = cloudlink::CloudLink::create(d.io, *d.store, linkOptions(cfg));
    if (!link) {
      // Config validation should have caught this; keep queueing locally rather than stop.
      d.logger.error("cloud_link_invalid", {{"error", link.error().message}});
    } else {
      d.link = std::move(link).value();
      d.context.link = d.link.get();
      d.link->setStatusProvider([&d] { return json::serialize(buildStatus(d.context)); });
      d.link->start();
      d.logger.info("cloud_link_started", {{"url", cfg.cloud.url}, {"confirm", cfg.cloud.confirm}});
    }
  } else {
    d.logger.warn("cloud_not_configured", {{"hint", "records queue locally until a cloud section is configured"}});
  }
  d.armWatchdog();
  return {};
}

int Agent::run() {
  Impl& d = *impl_;
  d.host->ready();
  d.host->status("running");
  d.logger.info("ready", {{"agent_id", d.config->agent_id}, {"adapters", d.sources.size()}});
  {
    std::unique_lock lock(d.stop_mu);
    d.stop_cv.wait(lock, [&] { return d.stop_requested; });
  }
  d.host->stopping();
  d.logger.info("stopping");
  // Order matters: stop accepting and finish acknowledgements first, then let the link
  // collect outstanding PUBACKs, then drain the store.
  d.control->stop();
  d.stopSources();
  if (d.link) {
    std::promise<void> stopped;
    d.link->stop([&stopped] { stopped.set_value(); });
    if (stopped.get_future().wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
      d.logger.error("cloud_link_stop_timeout");
    }
    d.context.link = nullptr;
    d.link.reset();
  }
  if (d.store) {
    d.store->close();
  }
  d.signals.cancel();
  d.watchdog_timer.cancel();
  d.work.reset();
  d.io.stop();
  for (auto& t : d.threads) {
    t.join();
  }
  d.threads.clear();
  d.logger.info("stopped");
  return 0;
}

void Agent::requestStop() { impl_->requestStop(); }

json::Value Agent::status() const { return buildStatus(impl_->context); }

}  // namespace psa::agent
