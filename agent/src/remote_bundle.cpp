#include "remote_bundle.h"

#include <sstream>

#include "archive.h"
#include "bundle.h"
#include "psa/store/clock.h"

namespace psa::agent {

Result<SupportBundle> buildSupportBundle(const AgentContext& ctx) {
  const ConfigPtr cfg = ctx.currentConfig ? ctx.currentConfig() : ctx.config;
  std::ostringstream out;
  std::ostringstream err;
  CommandContext cc{cfg->source_file, true, out, err};
  std::vector<std::string> notes;
  const auto files = collectBundle(cc, BundleOptions{}, notes);
  const int64_t now_ms = Clock::system()->nowMs();
  auto tar = tarArchive(files, now_ms / 1000);
  if (!tar) {
    return std::move(tar).error();
  }
  std::string stamp;
  for (char c : formatRfc3339(now_ms).substr(0, 19)) {
    if (c != '-' && c != ':') {
      stamp.push_back(c);
    }
  }
  SupportBundle b;
  b.file_name = "pms-agent-bundle-" + cfg->agent_id + "-" + stamp + "Z.tar.gz";
  b.content_type = "application/gzip";
  b.bytes = gzipStored(*tar, now_ms / 1000);
  return b;
}

}  // namespace psa::agent
