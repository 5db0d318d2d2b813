// Rendering of the HL7 profile: one JSON object and a human summary. Only keys of the
// profiler's maps (codes, field references, PHI-free reasons) and counts are printed.
#include <algorithm>
#include <sstream>

#include "psa/adapters/discover/hl7_profile.h"

namespace psa::adapters::discover {
namespace {

json::Value count(uint64_t n) { return json::Value::integer(static_cast<int64_t>(n)); }

json::Value countMap(const std::map<std::string, uint64_t>& m) {
  json::Value v = json::Value::object();
  for (const auto& [key, n] : m) {
    v.set(key, count(n));
  }
  return v;
}

// [{"<label>": key, "count": n}, ...]: for keys that are sentences rather than codes.
json::Value countList(const std::map<std::string, uint64_t>& m, const std::string& label) {
  json::Value a = json::Value::array();
  for (const auto& [key, n] : m) {
    json::Value e = json::Value::object();
    e.set(label, json::Value::string(key));
    e.set("count", count(n));
    a.push(std::move(e));
  }
  return a;
}

json::Value strings(const std::vector<std::string>& items) {
  json::Value a = json::Value::array();
  for (const auto& s : items) {
    a.push(json::Value::string(s));
  }
  return a;
}

json::Value typeEntry(const std::string& key, const Hl7TypeStats& s) {
  json::Value e = json::Value::object();
  e.set("type", json::Value::string(key));
  e.set("count", count(s.count));
  e.set("segments", countMap(s.segments));
  json::Value z = json::Value::array();
  for (const auto& [id, n] : s.segments) {
    if (id.front() == 'Z') {
      z.push(json::Value::string(id));
    }
  }
  e.set("z_segments", std::move(z));
  e.set("fields", countMap(s.fields));
  json::Value ids = json::Value::object();
  for (const auto& [ref, types] : s.identifier_types) {
    ids.set(ref, countMap(types));
  }
  e.set("identifier_types", std::move(ids));
  auto in1 = s.segments.find("IN1");
  e.set("in1", count(in1 == s.segments.end() ? 0 : in1->second));
  return e;
}

// Field references in segment order of first appearance would need the messages; sort by
// segment id, then numerically by field ("PID-3" before "PID-19").
std::vector<std::pair<std::string, uint64_t>> sortedFields(
    const std::map<std::string, uint64_t>& fields) {
  std::vector<std::pair<std::string, uint64_t>> v(fields.begin(), fields.end());
  auto split = [](const std::string& ref) {
    const size_t dash = ref.find('-');
    return std::pair{ref.substr(0, dash), std::stoi(ref.substr(dash + 1))};
  };
  std::sort(v.begin(), v.end(),
            [&](const auto& a, const auto& b) { return split(a.first) < split(b.first); });
  return v;
}

void line(std::ostringstream& out, const std::string& label,
          const std::map<std::string, uint64_t>& m) {
  out << label << ":";
  for (const auto& [key, n] : m) {
    out << " " << key << " x" << n;
  }
  out << "\n";
}

}  // namespace

json::Value Hl7Profiler::report() const {
  json::Value r = json::Value::object();
  r.set("source", json::Value::string("hl7"));
  r.set("files", count(files_));
  r.set("batches", count(batches_));
  r.set("messages", count(messages_));
  r.set("analysed", count(analysed()));
  r.set("malformed", count(malformed_));
  r.set("file_errors", countList(file_errors_, "error"));
  r.set("parse_errors", countList(parse_errors_, "error"));
  r.set("validation_issues", countList(validation_, "issue"));
  r.set("versions", countMap(versions_));
  r.set("encoding_characters", countMap(encodings_));
  r.set("charsets", countMap(charsets_));
  r.set("processing_ids", countMap(processing_ids_));
  json::Value apps = json::Value::object();
  apps.set("distinct", count(sending_apps_.size()));
  r.set("sending_applications", std::move(apps));
  json::Value facilities = json::Value::object();
  facilities.set("distinct", count(sending_facilities_.size()));
  r.set("sending_facilities", std::move(facilities));
  json::Value types = json::Value::array();
  for (const auto& [key, stats] : types_) {
    types.push(typeEntry(key, stats));
  }
  r.set("message_types", std::move(types));
  r.set("z_segments", countMap(z_segments_));
  r.set("ssn_like", countList(ssn_, "field"));
  r.set("suggested_message_types", strings(suggestedMessageTypes()));
  r.set("policy_notes", strings(policyNotes()));
  return r;
}

std::string Hl7Profiler::summary() const {
  std::ostringstream out;
  out << "HL7 discovery: " << messages_ << " message" << (messages_ == 1 ? "" : "s") << " in "
      << files_ << " source" << (files_ == 1 ? "" : "s");
  if (batches_ > 0) {
    out << " (" << batches_ << " batch" << (batches_ == 1 ? "" : "es") << ")";
  }
  out << "; " << analysed() << " analysed, " << malformed_ << " malformed\n";
  for (const auto& [reason, n] : file_errors_) {
    out << "  file problem: " << reason << " (" << n << " file" << (n == 1 ? "" : "s") << ")\n";
  }
  for (const auto& [error, n] : parse_errors_) {
    out << "  malformed: " << error << " x" << n << "\n";
  }
  for (const auto& [issue, n] : validation_) {
    out << "  invalid: " << issue << " x" << n << "\n";
  }
  if (analysed() == 0) {
    return out.str();
  }
  line(out, "versions (MSH-12)", versions_);
  line(out, "encoding characters", encodings_);
  line(out, "charsets (MSH-18)", charsets_);
  line(out, "processing ids (MSH-11)", processing_ids_);
  out << "sending applications (MSH-3): " << sending_apps_.size()
      << " distinct; sending facilities (MSH-4): " << sending_facilities_.size() << " distinct\n";
  out << "message types:\n";
  for (const auto& [key, s] : types_) {
    out << "  " << key << "  x" << s.count << "\n    segments:";
    for (const auto& [id, n] : s.segments) {
      out << " " << id
          << (n == s.count ? "" : " " + std::to_string(n) + "/" + std::to_string(s.count));
    }
    out << "\n    fields filled:";
    for (const auto& [ref, n] : sortedFields(s.fields)) {
      out << " " << ref << " " << n << "/" << s.count;
    }
    out << "\n";
    for (const auto& [ref, types] : s.identifier_types) {
      out << "    " << ref << " identifier types:";
      for (const auto& [code, n] : types) {
        out << " " << code << " " << n;
      }
      out << "\n";
    }
  }
  if (!z_segments_.empty()) {
    line(out, "Z-segments", z_segments_);
  }
  out << "SSN-like values:";
  if (ssn_.empty()) {
    out << " none seen";
  }
  for (const auto& [ref, n] : ssn_) {
    out << " " << ref << " in " << n << "/" << analysed();
  }
  out << "\nsuggested message_types:";
  for (const auto& t : suggestedMessageTypes()) {
    out << " " << t;
  }
  out << "\npolicy:\n";
  for (const auto& note : policyNotes()) {
    out << "  - " << note << "\n";
  }
  return out.str();
}

}  // namespace psa::adapters::discover
