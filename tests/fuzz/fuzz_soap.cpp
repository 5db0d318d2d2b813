// libFuzzer target: the XML parser and the Kareo SOAP response reader of rest-poll.
// Invariants: never crash, spans inside the input, element spans nested in their parents.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "psa/adapters/api/vendor.h"
#include "psa/adapters/api/xml.h"

namespace api = psa::adapters::api;
namespace xml = psa::adapters::xml;

namespace {

void checkElement(const xml::Element& el, size_t size, size_t lo, size_t hi, int depth) {
  if (el.begin < lo || el.end > hi || el.begin >= el.end || el.end > size || depth > 64) {
    __builtin_trap();
  }
  for (const auto& c : el.children) {
    checkElement(c, size, el.begin, el.end, depth + 1);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  xml::Limits limits;
  limits.max_depth = 48;
  limits.max_elements = 20000;
  if (auto doc = xml::parse(text, limits)) {
    checkElement(*doc, size, 0, size, 0);
    (void)doc->isNil();
  }
  if (auto a = api::parseKareoAnswer(text, "GetPatients", "Patients", "PatientData")) {
    for (const auto& item : a->items) {
      if (item.offset > size || item.length > size - item.offset) {
        __builtin_trap();
      }
    }
  }
  (void)api::parseKareoAnswer(text, "GetAllPatients", "Patients", "PatientData");
  return 0;
}
