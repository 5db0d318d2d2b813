#include "psa/adapters/discover/hl7_profile.h"

#include <algorithm>
#include <array>

#include "psa/adapters/hl7/batch.h"
#include "psa/adapters/hl7/message.h"
#include "psa/adapters/hl7/mllp.h"
#include "psa/adapters/hl7/validate.h"

namespace psa::adapters::discover {
namespace {

namespace hl7 = psa::adapters::hl7;

// Fields of type CX (extended composite id) whose repetitions are counted by identifier type.
struct CxField {
  std::string_view segment;
  int field;
};
constexpr std::array<CxField, 9> kCxFields = {{{"PID", 2},
                                               {"PID", 3},
                                               {"PID", 4},
                                               {"PID", 18},
                                               {"MRG", 1},
                                               {"MRG", 2},
                                               {"MRG", 3},
                                               {"NK1", 33},
                                               {"GT1", 2}}};

// Distinct sending applications/facilities kept to count them (bounded memory).
constexpr size_t kMaxDistinct = 10000;

std::string fieldRef(std::string_view segment, int field) {
  return std::string(segment) + "-" + std::to_string(field);
}

// A code as printed, or a placeholder that says it was not a code.
std::string codeOr(std::string_view raw, size_t max_len, std::string_view placeholder) {
  return isPrintableCode(raw, max_len) ? std::string(raw) : std::string(placeholder);
}

// MSH-12.1 as printed: digits and dots only.
std::string versionOr(std::string_view v) {
  const bool ok = !v.empty() && v.size() <= 8 && std::all_of(v.begin(), v.end(), [](char c) {
    return (c >= '0' && c <= '9') || c == '.';
  });
  return ok ? std::string(v) : v.empty() ? std::string("(none)") : std::string("(other)");
}

// "HL7 101 at MSH-10": code and location only (the issue text is PHI-free too, but the
// location is all a technician needs to find it in the sample).
std::string issueKey(const hl7::Issue& issue) {
  std::string s = "HL7 " + std::to_string(static_cast<int>(issue.code)) + " (" +
                  std::string(hl7::errorCodeText(issue.code)) + ")";
  const std::string where = issue.location.toString();
  if (!where.empty()) {
    s += " at " + where;
  }
  return s;
}

// The type key of a message: TYPE^TRIGGER (or TYPE), "(unreadable)" when MSH-9 is not codes.
std::string typeKey(const hl7::Message& msg) {
  const std::string_view type = msg.messageType();
  const std::string_view trigger = msg.triggerEvent();
  if (type.size() != 3 || !isPrintableCode(type, 3)) {
    return "(unreadable)";
  }
  if (trigger.empty()) {
    return std::string(type);
  }
  if (!isPrintableCode(trigger, 8)) {
    return "(unreadable)";
  }
  return std::string(type) + "^" + std::string(trigger);
}

void countCxTypes(const hl7::Message& msg, Hl7TypeStats& stats, std::set<std::string>& ssn) {
  for (size_t seg = 0; seg < msg.segmentCount(); ++seg) {
    const std::string_view id = msg.segmentId(seg);
    for (const auto& cx : kCxFields) {
      if (cx.segment != id) {
        continue;
      }
      const std::string ref = fieldRef(id, cx.field);
      const int reps = msg.repetitionCount(seg, cx.field);
      for (int rep = 1; rep <= reps; ++rep) {
        if (!msg.get(seg, cx.field, rep, 1).hasValue()) {
          continue;
        }
        const hl7::Element type = msg.get(seg, cx.field, rep, 5);
        const std::string code =
            type.hasValue() ? codeOr(type.raw, 6, "(other)") : std::string("(none)");
        ++stats.identifier_types[ref][code];
        if (code == "SS") {
          ssn.insert(ref + " (SS)");
        }
      }
    }
  }
}

}  // namespace

bool isPrintableCode(std::string_view text, size_t max_len) {
  return !text.empty() && text.size() <= max_len &&
         std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); });
}

std::string printableAscii(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) {
      c = '?';
    }
  }
  return out;
}

bool looksLikeSsn(std::string_view s) {
  size_t i = 0;
  auto digits = [&](int n) {
    for (int k = 0; k < n; ++k, ++i) {
      if (i >= s.size() || s[i] < '0' || s[i] > '9') {
        return false;
      }
    }
    return true;
  };
  auto dash = [&] {
    if (i < s.size() && s[i] == '-') {
      ++i;
    }
  };
  if (!digits(3)) {
    return false;
  }
  dash();
  if (!digits(2)) {
    return false;
  }
  dash();
  return digits(4) && i == s.size();
}

size_t Hl7Profiler::addFile(std::string_view bytes) {
  ++files_;
  size_t found = 0;
  if (!bytes.empty() && bytes.front() == hl7::kMllpStart) {
    hl7::MllpDecoder decoder(size_t{1} << 30);
    (void)decoder.feed(bytes);
    auto take = [&](const hl7::MllpEvent& ev) {
      if (ev.type == hl7::MllpEvent::Type::frame) {
        if (!ev.data.empty()) {
          addMessage(ev.data);
          ++found;
        }
      } else if (ev.fault != hl7::MllpFault::junk_before_start) {
        ++file_errors_["MLLP framing: " + std::string(hl7::mllpFaultName(ev.fault))];  // a name
      }
    };
    while (auto ev = decoder.next()) {
      take(*ev);
    }
    if (auto ev = decoder.finish()) {
      take(*ev);
    }
    return found;
  }
  auto split = hl7::splitMessages(bytes);
  if (!split) {
    // The splitter's messages name lines and rules, never content.
    ++file_errors_[printableAscii(split.error().message)];
    return 0;
  }
  const hl7::Hl7File& f = split.value();
  batches_ += f.batches.size();
  if (auto st = f.checkCounts(); !st) {
    ++file_errors_["batch counts: " + printableAscii(st.error().message)];
  }
  for (const auto& m : f.messages) {
    addMessage(m.text);
  }
  return f.messages.size();
}

