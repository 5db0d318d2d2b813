// Format detection of one dropped file, reusing the adapter's own readers (CSV, X12, HL7
// splitter) so discovery sees a file the way the file-drop adapter will.
#include <algorithm>
#include <array>
#include <cctype>

#include "psa/adapters/discover/file_survey.h"
#include "psa/adapters/discover/hl7_profile.h"
#include "psa/adapters/file/csv.h"
#include "psa/adapters/file/glob.h"
#include "psa/adapters/file/text_encoding.h"
#include "psa/adapters/file/x12.h"

namespace psa::adapters::discover {
namespace {

namespace file = psa::adapters::file;

constexpr std::array<char, 4> kDelimiters = {',', ';', '\t', '|'};

std::string_view skipBlank(std::string_view s) {
  if (s.substr(0, 3) == "\xEF\xBB\xBF") {
    s.remove_prefix(3);
  }
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\r' || s.front() == '\n' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  return s;
}

std::string lineEndings(std::string_view s) {
  bool lf = false, crlf = false, cr = false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      if (i + 1 < s.size() && s[i + 1] == '\n') {
        crlf = true;
        ++i;
      } else {
        cr = true;
      }
    } else if (s[i] == '\n') {
      lf = true;
    }
  }
  const int kinds = int(lf) + int(crlf) + int(cr);
  return kinds > 1 ? "mixed" : crlf ? "CRLF" : cr ? "CR" : lf ? "LF" : "none";
}

// The delimiter that splits the first lines into the same, largest number of fields.
char guessDelimiter(std::string_view s) {
  std::array<std::vector<size_t>, kDelimiters.size()> counts;
  std::array<size_t, kDelimiters.size()> line{};
  bool quoted = false;
  size_t lines = 0;
  for (size_t i = 0; i < s.size() && lines < 20; ++i) {
    const char c = s[i];
    if (c == '"') {
      quoted = !quoted;
    } else if (!quoted && (c == '\n' || c == '\r')) {
      if (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n') {
        ++i;
      }
      for (size_t d = 0; d < kDelimiters.size(); ++d) {
        counts[d].push_back(line[d]);
        line[d] = 0;
      }
      ++lines;
    } else if (!quoted) {
      for (size_t d = 0; d < kDelimiters.size(); ++d) {
        line[d] += c == kDelimiters[d] ? 1 : 0;
      }
    }
  }
  if (lines == 0) {
    for (size_t d = 0; d < kDelimiters.size(); ++d) {
      counts[d].push_back(line[d]);
    }
  }
  char best = ',';
  size_t best_score = 0;
  for (size_t d = 0; d < kDelimiters.size(); ++d) {
    const auto& v = counts[d];
    // Lines that differ from the first are ragged rows or quoted line breaks: the minimum
    // over the sample keeps a delimiter that appears in every line.
    const size_t score = v.empty() ? 0 : *std::min_element(v.begin(), v.end());
    if (score > best_score) {
      best_score = score;
      best = kDelimiters[d];
    }
  }
  return best;
}

// Column names look like names: letters first, then letters, digits and a few separators.
// A first row of data (dates, numbers, e-mail addresses) does not pass.
bool looksLikeHeader(const std::vector<std::string>& names) {
  if (names.empty()) {
    return false;
  }
  return std::all_of(names.begin(), names.end(), [](const std::string& n) {
    if (n.empty() || n.size() > 64) {
      return false;
    }
    const auto first = static_cast<unsigned char>(n.front());
    if (!(std::isalpha(first) || n.front() == '_' || n.front() == '#')) {
      return false;
    }
    return std::all_of(n.begin(), n.end(), [](char ch) {
      const auto c = static_cast<unsigned char>(ch);
      return std::isalnum(c) || c == '_' || c == ' ' || c == '-' || c == '.' || c == '#' ||
             c == '/' || c == '(' || c == ')';
    });
  });
}

void sniffCsv(std::string_view bytes, FileFormatInfo& info) {
  info.format = "csv";
  if (bytes.substr(0, 2) == "\xFF\xFE" || bytes.substr(0, 2) == "\xFE\xFF") {
    info.encoding = "utf-16";
    info.error = "UTF-16 text is not supported: export as UTF-8 or Windows-1252";
    return;
  }
  info.bom = bytes.substr(0, 3) == "\xEF\xBB\xBF";
  info.encoding = file::findInvalidUtf8(bytes) == std::string_view::npos ? "utf-8" : "windows-1252";
  info.line_ending = lineEndings(bytes.substr(0, 1 << 16));
  info.delimiter = guessDelimiter(bytes.substr(info.bom ? 3 : 0, 1 << 16));
  info.quoted = bytes.find('"') != std::string_view::npos;
  file::CsvOptions options;
  options.delimiter = info.delimiter;
  options.encoding =
      info.encoding == "utf-8" ? file::TextEncoding::utf8 : file::TextEncoding::windows1252;
  auto parser = file::CsvParser::create(options);
  if (!parser) {
    info.error = parser.error().message;
    return;
  }
  auto& p = parser.value();
  p.feed(bytes);
  p.finish();
  for (;;) {
    auto step = p.next();
    if (!step) {
      const auto* fatal = p.fatalIssue();
      // Name and place only: a CSV message may quote a header cell, and in a file without a
      // header that cell is data.
      info.error = fatal != nullptr
                       ? std::string(file::csvErrcName(fatal->code)) + " at line " +
                             std::to_string(fatal->line) + ", byte " + std::to_string(fatal->offset)
                       : std::string("unreadable CSV");
      break;
    }
    if (step.value() != file::CsvParser::Step::row) {
      break;
    }
    ++info.rows;
    info.bad_rows += p.row().error ? 1 : 0;
  }
  info.header = looksLikeHeader(p.header());
  if (info.header) {
    info.columns = p.header();
  } else {
    // Without a header the first row is data: count its columns, never print it.
    info.columns.assign(p.header().size(), std::string());
    info.rows += p.header().empty() ? 0 : 1;
  }
}

