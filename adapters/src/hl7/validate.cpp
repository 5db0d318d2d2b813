#include "psa/adapters/hl7/validate.h"

#include <algorithm>
#include <array>

namespace psa::adapters::hl7 {
namespace {

constexpr std::array<std::string_view, 13> kVersions = {"2.1", "2.2",   "2.3",  "2.3.1", "2.4",
                                                        "2.5", "2.5.1", "2.6",  "2.7",   "2.7.1",
                                                        "2.8", "2.8.1", "2.8.2"};
constexpr std::array<std::string_view, 3> kProcessingIds = {"P", "T", "D"};

bool isAlnum(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool delimiterChar(char c) {
  auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u < 0x7f && !isAlnum(c);
}

template <class List>
bool contains(const List& list, std::string_view value) {
  return std::any_of(list.begin(), list.end(),
                     [&](const auto& item) { return std::string_view(item) == value; });
}

class Collector {
 public:
  Collector(const Message& msg, const ValidationRules& rules, std::vector<Issue>& out)
      : msg_(msg), rules_(rules), out_(out), start_(out.size()) {}

  bool full() const { return out_.size() - start_ >= rules_.max_issues; }
  bool clean() const { return out_.size() == start_; }

  void add(ErrorCode code, size_t segment, int field, int component, std::string text) {
    if (full()) {
      return;
    }
    Issue issue;
    issue.code = code;
    issue.severity = Severity::error;
    issue.errc = Errc::invalid_input;
    issue.segment_index = segment;
    issue.byte_offset = msg_.segmentOffset(segment);
    std::string_view id = msg_.segmentId(segment);
    if (isSegmentId(id)) {
      issue.location.segment = std::string(id);
      issue.location.sequence = msg_.occurrenceOf(segment);
      issue.location.field = field;
      if (field > 0 && component > 0) {
        issue.location.repetition = 1;
        issue.location.component = component;
      }
    }
    issue.text = std::move(text);
    out_.push_back(std::move(issue));
  }

  // A segment-level issue for a segment that does not exist in the message.
  void addMissingSegment(std::string_view id) {
    if (full()) {
      return;
    }
    Issue issue;
    issue.code = ErrorCode::segment_sequence;
    issue.errc = Errc::invalid_input;
    issue.segment_index = msg_.segmentCount();
    issue.byte_offset = msg_.text().size();
    if (isSegmentId(id)) {
      issue.location.segment = std::string(id);
      issue.location.sequence = 1;
    }
    issue.text = "required segment missing";
    out_.push_back(std::move(issue));
  }

 private:
  const Message& msg_;
  const ValidationRules& rules_;
  std::vector<Issue>& out_;
  size_t start_;
};

}  // namespace

bool validate(const Message& msg, const ValidationRules& rules, std::vector<Issue>& out) {
  Collector c(msg, rules, out);
  if (!msg.parsed()) {
    Issue issue = msg.failure();
    if (issue.code == ErrorCode::none) {
      issue.code = ErrorCode::application_internal_error;
      issue.text = "message not parsed";
    }
    out.push_back(std::move(issue));
    return false;
  }
  const size_t segments = msg.segmentCount();
  if (msg.segmentId(0) != "MSH") {
    c.add(ErrorCode::segment_sequence, 0, 0, 0, "first segment is not MSH");
    return false;  // nothing else is meaningful without an MSH
  }
  for (size_t s = 1; s < segments && !c.full(); ++s) {
    std::string_view id = msg.segmentId(s);
    if (!isSegmentId(id)) {
      c.add(ErrorCode::segment_sequence, s, 0, 0,
            "segment " + std::to_string(s + 1) + " has no valid segment id");
    } else if (id == "MSH") {
      c.add(ErrorCode::segment_sequence, s, 0, 0, "more than one MSH segment");
    }
  }

  const Delimiters& d = msg.delimiters();
  if (!delimiterChar(d.field)) {
    c.add(ErrorCode::data_type, 0, 1, 0, "field separator is not a printable symbol");
  }
  std::string_view enc = msg.field(0, 2).raw;
  bool enc_ok = enc.size() == 4 || enc.size() == 5;
  for (size_t k = 0; enc_ok && k < enc.size(); ++k) {
    if (!delimiterChar(enc[k]) || enc[k] == d.field) {
      enc_ok = false;
    }
    for (size_t j = 0; j < k; ++j) {
      if (enc[j] == enc[k]) {
        enc_ok = false;
      }
    }
  }
  if (!enc_ok) {
    c.add(ErrorCode::data_type, 0, 2, 0,
          enc.empty() ? "encoding characters missing"
                      : "encoding characters must be 4 or 5 distinct symbols");
  }

  std::string_view type = msg.messageType();
  std::string_view trigger = msg.triggerEvent();
  if (type.empty()) {
    c.add(ErrorCode::required_field_missing, 0, 9, 1, "message type missing");
  }
  if (trigger.empty() && type != "ACK") {
    c.add(ErrorCode::required_field_missing, 0, 9, 2, "trigger event missing");
  }
  if (!msg.field(0, 10).hasValue()) {
    c.add(ErrorCode::required_field_missing, 0, 10, 0, "message control id missing");
  }
  std::string_view version = msg.version();
  if (version.empty()) {
    c.add(ErrorCode::required_field_missing, 0, 12, 0, "version id missing");
  } else if (rules.accepted_versions.empty() ? !contains(kVersions, version)
                                             : !contains(rules.accepted_versions, version)) {
    c.add(ErrorCode::unsupported_version_id, 0, 12, 1, "version id not supported");
  }
  std::string_view processing = msg.processingId();
  if (!processing.empty() && (rules.accepted_processing_ids.empty()
                                  ? !contains(kProcessingIds, processing)
                                  : !contains(rules.accepted_processing_ids, processing))) {
    c.add(ErrorCode::unsupported_processing_id, 0, 11, 1, "processing id not supported");
  }
  if (!rules.accepted_message_types.empty() && !type.empty()) {
    bool type_listed = false;
    bool pair_listed = false;
    for (const std::string& entry : rules.accepted_message_types) {
      std::string_view e = entry;
      size_t caret = e.find('^');
      std::string_view etype = e.substr(0, caret);
      if (etype != type) {
        continue;
      }
      type_listed = true;
      if (caret == std::string_view::npos || e.substr(caret + 1) == trigger) {
        pair_listed = true;
      }
    }
    if (!type_listed) {
      c.add(ErrorCode::unsupported_message_type, 0, 9, 1, "message type not supported");
    } else if (!pair_listed) {
      c.add(ErrorCode::unsupported_event_code, 0, 9, 2, "trigger event not supported");
    }
  }
  for (const std::string& id : rules.required_segments) {
    if (c.full()) {
      break;
    }
    if (!msg.findSegment(id)) {
      c.addMissingSegment(id);
    }
  }
  return c.clean();
}

std::vector<Issue> validate(const Message& msg, const ValidationRules& rules) {
  std::vector<Issue> out;
  (void)validate(msg, rules, out);
  return out;
}

}  // namespace psa::adapters::hl7
