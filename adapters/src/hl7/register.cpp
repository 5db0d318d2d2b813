// Registers the `hl7-mllp` adapter type: schema, factory and `pms-agent check` diagnostics.
#include "hl7/mllp_listener.h"
#include "hl7/mllp_settings.h"
#include "psa/adapters/source.h"

namespace psa::adapters {

void registerMllpSource(SourceRegistry& registry) {
  SourceFactory f;
  f.type = "hl7-mllp";
  f.description =
      "HL7 v2 over MLLP (TCP or TLS): each message is committed to the queue before its ACK";
  f.schema = hl7::mllpSchema();
  f.create = [](const json::Value& config, SourceContext& ctx) -> Result<SourcePtr> {
    auto settings = hl7::parseMllpSettings(config, ctx.state_dir);
    if (!settings) {
      return std::move(settings).error();
    }
    return hl7::makeMllpListener(std::move(settings).value(), ctx);
  };
  f.check = [](const json::Value& config,
               const std::filesystem::path& state_dir) -> std::vector<CheckResult> {
    auto settings = hl7::parseMllpSettings(config, state_dir);
    if (!settings) {
      return {CheckResult{CheckResult::Level::fail, "adapter " + config.getString("name"),
                          settings.error().message}};
    }
    return hl7::checkMllpListener(settings.value(), state_dir);
  };
  registry.add(std::move(f));
}

}  // namespace psa::adapters
