// `pms-agent discover hl7 --listen`: an MLLP listener for a TEST feed that acknowledges (AA/CA)
// every message it can parse, keeps nothing, and hands each message to a callback, for a fixed
// time. Unparseable messages get the reject ACK a live listener would send. Plain TCP only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "psa/adapters/net/address.h"
#include "psa/store/json.h"
#include "psa/store/result.h"

namespace psa::adapters::discover {

struct CaptureStats {
  uint64_t connections = 0;
  uint64_t frames = 0;
  uint64_t framing_faults = 0;
  uint16_t port = 0;  ///< the port actually bound (useful with port 0)
};

/// Listens on `endpoint` for `duration`, calls `on_message` with every non-empty frame (on the
/// calling thread), ACKs it, and returns when the time is up. `on_listening` (optional) is
/// called once bound, with the port. Errors: Errc::unavailable when the endpoint cannot be
/// bound (the message says why).
Result<CaptureStats> captureMllp(const net::ListenEndpoint& endpoint,
                                 std::chrono::milliseconds duration,
                                 const std::function<void(std::string_view)>& on_message,
                                 const std::function<void(uint16_t)>& on_listening = {});

/// Why a discovery listener must not take `port`: the first `hl7-mllp` adapter of the agent
/// config document `config` that listens on it ("adapter cerner-adt listens on 0.0.0.0:2575;
/// discovery must not take a live feed's port"), or nullopt when none does.
std::optional<std::string> livePortConflict(const json::Value& config, uint16_t port);

}  // namespace psa::adapters::discover
