// Shared by the tests of the config's cloud section: a config whose cloud section holds
// `keys` (plus the TLS files, and `url` unless told not to), parsed by the real loader, and its
// issues as text.
#pragma once

#include <string>

#include "psa/agent/config.h"

namespace psa::agent::test {

/// `keys`: extra members of the cloud section (without braces; may be empty). `with_url` adds
/// "url":"mqtts://b:8883".
inline ConfigLoad loadCloudSection(const std::string& keys, bool with_url) {
  static constexpr const char* kAgent = R"("agent":{"id":"p1","tenant":"t1","state_dir":"/s"})";
  static constexpr const char* kFiles =
      R"("ca_file":"ca.pem","cert_file":"a.pem","key_file":"a.key")";
  std::string cloud = keys;
  if (with_url) {
    cloud += std::string(cloud.empty() ? "" : ",") + R"("url":"mqtts://b:8883")";
  }
  cloud += std::string(cloud.empty() ? "" : ",") + kFiles;
  const adapters::SourceRegistry registry;
  return parseConfig("{" + std::string(kAgent) + ",\n\"cloud\":{" + cloud + "}}", "f.json",
                     registry);
}

/// Every issue of `load`, one "path: message" line each.
inline std::string problems(const ConfigLoad& load) {
  std::string out;
  for (const auto& i : load.issues) {
    out += i.path + ": " + i.message + "\n";
  }
  return out;
}

}  // namespace psa::agent::test
