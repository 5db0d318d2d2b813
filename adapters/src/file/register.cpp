// Registration of the `file-drop` adapter type: schema, factory and `pms-agent check` probes.
#include <filesystem>

#include "file/file_drop_config.h"
#include "file/file_drop_source.h"
#include "psa/adapters/file/dir_watcher.h"
#include "psa/adapters/source.h"
#include "psa/store/os/durable_file.h"

namespace psa::adapters {

namespace {

namespace fs = std::filesystem;
using file::FileDropConfig;

CheckResult line(const std::string& adapter, CheckResult::Level level, std::string text) {
  return CheckResult{level, "adapter " + adapter, std::move(text)};
}

// A directory we must write into: it exists and is writable, or it can be created.
std::optional<std::string> writableProblem(const fs::path& dir) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) {
    if (!os::canWriteDirectory(dir)) {
      return dir.string() + " is not writable by this user";
    }
    return std::nullopt;
  }
  fs::path parent = dir.parent_path();
  while (!parent.empty() && !fs::exists(parent, ec)) {
    if (parent == parent.parent_path()) {
      break;
    }
    parent = parent.parent_path();
  }
  if (parent.empty() || !os::canWriteDirectory(parent)) {
    return dir.string() + " does not exist and cannot be created here";
  }
  return std::nullopt;
}

std::vector<CheckResult> checkFileDrop(const json::Value& config, const fs::path& state_dir) {
  std::vector<CheckResult> out;
  const std::string name = config.getString("name", "file-drop");
  auto parsed = file::parseFileDropConfig(config, state_dir);
  if (!parsed) {
    out.push_back(
        line(name, CheckResult::Level::fail, "invalid settings: " + parsed.error().message));
    return out;
  }
  const FileDropConfig& c = *parsed;
  std::error_code ec;
  if (!fs::is_directory(c.dir, ec)) {
    out.push_back(line(name, CheckResult::Level::fail,
                       c.dir.string() +
                           " does not exist or is not a directory ▸ create it, or mount the "
                           "share, and check adapters[].path"));
    return out;
  }
  if (fs::directory_iterator listing(c.dir, ec); ec) {
    out.push_back(line(name, CheckResult::Level::fail,
                       c.dir.string() +
                           " is not readable by this user ▸ grant the service user read "
                           "access (group pms-agent)"));
    return out;
  }
  if (!os::canWriteDirectory(c.dir)) {
    out.push_back(line(name, CheckResult::Level::fail,
                       c.dir.string() +
                           " is not writable: ingested files cannot be moved out ▸ grant "
                           "the service user write access"));
  } else {
    size_t files = 0;
    fs::directory_iterator it(c.dir, ec);
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
      files += it->is_regular_file(ec) ? 1 : 0;
    }
    out.push_back(
        line(name, CheckResult::Level::ok,
             "watching " + c.dir.string() + " (" + std::to_string(files) + " files waiting)"));
  }
  if (c.after == file::AfterIngest::archive) {
    if (auto p = writableProblem(c.archive_dir)) {
      out.push_back(line(name, CheckResult::Level::fail,
                         "archive: " + *p + " ▸ fix the permissions or archive_dir"));
    }
  }
  if (auto p = writableProblem(c.error_dir)) {
    out.push_back(line(name, CheckResult::Level::fail,
                       "error dir: " + *p + " ▸ fix the permissions or error_dir"));
  } else if (fs::is_directory(c.error_dir, ec)) {
    size_t reports = 0;
    fs::recursive_directory_iterator it(c.error_dir, fs::directory_options::skip_permission_denied,
                                        ec);
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const std::string n = it->path().filename().string();
      reports += n.size() > 10 && n.compare(n.size() - 10, 10, ".error.txt") == 0 ? 1 : 0;
    }
    if (reports > 0) {
      out.push_back(line(name, CheckResult::Level::warn,
                         std::to_string(reports) + " error report(s) in " + c.error_dir.string() +
                             " ▸ read the *.error.txt files"));
    }
  }
  if (c.watch == file::WatchMode::automatic && !file::makeNativeWatcher()) {
    out.push_back(line(
        name, CheckResult::Level::warn,
        "inotify unavailable; polling every " + std::to_string(c.poll_interval.count()) + " ms"));
  }
  return out;
}

}  // namespace

void registerFileDropSource(SourceRegistry& registry) {
  SourceFactory f;
  f.type = "file-drop";
  f.description = "picks up CSV, HL7 v2, X12 and opaque files dropped in a directory";
  f.schema = file::fileDropSchema();
  f.create = [](const json::Value& config, SourceContext& ctx) -> Result<SourcePtr> {
    auto parsed = file::parseFileDropConfig(config, ctx.state_dir);
    if (!parsed) {
      return std::move(parsed).error();
    }
    return SourcePtr(
        std::make_shared<file::FileDropSource>(std::move(parsed).value(), ctx.sink, ctx.clock));
  };
  f.check = checkFileDrop;
  registry.add(std::move(f));
}

}  // namespace psa::adapters
