// Source: one configured adapter instance (MLLP listener, file-drop watcher, REST/FHIR poller)
// that turns PMS data into records and hands them to a RecordSink. SourceRegistry maps an
// adapter `type` from the config to its schema and factory; the agent registers the built-in
// ones explicitly with registerBuiltinSources().
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "psa/store/clock.h"
#include "psa/store/json.h"
#include "psa/store/record_sink.h"
#include "psa/store/result.h"
#include "psa/store/schema.h"

namespace psa::adapters {

/// A point-in-time snapshot of a source for `status` (and `P/status`). No PHI.
struct SourceStatus {
  std::string state = "stopped";  ///< "listening", "watching", "polling", "paused", "failed", ...
  bool healthy = true;
  int64_t last_message_ms = 0;    ///< when the last record was accepted
  std::string last_error;         ///< in words, PHI-free
  int64_t last_error_ms = 0;
  std::map<std::string, uint64_t> counters;  ///< "messages", "ack_AA", "framing_errors", ...
  json::Value detail = json::Value::object();  ///< type-specific (address, connections, p99...)
};

/// One line of `pms-agent check`.
struct CheckResult {
  enum class Level { ok, warn, fail };
  Level level = Level::ok;
  std::string name;  ///< e.g. "adapter cerner-adt"
  std::string text;  ///< what was found, and a hint when not OK
};

/// A running adapter instance. Created by its factory from a validated config object; all
/// methods may be called from any thread (implementations post to their own strand).
class Source {
 public:
  virtual ~Source() = default;

  virtual const std::string& name() const = 0;
  virtual const std::string& type() const = 0;

  /// Acquires what the source needs (binds listeners, checks directories, fetches a first
  /// token) and begins work. A failure here (port in use, unreachable endpoint) leaves
  /// nothing running, so a staged config apply can roll back.
  virtual Status start() = 0;

  /// After start() failed: asks the source to keep trying on its own, with capped back-off (a
  /// listener whose port another program holds binds once the port is free); status() shows
  /// the state ("retrying"), the attempts and the next one. Returns false when the source does
  /// not retry (the default): it then stays failed until restart-adapter or a config change.
  /// Call it at most once, from the thread that called start(); stop() ends the retries. A
  /// staged apply does not call it (it rolls back instead).
  virtual bool retryStartInBackground() { return false; }

  /// Stops accepting new input, finishes in-flight commits and acknowledgements (a sender
  /// gets its pending ACKs; a file reader or poller finishes its current commit), then calls
  /// `done` exactly once from some thread. Idempotent.
  virtual void stop(std::function<void()> done) = 0;

  virtual SourceStatus status() const = 0;
};

using SourcePtr = std::shared_ptr<Source>;

/// What a factory gets to build a source.
struct SourceContext {
  boost::asio::io_context& io;
  store::RecordSink& sink;
  ClockPtr clock;
  std::filesystem::path state_dir;  ///< relative paths in adapter config resolve here
};

struct SourceFactory {
  std::string type;  ///< config `adapters[].type`, e.g. "hl7-mllp"
  std::string description;
  /// Schema of one adapter object of this type (including the common name/type/vendor keys).
  schema::ObjectSchemaPtr schema;
  /// Builds (does not start) a source from a config object already validated against schema.
  std::function<Result<SourcePtr>(const json::Value& config, SourceContext& ctx)> create;
  /// Optional: reachability/auth diagnostics for `pms-agent check` (may block briefly).
  std::function<std::vector<CheckResult>(const json::Value& config,
                                         const std::filesystem::path& state_dir)>
      check;
};

/// The adapter types the agent knows. Not thread-safe for registration; read-only afterwards.
class SourceRegistry {
 public:
  /// Registers a type. An empty type or one already registered is a broken invariant:
  /// fatalInvariant("adapters.registry.duplicate_type") ends the process (exit 70).
  void add(SourceFactory factory);
  const SourceFactory* find(std::string_view type) const;
  std::vector<std::string> types() const;

 private:
  std::vector<SourceFactory> factories_;
};

/// The fields every adapter object has (name, type, vendor, enabled, kind_map...), to be
/// included first in each type's schema.
std::vector<schema::Field> commonAdapterFields();

/// Registers every adapter type built into this binary.
void registerBuiltinSources(SourceRegistry& registry);

/// Vendors the agent supports (config `adapters[].vendor`).
const std::vector<std::string>& knownVendors();

}  // namespace psa::adapters
