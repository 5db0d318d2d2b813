// `pms-agent validate FILE [--as hl7v2] [--zone Z] [--json]`: for a file a technician exported,
// what the integration engine would publish with `"normalize": "fhir-r4"` (the FHIR R4 Bundle
// of each message after the default minimum-necessary policy) and every validation error.
// Needs no running agent. The output shows message content on the technician's terminal;
// nothing is logged. Exit 0 when everything maps to valid resources, 1 when anything fails,
// 2 on usage errors.
#include <cctype>
#include <iostream>

#include "command.h"
#include "hl7_file.h"
#include "psa/adapters/fhir_map/hl7_to_fhir.h"
#include "psa/adapters/fhir_map/validate.h"
#include "psa/adapters/hl7/message.h"
#include "psa/adapters/policy/field_policy.h"
#include "psa/store/json.h"

namespace psa::agent {
namespace {

namespace fhir = psa::adapters::fhir_map;

// Ids shown are derived with this preview key, not the site's policy key: they are stable
// from run to run, but differ from the ids the agent publishes.
constexpr const char* kPreviewKey = "pms-agent validate preview id key";

bool zoneOk(const std::string& z) {
  return z.empty() || z == "Z" ||
         (z.size() == 6 && (z[0] == '+' || z[0] == '-') && z[3] == ':' &&
          std::isdigit(static_cast<unsigned char>(z[1])) &&
          std::isdigit(static_cast<unsigned char>(z[2])) &&
          std::isdigit(static_cast<unsigned char>(z[4])) &&
          std::isdigit(static_cast<unsigned char>(z[5])));
}

int validate(const po::variables_map& vm, CommandContext& ctx) {
  const std::string file = vm["file"].as<std::string>();
  const std::string as = vm["as"].as<std::string>();
  const bool as_json = vm.count("json") > 0;
  fhir::MapOptions options;
  options.id_key = kPreviewKey;
  options.default_zone = vm.count("zone") ? vm["zone"].as<std::string>() : std::string();
  if (as != "hl7v2") {
    ctx.err << "validate: --as " << as
            << ": this release maps hl7v2 only (csv and vendor+json mappings are not built yet)\n";
    return kExitUsage;
  }
  if (!zoneOk(options.default_zone)) {
    ctx.err << "validate: --zone expects Z or +HH:MM / -HH:MM\n";
    return kExitUsage;
  }
  auto read = readMessages(file);
  if (!read) {
    ctx.err << "FAIL  " << read.error().message << "\n";
    return kExitFailure;
  }
  auto policy = adapters::policy::FieldPolicy::build({});  // the default SSN mask
  if (!policy) {
    ctx.err << "FAIL  " << policy.error().message << "\n";
    return kExitFailure;
  }
  const FileMessages& fm = *read.value();
  bool all_ok = true;
  json::Value report = json::Value::array();
  for (const auto& item : fm.items) {
    adapters::hl7::Message msg;
    const bool parsed = msg.parse(item.body).ok();
    const std::string label = parsed ? std::string(msg.messageType()) + "^" +
                                           std::string(msg.triggerEvent()) + " " +
                                           std::string(msg.controlId())
                                     : std::string("(does not parse)");
    json::Value entry = json::Value::object(
        {{"at", json::Value::string(where(item))}, {"message", json::Value::string(label)}});
    auto mapped = fhir::mapHl7v2(item.body, options);
    if (!mapped) {
      all_ok = false;
      entry.set("error", json::Value::string(mapped.error().message));
      if (!as_json) {
        ctx.out << "FAIL  " << where(item) << "  " << label << ": " << mapped.error().message
                << "\n";
      }
      report.push(std::move(entry));
      continue;
    }
    // What would be published: the Bundle after the default policy.
    const std::string payload = json::serialize(mapped.value().bundle);
    auto applied = policy.value()->apply(mapped.value().kind, store::format::kFhirJson, payload);
    auto published = json::parse(applied.changed ? applied.payload : payload);
    const json::Value& bundle = published ? published.value() : mapped.value().bundle;
    const auto violations = fhir::validateResource(bundle);
    all_ok = all_ok && violations.empty();
    json::Value errors = json::Value::array();
    for (const auto& v : violations) {
      errors.push(json::Value::object(
          {{"entry", json::Value::integer(v.entry)}, {"error", json::Value::string(v.text())}}));
    }
    if (as_json) {
      entry.set("kind", json::Value::string(std::string(store::kindName(mapped.value().kind))));
      entry.set("normalized_from", json::Value::string(mapped.value().normalized_from));
      entry.set("bundle", bundle);
      entry.set("errors", std::move(errors));
      report.push(std::move(entry));
      continue;
    }
    ctx.out << (violations.empty() ? "OK    " : "FAIL  ") << where(item) << "  " << label << " -> "
            << store::kindName(mapped.value().kind) << ", " << bundle.find("entry")->items().size()
            << " resources (" << mapped.value().normalized_from << ")\n";
    for (const auto& v : violations) {
      ctx.out << "    ERR " << v.text();
      if (v.entry >= 0) {
        ctx.out << "  [entry " << v.entry << "]";
      }
      ctx.out << "\n";
    }
    ctx.out << json::serialize(bundle, true) << "\n";
  }
  if (as_json) {
    ctx.out << json::serialize(json::Value::object(
                                   {{"file", json::Value::string(file)},
                                    {"ok", json::Value::boolean(all_ok)},
                                    {"definitions", json::Value::string(fhir::definitionsSource())},
                                    {"messages", std::move(report)}}),
                               true)
            << "\n";
  }
  return all_ok ? kExitOk : kExitFailure;
}

}  // namespace

void addValidateCommand(CommandTable& table) {
  table.add(Command{
      "validate", "FILE [--as hl7v2] [--zone +HH:MM]",
      "show the FHIR R4 the engine would publish for a file, and every validation error",
      "FILE holds HL7 v2 messages (as for hl7 inspect). Each is mapped to a FHIR R4\n"
      "transaction Bundle (the tables of `\"normalize\": \"fhir-r4\"`), the default SSN mask\n"
      "applied, and validated against the R4 base definitions and US Core. Times without a\n"
      "zone (in the field and in MSH-7) take --zone, else keep only their date.\n"
      "Resource ids are computed with a preview key, not the site's. The output shows\n"
      "message content: keep it off tickets and chat. Exit 1 if any message fails.",
      [](po::options_description& o, po::positional_options_description& p) {
        o.add_options()("file", po::value<std::string>()->required(), "exported file")(
            "as", po::value<std::string>()->default_value("hl7v2"),
            "source format: hl7v2 (csv, vendor+json: not yet)")("zone", po::value<std::string>(),
                                                                "UTC offset for times without one")(
            "json", "machine-readable output");
        p.add("file", 1);
      },
      validate});
}

}  // namespace psa::agent