void sniffX12(std::string_view bytes, FileFormatInfo& info) {
  info.format = "x12";
  const std::string_view isa = skipBlank(bytes);
  if (isa.size() >= 89 && isPrintableCode(isa.substr(84, 5), 5)) {
    info.versions.insert("ISA " + std::string(isa.substr(84, 5)));
  }
  auto parser = file::X12Parser::create({});
  if (!parser) {
    info.error = parser.error().message;
    return;
  }
  auto& p = parser.value();
  p.feed(bytes);
  p.finish();
  for (;;) {
    auto step = p.next();
    if (!step) {
      const auto* fatal = p.fatalIssue();
      info.error = fatal != nullptr ? std::string(file::x12ErrcName(fatal->code)) + " (" +
                                          printableAscii(fatal->message) + ")"
                                    : std::string("unreadable X12");
      break;
    }
    if (step.value() != file::X12Parser::Step::transaction) {
      break;
    }
    const auto& t = p.transaction();
    ++info.units;
    info.bad_rows += t.error ? 1 : 0;
    if (isPrintableCode(t.transaction_set_id, 3)) {
      info.codes.insert(std::string(t.transaction_set_id));
    }
    if (isPrintableCode(t.implementation_convention, 20)) {
      info.versions.insert(std::string(t.implementation_convention));
    }
  }
}

void sniffHl7(std::string_view bytes, FileFormatInfo& info) {
  info.format = "hl7";
  Hl7Profiler profiler;
  info.units = profiler.addFile(bytes);
  const json::Value r = profiler.report();
  info.batch = r.getInt("batches") > 0 || skipBlank(bytes).substr(0, 3) == "FHS" ||
               skipBlank(bytes).substr(0, 3) == "BHS";
  for (const auto& t : profiler.suggestedMessageTypes()) {
    info.codes.insert(t);
  }
  for (const auto& [version, n] : r.find("versions")->members()) {
    info.versions.insert(version);
  }
  if (const auto& errors = r.find("file_errors")->items(); !errors.empty()) {
    info.error = errors.front().getString("error");
  }
  if (profiler.malformed() > 0) {
    info.bad_rows = profiler.malformed();
  }
}

// A FHIR resource type or other JSON "type" code: letters only.
bool isTypeName(const std::string& s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalpha(static_cast<unsigned char>(c));
  });
}

void noteJson(const json::Value& v, FileFormatInfo& info) {
  ++info.units;
  const std::string type = v.isObject() ? v.getString("resourceType") : std::string();
  if (isTypeName(type)) {
    info.codes.insert(type);
    info.format = info.format == "ndjson" ? "ndjson" : "fhir-json";
  }
  if (type == "Bundle") {
    if (const auto* entries = v.find("entry"); entries != nullptr && entries->isArray()) {
      for (const auto& e : entries->items()) {
        if (const auto* res = e.find("resource"); res != nullptr && res->isObject()) {
          const std::string t = res->getString("resourceType");
          if (isTypeName(t)) {
            info.codes.insert(t);
          }
        }
      }
    }
  }
}

void sniffJson(std::string_view bytes, FileFormatInfo& info) {
  info.format = "json";
  if (auto whole = json::parse(skipBlank(bytes))) {
    noteJson(whole.value(), info);
    if (const std::string v = whole.value().getString("fhirVersion");
        !v.empty() && std::all_of(v.begin(), v.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c)) || c == '.';
        })) {
      info.versions.insert(v);
    }
    return;
  }
  // Newline-delimited JSON (FHIR Bulk Data export): one object per line.
  info.format = "ndjson";
  size_t start = 0;
  while (start < bytes.size()) {
    size_t end = bytes.find('\n', start);
    if (end == std::string_view::npos) {
      end = bytes.size();
    }
    const std::string_view line = skipBlank(bytes.substr(start, end - start));
    if (!line.empty()) {
      auto v = json::parse(line);
      if (!v) {
        info.format = "json";
        info.error = "not JSON (nor one JSON object per line)";
        return;
      }
      noteJson(v.value(), info);
    }
    start = end + 1;
  }
}

}  // namespace

