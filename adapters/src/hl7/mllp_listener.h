// The `hl7-mllp` source: a Boost.Asio MLLP listener (IPv4/IPv6, optional TLS with optional
// client certificates, source-address allow list, idle timeout) that commits every message to
// the store before it acknowledges it.
//
// Per connection (one strand each): bytes -> MllpDecoder -> frames -> parse, validate,
// classify -> one AppendBatch per read chunk (valid messages as records, invalid ones as dead
// letters) -> RecordSink::append -> on the durable-commit callback the ACKs are prepared, and
// written strictly in the order the messages arrived. Concurrent connections share the store's
// group commits. Store refusals (full, closed, I/O) become AR/CR "retry later"; nothing is
// acknowledged that is not on disk.
#pragma once

#include <filesystem>
#include <vector>

#include "hl7/mllp_settings.h"
#include "psa/adapters/source.h"

namespace psa::adapters::hl7 {

/// Builds (does not start) the source. Errors: Errc::io when the TLS certificate, key or CA
/// file cannot be loaded (the message names the file).
Result<SourcePtr> makeMllpListener(MllpSettings settings, SourceContext& ctx);

/// `pms-agent check` lines for one adapter: TLS files usable, and per listen address whether
/// something listens there and who (this program, i.e. the agent: OK; another program: FAIL
/// naming it; another account's process, which only root can name: OK when it is the account
/// owning `state_dir`) or else whether the port could be bound. Blocking (a second or so).
std::vector<CheckResult> checkMllpListener(const MllpSettings& settings,
                                           const std::filesystem::path& state_dir);

}  // namespace psa::adapters::hl7
