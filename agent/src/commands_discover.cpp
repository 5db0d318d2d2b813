// `pms-agent discover hl7 FILE...`, `discover hl7 --listen HOST:PORT --for DURATION`,
// `discover files DIR [--watch DURATION]`, `discover fhir --base-url URL` and `discover api
// --vendor V --base-url URL`: site onboarding. They
// read samples (or a test feed) and print STRUCTURE and counts, never a value, plus a suggested
// adapter config that `pms-agent config validate` accepts. They need no agent config and no running
// agent; only
// --listen reads the config (when present) to refuse a live adapter's port.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "command.h"
#include "psa/adapters/discover/api_survey.h"
#include "psa/adapters/discover/fhir_survey.h"
#include "psa/adapters/discover/file_survey.h"
#include "psa/adapters/discover/hl7_profile.h"
#include "psa/adapters/discover/mllp_capture.h"
#include "psa/store/json.h"
#include "psa/store/os/utf8_path.h"

namespace psa::agent {
namespace {

namespace fs = std::filesystem;
namespace discover = psa::adapters::discover;

constexpr uintmax_t kMaxSampleBytes = uintmax_t{256} << 20;

// "30s", "5m", "1h", "500ms": 1 ms .. 24 h.
std::optional<std::chrono::milliseconds> parseDuration(const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) {
    ++digits;
  }
  if (digits == 0 || digits > 9) {
    return std::nullopt;
  }
  const int64_t n = std::stoll(text.substr(0, digits));
  const std::string unit = text.substr(digits);
  const int64_t ms = unit == "ms"  ? n
                     : unit == "s" ? n * 1000
                     : unit == "m" ? n * 60000
                     : unit == "h" ? n * 3600000
                                   : -1;
  if (ms <= 0 || ms > int64_t{24} * 3600000) {
    return std::nullopt;
  }
  return std::chrono::milliseconds(ms);
}

Result<std::string> readSample(const fs::path& path) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) {
    return Error(Errc::io, "cannot read " + os::pathToUtf8(path) + ": " + ec.message());
  }
  if (size > kMaxSampleBytes) {
    return Error(Errc::limit,
                 os::pathToUtf8(path) + ": larger than 256 MiB (use a smaller sample)");
  }
  std::ifstream in(path, std::ios::binary);
  std::string bytes(static_cast<size_t>(size), '\0');
  if (!in || !in.read(bytes.data(), static_cast<std::streamsize>(size))) {
    return Error(Errc::io, "cannot read " + os::pathToUtf8(path));
  }
  return bytes;
}

// Prints the report (or the JSON object with the suggestion inside) and writes --suggest.
int finish(const po::variables_map& vm, CommandContext& ctx, json::Value report,
           const std::string& summary, const json::Value& suggestion, bool analysed) {
  if (vm.count("suggest")) {
    const fs::path file = os::pathFromUtf8(vm["suggest"].as<std::string>());
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << json::serialize(suggestion, true) << "\n";
    if (!out.flush()) {
      ctx.err << "FAIL  cannot write " << os::pathToUtf8(file) << "\n";
      return kExitFailure;
    }
  }
  if (vm.count("json")) {
    report.set("suggested_adapter", suggestion);
    ctx.out << json::serialize(report, true) << "\n";
  } else {
    ctx.out << summary << "\nSuggested adapter (one element of the config's \"adapters\"):\n"
            << json::serialize(suggestion, true) << "\n";
  }
  if (!analysed) {
    ctx.err << "FAIL  nothing could be analysed\n";
  }
  return analysed ? kExitOk : kExitFailure;
}

void commonOptions(po::options_description& o, const char* default_name) {
  o.add_options()("json", "print one JSON object")("suggest", po::value<std::string>(),
                                                   "write the suggested adapter config to FILE")(
      "name", po::value<std::string>()->default_value(default_name),
      "adapter name in the suggestion")(
      "vendor", po::value<std::string>()->default_value("generic"), "vendor in the suggestion");
}

// ---- discover hl7 ----------------------------------------------------------------------------

// The live adapters' ports, from the agent config when there is one.
std::optional<std::string> portRefusal(CommandContext& ctx, uint16_t port) {
  std::error_code ec;
  if (!fs::exists(ctx.config_path, ec)) {
    if (ctx.config_given) {
      return "config " + os::pathToUtf8(ctx.config_path) +
             " not found: cannot tell which ports live adapters use";
    }
    return std::nullopt;
  }
  auto text = readSample(ctx.config_path);
  auto doc = text ? json::parse(text.value()) : Result<json::Value>(text.error());
  if (!doc) {
    return "cannot read config " + os::pathToUtf8(ctx.config_path) +
           " to check which ports live adapters use: " + doc.error().message;
  }
  return discover::livePortConflict(doc.value(), port);
}