std::string FileFormatInfo::signature() const {
  std::string s = format + "|" + error.substr(0, error.find(' ')) + "|" + encoding + "|" +
                  std::string(1, delimiter) + "|" + (header ? "h" : "n") + "|";
  for (const auto& c : columns) {
    s += std::to_string(c.size()) + ":" + c;
  }
  s += "|" + std::to_string(columns.size()) + "|";
  for (const auto& c : codes) {
    s += c + ",";
  }
  return s;
}

FileFormatInfo sniffFile(std::string_view bytes) {
  FileFormatInfo info;
  const std::string_view head = skipBlank(bytes);
  if (head.empty()) {
    info.format = "empty";
  } else if (head.front() == '\x0b' || head.substr(0, 3) == "MSH" || head.substr(0, 3) == "FHS" ||
             head.substr(0, 3) == "BHS") {
    sniffHl7(bytes, info);
  } else if (head.substr(0, 3) == "ISA") {
    sniffX12(bytes, info);
  } else if (head.front() == '{' || head.front() == '[') {
    sniffJson(bytes, info);
  } else if (bytes.substr(0, 2) != "\xFF\xFE" && bytes.substr(0, 2) != "\xFE\xFF" &&
             bytes.substr(0, 8192).find('\0') != std::string_view::npos) {
    info.format = "opaque";
  } else {
    sniffCsv(bytes, info);
  }
  return info;
}

namespace {

// Words export file names are made of. Any other run of letters becomes '*': a file named
// after a patient ("DOE_JOHN.csv") must not reach the report even when it is the only one.
bool isExportWord(std::string_view word) {
  static constexpr std::string_view kWords[] = {
      "adt",      "all",       "allscripts",   "appointment", "appointments", "appt",
      "appts",    "athena",    "batch",        "bill",        "billing",      "cerner",
      "charge",   "charges",   "claim",        "claims",      "clinical",     "daily",
      "data",     "demo",      "demographics", "dft",         "doc",          "docs",
      "done",     "drchrono",  "ecw",          "edi",         "encounter",    "encounters",
      "epic",     "era",       "export",       "exports",     "extract",      "feed",
      "file",     "files",     "full",         "hourly",      "immunization", "immunizations",
      "import",   "in",        "inbound",      "inventory",   "kareo",        "lab",
      "labs",     "ledger",    "mdm",          "medication",  "medications",  "meditech",
      "meds",     "mfn",       "monthly",      "new",         "nextgen",      "note",
      "notes",    "orders",    "orm",          "oru",         "out",          "outbound",
      "patient",  "patients",  "payment",      "payments",    "pms",          "practice",
      "provider", "providers", "ready",        "remit",       "report",       "results",
      "sched",    "schedule",  "siu",          "staff",       "stock",        "supplies",
      "supply",   "visit",     "visits",       "vxu",         "weekly",       "result",
      "order",
  };
  std::string lower(word);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return std::find(std::begin(kWords), std::end(kWords), lower) != std::end(kWords);
}

}  // namespace

std::string namePattern(std::string_view name) {
  // The extension stays as it is (".hl7", ".x12"): it names the format, not the file. Digits
  // and words outside the export vocabulary become '*'.
  const size_t dot = name.rfind('.');
  const size_t stem_end = dot == std::string_view::npos || dot == 0 ? name.size() : dot;
  std::string out;
  auto star = [&out] {
    if (out.empty() || out.back() != '*') {
      out.push_back('*');
    }
  };
  for (size_t i = 0; i < stem_end;) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (std::isdigit(c)) {
      star();
      ++i;
    } else if (std::isalpha(c)) {
      size_t j = i;
      while (j < stem_end && std::isalpha(static_cast<unsigned char>(name[j]))) {
        ++j;
      }
      // "hl7" and "x12" name formats: kept whole, digit included.
      const std::string_view with_digit = name.substr(i, j - i + 1);
      if (j < stem_end && (with_digit == "hl7" || with_digit == "HL7" || with_digit == "x12" ||
                           with_digit == "X12")) {
        out += with_digit;
        i = j + 1;
        continue;
      }
      const std::string_view word = name.substr(i, j - i);
      if (isExportWord(word)) {
        out += word;
      } else {
        star();
      }
      i = j;
    } else if (c < 0x80) {
      out.push_back(name[i]);
      ++i;
    } else {
      star();  // letters of other scripts: a name as much as any other word
      ++i;
    }
  }
  out += name.substr(stem_end);
  return out;
}

bool isTempName(std::string_view name) {
  const size_t slash = name.rfind('/');
  const std::string_view base = slash == std::string_view::npos ? name : name.substr(slash + 1);
  for (const char* p : {"*.tmp", "*.part", "*.partial", ".*", "~$*"}) {
    if (file::globMatch(p, base, true)) {
      return true;
    }
  }
  return false;
}

std::string markerSuffix(std::string_view name) {
  for (const char* s : {".done", ".ok", ".ready", ".trg", ".flg"}) {
    const std::string_view suffix(s);
    if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix) {
      return std::string(suffix);
    }
  }
  return {};
}

}  // namespace psa::adapters::discover
