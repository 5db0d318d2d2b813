// A small tar.gz writer for support bundles: POSIX ustar entries wrapped in gzip (RFC 1952)
// whose deflate stream (RFC 1951) uses stored blocks. No compression library is needed (the
// project's dependency list has none), the output opens with any tar/gzip, and bundles are
// small (hundreds of KB) so the missing compression costs little.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "psa/store/result.h"

namespace psa::agent {

struct ArchiveFile {
  std::string name;  ///< path inside the archive ("bundle/status.json"); at most 255 bytes
  std::string data;
  uint32_t mode = 0600;
};

/// A ustar archive (512-byte blocks, two zero blocks at the end). Errors: a name too long
/// or not splittable into ustar's prefix/name fields (Errc::invalid_argument).
Result<std::string> tarArchive(const std::vector<ArchiveFile>& files, int64_t mtime_s);

/// gzip member of `data` with stored deflate blocks; `mtime_s` goes into the header.
std::string gzipStored(std::string_view data, int64_t mtime_s);

/// CRC-32 (IEEE 802.3), as gzip uses it.
uint32_t crc32(std::string_view data, uint32_t crc = 0);

}  // namespace psa::agent