int listen(const po::variables_map& vm, CommandContext& ctx, discover::Hl7Profiler& profiler,
           bool& ok) {
  const std::string where = vm["listen"].as<std::string>();
  auto ep = adapters::net::parseListenEndpoint(where);
  if (!ep) {
    ctx.err << "pms-agent discover hl7: --listen: " << ep.error().message << "\n";
    return kExitUsage;
  }
  if (!vm.count("for")) {
    ctx.err << "pms-agent discover hl7: --listen needs --for DURATION (e.g. 30s, 5m)\n";
    return kExitUsage;
  }
  auto duration = parseDuration(vm["for"].as<std::string>());
  if (!duration) {
    ctx.err << "pms-agent discover hl7: --for: expected a duration like 30s, 5m or 1h (at most "
               "24h)\n";
    return kExitUsage;
  }
  if (auto refusal = portRefusal(ctx, ep.value().port)) {
    ctx.err << "REFUSED  " << *refusal << "\n";
    return kExitUsage;
  }
  auto stats = discover::captureMllp(
      ep.value(), *duration, [&](std::string_view msg) { profiler.addMessage(msg); },
      [&](uint16_t port) {
        ctx.err << "listening on " << ep.value().host << ":" << port << " for "
                << vm["for"].as<std::string>()
                << " (test feed only: messages are acknowledged and not stored)" << std::endl;
      });
  if (!stats) {
    ctx.err << "FAIL  " << stats.error().message << "\n";
    return kExitFailure;
  }
  ctx.err << "stopped: " << stats.value().connections << " connections, " << stats.value().frames
          << " messages, " << stats.value().framing_faults << " framing faults\n";
  ok = true;
  return kExitOk;
}

int discoverHl7(const po::variables_map& vm, CommandContext& ctx) {
  const bool listening = vm.count("listen") > 0;
  const auto files =
      vm.count("file") ? vm["file"].as<std::vector<std::string>>() : std::vector<std::string>{};
  if (listening == !files.empty()) {
    ctx.err << "pms-agent discover hl7: give sample FILEs or --listen HOST:PORT --for DURATION\n";
    return kExitUsage;
  }
  discover::Hl7Profiler profiler;
  std::string listen_at = "0.0.0.0:2575";
  if (listening) {
    bool ok = false;
    const int rc = listen(vm, ctx, profiler, ok);
    if (!ok) {
      return rc;
    }
    listen_at = vm["listen"].as<std::string>();
  }
  for (const auto& f : files) {
    auto bytes = readSample(os::pathFromUtf8(f));
    if (!bytes) {
      ctx.err << "FAIL  " << bytes.error().message << "\n";
      continue;
    }
    profiler.addFile(bytes.value());
  }
  json::Value s = json::Value::object();
  s.set("name", json::Value::string(vm["name"].as<std::string>()));
  s.set("type", json::Value::string("hl7-mllp"));
  s.set("vendor", json::Value::string(vm["vendor"].as<std::string>()));
  s.set("listen", json::Value::string(listen_at));
  json::Value types = json::Value::array();
  for (const auto& t : profiler.suggestedMessageTypes()) {
    types.push(json::Value::string(t));
  }
  if (!types.items().empty()) {
    s.set("message_types", std::move(types));
  }
  return finish(vm, ctx, profiler.report(), profiler.summary(), s, profiler.analysed() > 0);
}

// ---- discover files --------------------------------------------------------------------------

int discoverFiles(const po::variables_map& vm, CommandContext& ctx) {
  const fs::path dir = os::pathFromUtf8(vm["dir"].as<std::string>());
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    ctx.err << "FAIL  " << os::pathToUtf8(dir) << " is not a directory\n";
    return kExitFailure;
  }
  discover::FileSurvey survey;
  if (vm.count("watch")) {
    auto duration = parseDuration(vm["watch"].as<std::string>());
    if (!duration) {
      ctx.err << "pms-agent discover files: --watch: expected a duration like 30s, 5m or 1h\n";
      return kExitUsage;
    }
    ctx.err << "watching " << os::pathToUtf8(dir) << " for " << vm["watch"].as<std::string>()
            << std::endl;
    survey.setWatch(discover::watchDirectory(dir, *duration));
  }
  std::vector<fs::path> entries;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code sec;
    if (it->is_regular_file(sec)) {
      entries.push_back(it->path());
    }
  }
  std::sort(entries.begin(), entries.end());
  for (const auto& p : entries) {
    const std::string name = os::pathToUtf8(p.filename());
    if (discover::isTempName(name) || !discover::markerSuffix(name).empty()) {
      survey.addAuxiliary(name);
      continue;
    }
    auto bytes = readSample(p);
    if (!bytes) {
      ctx.err << "FAIL  " << bytes.error().message << "\n";
      continue;
    }
    survey.addFile(name, bytes.value());
  }
  const json::Value s =
      survey.suggestion(os::pathToUtf8(fs::absolute(dir, ec)), vm["name"].as<std::string>(),
                        vm["vendor"].as<std::string>());
  return finish(vm, ctx, survey.report(), survey.summary(), s, survey.files() > 0);
}

