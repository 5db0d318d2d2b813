// Discovery listens on a test feed only: a port a configured MLLP adapter uses belongs to a
// live feed, and taking it (even briefly, even when the agent is down) could swallow real
// messages that the PMS then considers delivered.
#include "psa/adapters/discover/mllp_capture.h"

namespace psa::adapters::discover {

std::optional<std::string> livePortConflict(const json::Value& config, uint16_t port) {
  const json::Value* adapters = config.find("adapters");
  if (adapters == nullptr || !adapters->isArray()) {
    return std::nullopt;
  }
  for (const auto& a : adapters->items()) {
    if (!a.isObject() || a.getString("type") != "hl7-mllp") {
      continue;
    }
    const json::Value* listen = a.find("listen");
    if (listen == nullptr) {
      continue;
    }
    std::vector<std::string> entries;
    if (listen->isString()) {
      entries.push_back(listen->asString());
    }
    for (const auto& item : listen->items()) {
      if (item.isString()) {
        entries.push_back(item.asString());
      }
    }
    for (const auto& text : entries) {
      auto ep = net::parseListenEndpoint(text);
      if (ep && ep.value().port == port) {
        return "adapter " + a.getString("name", "(unnamed)") + " listens on " + text +
               "; discovery must not take a live feed's port";
      }
    }
  }
  return std::nullopt;
}

}  // namespace psa::adapters::discover
