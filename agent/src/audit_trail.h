// Audit entries for acts requested over the control socket (the store writes the data-exchange
// ones itself: records accepted/delivered/dead-lettered, retries, purges, key rotations; remote
// management writes config.applied/rejected and command.* in remote_manager.cpp).
// Entries carry ids, counts, uids and outcomes only; never PHI. All functions block until the
// entry is durable (or failed) and must not run on an I/O thread.
#pragma once

#include <string>
#include <string_view>

#include "control_transport.h"
#include "psa/store/json.h"
#include "psa/store/result.h"
#include "psa/store/sqlite_store.h"

namespace psa::agent {

/// Writes one entry and waits until it is committed. Errors: the store's (closed, io, full).
Status auditAct(store::SqliteStore& store, std::string actor, std::string action,
                const json::Value& detail);

/// A state-changing CLI command served on the control channel: actor peer.actor() ("uid:N" or
/// "user:HOST\name"), action "cli.<cmd>", detail {"pid":P,"args":{...},"result":"ok"|"<error
/// in words>"}.
Status auditCliCommand(store::SqliteStore& store, const Peer& peer, std::string_view cmd,
                       const json::Value& args, const std::string& result);

}  // namespace psa::agent
