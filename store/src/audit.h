// Audit-chain helpers: the hash that links entries, and compact JSON for PHI-free details.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace psa::store::audit {

/// The genesis prev_hash (64 zeros).
const std::string& genesisHash();

/// hex SHA-256 over length-prefixed fields: prev_hash, seq, at_ms, actor, action, detail.
/// Length prefixes make the encoding unambiguous (no field can bleed into the next).
std::string entryHash(std::string_view prev_hash, int64_t seq, int64_t at_ms,
                      std::string_view actor, std::string_view action, std::string_view detail);

/// `s` as a JSON string literal.
std::string jsonString(std::string_view s);

/// Retention writes this entry periodically; pruning removes entries only up to one, so it is
/// the first kept entry: verifyAudit() accepts a chain that starts with it (its prev_hash
/// anchors the cut) instead of at seq 1.
inline constexpr std::string_view kCheckpointAction = "audit.checkpoint";
/// Written in the same transaction as a cut: {"before_seq":N,"count":K,"cutoff_ms":T}.
/// verifyAudit() requires one naming the checkpoint a pruned chain starts at, so entries
/// deleted by hand (not by retention) are reported.
inline constexpr std::string_view kPrunedAction = "audit.pruned";

}  // namespace psa::store::audit
