#include "upgrade_files.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iterator>

#include "psa/store/os/durable_file.h"

namespace psa::agent::upgrade {
namespace fs = std::filesystem;

Paths Paths::under(const fs::path& state_dir) {
  Paths p;
  p.dir = state_dir / "upgrade";
  p.download = p.dir / "download";
  p.staged = p.dir / "staged";
  p.request = p.dir / "request.json";
  p.events = p.dir / "events";
  p.status = p.dir / "status.json";
  return p;
}

json::Value toJson(const Request& r) {
  json::Value doc = json::Value::object();
  doc.set("action", json::Value::string(r.action));
  doc.set("command", json::Value::string(r.command));
  doc.set("package", json::Value::string(r.package));
  doc.set("requested_by", json::Value::string(r.requested_by));
  doc.set("at_ms", json::Value::integer(r.at_ms));
  return doc;
}

Result<Request> requestFromJson(const json::Value& doc) {
  Request r;
  r.action = doc.getString("action");
  r.command = doc.getString("command");
  r.package = doc.getString("package");
  r.requested_by = doc.getString("requested_by");
  r.at_ms = doc.getInt("at_ms");
  if (r.action != "install" && r.action != "rollback") {
    return Error(Errc::invalid_input, "upgrade request: action must be install or rollback");
  }
  if (r.action == "install") {
    // A bare file name: the helper only ever reads from staged/.
    if (r.command.empty()) {
      return Error(Errc::invalid_input, "upgrade request: command is missing");
    }
    if (r.package.empty() || r.package.find_first_of("/\\") != std::string::npos ||
        r.package.front() == '.') {
      return Error(Errc::invalid_input, "upgrade request: package must be a file name");
    }
  }
  return r;
}

json::Value toJson(const Event& e) {
  json::Value doc = json::Value::object();
  doc.set("id", json::Value::string(e.id));
  doc.set("stage", json::Value::string(e.stage));
  doc.set("version", json::Value::string(e.version));
  doc.set("previous", json::Value::string(e.previous));
  doc.set("reason", json::Value::string(e.reason));
  doc.set("error", json::Value::string(e.error));
  doc.set("at_ms", json::Value::integer(e.at_ms));
  return doc;
}

Event eventFromJson(const json::Value& doc) {
  Event e;
  e.id = doc.getString("id");
  e.stage = doc.getString("stage");
  e.version = doc.getString("version");
  e.previous = doc.getString("previous");
  e.reason = doc.getString("reason");
  e.error = doc.getString("error");
  e.at_ms = doc.getInt("at_ms");
  return e;
}

Status appendEvent(const fs::path& dir, const Event& event) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  // Names sort in the order written: the time, then a counter for events of the same
  // millisecond (one writer at a time: the helper).
  static std::atomic<unsigned> counter{0};
  char name[64];
  std::snprintf(name, sizeof name, "%013lld-%04u.json", static_cast<long long>(event.at_ms),
                counter.fetch_add(1) % 10000);
  return os::writeFileDurably(dir / name, json::serialize(toJson(event)), os::FileAccess::normal);
}

std::vector<fs::path> pendingEvents(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    if (p.extension() == ".json") {
      out.push_back(p);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<std::string> readFile(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return std::nullopt;
  }
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::optional<json::Value> readJsonObject(const fs::path& file) {
  const auto text = readFile(file);
  if (!text) {
    return std::nullopt;
  }
  auto doc = json::parse(*text);
  if (!doc || !doc->isObject()) {
    return std::nullopt;
  }
  return std::move(doc).value();
}

}  // namespace psa::agent::upgrade
