// HL7 v2 -> FHIR R4 normalisation rate on one core: map (tables, HMAC ids, Bundle), serialise,
// validate, for an ADT^A01 and an ORU^R01 with 20 OBX. Prints figures; never fails.
//
//   build/bin/fhir_map_bench [seconds-per-figure, default 1]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "hl7_samples.h"
#include "psa/adapters/fhir_map/hl7_to_fhir.h"
#include "psa/adapters/fhir_map/validate.h"
#include "psa/store/json.h"

namespace fhir = psa::adapters::fhir_map;
using Clock = std::chrono::steady_clock;

namespace {

volatile size_t g_sink = 0;

// An ORU^R01 with `n` numeric OBX.
std::string oru(int n) {
  std::string m =
      "MSH|^~\\&|LABSYS|GOODLAB|PSAGENT|PRACTICE0042|20240117080000-0500||ORU^R01^ORU_R01|MSG1|P|"
      "2.5.1\rPID|1||MRN10001^^^GOODHEALTH^MR||DOE^JANE||19800101|F\rOBR|1|ORD1|FIL1|80053^CMP^CPT"
      "|||20240117070000||||||||||||||20240117080000|||F\r";
  for (int i = 1; i <= n; ++i) {
    m += "OBX|" + std::to_string(i) + "|NM|" + std::to_string(1000 + i) + "-1^ANALYTE^LN||" +
         std::to_string(i) + ".5|mg/dL^mg/dL^UCUM|1.0-9.0|N|||F|||20240117070000\r";
  }
  return m;
}

template <class F>
double rate(double seconds, F&& f) {
  size_t n = 0;
  const auto start = Clock::now();
  const auto until = start + std::chrono::duration<double>(seconds);
  while (Clock::now() < until) {
    for (int i = 0; i < 16; ++i) {
      f();
    }
    n += 16;
  }
  return static_cast<double>(n) / std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
  fhir::MapOptions o;
  o.id_key = std::string(32, 'k');
  o.default_zone = "-05:00";
  const std::string adt = psa::test::hl7Corpus("adt_a01_v231.hl7");
  const std::string lab = oru(20);
  std::printf("FHIR R4 normalisation, one core (%s)\n", fhir::definitionsSource().c_str());
  for (const auto& [name, msg] :
       {std::pair<const char*, const std::string*>{"ADT^A01", &adt}, {"ORU^R01 20 OBX", &lab}}) {
    const double map_only = rate(seconds, [&] {
      auto n = fhir::mapHl7v2(*msg, o);
      g_sink = g_sink + (n ? n.value().bundle.members().size() : 0);
    });
    const double full = rate(seconds, [&] {
      auto n = fhir::mapHl7v2(*msg, o);
      const std::string payload = psa::json::serialize(n.value().bundle);
      g_sink = g_sink + payload.size() + fhir::validateResource(n.value().bundle).size();
    });
    std::printf("  %-16s map %9.0f msg/s   map+serialise+validate %9.0f msg/s\n", name, map_only,
                full);
  }
  return 0;
}
