// libFuzzer target: HL7 v2 parsing and everything downstream of it on arbitrary bytes.
// Besides "no crash, no leak, no UB" it checks invariants:
//  - every accessor stays inside the buffer, every decoded value is valid UTF-8;
//  - every path printed by inspect resolves back to the same element;
//  - the batched fast path and the checked slow path of the parser agree;
//  - every ACK (normal or reject) is itself a parseable message: MSH, MSA, ERR...;
//  - the file splitter's messages are views inside the input.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "psa/adapters/hl7/ack.h"
#include "psa/adapters/hl7/batch.h"
#include "psa/adapters/hl7/classify.h"
#include "psa/adapters/hl7/identity.h"
#include "psa/adapters/hl7/inspect.h"
#include "psa/adapters/hl7/message.h"
#include "psa/adapters/hl7/validate.h"

namespace hl7 = psa::adapters::hl7;

namespace {

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

bool validUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<unsigned char>(s[i]);
    size_t len = b < 0x80           ? 1
                 : (b >> 5) == 0x6  ? 2
                 : (b >> 4) == 0xE  ? 3
                 : (b >> 3) == 0x1E ? 4
                                    : 0;
    if (len == 0 || i + len > s.size()) {
      return false;
    }
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) {
        return false;
      }
    }
    i += len;
  }
  return true;
}

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

class FixedClock : public psa::Clock {
 public:
  std::chrono::system_clock::time_point now() const override {
    return std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
  }
  std::chrono::steady_clock::time_point steady() const override { return {}; }
};

const hl7::AckBuilder& ackBuilder(hl7::AckMode mode) {
  static const auto make = [](hl7::AckMode m) {
    hl7::AckOptions o;
    o.mode = m;
    o.clock = std::make_shared<FixedClock>();
    o.control_id = [](std::string& out) { out += "FUZZACK1"; };
    return hl7::AckBuilder(o);
  };
  static const hl7::AckBuilder automatic = make(hl7::AckMode::automatic);
  static const hl7::AckBuilder original = make(hl7::AckMode::original);
  static const hl7::AckBuilder enhanced = make(hl7::AckMode::enhanced);
  switch (mode) {
    case hl7::AckMode::original:
      return original;
    case hl7::AckMode::enhanced:
      return enhanced;
    default:
      return automatic;
  }
}

void checkAck(const std::string& ack) {
  hl7::Message a;
  check(a.parse(ack).ok());
  check(a.segmentCount() >= 2);
  check(a.segmentId(0) == "MSH");
  check(a.segmentId(1) == "MSA");
  for (size_t s = 2; s < a.segmentCount(); ++s) {
    check(a.segmentId(s) == "ERR");
  }
}

