// Helpers the technician commands share: loading the config for a CLI run, asking the running
// agent over the control socket (and saying plainly when it is not running), opening the store
// read-only when it is down, and number/time formatting for one-screen output.
#pragma once

#include <chrono>
#include <iosfwd>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "command.h"
#include "control_handlers.h"
#include "control_protocol.h"
#include "psa/adapters/source.h"
#include "psa/agent/config.h"
#include "psa/store/json.h"
#include "psa/store/sqlite_store.h"

namespace psa::agent {

/// The config and adapter registry of one CLI run.
struct CliConfig {
  adapters::SourceRegistry registry;
  ConfigPtr config;
};

/// Loads the --config file; on failure prints every problem to ctx.err (prefixed with the
/// command) and returns null config.
std::unique_ptr<CliConfig> loadCliConfig(CommandContext& ctx, const std::string& command);

/// How a control request went.
enum class AgentReach {
  answered,     ///< the agent replied (response.ok may still be false)
  not_running,  ///< nothing listens on the socket
  no_answer,    ///< connected, but no reply within the timeout (hung or overloaded)
  denied,       ///< the socket's permissions refuse this user
  failed,       ///< anything else (message in `error`)
};

struct AgentReply {
  AgentReach reach = AgentReach::failed;
  ControlResponse response;
  std::string error;  ///< in words, when reach != answered
};

/// Sends one control request to the agent of `config`.
AgentReply askAgent(const Config& config, const std::string& cmd,
                    json::Value args = json::Value::object(),
                    std::chrono::milliseconds timeout = std::chrono::seconds(60));

/// Opens the agent's store read-only (for commands that work while the agent is down). Never
/// writes, never needs the key file, safe beside a running agent.
Result<store::SqliteStorePtr> openStoreReadOnly(const Config& config);

/// A read-only request: asks the running agent; when it is not running (or does not answer),
/// notes that on ctx.err and runs `op` on a read-only store instead. A refused socket
/// (permissions) is an error, not a reason to read the files. `offline` (optional) is set
/// when the answer came from the files.
ControlResponse readFromAgentOrFiles(CommandContext& ctx, const Config& config,
                                     const std::string& cmd, const json::Value& args, StoreOp op,
                                     bool* offline = nullptr);

/// A state-changing request: the running agent only. On success `out` holds the agent's answer
/// and the result is kExitOk; otherwise the reason is printed and the exit code returned.
int actOnAgent(CommandContext& ctx, const std::string& command, const std::string& cmd,
               json::Value args, ControlResponse& out, std::chrono::milliseconds timeout);

/// For a command that needs the daemon: prints why it cannot run and returns the exit code.
int reportUnreachable(CommandContext& ctx, const std::string& command, const AgentReply& reply);
/// Prints an error reply of the agent ("pms-agent CMD: error") and returns its exit code.
int reportAgentError(CommandContext& ctx, const std::string& command, const AgentReply& reply);
/// One stderr line saying the output comes from the files because the agent is not running.
void noteOffline(CommandContext& ctx, const AgentReply& reply);

// ---- status (commands_status.cpp), also used by the bundle
/// Renders a status document (from the agent, or built from the files) for people.
void renderStatus(std::ostream& out, const json::Value& status);
/// The status document from the running agent, or built from the files when it is down
/// (`running` says which; a note goes to ctx.err unless `quiet_offline`). False (after
/// printing why) when neither works.
bool fetchStatus(CommandContext& ctx, const Config& config, json::Value& doc, bool& running,
                 bool quiet_offline);
/// A queue's `by_kind` as one line: "hl7 1,204 · file 12 (dead 3)"; kinds with nothing pending
/// or dead are left out (empty when all are).
std::string queueKindsText(const json::Value& by_kind);
/// The few facts of an adapter's `detail` a technician needs first (where it listens or looks,
/// TLS, connections, next poll), in a fixed order, each preceded by two spaces; the rest is in
/// `status --json`.
std::string adapterDetailText(const json::Value& detail);
/// An adapter's non-zero `counters`, the telling ones first (messages, accepted, ACK codes,
/// errors), at most six.
std::vector<std::pair<std::string, int64_t>> telltaleCounters(const json::Value& counters);

// ---- formatting (people, not scripts)
std::string humanBytes(uint64_t bytes);          ///< "0.1 MB", "10 GB", "512 B"
std::string humanCount(uint64_t n);              ///< "18,204"
std::string humanShortCount(uint64_t n);         ///< "1.2M", "18.2k", "950"
std::string humanSeconds(double seconds);        ///< "0.4 s", "7 min", "3 h 12 min", "12d 4h"
/// How long ago an RFC 3339 time was ("0.4 s ago"); empty if `rfc3339` is empty/invalid.
std::string agoText(const std::string& rfc3339, int64_t now_ms);
/// Left-pads nothing, right-pads `s` to `width` display columns (UTF-8 aware).
std::string padRight(const std::string& s, size_t width);

/// `pms-agent check`-style line: "OK    name          text".
std::string checkLine(const std::string& level, const std::string& name, const std::string& text);

/// True if `s` looks like a msg_id (26 Crockford base32 characters).
bool looksLikeMsgId(const std::string& s);

}  // namespace psa::agent
