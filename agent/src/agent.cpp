#include "psa/agent/agent.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "adapter_set.h"
#include "agent_context.h"
#include "control_server.h"
#include "field_policy_setup.h"
#include "http/status_endpoint.h"
#include "link_options.h"
#include "process_signals.h"
#include "psa/adapters/policy/policy_sink.h"
#include "psa/adapters/source.h"
#include "psa/cloudlink/cloud_link.h"
#include "psa/store/fatal.h"
#include "psa/store/log.h"
#include "psa/store/os/durable_file.h"
#include "psa/store/sqlite_store.h"
#include "remote_manager.h"
#include "write_back.h"

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
  std::unique_ptr<IntakeWatch> intake;  ///< the store, watched for refusals
  /// The adapters' sink: the field policy applied, then the intake watch.
  std::unique_ptr<adapters::policy::PolicySink> policy_sink;
  std::optional<adapters::SourceContext> source_context;
  std::unique_ptr<AdapterSet> adapters;
  std::unique_ptr<ControlServer> control;
  cloudlink::CloudLinkPtr link;
  std::unique_ptr<RemoteManager> remote;
  std::unique_ptr<WriteBack> write_back;       ///< write-back requests and results (issue 15)
  std::unique_ptr<http::StatusEndpoint> http;  ///< only with an `http` section
  AgentContext context;
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stop_requested = false;
  int64_t started_ms = 0;

  void onSignal(const boost::system::error_code& ec, int sig) {
    if (ec) {
      return;
    }
    if (signalAction(sig) == SignalAction::reload) {
      // Same staged path as a remote config: validate, start what changed, switch, stop the
      // replaced adapters; nothing changes if any step fails.
      logger.info("signal", {{"signal", signalName(sig)}});
      if (remote) {
        remote->requestReload();
      }
      armSignals();
      return;
    }
    logger.info("signal", {{"signal", signalName(sig)}});
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
};

Agent::Agent(ConfigPtr config, std::unique_ptr<ServiceHost> host)
    : Agent(std::move(config), std::move(host), [] {
        adapters::SourceRegistry r;
        adapters::registerBuiltinSources(r);
        return r;
      }()) {}

Agent::Agent(ConfigPtr config, std::unique_ptr<ServiceHost> host, adapters::SourceRegistry registry)
    : impl_(std::make_unique<Impl>()) {
  impl_->config = std::move(config);
  impl_->context.config = impl_->config;
  impl_->host = host ? std::move(host) : makeForegroundHost();
  impl_->registry = std::move(registry);
}