void exerciseParsed(const hl7::Message& m, std::string_view input) {
  const std::string_view text = m.text();
  check(text.data() == input.data());
  check(inside(m.content(), text));
  std::string decoded;
  for (size_t s = 0; s < m.segmentCount(); ++s) {
    check(inside(m.segmentText(s), text));
    check(m.occurrenceOf(s) >= 1);
    const int fields = m.fieldCount(s);
    check(m.field(s, fields + 1).absent());
    for (int f = 1; f <= fields && f <= 64; ++f) {
      hl7::Element e = m.field(s, f);
      check(e.present());
      check(inside(e.raw, text));
      const int reps = m.repetitionCount(s, f);
      check(reps >= 1);
      for (int r = 1; r <= reps && r <= 8; ++r) {
        const int comps = m.componentCount(s, f, r);
        check(comps >= 1);
        for (int c = 1; c <= comps && c <= 8; ++c) {
          const int subs = m.subcomponentCount(s, f, r, c);
          check(subs >= 1);
          hl7::Element leaf = m.get(s, f, r, c, subs);
          check(leaf.present());
          check(inside(leaf.raw, text));
          check(m.get(s, f, r, c, subs + 1).absent());
        }
        check(m.get(s, f, r, comps + 1).absent());
      }
      check(m.get(s, f, reps + 1).absent());
      decoded.clear();
      m.decodeTo(e, decoded);
      check(validUtf8(decoded));
    }
  }
  hl7::forEachLeaf(m, {true}, [&](const hl7::Leaf& leaf) {
    hl7::Element back = m.get(leaf.path);
    check(back.raw.data() == leaf.element.raw.data() || leaf.element.raw.empty());
    check(back.raw.size() == leaf.element.raw.size());
    check(back.presence == leaf.element.presence);
    check(validUtf8(hl7::leafValue(m, leaf)));
  });
  if (input.size() < 1024) {  // the renderers walk the same leaves again: small inputs only
    check(validUtf8(hl7::inspectText(m)));
    check(validUtf8(hl7::inspectJson(m)));
  }
  (void)m.messageType();
  (void)m.triggerEvent();
  (void)m.messageStructure();
  (void)hl7::Classifier().classify(m);
  check(hl7::dedupeIdentity(m).size() > 64);

  hl7::ValidationRules rules;
  rules.required_segments = {"PID", "EVN"};
  rules.accepted_message_types = {"ADT^A01", "ORU"};
  std::vector<hl7::Issue> issues = hl7::validate(m, rules);
  check(issues.size() <= rules.max_issues);
  for (const hl7::Issue& i : issues) {
    check(validUtf8(i.describe()));
  }
  const hl7::Outcome outcome = hl7::outcomeFor(issues);
  // One ACK mode per input (chosen by its size) keeps the target fast.
  const auto mode = static_cast<hl7::AckMode>(input.size() % 3);
  const hl7::AckBuilder& b = ackBuilder(mode);
  (void)b.shouldSend(m, outcome);
  std::string ack = b.build(m, outcome, issues);
  checkAck(ack);
  if (m.delimiters().usable()) {
    hl7::Message a;
    check(a.parse(ack).ok());
    check(a.field(1, 2).raw == m.field(0, 10).raw);  // MSA-2 echoes MSH-10 byte for byte
  }
}

// The checked one-event-at-a-time path (small nesting limits) must build the same index as
// the batched fast path, whenever the small limits are not hit.
void compareSlowPath(const hl7::Message& fast, std::string_view input) {
  hl7::Limits small;
  small.max_repetitions = 50;
  small.max_components = 50;
  small.max_subcomponents = 50;
  hl7::Message slow;
  if (!slow.parse(input, small).ok()) {
    check(slow.failure().errc == psa::Errc::limit);
    return;
  }
  check(slow.segmentCount() == fast.segmentCount());
  for (size_t s = 0; s < fast.segmentCount(); ++s) {
    check(slow.segmentText(s).data() == fast.segmentText(s).data());
    check(slow.segmentText(s).size() == fast.segmentText(s).size());
    check(slow.fieldCount(s) == fast.fieldCount(s));
    for (int f = 1; f <= fast.fieldCount(s); ++f) {
      check(slow.field(s, f).raw.data() == fast.field(s, f).raw.data());
      check(slow.field(s, f).raw.size() == fast.field(s, f).raw.size());
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  hl7::Limits limits;
  limits.max_message_bytes = 1u << 20;
  hl7::Message m;
  if (m.parse(input, limits).ok()) {
    exerciseParsed(m, input);
    compareSlowPath(m, input);
  } else {
    check(m.failure().code != hl7::ErrorCode::none);
    check(!m.parsed());
    check(m.get("MSH-9").absent());
    checkAck(
        ackBuilder(static_cast<hl7::AckMode>(input.size() % 3)).buildReject(input, m.failure()));
    check(hl7::validate(m).size() == 1);
  }
  // Paths from the input itself.
  std::string_view path_text = input.substr(0, 24);
  path_text = path_text.substr(0, path_text.find('\n'));
  if (auto path = hl7::parsePath(path_text); path.ok()) {
    hl7::Element e = m.get(*path);
    check(inside(e.raw, m.text()));
    check(hl7::parsePath(path->toString()).ok());
  }
  // The same bytes as a file.
  if (auto file = hl7::splitMessages(input); file.ok()) {
    for (const hl7::FileMessage& msg : file->messages) {
      check(inside(msg.text, input));
      check(input.substr(msg.offset, msg.text.size()) == msg.text);
    }
    for (const hl7::Batch& b : file->batches) {
      check(b.first_message + b.message_count <= file->messages.size());
    }
    (void)file->checkCounts();
  }
  return 0;
}
