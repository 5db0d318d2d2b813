// The sessions of the hl7-mllp listener: one per accepted connection, plain or TLS.
#pragma once

#include <memory>
#include <string>

#include "hl7/mllp_shared.h"

namespace psa::adapters::hl7::mllp {

/// A session for an accepted connection (TLS when `shared->tls` is set), not started yet:
/// the listener registers it, then calls start(). Counts itself out of connections_open when
/// it is destroyed.
std::shared_ptr<SessionBase> makeSession(std::shared_ptr<Shared> shared, tcp::socket socket,
                                         uint64_t id, std::string peer);

}  // namespace psa::adapters::hl7::mllp
