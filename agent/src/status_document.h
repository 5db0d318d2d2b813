// Parts of the status document (`status --json`, P/status) that the CLI also builds on its own
// when the agent is not running: queue figures from a read-only store, disk and key-file
// health. Every function is PHI-free and thread-safe.
#pragma once

#include <filesystem>

#include "psa/agent/config.h"
#include "psa/store/json.h"
#include "psa/store/sqlite_store.h"

namespace psa::agent {

/// Queue figures: depth by kind, bytes vs budget, oldest pending age, dead letters, keys.
json::Value queueStatusJson(store::SqliteStore& store, int64_t now_ms);
/// Queue statistics as `queue stats --json` prints them.
json::Value queueStatsJson(const store::QueueStats& stats, int64_t now_ms);
/// Free space of the file system holding `dir`.
json::Value diskStatusJson(const std::filesystem::path& dir);
/// The store key file: present, mode, owner, and a problem in words when it is unsafe.
json::Value keyFileStatusJson(const std::filesystem::path& key_file);
/// One record's metadata (never the payload).
json::Value recordInfoJson(const store::RecordInfo& info);
/// `audit verify --json`: {"ok","entries","first_seq","last_seq"[,"first_bad_seq","problem"]}.
Result<json::Value> auditVerifyJson(store::SqliteStore& store);
/// One audit entry (detail parsed back into an object).
json::Value auditEntryJson(const store::AuditEntry& entry);
/// The adapters of the config, for an agent that is not running (state "not running" or
/// "disabled").
json::Value configuredAdaptersJson(const Config& config);

/// The status document of an agent that is not running, from its files: `reason` says why
/// (e.g. "nothing answers on /run/pms-agent/control.sock"). `store` may be null (no database
/// yet, or unreadable: `store_error` says why).
json::Value buildOfflineStatus(const Config& config, store::SqliteStore* store,
                               const std::string& reason, const std::string& store_error);

}  // namespace psa::agent