// ---- discover fhir ---------------------------------------------------------------------------

// --auth-file: the adapter's `auth` object exactly as in the config.
Result<json::Value> readAuthFile(const std::string& file) {
  auto text = readSample(os::pathFromUtf8(file));
  if (!text) {
    return std::move(text).error();
  }
  auto doc = json::parse(text.value());
  if (!doc || !doc->isObject() || doc->getString("type").empty()) {
    return Error(
        Errc::invalid_input,
        file + ": expected the adapter's auth object, e.g. {\"type\": \"smart-backend\", ...}");
  }
  return doc;
}

int discoverFhir(const po::variables_map& vm, CommandContext& ctx) {
  discover::FhirSurveyOptions o;
  o.base_url = vm["base-url"].as<std::string>();
  if (o.base_url.rfind("https://", 0) != 0 && o.base_url.rfind("http://", 0) != 0) {
    ctx.err << "pms-agent discover fhir: --base-url: expected an http(s):// URL\n";
    return kExitUsage;
  }
  o.vendor = vm["vendor"].as<std::string>();
  o.name = vm["name"].as<std::string>();
  std::error_code ec;
  o.base_dir = fs::current_path(ec);
  if (vm.count("auth-file")) {
    auto auth = readAuthFile(vm["auth-file"].as<std::string>());
    if (!auth) {
      ctx.err << "FAIL  " << auth.error().message << "\n";
      return kExitUsage;
    }
    o.auth = std::move(auth).value();
  }
  if (vm.count("ca-file")) {
    o.ca_file = vm["ca-file"].as<std::string>();
  }
  if (vm.count("group-id")) {
    o.group_id = vm["group-id"].as<std::string>();
  }
  o.page_size = vm["page-size"].as<int64_t>();
  if (o.page_size < 1 || o.page_size > 5000) {
    ctx.err << "pms-agent discover fhir: --page-size: 1..5000\n";
    return kExitUsage;
  }
  o.counts = vm.count("no-counts") == 0;
  auto survey = discover::surveyFhir(o);
  if (!survey) {
    ctx.err << "FAIL  " << survey.error().message << "\n";
    return kExitFailure;
  }
  const auto& s = survey.value();
  if (!s.token_error.empty()) {
    ctx.err << "WARN  credentials: " << s.token_error << "\n";
  }
  return finish(vm, ctx, s.report(o), s.summary(o), s.suggestion(o), s.analysed());
}

// ---- discover api ----------------------------------------------------------------------------

int discoverApi(const po::variables_map& vm, CommandContext& ctx) {
  discover::ApiSurveyOptions o;
  o.base_url = vm["base-url"].as<std::string>();
  if (o.base_url.rfind("https://", 0) != 0 && o.base_url.rfind("http://", 0) != 0) {
    ctx.err << "pms-agent discover api: --base-url: expected an http(s):// URL\n";
    return kExitUsage;
  }
  if (vm["vendor"].defaulted()) {
    ctx.err << "pms-agent discover api: --vendor is required (drchrono, nextgen, athenahealth, "
               "kareo, allscripts)\n";
    return kExitUsage;
  }
  o.vendor = vm["vendor"].as<std::string>();
  o.name = vm["name"].as<std::string>();
  std::error_code ec;
  o.base_dir = fs::current_path(ec);
  if (vm.count("auth-file")) {
    auto auth = readAuthFile(vm["auth-file"].as<std::string>());
    if (!auth) {
      ctx.err << "FAIL  " << auth.error().message << "\n";
      return kExitUsage;
    }
    o.auth = std::move(auth).value();
  }
  if (vm.count("ca-file")) {
    o.ca_file = vm["ca-file"].as<std::string>();
  }
  auto survey = discover::surveyApi(o);
  if (!survey) {
    ctx.err << "FAIL  " << survey.error().message << "\n";
    return survey.error().is(Errc::invalid_argument) ? kExitUsage : kExitFailure;
  }
  const auto& s = survey.value();
  if (!s.token_error.empty()) {
    ctx.err << "WARN  credentials: " << s.token_error << "\n";
  }
  return finish(vm, ctx, s.report(o), s.summary(o), s.suggestion(o), s.analysed());
}

}  // namespace

