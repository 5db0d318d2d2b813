#include "hl7/mllp_shared.h"

namespace psa::adapters::hl7::mllp {

std::optional<AckCode> ackCodeOf(std::string_view ack) {
  if (ack.size() < 4) {
    return std::nullopt;
  }
  const char fs = ack[3];
  const std::string pattern = std::string("\rMSA") + fs;
  const size_t at = ack.find(pattern);
  if (at == std::string_view::npos || at + pattern.size() + 2 > ack.size()) {
    return std::nullopt;
  }
  const std::string_view code = ack.substr(at + pattern.size(), 2);
  for (size_t k = 0; k < kAckCodes; ++k) {
    if (code == kAckNames[k]) {
      return static_cast<AckCode>(k);
    }
  }
  return std::nullopt;
}

std::string endpointText(const tcp::endpoint& ep) {
  const auto addr = ep.address();
  if (addr.is_v6()) {
    if (addr.to_v6().is_v4_mapped()) {
      return asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6()).to_string() + ":" +
             std::to_string(ep.port());
    }
    return "[" + addr.to_string() + "]:" + std::to_string(ep.port());
  }
  return addr.to_string() + ":" + std::to_string(ep.port());
}

std::string addressText(const asio::ip::address& addr) {
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6()).to_string();
  }
  return addr.to_string();
}

Shared::Shared(MllpSettings s, store::RecordSink& k, ClockPtr c)
    : settings(std::move(s)),
      sink(k),
      clock(c ? std::move(c) : Clock::system()),
      acks(AckOptions{settings.ack_mode, clock, defaultControlIds()}),
      log("mllp", settings.name) {
  limits.max_message_bytes = settings.max_message_bytes;
}

void Shared::setError(std::string text) {
  std::lock_guard lock(err_mu);
  last_error = std::move(text);
  last_error_ms = clock->nowMs();
}

void Shared::warn(std::string_view event, std::initializer_list<log::Field> fields) {
  uint64_t suppressed = 0;
  if (!warn_budget.take(suppressed)) {
    return;
  }
  log.warn(event, fields);
  if (suppressed > 0) {
    log.warn("log_lines_suppressed", {{"count", suppressed}});
  }
}

void Shared::unregister(uint64_t id) {
  std::vector<std::function<void()>> waiters;
  {
    std::lock_guard lock(reg_mu);
    if (auto it = sessions.find(id); it != sessions.end()) {
      if (it->second.evicting) {
        --evicting;
      } else if (auto p = per_peer.find(it->second.address);
                 p != per_peer.end() && --p->second == 0) {
        per_peer.erase(p);
      }
      sessions.erase(it);
    }
    if (stopping && !stopped && sessions.empty()) {
      stopped = true;
      waiters.swap(stop_waiters);
    }
  }
  for (auto& w : waiters) {
    w();
  }
}

}  // namespace psa::adapters::hl7::mllp
