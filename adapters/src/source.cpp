#include "psa/adapters/source.h"

#include <algorithm>

#include "psa/store/fatal.h"

namespace psa::adapters {

// Each adapter family registers itself from its own file, so families stay independent.
void registerMllpSource(SourceRegistry& registry);
void registerFileDropSource(SourceRegistry& registry);
void registerApiSources(SourceRegistry& registry);
namespace write {
void registerWriteTargets(SourceRegistry& registry);
}

// A type registered twice is a programming error (two families claiming one config `type`,
// the second silently shadowed): the process ends at start-up, before it serves anything.
void SourceRegistry::add(SourceFactory factory) {
  if (factory.type.empty() || find(factory.type) != nullptr) {
    fatalInvariant("adapters.registry.duplicate_type");
  }
  factories_.push_back(std::move(factory));
}

const SourceFactory* SourceRegistry::find(std::string_view type) const {
  for (const auto& f : factories_) {
    if (f.type == type) {
      return &f;
    }
  }
  return nullptr;
}

std::vector<std::string> SourceRegistry::types() const {
  std::vector<std::string> out;
  out.reserve(factories_.size());
  for (const auto& f : factories_) {
    out.push_back(f.type);
  }
  return out;
}

const std::vector<std::string>& knownVendors() {
  static const std::vector<std::string> vendors = {
      "epic",     "cerner",   "allscripts", "athenahealth",    "eclinicalworks", "nextgen",
      "meditech", "drchrono", "kareo",      "practice-fusion", "generic"};
  return vendors;
}

std::vector<schema::Field> commonAdapterFields() {
  using schema::Field;
  auto name_check = [](const json::Value& v) -> std::optional<std::string> {
    const std::string& s = v.asString();
    const bool ok = !s.empty() && s.size() <= 63 &&
                    std::all_of(s.begin(), s.end(),
                                [](char c) {
                                  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                                         c == '-' || c == '_' || c == '.';
                                }) &&
                    s.front() != '-' && s.front() != '.';
    if (!ok) {
      return "expected 1-63 characters of a-z, 0-9, '-', '_', '.' (it names topics and files)";
    }
    return std::nullopt;
  };
  return {
      Field::str("name").req().verify(name_check).describe("unique adapter name"),
      Field::str("type").req().describe("adapter type"),
      Field::str("vendor").req().oneOf(knownVendors()).describe("the PMS/EHR vendor"),
      Field::boolean("enabled").def(json::Value::boolean(true)),
  };
}

void registerBuiltinSources(SourceRegistry& registry) {
  registerMllpSource(registry);
  registerFileDropSource(registry);
  registerApiSources(registry);
  write::registerWriteTargets(registry);
}

}  // namespace psa::adapters