Agent::~Agent() {
  if (impl_->http) {
    impl_->http->stop();
  }
  if (impl_->control) {
    impl_->control->stop();
  }
  if (impl_->remote) {
    impl_->remote->stop();
  }
  if (impl_->write_back) {
    impl_->write_back->stop();
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
  d.started_ms = Clock::system()->nowMs();
  {
    const Config& cfg = *d.config;
    std::error_code ec;
    if (!std::filesystem::exists(cfg.state_dir, ec)) {
      PSA_TRY(os::createServiceDirectory(cfg.state_dir));
    }
  }

  // The effective config: the local file plus the newest stored cloud config (or the last
  // known good one). Only adapters and tuning values can differ from the file.
  d.remote = std::make_unique<RemoteManager>(
      d.context, d.registry,
      RemoteHooks{[&d](const Config& next) -> Result<ApplySummary> {
                    // The policy is built first (a key file problem refuses the config) and
                    // switched only when the adapters applied.
                    auto policy = buildFieldPolicy(next);
                    if (!policy) {
                      return policy.error();
                    }
                    auto applied = d.adapters->apply(next);
                    if (applied) {
                      d.policy_sink->setPolicy(*policy);
                    }
                    return applied;
                  },
                  [&d](const std::string& name) { return d.adapters->restart(name); },
                  [&d](std::string kind, std::string payload) {
                    if (d.write_back) {
                      d.write_back->onWriteRequest(std::move(kind), std::move(payload));
                    }
                  }});
  auto effective = d.remote->selectStartupConfig(d.config);
  if (!effective) {
    return effective.error();
  }
  d.config = *effective;
  log::setLevel(d.config->log_level);
  const Config& cfg = *d.config;

  store::StoreOptions store_options = cfg.store;
  if (cfg.cloud.configured) {
    // Audit entries are uploaded to the cloud: retention must never prune one not yet sent.
    store_options.audit_upload_scope = kAuditUploadScope;
    store_options.audit_upload_key = kAuditUploadKey;
  }
  auto opened = store::SqliteStore::open(store_options);
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

  d.intake = std::make_unique<IntakeWatch>(*d.store, Clock::system());
  auto policy = buildFieldPolicy(cfg);
  if (!policy) {
    d.store->close();
    return policy.error();
  }
  d.policy_sink = std::make_unique<adapters::policy::PolicySink>(*d.intake, *policy);
  d.source_context.emplace(
      adapters::SourceContext{d.io, *d.policy_sink, Clock::system(), cfg.state_dir});
  d.adapters = std::make_unique<AdapterSet>(d.registry, *d.source_context);

  d.context.config = d.config;
  d.context.registry = &d.registry;
  d.context.store = d.store.get();
  d.context.intake = d.intake.get();
  d.context.policy = d.policy_sink.get();
  d.context.started_ms = d.started_ms;
  d.context.sources = [&d] { return d.adapters->snapshot(); };
  d.context.status = [&d] { return buildStatus(d.context); };
  d.context.currentConfig = [&d] { return d.remote->currentConfig(); };
  d.context.config_state = [&d] { return d.remote->configStatus(); };
  if (cfg.http) {
    d.http = std::make_unique<http::StatusEndpoint>(d.io, d.context, *cfg.http);
    d.context.http_state = [&d] { return d.http->describe(); };
  }
  // The link is created (not started) here, before anything serves: the context is complete
  // before the control pool or an io thread can read it, and stays unchanged while they run.
  if (cfg.cloud.configured) {
    auto link = cloudlink::CloudLink::create(d.io, *d.store, linkOptions(cfg));
    if (!link) {
      // Config validation should have caught this; keep queueing locally rather than stop.
      d.logger.error("cloud_link_invalid", {{"error", link.error().message}});
    } else {
      d.link = std::move(link).value();
      d.context.link = d.link.get();
      d.link->setControlSink(d.remote.get());
      d.link->setStatusProvider([&d] {
        // Built on the remote worker every second; building here would block the link's
        // strand on store reads.
        std::string cached = d.remote->cachedStatus();
        return cached.empty() ? json::serialize(buildStatus(d.context)) : cached;
      });
    }
  } else {
    d.logger.warn("cloud_not_configured",
                  {{"hint", "records queue locally until a cloud section is configured"}});
  }

  d.write_back = std::make_unique<WriteBack>(d.context);

  // The control socket comes up before anything else so a technician can look at an agent
  // whose adapters or link are failing; a second agent on the same config stops here.
  d.control = std::make_unique<ControlServer>(d.io, cfg.control_socket);
  registerControlHandlers(*d.control, d.context);
  registerRemoteControlHandlers(*d.control, *d.remote);
  if (auto st = d.control->start(); !st) {
    d.store->close();
    return st;
  }

  addServiceSignals(d.signals);
  d.armSignals();
  d.host->onStopRequest([&d] { d.requestStop(); });
  for (int i = 0; i < 2; ++i) {
    // Every Asio handler runs here: one that throws broke an invariant (fatal.h).
    d.threads.emplace_back([&d] { guardInvariant("agent.io_thread", [&d] { d.io.run(); }); });
  }

  d.adapters->startAll(cfg);
  d.remote->start();
  d.write_back->start();
  if (d.http) {
    // The page is for people: a bad TLS or token file is logged and shown by `check`, and
    // never keeps records from flowing.
    if (auto st = d.http->start(); !st) {
      d.logger.error("http_unavailable", {{"error", st.error().message},
                                          {"hint", "fix the http section, then restart"}});
    }
  }
  if (d.link) {
    d.link->start();
    d.logger.info("cloud_link_started", {{"url", cfg.cloud.url}, {"confirm", cfg.cloud.confirm}});
  }
  d.armWatchdog();
  return {};
}

int Agent::run() {
  Impl& d = *impl_;
  d.host->ready();
  d.host->status("running");
  d.logger.info("ready", {{"agent_id", d.config->agent_id}, {"adapters", d.adapters->size()}});
  {
    std::unique_lock lock(d.stop_mu);
    d.stop_cv.wait(lock, [&] { return d.stop_requested; });
  }
  d.host->stopping();
  d.logger.info("stopping");
  // Order matters: no new remote work (the apply in progress finishes), stop accepting and
  // finish acknowledgements, then let the link collect outstanding PUBACKs, then drain the
  // store.
  if (d.http) {
    d.http->stop();
  }
  d.control->stop();
  d.remote->stop();
  d.write_back->stop();  // what is in flight stays queued and goes again after a restart
  d.adapters->stopAll();
  if (d.link) {
    std::promise<void> stopped;
    d.link->stop([&stopped] { stopped.set_value(); });
    if (stopped.get_future().wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
      d.logger.error("cloud_link_stop_timeout");
    }
    // Its readers (the control pool, the remote worker) have stopped above.
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
