#include "psa/cloudlink/policy.h"

#include <algorithm>
#include <cstdio>

namespace psa::cloudlink {

PubackAction classifyPuback(int code) {
  if (code >= 0 && code < 0x80) {
    return PubackAction::delivered;
  }
  switch (code) {
    case 0x87:  // not authorized: the ACL will not change by itself
    case 0x90:  // topic name invalid
    case 0x95:  // packet too large
    case 0x99:  // payload format invalid
    case 0x9A:  // retain not supported
    case 0x9B:  // QoS not supported
      return PubackAction::dead_letter;
    default:  // 0x80, 0x83, 0x89, 0x91, 0x97 and anything unknown: transient, try again later
      return PubackAction::retry;
  }
}

std::string reasonName(int code) {
  switch (code) {
    case 0x00: return "success";
    case 0x10: return "no matching subscribers";
    case 0x80: return "unspecified error";
    case 0x83: return "implementation specific error";
    case 0x87: return "not authorized";
    case 0x89: return "server busy";
    case 0x90: return "topic name invalid";
    case 0x91: return "packet identifier in use";
    case 0x95: return "packet too large";
    case 0x97: return "quota exceeded";
    case 0x99: return "payload format invalid";
    case 0x9A: return "retain not supported";
    case 0x9B: return "QoS not supported";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "reason 0x%02X", static_cast<unsigned>(code) & 0xffu);
      return buf;
    }
  }
}

std::string pubackReason(int code) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "puback 0x%02X ", static_cast<unsigned>(code) & 0xffu);
  return buf + reasonName(code);
}

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, uint64_t seed)
    : initial_(std::max(initial, std::chrono::milliseconds(1))),
      max_(std::max(max, initial_)),
      rng_(seed) {}

std::chrono::milliseconds Backoff::next() {
  // initial * 2^failures, capped; computed without overflow.
  int64_t d = initial_.count();
  for (uint32_t i = 0; i < failures_ && d < max_.count(); ++i) {
    d *= 2;
  }
  d = std::min<int64_t>(d, max_.count());
  if (failures_ < 64) {
    ++failures_;
  }
  std::uniform_int_distribution<int64_t> dist(d / 2, d);
  return std::chrono::milliseconds(dist(rng_));
}

Result<BrokerAddress> parseServerReference(std::string_view reference) {
  while (!reference.empty() && reference.front() == ' ') {
    reference.remove_prefix(1);
  }
  reference = reference.substr(0, reference.find(' '));
  if (reference.empty()) {
    return Error(Errc::invalid_argument, "empty server reference");
  }
  if (reference.find("://") != std::string_view::npos) {
    return parseBrokerUrl(reference);
  }
  return parseBrokerUrl("mqtts://" + std::string(reference));
}

Result<BrokerAddress> parseBrokerUrl(std::string_view url) {
  constexpr std::string_view kScheme = "mqtts://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    if (url.find("://") != std::string_view::npos) {
      return Error(Errc::invalid_argument,
                   "only mqtts:// URLs are supported (TLS is mandatory): " + std::string(url));
    }
    return Error(Errc::invalid_argument, "expected mqtts://host[:port], got: " + std::string(url));
  }
  std::string_view rest = url.substr(kScheme.size());
  if (!rest.empty() && rest.back() == '/') {
    rest.remove_suffix(1);
  }
  if (rest.find_first_of("/?#@") != std::string_view::npos) {
    return Error(Errc::invalid_argument,
                 "URL must be mqtts://host[:port] without path or user: " + std::string(url));
  }
  BrokerAddress addr;
  std::string_view port_text;
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) {
      return Error(Errc::invalid_argument, "unterminated IPv6 literal in URL: " + std::string(url));
    }
    addr.host = std::string(rest.substr(1, close - 1));
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return Error(Errc::invalid_argument, "unexpected text after IPv6 literal: " +
                                                 std::string(url));
      }
      port_text = after.substr(1);
      if (port_text.empty()) {
        return Error(Errc::invalid_argument, "empty port in URL: " + std::string(url));
      }
    }
  } else {
    const size_t colon = rest.rfind(':');
    if (colon != std::string_view::npos) {
      addr.host = std::string(rest.substr(0, colon));
      port_text = rest.substr(colon + 1);
      if (port_text.empty()) {
        return Error(Errc::invalid_argument, "empty port in URL: " + std::string(url));
      }
    } else {
      addr.host = std::string(rest);
    }
  }
  if (addr.host.empty()) {
    return Error(Errc::invalid_argument, "missing host in URL: " + std::string(url));
  }
  for (char c : addr.host) {
    if (c <= ' ' || c == 0x7f) {
      return Error(Errc::invalid_argument, "invalid character in host: " + std::string(url));
    }
  }
  if (!port_text.empty()) {
    int port = 0;
    for (char c : port_text) {
      if (c < '0' || c > '9' || port > 65535) {
        return Error(Errc::invalid_argument, "invalid port in URL: " + std::string(url));
      }
      port = port * 10 + (c - '0');
    }
    if (port < 1 || port > 65535) {
      return Error(Errc::invalid_argument, "port out of range 1..65535 in URL: " +
                                               std::string(url));
    }
    addr.port = port;
  }
  return addr;
}

std::string TlsCauseMemory::explain(const std::string& endpoint, const std::string& words) {
  if (words.rfind("TLS: ", 0) != 0) {
    return words;
  }
  if (words != "TLS: protocol error" && words != "TLS: handshake failed") {
    last_cause_[endpoint] = words;
    return words;
  }
  auto it = last_cause_.find(endpoint);
  if (it == last_cause_.end()) {
    return words;
  }
  return words + " (the previous attempt said: " + it->second + ")";
}

void TlsCauseMemory::forget(const std::string& endpoint) { last_cause_.erase(endpoint); }

}  // namespace psa::cloudlink