void addDiscoverCommands(CommandTable& table) {
  table.add(Command{
      "discover api", "--vendor V --base-url URL",
      "ask a vendor REST API what its rest-poll profile lists: collections, pages, limits",
      "For the rest-poll vendor profiles (drchrono, nextgen, athenahealth, kareo, allscripts):\n"
      "authenticates with --auth-file (the adapter's auth object as JSON, as in the config),\n"
      "reads the first page of each collection the profile knows and reports which answer,\n"
      "how many records the page held, whether there are more pages, the total where the API\n"
      "gives one, and the rate-limit headers seen. Kareo SOAP and Unity collections are only\n"
      "authenticated; a rotating refresh token (DrChrono) is not spent. Requests go through the\n"
      "rest-poll client: the profile's rate limits and Retry-After apply. Prints a suggested\n"
      "rest-poll adapter. Never prints record content. Exit 1 when no collection answered.",
      [](po::options_description& o, po::positional_options_description&) {
        o.add_options()("base-url", po::value<std::string>()->required(), "vendor API base URL")(
            "auth-file", po::value<std::string>(), "JSON file holding the adapter's auth object")(
            "ca-file", po::value<std::string>(), "CA bundle that signs the server");
        commonOptions(o, "vendor-api");
      },
      discoverApi});
  table.add(Command{
      "discover fhir", "--base-url URL",
      "ask a FHIR R4 server what it offers: resources, interactions, counts, auth, Bulk",
      "Reads /.well-known/smart-configuration and the CapabilityStatement (/metadata), gets a\n"
      "token with --auth-file (the adapter's auth object as JSON, as in the config) and reports\n"
      "the granted scopes, each resource type's interactions and _lastUpdated support, Bulk\n"
      "$export (system, group, patient), the paging style, counts per type (_summary=count,\n"
      "where the server answers) and the initial load time at the vendor's documented rate\n"
      "limit. Requests go through the fhir-poll adapter's client: the vendor's rate limits,\n"
      "429/Retry-After and back-off apply. Prints a suggested fhir-poll adapter (inline\n"
      "secrets of the auth object become *_file placeholders). Never prints resource content.\n"
      "Exit 1 when the CapabilityStatement could not be read, 2 usage.",
      [](po::options_description& o, po::positional_options_description&) {
        o.add_options()("base-url", po::value<std::string>()->required(), "FHIR base URL")(
            "auth-file", po::value<std::string>(), "JSON file holding the adapter's auth object")(
            "ca-file", po::value<std::string>(), "CA bundle that signs the server")(
            "group-id", po::value<std::string>(), "Bulk Group id (Group/{id}/$export)")(
            "page-size", po::value<int64_t>()->default_value(200), "page size for the estimate")(
            "no-counts", "do not ask _summary=count per resource type");
        commonOptions(o, "fhir");
      },
      discoverFhir});
  table.add(Command{
      "discover hl7", "FILE...",
      "profile HL7 v2 samples (or --listen to a test feed): structure and counts, no values",
      "Reads exported samples (single messages, several per file, FHS/BHS batches, MLLP\n"
      "captures) or, with --listen HOST:PORT --for DURATION (30s, 5m, 1h), a TEST feed:\n"
      "every message is acknowledged (AA) and nothing is stored. A port that an hl7-mllp\n"
      "adapter of the agent config listens on is refused. Prints message types, versions,\n"
      "encoding characters, segments, field fill rates, identifier types and where\n"
      "SSN-like values appear, and a suggested hl7-mllp adapter. Exit 1 when nothing could\n"
      "be analysed, 2 usage (also for a refused port).",
      [](po::options_description& o, po::positional_options_description& p) {
        o.add_options()("file", po::value<std::vector<std::string>>()->multitoken(),
                        "HL7 sample file(s)")("listen", po::value<std::string>(),
                                              "HOST:PORT to listen on for a test feed")(
            "for", po::value<std::string>(), "how long to listen (30s, 5m, 1h)");
        commonOptions(o, "hl7-feed");
        p.add("file", -1);
      },
      discoverHl7});
  table.add(Command{
      "discover files", "DIR",
      "survey a drop directory: name patterns, formats, how files are finished",
      "Groups the files of DIR into name patterns (visits_*.csv) and detects each format\n"
      "(CSV delimiter, encoding, BOM, header column names; HL7 batch; X12 837/835 and their\n"
      "envelope versions; FHIR/JSON). With --watch it observes DIR for DURATION to learn how\n"
      "the PMS finishes a file (rename, marker file, or neither). Prints a suggested file-drop\n"
      "adapter. Cell values are never printed. Exit 1 when no file could be analysed.",
      [](po::options_description& o, po::positional_options_description& p) {
        o.add_options()("dir", po::value<std::string>()->required(), "drop directory")(
            "watch", po::value<std::string>(), "observe the directory for DURATION first");
        commonOptions(o, "file-drop");
        p.add("dir", 1);
      },
      discoverFiles});
}

}  // namespace psa::agent
