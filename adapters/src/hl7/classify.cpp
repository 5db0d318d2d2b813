#include "psa/adapters/hl7/classify.h"

#include <algorithm>

#include "psa/store/text.h"

namespace psa::adapters::hl7 {
namespace {

bool alnumRun(std::string_view s, size_t min, size_t max) {
  if (s.size() < min || s.size() > max) {
    return false;
  }
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); });
}

}  // namespace

store::Kind defaultKind(std::string_view type, std::string_view trigger) {
  using store::Kind;
  if (type == "ADT") {
    return Kind::patient;
  }
  if (type == "SIU") {
    return Kind::appointment;
  }
  if (type == "DFT" || type == "BAR") {
    return Kind::billing;
  }
  if (type == "MFN") {
    return (trigger == "M15" || trigger == "M16") ? Kind::inventory : Kind::provider;
  }
  if (type == "PMU") {
    return Kind::provider;
  }
  if (type == "ORU" || type == "ORM" || type == "OML" || type == "MDM" || type == "RDE" ||
      type == "VXU" || type == "PPR") {
    return Kind::clinical;
  }
  return Kind::other;
}

Result<Classifier> Classifier::withOverrides(const std::map<std::string, store::Kind>& overrides) {
  Classifier c;
  for (const auto& [raw_key, kind] : overrides) {
    std::string key = text::asciiUpper(raw_key);
    size_t caret = key.find('^');
    std::string_view k = key;
    bool ok = caret == std::string::npos
                  ? alnumRun(k, 3, 3)
                  : alnumRun(k.substr(0, caret), 3, 3) && alnumRun(k.substr(caret + 1), 1, 8);
    if (!ok) {
      return Error(Errc::invalid_argument, "kind map key \"" + raw_key +
                                               "\": expected TYPE or TYPE^TRIGGER (e.g. ADT^A08)");
    }
    c.overrides_.emplace_back(std::move(key), kind);
  }
  std::sort(c.overrides_.begin(), c.overrides_.end());
  auto dup = std::adjacent_find(c.overrides_.begin(), c.overrides_.end(),
                                [](const auto& a, const auto& b) { return a.first == b.first; });
  if (dup != c.overrides_.end()) {
    return Error(Errc::invalid_argument, "kind map key \"" + dup->first + "\" given twice");
  }
  return c;
}

Result<Classifier> Classifier::fromConfig(const std::map<std::string, std::string>& overrides) {
  std::map<std::string, store::Kind> kinds;
  for (const auto& [key, name] : overrides) {
    auto kind = store::parseKind(name);
    if (!kind) {
      return Error(Errc::invalid_argument,
                   "kind map \"" + key + "\": unknown kind \"" + name +
                       "\" (expected patient, appointment, clinical, billing, provider, "
                       "inventory or other)");
    }
    kinds.emplace(key, *kind);
  }
  return withOverrides(kinds);
}

store::Kind Classifier::classify(std::string_view type, std::string_view trigger) const {
  if (!overrides_.empty() && type.size() <= 8 && trigger.size() <= 8) {
    // "TYPE^TRIGGER" in a stack buffer: no allocation on the hot path.
    char buf[17];
    size_t n = 0;
    for (char ch : type) {
      buf[n++] = (ch >= 'a' && ch <= 'z') ? static_cast<char>(ch - 'a' + 'A') : ch;
    }
    size_t type_len = n;
    auto find = [this](std::string_view key) -> const store::Kind* {
      auto it =
          std::lower_bound(overrides_.begin(), overrides_.end(), key,
                           [](const auto& entry, std::string_view k) { return entry.first < k; });
      return (it != overrides_.end() && it->first == key) ? &it->second : nullptr;
    };
    if (!trigger.empty()) {
      buf[n++] = '^';
      for (char ch : trigger) {
        buf[n++] = (ch >= 'a' && ch <= 'z') ? static_cast<char>(ch - 'a' + 'A') : ch;
      }
      if (const store::Kind* k = find(std::string_view(buf, n))) {
        return *k;
      }
    }
    if (const store::Kind* k = find(std::string_view(buf, type_len))) {
      return *k;
    }
  }
  return defaultKind(type, trigger);
}

store::Kind Classifier::classify(const Message& msg) const {
  return classify(msg.messageType(), msg.triggerEvent());
}

}  // namespace psa::adapters::hl7
