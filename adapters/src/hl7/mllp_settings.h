// Settings of one `hl7-mllp` adapter: the config schema, and the validated config turned into
// typed values (listen endpoints, TLS files, allow list, limits, ACK mode, validation rules,
// classifier). Private to the adapters module.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "psa/adapters/hl7/ack.h"
#include "psa/adapters/hl7/classify.h"
#include "psa/adapters/hl7/validate.h"
#include "psa/adapters/net/address.h"
#include "psa/adapters/net/server_tls.h"
#include "psa/store/json.h"
#include "psa/store/result.h"
#include "psa/store/schema.h"

namespace psa::adapters::hl7 {

using net::CidrRange;
using net::ListenEndpoint;
using net::parseCidr;
using net::parseListenEndpoint;

using MllpTlsSettings = net::ServerTlsSettings;

struct MllpSettings {
  std::string name;
  std::string vendor;
  std::vector<ListenEndpoint> listen;
  std::optional<MllpTlsSettings> tls;
  std::vector<CidrRange> allow;  ///< empty: every peer may connect
  /// 0: never. Counted from the last progress (opened, a whole frame received, an ACK sent):
  /// bytes of a frame that never completes do not count.
  std::chrono::seconds idle_timeout{600};
  std::chrono::seconds write_timeout{60};  ///< a peer that does not read its ACKs
  std::chrono::seconds handshake_timeout{10};
  size_t max_connections = 512;
  /// Open connections from one remote address (at most max_connections). A peer at its limit
  /// makes room by evicting its own longest-idle connection.
  size_t max_connections_per_peer = 64;
  size_t max_message_bytes = 16u << 20;
  size_t max_pipeline = 256;  ///< received, not yet acknowledged messages per connection
  AckMode ack_mode = AckMode::automatic;
  bool dedupe = true;
  ValidationRules rules;
  Classifier classifier;
};

/// The schema of one `hl7-mllp` adapter object (commonAdapterFields() first).
schema::ObjectSchemaPtr mllpSchema();

/// Builds settings from an adapter object already validated against mllpSchema() (defaults
/// may be missing; they are applied here). Relative file names resolve against `state_dir`.
/// Errors: Errc::invalid_argument naming the key.
Result<MllpSettings> parseMllpSettings(const json::Value& config,
                                       const std::filesystem::path& state_dir);

}  // namespace psa::adapters::hl7
