// The agent side of the CLI's control commands, grouped by family. Each handler runs on the
// control server's worker pool (it may block on the store); state-changing ones are audited
// with the caller's uid before they answer.
#pragma once

#include "agent_context.h"
#include "control_server.h"

namespace psa::agent {

/// queue.stats, queue.list, queue.show, queue.reveal, queue.retry, queue.retry_all,
/// queue.purge_dead, queue.salvage.
void registerQueueHandlers(ControlServer& server, AgentContext& ctx);
/// audit.verify, audit.entries, keys.rotate, log.level, log.recent.
void registerAdminHandlers(ControlServer& server, AgentContext& ctx);

// Read-only operations on a store: the handlers run them on the agent's store, and the CLI on
// a read-only store when the agent is not running (same JSON either way).
using StoreOp = ControlResponse (*)(store::SqliteStore& store, const json::Value& args);
ControlResponse queueStatsOp(store::SqliteStore& store, const json::Value& args);
/// args: after (seq), limit (1..1000), dead (bool).
ControlResponse queueListOp(store::SqliteStore& store, const json::Value& args);
/// args: id (msg_id). Metadata only.
ControlResponse queueShowOp(store::SqliteStore& store, const json::Value& args);
ControlResponse auditVerifyOp(store::SqliteStore& store, const json::Value& args);
/// args: after (seq), limit (1..1000).
ControlResponse auditEntriesOp(store::SqliteStore& store, const json::Value& args);

/// A successful reply.
ControlResponse replyOk(json::Value result);
/// A failed reply: usage problems exit 2, everything else 1.
ControlResponse replyError(const Error& error);
ControlResponse replyUsage(std::string message);

/// Reads an optional integer argument in [lo, hi]; false (and `problem` set) if present but
/// not an integer in range.
bool intArg(const json::Value& args, std::string_view key, int64_t lo, int64_t hi,
            int64_t& out, std::string& problem);

}  // namespace psa::agent