void Hl7Profiler::addMessage(std::string_view text) {
  ++messages_;
  profile(text);
}

void Hl7Profiler::profile(std::string_view text) {
  hl7::Message msg;
  if (!msg.parse(text)) {
    ++malformed_;
    ++parse_errors_[issueKey(msg.failure())];
    return;
  }
  for (const auto& issue : hl7::validate(msg)) {
    ++validation_[issueKey(issue)];
  }
  ++versions_[versionOr(msg.version())];
  ++encodings_[printableAscii(std::string(1, msg.delimiters().field) +
                              msg.delimiters().encodingCharacters())];
  ++charsets_[std::string(hl7::charsetName(msg.charset()))];
  ++processing_ids_[codeOr(msg.processingId(), 3, "(other)")];
  for (auto [field, set] : {std::pair{3, &sending_apps_}, std::pair{4, &sending_facilities_}}) {
    const hl7::Element e = msg.get(0, field, 0);
    if (e.hasValue() && set->size() < kMaxDistinct) {
      set->emplace(e.raw);
    }
  }

  Hl7TypeStats& stats = types_[typeKey(msg)];
  ++stats.count;
  std::set<std::string> segments;
  std::set<std::string> fields;
  std::set<std::string> ssn;
  for (size_t seg = 0; seg < msg.segmentCount(); ++seg) {
    const std::string_view id = msg.segmentId(seg);
    segments.insert(hl7::isSegmentId(id) ? std::string(id) : std::string("(invalid id)"));
  }
  const hl7::Delimiters& d = msg.delimiters();
  for (size_t seg = 0; seg < msg.segmentCount(); ++seg) {
    const std::string_view id = msg.segmentId(seg);
    if (!hl7::isSegmentId(id)) {
      continue;
    }
    const bool header = id == "MSH" || id == "FHS" || id == "BHS";
    for (int f = 1; f <= msg.fieldCount(seg); ++f) {
      const std::string_view raw = msg.field(seg, f).raw;
      if (header && f <= 2) {
        fields.insert(fieldRef(id, f));  // the delimiters themselves
        continue;
      }
      // Split into the smallest pieces once (no path strings): a field is filled when a
      // piece holds a value (not empty, not the HL7 null ""), SSN-like when a piece looks so.
      bool filled = false;
      bool ssn_like = false;
      size_t start = 0;
      for (size_t i = 0; i <= raw.size(); ++i) {
        if (i < raw.size() && raw[i] != d.component && raw[i] != d.repetition &&
            raw[i] != d.subcomponent) {
          continue;
        }
        const std::string_view piece = raw.substr(start, i - start);
        filled = filled || (!piece.empty() && piece != "\"\"");
        ssn_like = ssn_like || looksLikeSsn(piece);
        start = i + 1;
      }
      if (filled) {
        fields.insert(fieldRef(id, f));
      }
      if (ssn_like) {
        ssn.insert(fieldRef(id, f));
      }
    }
  }
  countCxTypes(msg, stats, ssn);
  for (const auto& s : segments) {
    ++stats.segments[s];
    if (s.front() == 'Z') {
      ++z_segments_[s];
    }
  }
  for (const auto& f : fields) {
    ++stats.fields[f];
  }
  for (const auto& s : ssn) {
    ++ssn_[s];
  }
}

std::vector<std::string> Hl7Profiler::suggestedMessageTypes() const {
  std::vector<std::string> out;
  for (const auto& [key, stats] : types_) {
    if (key.front() != '(') {
      out.push_back(key);
    }
  }
  return out;
}

std::vector<std::string> Hl7Profiler::policyNotes() const {
  std::vector<std::string> notes;
  const uint64_t n = analysed();
  if (!ssn_.empty()) {
    std::string refs;
    for (const auto& [ref, count] : ssn_) {
      refs += (refs.empty() ? "" : ", ") + ref + " (" + std::to_string(count) + "/" +
              std::to_string(n) + ")";
    }
    notes.push_back("SSN-like values appear in " + refs +
                    ": keep SSNs masked; drop these fields unless the practice needs them");
  }
  uint64_t in1 = 0;
  for (const auto& [key, stats] : types_) {
    auto it = stats.segments.find("IN1");
    in1 += it == stats.segments.end() ? 0 : it->second;
  }
  if (in1 > 0) {
    notes.push_back("IN1 (insurance) is present in " + std::to_string(in1) + "/" +
                    std::to_string(n) +
                    " messages: send it only if billing needs it (minimum necessary)");
  }
  if (!z_segments_.empty()) {
    notes.push_back(
        "Z-segments are site-specific: ask the practice what they carry before "
        "relaying them");
  }
  if (notes.empty() && n > 0) {
    notes.push_back("no SSN-like values and no IN1 seen: the default policy fits");
  }
  return notes;
}

}  // namespace psa::adapters::discover
