#include "file/file_drop_config.h"

#include <algorithm>
#include <map>
#include <set>

#include "psa/adapters/file/glob.h"
#include "psa/adapters/source.h"
#include "psa/store/os/utf8_path.h"

namespace psa::adapters::file {

namespace {

using schema::Field;
using schema::Issue;
using schema::ObjectSchema;
using schema::Type;

std::vector<std::string> kindNames() {
  std::vector<std::string> out;
  for (store::Kind k : store::kAllKinds) {
    out.emplace_back(store::kindName(k));
  }
  return out;
}

json::Value strings(std::initializer_list<const char*> items) {
  json::Value a = json::Value::array();
  for (const char* s : items) {
    a.push(json::Value::string(s));
  }
  return a;
}

std::optional<std::string> checkGlob(const json::Value& v) {
  if (auto p = globProblem(v.asString())) {
    return *p;
  }
  return std::nullopt;
}

std::optional<std::string> checkGlobList(const json::Value& v) {
  for (size_t k = 0; k < v.items().size(); ++k) {
    if (auto p = globProblem(v.items()[k].asString())) {
      return "item " + std::to_string(k) + ": " + *p;
    }
  }
  return std::nullopt;
}

std::optional<std::string> checkNonEmpty(const json::Value& v) {
  if (v.asString().empty()) {
    return "must not be empty";
  }
  return std::nullopt;
}

std::optional<std::string> checkSuffixes(const json::Value& v) {
  for (const auto& item : v.items()) {
    const std::string& s = item.asString();
    if (s.size() < 2 || s.front() != '.' || s.find('/') != std::string::npos) {
      return "expected suffixes like \".done\" (a dot, then at least one character, no '/')";
    }
  }
  return std::nullopt;
}

std::optional<std::string> checkColumns(const json::Value& v) {
  std::set<std::string> seen;
  for (const auto& item : v.items()) {
    if (item.asString().empty()) {
      return "column names must not be empty";
    }
    if (!seen.insert(item.asString()).second) {
      return "duplicate column name \"" + item.asString() + "\"";
    }
  }
  return std::nullopt;
}

std::optional<std::string> checkKindMap(const json::Value& v) {
  if (!v.isObject()) {
    return "expected an object mapping message types to kinds, e.g. {\"ZPM\": \"patient\"}";
  }
  std::map<std::string, std::string> m;
  for (const auto& [key, value] : v.members()) {
    if (!value.isString()) {
      return "value of \"" + key + "\" must be a kind name";
    }
    m[key] = value.asString();
  }
  auto c = hl7::Classifier::fromConfig(m);
  if (!c) {
    return c.error().message;
  }
  return std::nullopt;
}

// CSV settings; `with_defaults` false for the per-pattern copy (absent = inherit).
schema::ObjectSchemaPtr csvSchema(bool with_defaults) {
  auto s = std::make_shared<ObjectSchema>();
  auto def = [&](Field f, json::Value v) {
    if (with_defaults) {
      f.def(std::move(v));
    }
    return f;
  };
  s->fields = {
      def(Field::str("delimiter").oneOf({",", ";", "\t", "|", "tab"}), json::Value::string(","))
          .describe("field delimiter: \",\", \";\", \"\\t\" (or \"tab\"), \"|\""),
      def(Field::boolean("header"), json::Value::boolean(true))
          .describe("the first row names the columns; false: give \"columns\""),
      Field::array("columns", Type::string)
          .verify(checkColumns)
          .describe("column names when header is false"),
      def(Field::str("encoding").oneOf({"utf-8", "windows-1252", "auto"}),
          json::Value::string("utf-8")),
      def(Field::str("trim").oneOf({"none", "headers", "all"}), json::Value::string("none")),
      def(Field::integer("max_record_bytes").range(16, 64 << 20), json::Value::integer(1 << 20)),
  };
  s->check = [](const json::Value& v, const std::string& path, std::vector<Issue>& issues) {
    const json::Value* header = v.find("header");
    const json::Value* columns = v.find("columns");
    if (header != nullptr && header->isBool() && !header->asBool() &&
        (columns == nullptr || !columns->isArray() || columns->items().empty())) {
      issues.push_back(Issue{schema::childPath(path, "columns"), v.pos().line, v.pos().column,
                             "required when header is false (the column names, in order)"});
    }
  };
  return s;
}

schema::ObjectSchemaPtr patternSchema() {
  auto s = std::make_shared<ObjectSchema>();
  s->fields = {
      Field::str("match").req().verify(checkGlob).describe(
          "glob on the file name (or on the relative path when it contains '/')"),
      Field::str("format").oneOf({"csv", "hl7", "x12", "opaque"}),
      Field::str("kind").oneOf(kindNames()),
      Field::obj("csv", csvSchema(false)),
  };
  return s;
}

schema::ObjectSchemaPtr hl7Schema() {
  auto s = std::make_shared<ObjectSchema>();
  s->fields = {
      Field::anyValue("kind_map")
          .def(json::Value::object())
          .verify(checkKindMap)
          .describe(
              "message type overrides, e.g. {\"ZPM\": \"patient\", \"MFN^M02\": \"provider\"}"),
      Field::array("required_segments", Type::string).def(json::Value::array()),
      Field::array("accepted_versions", Type::string).def(json::Value::array()),
      Field::array("accepted_message_types", Type::string).def(json::Value::array()),
      Field::boolean("dedupe")
          .def(json::Value::boolean(true))
          .describe("give each message its sender/control-id/content identity (as over MLLP)"),
      Field::integer("max_file_bytes")
          .def(json::Value::integer(256 << 20))
          .range(1024, 1 << 30)
          .describe("largest HL7 file (it is read whole)"),
  };
  return s;
}

schema::ObjectSchemaPtr x12Schema() {
  auto s = std::make_shared<ObjectSchema>();
  s->fields = {
      Field::integer("max_segment_bytes").def(json::Value::integer(64 << 10)).range(1024, 16 << 20),
      Field::integer("max_transaction_bytes")
          .def(json::Value::integer(16 << 20))
          .range(1024, 60 << 20),
  };
  return s;
}

schema::ObjectSchemaPtr opaqueSchema() {
  auto s = std::make_shared<ObjectSchema>();
  s->fields = {
      Field::integer("max_file_bytes")
          .def(json::Value::integer(16 << 20))
          .range(1, 64 << 20)
          .describe("largest file sent as one record"),
  };
  return s;
}

bool needsKind(std::string_view format) { return format == "csv" || format == "opaque"; }

void checkAdapter(const json::Value& v, const std::string& path, std::vector<Issue>& issues) {
  const std::string format = v.getString("format");
  const bool has_kind = v.find("kind") != nullptr;
  if (needsKind(format) && !has_kind) {
    issues.push_back(Issue{schema::childPath(path, "kind"), v.pos().line, v.pos().column,
                           "required when format is " + format +
                               " (patient, appointment, clinical, billing, provider, "
                               "inventory or other)"});
  }
  if (const json::Value* pats = v.find("patterns"); pats != nullptr && pats->isArray()) {
    for (size_t k = 0; k < pats->items().size(); ++k) {
      const json::Value& p = pats->items()[k];
      if (!p.isObject()) {
        continue;
      }
      const std::string pf = p.getString("format", format);
      if (needsKind(pf) && p.find("kind") == nullptr && !has_kind) {
        issues.push_back(Issue{
            schema::childPath(schema::indexPath(schema::childPath(path, "patterns"), k), "kind"),
            p.pos().line, p.pos().column,
            "required when format is " + pf + " and the adapter has no kind"});
      }
    }
  }
  const json::Value* p = v.find("path");
  for (const char* key : {"archive_dir", "error_dir"}) {
    const json::Value* d = v.find(key);
    if (p != nullptr && d != nullptr && p->isString() && d->isString() &&
        os::pathFromUtf8(p->asString()).lexically_normal() ==
            os::pathFromUtf8(d->asString()).lexically_normal()) {
      issues.push_back(Issue{schema::childPath(path, key), d->pos().line, d->pos().column,
                             "must not be the watched directory itself"});
    }
  }
}

char delimiterOf(const std::string& s) { return s == "tab" ? '\t' : s.empty() ? ',' : s[0]; }

CsvTrim trimOf(const std::string& s) {
  return s == "all" ? CsvTrim::all : s == "headers" ? CsvTrim::headers : CsvTrim::none;
}

std::string_view trimName(CsvTrim t) {
  return t == CsvTrim::all ? "all" : t == CsvTrim::headers ? "headers" : "none";
}

FileFormat formatOf(const std::string& s) {
  return s == "hl7"      ? FileFormat::hl7
         : s == "x12"    ? FileFormat::x12
         : s == "opaque" ? FileFormat::opaque
                         : FileFormat::csv;
}

// Applies the keys present in `csv` over `base`.
void applyCsv(const json::Value* csv, CsvSettings& base) {
  if (csv == nullptr || !csv->isObject()) {
    return;
  }
  if (const auto* d = csv->find("delimiter")) {
    base.options.delimiter = delimiterOf(d->asString());
  }
  if (const auto* h = csv->find("header")) {
    base.header = h->asBool();
  }
  if (const auto* c = csv->find("columns")) {
    base.columns.clear();
    for (const auto& item : c->items()) {
      base.columns.push_back(item.asString());
    }
  }
  if (const auto* e = csv->find("encoding")) {
    base.options.encoding = parseEncoding(e->asString()).value_or(TextEncoding::utf8);
  }
  if (const auto* t = csv->find("trim")) {
    base.options.trim = trimOf(t->asString());
  }
  if (const auto* m = csv->find("max_record_bytes")) {
    base.options.max_record_bytes = static_cast<size_t>(m->asInt());
  }
}

std::vector<std::string> stringList(const json::Value& v, std::string_view key) {
  std::vector<std::string> out;
  if (const auto* a = v.find(key); a != nullptr && a->isArray()) {
    for (const auto& item : a->items()) {
      out.push_back(item.asString());
    }
  }
  return out;
}

std::filesystem::path resolve(const std::filesystem::path& state_dir, const std::string& p) {
  return os::resolveUtf8Path(state_dir, p).lexically_normal();
}

}  // namespace

std::string_view fileFormatName(FileFormat f) {
  switch (f) {
    case FileFormat::csv:
      return "csv";
    case FileFormat::hl7:
      return "hl7";
    case FileFormat::x12:
      return "x12";
    case FileFormat::opaque:
      return "opaque";
  }
  return "csv";
}

std::string FileProfile::fingerprint() const {
  std::string out(fileFormatName(format));
  if (format == FileFormat::csv) {
    out += ";d=";
    out +=
        csv.options.delimiter == '\t' ? std::string("tab") : std::string(1, csv.options.delimiter);
    out += ";e=";
    out += encodingName(csv.options.encoding);
    out += ";t=";
    out += trimName(csv.options.trim);
    out += csv.header ? ";h" : ";c=";
    if (!csv.header) {
      for (const auto& c : csv.columns) {
        out += std::to_string(c.size()) + ":" + c;
      }
    }
  }
  return out;
}

const FileProfile& FileDropConfig::profileFor(std::string_view relative_path) const {
  for (const auto& p : patterns) {
    if (globMatchPath(p.match, relative_path, ignore_case)) {
      return p.profile;
    }
  }
  return defaults;
}

schema::ObjectSchemaPtr fileDropSchema() {
  static const schema::ObjectSchemaPtr schema = [] {
    auto s = std::make_shared<ObjectSchema>();
    s->fields = commonAdapterFields();
    std::vector<Field> own = {
        Field::str("path").req().verify(checkNonEmpty).describe("the directory to watch"),
        Field::array("include", Type::string)
            .def(strings({"*"}))
            .atLeast(1)
            .verify(checkGlobList)
            .describe("globs of files to pick up"),
        Field::array("exclude", Type::string).def(json::Value::array()).verify(checkGlobList),
        Field::boolean("recursive").def(json::Value::boolean(false)),
        Field::boolean("ignore_case")
            .def(json::Value::boolean(false))
            .describe("globs ignore ASCII case (Windows exporters)"),
        Field::str("format")
            .req()
            .oneOf({"csv", "hl7", "x12", "opaque"})
            .describe("csv, hl7, x12 or opaque"),
        Field::str("kind").oneOf(kindNames()).describe("record kind of csv and opaque files"),
        Field::obj("csv", csvSchema(true)),
        Field::arrayOf("patterns", patternSchema())
            .def(json::Value::array())
            .describe("per-file-pattern format/kind/csv overrides; the first match wins"),
        Field::obj("hl7", hl7Schema()),
        Field::obj("x12", x12Schema()),
        Field::obj("opaque", opaqueSchema()),
        Field::str("complete")
            .def(json::Value::string("stable"))
            .oneOf({"stable", "marker", "rename"})
            .describe("when a file is complete: size+mtime stable, a marker file, or renamed "
                      "from a temp name"),
        Field::integer("stable_ms").def(json::Value::integer(5000)).range(0, 86400000),
        Field::array("marker_suffixes", Type::string)
            .def(strings({".done", ".ok"}))
            .atLeast(1)
            .verify(checkSuffixes),
        Field::array("temp_patterns", Type::string)
            .def(strings({"*.tmp", "*.part", "*.partial", ".*", "~$*"}))
            .verify(checkGlobList)
            .describe("names of files still being written (never picked up)"),
        Field::str("after").def(json::Value::string("archive")).oneOf({"archive", "delete"}),
        Field::str("archive_dir").verify(checkNonEmpty).describe("default PATH/archive"),
        Field::str("error_dir").verify(checkNonEmpty).describe("default PATH/error"),
        Field::boolean("archive_dated")
            .def(json::Value::boolean(true))
            .describe("archive into YYYY/MM/DD sub-folders (UTC)"),
        Field::str("duplicates")
            .def(json::Value::string("skip"))
            .oneOf({"skip", "error"})
            .describe(
                "a file whose content was already ingested: archive/delete it unread, or move it "
                "to error_dir"),
        Field::integer("duplicate_window_days").def(json::Value::integer(30)).range(1, 3650),
        Field::str("watch")
            .def(json::Value::string("auto"))
            .oneOf({"auto", "poll"})
            .describe("auto: inotify where available plus periodic rescans; poll: rescans only "
                      "(network shares)"),
        Field::integer("poll_interval_ms").def(json::Value::integer(2000)).range(50, 3600000),
        Field::integer("batch_records").def(json::Value::integer(2000)).range(1, 4096),
        Field::integer("batch_bytes").def(json::Value::integer(4 << 20)).range(64 << 10, 64 << 20),
    };
    s->fields.insert(s->fields.end(), own.begin(), own.end());
    s->check = checkAdapter;
    return schema::ObjectSchemaPtr(s);
  }();
  return schema;
}

Result<FileDropConfig> parseFileDropConfig(const json::Value& raw,
                                           const std::filesystem::path& state_dir) {
  const auto schema = fileDropSchema();
  std::vector<Issue> issues;
  schema::validate(raw, *schema, "", issues);
  if (!issues.empty()) {
    return Error(Errc::invalid_argument, issues.front().format());
  }
  const json::Value v = schema::withDefaults(raw, *schema);
  FileDropConfig c;
  c.name = v.getString("name");
  c.vendor = v.getString("vendor");
  c.dir = resolve(state_dir, v.getString("path"));
  c.include = stringList(v, "include");
  c.exclude = stringList(v, "exclude");
  c.recursive = v.getBool("recursive");
  c.ignore_case = v.getBool("ignore_case");

  c.defaults.format = formatOf(v.getString("format"));
  c.defaults.kind = store::parseKind(v.getString("kind", "other")).value_or(store::Kind::other);
  applyCsv(v.find("csv"), c.defaults.csv);
  for (const auto& p : v.find("patterns")->items()) {
    FilePattern fp;
    fp.match = p.getString("match");
    fp.profile = c.defaults;
    if (const auto* f = p.find("format")) {
      fp.profile.format = formatOf(f->asString());
    }
    if (const auto* k = p.find("kind")) {
      fp.profile.kind = store::parseKind(k->asString()).value_or(store::Kind::other);
    }
    applyCsv(p.find("csv"), fp.profile.csv);
    if (!fp.profile.csv.header && fp.profile.csv.columns.empty()) {
      return Error(Errc::invalid_argument, "patterns entry \"" + fp.match +
                                               "\": csv.columns required when header is false");
    }
    c.patterns.push_back(std::move(fp));
  }

  const json::Value& h = *v.find("hl7");
  std::map<std::string, std::string> kind_map;
  for (const auto& [key, value] : h.find("kind_map")->members()) {
    kind_map[key] = value.asString();
  }
  auto classifier = hl7::Classifier::fromConfig(kind_map);
  if (!classifier) {
    return Error(Errc::invalid_argument, "hl7.kind_map: " + classifier.error().message);
  }
  c.hl7_classifier = std::move(classifier).value();
  c.hl7_rules.required_segments = stringList(h, "required_segments");
  c.hl7_rules.accepted_versions = stringList(h, "accepted_versions");
  c.hl7_rules.accepted_message_types = stringList(h, "accepted_message_types");
  c.hl7_dedupe = h.getBool("dedupe", true);
  c.hl7_max_file_bytes = static_cast<size_t>(h.getInt("max_file_bytes"));

  const json::Value& x = *v.find("x12");
  c.x12.max_segment_bytes = static_cast<size_t>(x.getInt("max_segment_bytes"));
  c.x12.max_transaction_bytes = static_cast<size_t>(x.getInt("max_transaction_bytes"));
  c.opaque_max_bytes = static_cast<size_t>(v.find("opaque")->getInt("max_file_bytes"));

  const std::string complete = v.getString("complete");
  c.complete = complete == "marker"   ? Completion::marker
               : complete == "rename" ? Completion::rename
                                      : Completion::stable;
  c.stable = std::chrono::milliseconds(v.getInt("stable_ms"));
  c.marker_suffixes = stringList(v, "marker_suffixes");
  c.temp_patterns = stringList(v, "temp_patterns");

  c.after = v.getString("after") == "delete" ? AfterIngest::remove : AfterIngest::archive;
  c.archive_dir =
      v.find("archive_dir") ? resolve(state_dir, v.getString("archive_dir")) : c.dir / "archive";
  c.error_dir =
      v.find("error_dir") ? resolve(state_dir, v.getString("error_dir")) : c.dir / "error";
  c.archive_dated = v.getBool("archive_dated", true);
  c.duplicates =
      v.getString("duplicates") == "error" ? DuplicatePolicy::error : DuplicatePolicy::skip;
  c.duplicate_window = std::chrono::hours(24 * v.getInt("duplicate_window_days"));
  c.watch = v.getString("watch") == "poll" ? WatchMode::poll : WatchMode::automatic;
  c.poll_interval = std::chrono::milliseconds(v.getInt("poll_interval_ms"));
  c.batch_records = static_cast<size_t>(v.getInt("batch_records"));
  c.batch_bytes = static_cast<size_t>(v.getInt("batch_bytes"));
  if (c.archive_dir == c.dir || c.error_dir == c.dir) {
    return Error(Errc::invalid_argument,
                 "archive_dir and error_dir must not be the watched directory");
  }
  if (c.archive_dir == c.error_dir && c.after == AfterIngest::archive) {
    return Error(Errc::invalid_argument, "archive_dir and error_dir must differ");
  }
  return c;
}

}  // namespace psa::adapters::file
