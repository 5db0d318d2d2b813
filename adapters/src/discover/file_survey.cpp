// Grouping of surveyed files into name patterns, the report and the suggested file-drop
// adapter.
#include "psa/adapters/discover/file_survey.h"

#include <algorithm>
#include <cctype>
#include <sstream>

namespace psa::adapters::discover {
namespace {

json::Value count(uint64_t n) { return json::Value::integer(static_cast<int64_t>(n)); }

json::Value strings(const std::set<std::string>& items) {
  json::Value a = json::Value::array();
  for (const auto& s : items) {
    a.push(json::Value::string(s));
  }
  return a;
}

// Runs of letters and single other characters: "visits_*.csv" -> visits _ * . csv.
std::vector<std::string> tokens(const std::string& pattern) {
  std::vector<std::string> out;
  for (char c : pattern) {
    const bool alpha = std::isalpha(static_cast<unsigned char>(c)) != 0;
    if (alpha && !out.empty() && std::isalpha(static_cast<unsigned char>(out.back().back()))) {
      out.back().push_back(c);
    } else {
      out.emplace_back(1, c);
    }
  }
  return out;
}

std::string shape(const std::string& pattern) {
  std::string s;
  for (const auto& t : tokens(pattern)) {
    s += std::isalpha(static_cast<unsigned char>(t.front())) ? "A" : t;
  }
  return s;
}

// Record kind a file name suggests (the technician confirms it).
std::string guessKind(const std::string& pattern) {
  std::string p = pattern;
  std::transform(p.begin(), p.end(), p.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto has = [&](std::initializer_list<const char*> words) {
    return std::any_of(words.begin(), words.end(),
                       [&](const char* w) { return p.find(w) != std::string::npos; });
  };
  if (has({"patient", "demog", "person"})) return "patient";
  if (has({"appoint", "sched", "visit", "encounter"})) return "appointment";
  if (has({"charge", "claim", "bill", "remit", "payment", "ledger"})) return "billing";
  if (has({"provider", "staff", "physician"})) return "provider";
  if (has({"inventory", "stock", "supply"})) return "inventory";
  if (has({"lab", "result", "clinical", "note", "immun", "medic"})) return "clinical";
  return "other";
}

std::string adapterFormat(const FileFormatInfo& info) {
  if (info.format == "csv" && info.encoding != "utf-16") return "csv";
  if (info.format == "hl7" || info.format == "x12") return info.format;
  return "opaque";
}

std::string delimiterName(char d) { return d == '\t' ? "tab" : std::string(1, d); }

json::Value columnsJson(const FileFormatInfo& info) {
  json::Value a = json::Value::array();
  for (size_t k = 0; k < info.columns.size(); ++k) {
    a.push(json::Value::string(info.header ? info.columns[k] : "column" + std::to_string(k + 1)));
  }
  return a;
}

}  // namespace

void FileSurvey::addFile(const std::string& name, std::string_view bytes) {
  ++files_;
  FileFormatInfo info = sniffFile(bytes);
  const std::string pattern = namePattern(name);
  const std::string sig = info.signature();
  auto it = std::find_if(groups_.begin(), groups_.end(), [&](const Group& g) {
    return g.pattern == pattern && g.info.signature() == sig;
  });
  if (it == groups_.end()) {
    groups_.push_back(Group{pattern, info, 0, 0, 0, {}, {}});
    it = groups_.end() - 1;
  }
  ++it->count;
  it->rows += info.rows;
  it->units += info.units;
  it->codes.insert(info.codes.begin(), info.codes.end());
  it->versions.insert(info.versions.begin(), info.versions.end());
  // Names that differ only in words (a patient's name in the file name) share one glob:
  // merge groups of the same shape and content signature, a '*' where the words differ.
  for (auto other = groups_.begin(); other != groups_.end(); ++other) {
    if (other == it || shape(other->pattern) != shape(it->pattern) ||
        other->info.signature() != sig) {
      continue;
    }
    auto a = tokens(other->pattern);
    const auto b = tokens(it->pattern);
    std::string merged;
    for (size_t k = 0; k < a.size(); ++k) {
      merged += a[k] == b[k] ? a[k] : "*";
    }
    other->pattern = merged;
    other->count += it->count;
    other->rows += it->rows;
    other->units += it->units;
    other->codes.insert(it->codes.begin(), it->codes.end());
    other->versions.insert(it->versions.begin(), it->versions.end());
    groups_.erase(it);
    break;
  }
}

void FileSurvey::addAuxiliary(const std::string& name) {
  if (const std::string suffix = markerSuffix(name); !suffix.empty()) {
    ++marker_files_;
    marker_suffixes_.insert(suffix);
  } else if (isTempName(name)) {
    ++temp_files_;
  }
}

std::string FileSurvey::completion() const {
  if (marker_files_ > 0 || watch_.markers > 0) return "marker";
  if (temp_files_ > 0 || watch_.renames > 0) return "rename";
  return "stable";
}

json::Value FileSurvey::report() const {
  json::Value r = json::Value::object();
  r.set("source", json::Value::string("files"));
  r.set("files", count(files_));
  r.set("temp_files", count(temp_files_));
  r.set("marker_files", count(marker_files_));
  json::Value patterns = json::Value::array();
  for (const auto& g : groups_) {
    json::Value e = json::Value::object();
    e.set("pattern", json::Value::string(g.pattern));
    e.set("count", count(g.count));
    e.set("format", json::Value::string(g.info.format));
    if (!g.info.error.empty()) {
      e.set("error", json::Value::string(g.info.error));
    }
    if (g.info.format == "csv") {
      json::Value csv = json::Value::object();
      csv.set("delimiter", json::Value::string(delimiterName(g.info.delimiter)));
      csv.set("encoding", json::Value::string(g.info.encoding));
      csv.set("bom", json::Value::boolean(g.info.bom));
      csv.set("quoted_fields", json::Value::boolean(g.info.quoted));
      csv.set("line_endings", json::Value::string(g.info.line_ending));
      csv.set("header", json::Value::boolean(g.info.header));
      csv.set("columns", columnsJson(g.info));
      csv.set("rows", count(g.rows));
      csv.set("bad_rows", count(g.info.bad_rows));
      e.set("csv", std::move(csv));
    } else {
      e.set(g.info.format == "x12" ? "transaction_sets" : "types", strings(g.codes));
      e.set("versions", strings(g.versions));
      e.set(g.info.format == "x12" ? "transactions" : "units", count(g.units));
      if (g.info.format == "hl7") {
        e.set("batch", json::Value::boolean(g.info.batch));
      }
    }
    e.set("suggested_kind",
          json::Value::string(g.info.format == "x12" ? "billing" : guessKind(g.pattern)));
    patterns.push(std::move(e));
  }
  r.set("patterns", std::move(patterns));
  json::Value c = json::Value::object();
  c.set("watched", json::Value::boolean(watch_.watched));
  c.set("renames", count(watch_.renames));
  c.set("markers", count(watch_.markers + marker_files_));
  c.set("grew_in_place", count(watch_.grew));
  c.set("appeared", count(watch_.appeared));
  c.set("suggested", json::Value::string(completion()));
  r.set("completion", std::move(c));
  return r;
}

std::string FileSurvey::summary() const {
  std::ostringstream out;
  out << "File discovery: " << files_ << " data file" << (files_ == 1 ? "" : "s") << " in "
      << groups_.size() << " pattern" << (groups_.size() == 1 ? "" : "s");
  if (temp_files_ + marker_files_ > 0) {
    out << " (plus " << temp_files_ << " temp and " << marker_files_ << " marker files)";
  }
  out << "\n";
  for (const auto& g : groups_) {
    out << "  " << g.pattern << "  x" << g.count << "  " << g.info.format;
    if (g.info.format == "csv") {
      out << ", delimiter '" << delimiterName(g.info.delimiter) << "', " << g.info.encoding
          << (g.info.bom ? " with BOM" : "") << ", " << g.info.line_ending << " line ends"
          << (g.info.quoted ? ", quoted fields" : "") << ", " << g.rows << " rows";
      if (g.info.bad_rows) {
        out << " (" << g.info.bad_rows << " bad)";
      }
      out << "\n    " << (g.info.header ? "columns:" : "no header row; columns:");
      const json::Value cols = columnsJson(g.info);
      for (const auto& c : cols.items()) {
        out << " " << c.asString();
      }
    } else if (!g.codes.empty() || !g.versions.empty()) {
      out << ", " << g.units << (g.info.format == "x12" ? " transaction sets" : " units");
      out << (g.info.batch ? ", batch envelope" : "") << "\n    types:";
      for (const auto& c : g.codes) out << " " << c;
      out << "; versions:";
      for (const auto& v : g.versions) out << " " << v;
    }
    out << "\n";
    if (!g.info.error.empty()) {
      out << "    problem: " << g.info.error << "\n";
    }
  }
  out << "completion: " << completion();
  if (watch_.watched) {
    out << " (watched: " << watch_.appeared << " appeared, " << watch_.renames << " renamed, "
        << watch_.markers << " markers, " << watch_.grew << " grew in place)";
  } else {
    out << " (not watched; use --watch to observe how files are finished)";
  }
  out << "\n";
  return out.str();
}

json::Value FileSurvey::suggestion(const std::string& path, const std::string& name,
                                   const std::string& vendor) const {
  json::Value a = json::Value::object();
  a.set("name", json::Value::string(name));
  a.set("type", json::Value::string("file-drop"));
  a.set("vendor", json::Value::string(vendor));
  a.set("path", json::Value::string(path));
  json::Value include = json::Value::array();
  json::Value patterns = json::Value::array();
  // The adapter uses the first pattern that matches: the most specific (most literal
  // characters) goes first, so "patients_*.csv" is not shadowed by "*_*.csv".
  std::vector<const Group*> order;
  for (const auto& g : groups_) {
    order.push_back(&g);
  }
  auto literal = [](const std::string& p) {
    return p.size() - std::count(p.begin(), p.end(), '*');
  };
  std::stable_sort(order.begin(), order.end(), [&](const Group* a, const Group* b) {
    return literal(a->pattern) > literal(b->pattern);
  });
  std::set<std::string> seen;
  for (const Group* gp : order) {
    const Group& g = *gp;
    if (g.info.format == "empty" || !seen.insert(g.pattern).second) {
      continue;
    }
    include.push(json::Value::string(g.pattern));
    json::Value p = json::Value::object();
    p.set("match", json::Value::string(g.pattern));
    const std::string format = adapterFormat(g.info);
    p.set("format", json::Value::string(format));
    if (format == "csv" || format == "opaque") {
      p.set("kind", json::Value::string(guessKind(g.pattern)));
    }
    if (format == "csv") {
      json::Value csv = json::Value::object();
      csv.set("delimiter", json::Value::string(delimiterName(g.info.delimiter)));
      csv.set("encoding", json::Value::string(g.info.encoding));
      if (!g.info.header) {
        csv.set("header", json::Value::boolean(false));
        csv.set("columns", columnsJson(g.info));
      }
      p.set("csv", std::move(csv));
    }
    patterns.push(std::move(p));
  }
  if (include.items().empty()) {
    include.push(json::Value::string("*"));
  }
  const std::string first =
      patterns.items().empty() ? "csv" : patterns.items().front().getString("format");
  a.set("include", std::move(include));
  a.set("format", json::Value::string(first));
  a.set("kind", json::Value::string("other"));
  a.set("patterns", std::move(patterns));
  a.set("complete", json::Value::string(completion()));
  if (completion() == "marker" && !(marker_suffixes_.empty() && watch_.marker_suffixes.empty())) {
    std::set<std::string> suffixes = marker_suffixes_;
    suffixes.insert(watch_.marker_suffixes.begin(), watch_.marker_suffixes.end());
    a.set("marker_suffixes", strings(suffixes));
  }
  return a;
}

}  // namespace psa::adapters::discover
