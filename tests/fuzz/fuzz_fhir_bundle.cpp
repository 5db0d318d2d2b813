// libFuzzer target: FHIR page parsing of the fhir-poll adapter (searchset/history Bundles,
// Bulk NDJSON lines and manifests) and the vendor JSON list pages of rest-poll. Invariants:
// never crash; every item span lies inside the input; a parse error never quotes input text.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "psa/adapters/api/fhir.h"
#include "psa/adapters/api/vendor.h"

namespace api = psa::adapters::api;

namespace {

void checkSpan(std::string_view text, size_t offset, size_t length) {
  if (offset > text.size() || length > text.size() - offset) {
    __builtin_trap();
  }
}

void checkError(const psa::Error& e) {
  // Quoted text is blanked: between quotes only "..." may appear.
  const std::string& m = e.message;
  for (size_t q = m.find('"'); q != std::string::npos; q = m.find('"', q + 1)) {
    const size_t close = m.find('"', q + 1);
    if (close == std::string::npos) {
      break;
    }
    if (m.compare(q + 1, close - q - 1, "...") != 0 && m.find("Bundle") == std::string::npos &&
        m.find("resourceType") == std::string::npos) {
      __builtin_trap();
    }
    q = close;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  api::FhirLimits limits;
  limits.max_depth = 32;
  limits.max_entries = 1000;
  if (auto page = api::parseBundlePage(text, limits)) {
    for (const auto& item : page->items) {
      checkSpan(text, item.offset, item.length);
      (void)api::fhirIdentity(item.ref, item.deleted);
      (void)api::kindForFhirType(item.ref.type);
    }
  } else {
    checkError(page.error());
  }
  if (auto item = api::parseNdjsonResource(text)) {
    checkSpan(text, item->offset, item->length);
  }
  if (auto items = api::parseNdjsonDeleted(text)) {
    for (const auto& i : *items) {
      checkSpan(text, i.offset, i.length);
    }
  }
  (void)api::parseBulkManifest(text);
  (void)api::summarizeErrorBody(text);
  api::VendorPageSpec spec;
  spec.items_keys = {"results", "data", "items"};
  spec.id_field = "id";
  spec.ts_field = "updated_at";
  spec.tombstone_fields = {"archived", "deleted_flag"};
  if (auto page = api::parseVendorPage(text, spec)) {
    for (const auto& item : page->items) {
      checkSpan(text, item.offset, item.length);
    }
  }
  spec.id_field = "ID";
  if (auto u = api::parseUnityAnswer(text, "GetPatient", spec)) {
    for (const auto& item : u->rows.items) {
      checkSpan(text, item.offset, item.length);
    }
  }
  return 0;
}
