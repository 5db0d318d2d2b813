#include "upgrade_download.h"

#include <algorithm>

#include "psa/agent/signed_document.h"
#include "psa/store/digest.h"
#include "psa/store/json.h"
#include "psa/store/os/durable_file.h"
#include "upgrade_files.h"

namespace psa::agent::upgrade {
namespace fs = std::filesystem;

namespace {

constexpr const char* kManifest = "manifest.json";

fs::path chunkPath(const fs::path& dir, uint32_t index) {
  return dir / ("chunk-" + std::to_string(index));
}

struct Manifest {
  json::Value args = json::Value::object();
  int64_t issued_at_ms = 0;
  std::string command_id;
  uint32_t chunks = 0;
};

Status writeManifest(const fs::path& dir, const Manifest& m) {
  json::Value doc = json::Value::object();
  doc.set("command_id", json::Value::string(m.command_id));
  doc.set("issued_at_ms", json::Value::integer(m.issued_at_ms));
  doc.set("chunks", json::Value::integer(m.chunks));
  doc.set("args", m.args);
  return os::writeFileDurably(dir / kManifest, json::serialize(doc), os::FileAccess::owner_only);
}

std::optional<Manifest> readManifest(const fs::path& dir) {
  const auto text = readFile(dir / kManifest);
  if (!text) {
    return std::nullopt;
  }
  auto doc = json::parse(*text);
  if (!doc || !doc->isObject() || doc->find("args") == nullptr) {
    return std::nullopt;
  }
  Manifest m;
  m.args = *doc->find("args");
  m.issued_at_ms = doc->getInt("issued_at_ms");
  m.command_id = doc->getString("command_id");
  const int64_t chunks = doc->getInt("chunks");
  if (chunks < 0 || chunks > kMaxChunks) {
    return std::nullopt;
  }
  m.chunks = static_cast<uint32_t>(chunks);
  return m;
}

Error invalid(const std::string& what) {
  return Error(Errc::invalid_input, "upgrade chunk: " + what);
}

}  // namespace

Result<Chunk> parseChunk(std::string_view payload) {
  json::Limits limits;
  limits.max_bytes = kMaxChunkBytes * 4 / 3 + 4096;
  limits.max_depth = 4;
  auto doc = json::parse(payload, limits);
  if (!doc) {
    return invalid("not JSON: " + doc.error().message);
  }
  if (!doc->isObject()) {
    return invalid("expected an object");
  }
  Chunk c;
  const json::Value* version = doc->find("version");
  const json::Value* index = doc->find("chunk");
  const json::Value* count = doc->find("chunks");
  const json::Value* sha = doc->find("sha256_chunk");
  const json::Value* data = doc->find("data");
  if (version == nullptr || !version->isString() || !isVersion(version->asString())) {
    return invalid("version: expected a version string");
  }
  if (count == nullptr || !count->isInteger() || count->asInt() < 1 ||
      count->asInt() > kMaxChunks) {
    return invalid("chunks: expected 1.." + std::to_string(kMaxChunks));
  }
  if (index == nullptr || !index->isInteger() || index->asInt() < 1 ||
      index->asInt() > count->asInt()) {
    return invalid("chunk: expected 1..chunks");
  }
  if (sha == nullptr || !sha->isString() || sha->asString().size() != 64) {
    return invalid("sha256_chunk: expected 64 hex digits");
  }
  if (data == nullptr || !data->isString()) {
    return invalid("data: expected base64 text");
  }
  auto bytes = base64Decode(data->asString());
  if (!bytes || bytes->empty() || bytes->size() > kMaxChunkBytes) {
    return invalid("data: expected the base64 of 1.." + std::to_string(kMaxChunkBytes) + " bytes");
  }
  if (sha256Hex(*bytes) != sha->asString()) {
    return invalid("sha256_chunk does not match the data (damaged in transit)");
  }
  c.version = version->asString();
  c.index = static_cast<uint32_t>(index->asInt());
  c.count = static_cast<uint32_t>(count->asInt());
  c.bytes = std::move(*bytes);
  return c;
}

Result<Download> Download::begin(const fs::path& dir, const json::Value& args_json,
                                 int64_t issued_at_ms, const std::string& command_id) {
  auto parsed = parseArgs(args_json, issued_at_ms);
  if (auto* rejection = std::get_if<Rejection>(&parsed)) {
    return Error(Errc::invalid_argument, rejection->message);
  }
  const Args args = std::get<Args>(parsed);
  if (std::optional<Download> earlier = resume(dir);
      earlier && earlier->args_.version == args.version && earlier->args_.sha256 == args.sha256) {
    earlier->command_id_ = command_id;
    Manifest m{args_json, issued_at_ms, command_id, earlier->total_};
    PSA_TRY(writeManifest(dir, m));
    return std::move(*earlier);
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  PSA_TRY(os::createServiceDirectory(dir));
  PSA_TRY(writeManifest(dir, Manifest{args_json, issued_at_ms, command_id, 0}));
  Download d;
  d.dir_ = dir;
  d.args_ = args;
  d.version_ = args.version;
  d.command_id_ = command_id;
  return d;
}

std::optional<Download> Download::resume(const fs::path& dir) {
  const std::optional<Manifest> m = readManifest(dir);
  if (!m) {
    return std::nullopt;
  }
  auto parsed = parseArgs(m->args, m->issued_at_ms);
  if (!std::holds_alternative<Args>(parsed)) {
    return std::nullopt;
  }
  Download d;
  d.dir_ = dir;
  d.args_ = std::get<Args>(parsed);
  d.version_ = d.args_.version;
  d.command_id_ = m->command_id;
  d.total_ = m->chunks;
  d.have_.assign(d.total_, false);
  std::error_code ec;
  for (uint32_t k = 1; k <= d.total_; ++k) {
    d.have_[k - 1] = fs::is_regular_file(chunkPath(dir, k), ec);
    if (d.have_[k - 1]) {
      d.bytes_ += fs::file_size(chunkPath(dir, k), ec);
    }
  }
  return d;
}

Download::Accepted Download::accept(const Chunk& chunk) {
  if (chunk.version != version_) {
    return {Outcome::wrong_version,
            "chunk of " + chunk.version + ", but the download in progress is " + version_};
  }
  if (total_ == 0) {
    const uint64_t capacity = static_cast<uint64_t>(chunk.count) * kMaxChunkBytes;
    if (capacity < args_.size || chunk.count > args_.size) {
      return {Outcome::inconsistent, std::to_string(chunk.count) +
                                         " chunks cannot carry the announced " +
                                         std::to_string(args_.size) + " bytes"};
    }
    Manifest m;
    m.args = json::Value::object();
    if (auto old = readManifest(dir_)) {
      m = *old;
    }
    m.chunks = chunk.count;
    if (Status st = writeManifest(dir_, m); !st) {
      return {Outcome::io_error, st.error().message};
    }
    total_ = chunk.count;
    have_.assign(total_, false);
  }
  if (chunk.count != total_) {
    return {Outcome::inconsistent, "chunk says " + std::to_string(chunk.count) +
                                       " chunks, the download has " + std::to_string(total_)};
  }
  if (have_[chunk.index - 1]) {
    return {Outcome::duplicate, {}};
  }
  if (bytes_ + chunk.bytes.size() > args_.size) {
    // Never more on disk than the signed command announced.
    return {Outcome::inconsistent,
            "the chunks exceed the announced " + std::to_string(args_.size) + " bytes"};
  }
  if (Status st = os::writeFileDurably(chunkPath(dir_, chunk.index), chunk.bytes,
                                       os::FileAccess::owner_only);
      !st) {
    return {Outcome::io_error, st.error().message};
  }
  have_[chunk.index - 1] = true;
  bytes_ += chunk.bytes.size();
  return {Outcome::stored, {}};
}

uint32_t Download::received() const {
  return static_cast<uint32_t>(std::count(have_.begin(), have_.end(), true));
}

std::vector<uint32_t> Download::missing(size_t limit) const {
  std::vector<uint32_t> out;
  for (uint32_t k = 1; k <= total_ && out.size() < limit; ++k) {
    if (!have_[k - 1]) {
      out.push_back(k);
    }
  }
  return out;
}

Result<std::string> Download::assemble() const {
  if (!complete()) {
    return Error(Errc::invalid_argument, "the download of " + version_ + " has " +
                                             std::to_string(received()) + " of " +
                                             std::to_string(total_) + " chunks");
  }
  std::string out;
  out.reserve(args_.size);
  for (uint32_t k = 1; k <= total_; ++k) {
    const auto bytes = readFile(chunkPath(dir_, k));
    if (!bytes) {
      return Error(Errc::io, "cannot read " + chunkPath(dir_, k).string());
    }
    out += *bytes;
  }
  return out;
}

void Download::discard() {
  std::error_code ec;
  fs::remove_all(dir_, ec);
  total_ = 0;
  bytes_ = 0;
  have_.clear();
}

}  // namespace psa::agent::upgrade
