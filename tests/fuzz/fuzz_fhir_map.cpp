// libFuzzer target for the HL7 v2 -> FHIR R4 mapper and the validator. Any input either fails
// with a clean error or maps to a Bundle that
//  - serialises and parses back to the same JSON;
//  - gives every entry a 32-hex-digit id and a PUT request for exactly that id;
//  - is well formed for the validator: the only violations allowed are missing required
//    elements and the invariants/profiles that need data the message did not have (a required
//    element, app-2/3/4, us-core-*), never a malformed value, an unknown element, a wrong type,
//    a wrong cardinality or a code outside its required value set - those would be mapper bugs.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "psa/adapters/fhir_map/hl7_to_fhir.h"
#include "psa/adapters/fhir_map/validate.h"
#include "psa/store/json.h"

namespace {

using namespace psa::adapters::fhir_map;

void check(bool ok, const char* what, const std::string& detail = {}) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_fhir_map invariant failed: %s %s\n", what, detail.c_str());
    std::abort();
  }
}

bool allowed(const Violation& v) {
  const std::string& r = v.rule;
  return r.find("required, missing") != std::string::npos ||
         r.find("required by US Core") != std::string::npos || r.rfind("app-", 0) == 0 ||
         r.rfind("us-core-", 0) == 0;
}

bool hex32(const std::string& s) {
  if (s.size() != 32) {
    return false;
  }
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  static const MapOptions options = [] {
    MapOptions o;
    o.id_key = std::string(32, 'k');
    o.default_zone = "+02:00";
    return o;
  }();
  auto mapped = mapHl7v2(text, options);
  if (!mapped) {
    check(!mapped.error().message.empty(), "error without a message");
    return 0;
  }
  const psa::json::Value& bundle = mapped.value().bundle;
  const std::string once = psa::json::serialize(bundle);
  auto again = psa::json::parse(once);
  check(again.ok() && psa::json::serialize(again.value()) == once, "round trip");
  for (const auto& e : bundle.find("entry")->items()) {
    const psa::json::Value* r = e.find("resource");
    const std::string id = r->getString("id");
    check(hex32(id), "id");
    check(e.find("request")->getString("url") == r->getString("resourceType") + "/" + id, "url");
  }
  for (const Violation& v : validateResource(bundle)) {
    check(allowed(v), "mapper produced malformed FHIR:", v.text());
  }
  return 0;
}
