// An upgrade package arriving in chunks on P/upgrade/chunk (design.md "Upgrade":
// {"version","chunk","chunks","sha256_chunk","data":"<base64>"}, QoS 1), kept on disk so the
// download resumes after a disconnect or a restart of the agent.
//
// Layout under the download directory (<state_dir>/upgrade/download): `manifest.json` (the
// announced version, size, sha256 and the command id, written when a valid `upgrade` command
// starts the download) and one file per verified chunk (`chunk-<k>`), each written atomically
// (psa/store/os/durable_file.h), so a crash leaves whole chunks or none. Chunks for a version no
// valid command announced are ignored; a chunk whose bytes do not match its sha256_chunk is
// refused (the cloud resends it). The whole package is checked by upgrade::verifyPackage once
// every chunk is in.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "psa/store/json.h"
#include "psa/store/result.h"
#include "upgrade_args.h"

namespace psa::agent::upgrade {

/// One parsed P/upgrade/chunk payload (outside input).
struct Chunk {
  std::string version;
  uint32_t index = 0;  ///< 1-based
  uint32_t count = 0;  ///< chunks in the package
  std::string bytes;   ///< decoded data, its SHA-256 checked against sha256_chunk
};

inline constexpr uint32_t kMaxChunks = 100'000;
inline constexpr size_t kMaxChunkBytes = 4u << 20;

/// Parses and checks one chunk payload: every member present with its type, 1 <= chunk <=
/// chunks <= kMaxChunks, strict base64 of at most kMaxChunkBytes, sha256_chunk matching.
/// Errors: Errc::invalid_input naming the member.
Result<Chunk> parseChunk(std::string_view payload);

class Download {
 public:
  /// Starts the download announced by a valid command (`args` as in the command, parsed by
  /// parseArgs with `issued_at_ms`). An earlier partial download of another package is
  /// discarded; the same version and sha256 resumes where it was. Errors: Errc::invalid_argument
  /// (args), Errc::io.
  static Result<Download> begin(const std::filesystem::path& dir, const json::Value& args,
                                int64_t issued_at_ms, const std::string& command_id);
  /// The download in progress after a restart, if the directory holds one.
  static std::optional<Download> resume(const std::filesystem::path& dir);

  enum class Outcome { stored, duplicate, wrong_version, inconsistent, io_error };
  struct Accepted {
    Outcome outcome = Outcome::stored;
    std::string why;  ///< for the log, PHI-free
  };
  /// Stores one chunk (parsed by parseChunk) durably.
  Accepted accept(const Chunk& chunk);

  const std::string& version() const { return version_; }
  const std::string& commandId() const { return command_id_; }
  const Args& args() const { return args_; }
  uint32_t received() const;
  uint32_t total() const { return total_; }  ///< 0 until the first chunk says
  bool complete() const { return total_ > 0 && received() == total_; }
  /// Chunk numbers not yet stored (1-based), at most `limit` of them.
  std::vector<uint32_t> missing(size_t limit) const;

  /// The package bytes, in order. Errors: Errc::invalid_argument when incomplete, Errc::io.
  Result<std::string> assemble() const;
  /// Removes the download directory (after install, refusal or a newer command).
  void discard();

 private:
  std::filesystem::path dir_;
  Args args_;
  std::string version_;
  std::string command_id_;
  uint32_t total_ = 0;
  uint64_t bytes_ = 0;  ///< stored so far, never more than args_.size
  std::vector<bool> have_;
};

}  // namespace psa::agent::upgrade
