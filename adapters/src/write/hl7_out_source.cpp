// The `hl7-mllp-out` adapter type: an Hl7Outbound delivery engine behind the Source interface
// (status, stop, config apply) and WriteTarget (what the agent's write-back dispatcher uses).
// It produces no records; start() connects nothing (the first delivery does).

#include <atomic>

#include "psa/adapters/write/write_target.h"

namespace psa::adapters::write {
namespace {

class Hl7OutSource final : public Source, public WriteTarget {
 public:
  Hl7OutSource(std::shared_ptr<Hl7Outbound> engine, std::string name)
      : engine_(std::move(engine)), name_(std::move(name)) {}

  const std::string& name() const override { return name_; }
  const std::string& type() const override { return type_; }
  Status start() override {
    started_ = true;
    return {};
  }
  void stop(std::function<void()> done) override {
    started_ = false;
    engine_->stop();
    if (done) {
      done();
    }
  }
  SourceStatus status() const override {
    const Hl7OutboundSettings& s = engine_->settings();
    const Hl7OutboundStats st = engine_->stats();
    SourceStatus out;
    out.state = !started_ ? "stopped" : s.write.enabled ? "ready" : "write-disabled";
    out.counters = {{"connects", st.connects},     {"connect_failures", st.connect_failures},
                    {"sends", st.sends},           {"delivered", st.delivered},
                    {"failed", st.failed},         {"timeouts", st.timeouts},
                    {"stale_acks", st.stale_acks}, {"disconnects", st.disconnects}};
    out.detail.set("connect", json::Value::string(s.host + ":" + std::to_string(s.port)));
    out.detail.set("write_enabled", json::Value::boolean(s.write.enabled));
    out.detail.set("dry_run", json::Value::boolean(s.write.dry_run));
    return out;
  }

  WriteSwitch writeSwitch() const override { return engine_->settings().write; }
  bool acceptsFormat(WriteFormat format) const override { return format == WriteFormat::hl7v2; }
  void deliver(WriteRequest request, std::function<void(DeliveryOutcome)> done) override {
    engine_->deliver(std::move(request), std::move(done));
  }

 private:
  std::shared_ptr<Hl7Outbound> engine_;
  std::string name_;
  std::string type_ = "hl7-mllp-out";
  std::atomic<bool> started_{false};
};

}  // namespace

void registerWriteTargets(SourceRegistry& registry) {
  SourceFactory f;
  f.type = "hl7-mllp-out";
  f.description =
      "HL7 v2 write-back to the PMS's inbound MLLP interface (writes off unless write.enabled)";
  f.schema = hl7OutboundSchema();
  f.create = [](const json::Value& config, SourceContext& ctx) -> Result<SourcePtr> {
    auto settings = parseHl7OutboundSettings(config, ctx.state_dir);
    if (!settings) {
      return std::move(settings).error();
    }
    std::string name = settings->name;
    auto engine =
        Hl7Outbound::create(ctx.io.get_executor(), std::move(settings).value(), ctx.clock);
    if (!engine) {
      return std::move(engine).error();
    }
    return SourcePtr(std::make_shared<Hl7OutSource>(std::move(engine).value(), std::move(name)));
  };
  registry.add(std::move(f));
}

}  // namespace psa::adapters::write
