#include "archive.h"

#include <array>
#include <cstdio>
#include <cstring>

namespace psa::agent {
namespace {

constexpr size_t kBlock = 512;
constexpr size_t kStoredMax = 65535;

// width-1 octal digits, NUL-terminated (ustar numeric field); false if it does not fit.
bool octal(char* field, size_t width, uint64_t value) {
  field[width - 1] = '\0';
  for (size_t i = width - 1; i-- > 0;) {
    field[i] = static_cast<char>('0' + (value & 7));
    value >>= 3;
  }
  return value == 0;
}

void putLe32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) {
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
}

}  // namespace

uint32_t crc32(std::string_view data, uint32_t crc) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) {
        c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      }
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (unsigned char b : data) {
    crc = table[(crc ^ b) & 0xff] ^ (crc >> 8);
  }
  return ~crc;
}

Result<std::string> tarArchive(const std::vector<ArchiveFile>& files, int64_t mtime_s) {
  std::string out;
  for (const ArchiveFile& f : files) {
    std::string prefix;
    std::string name = f.name;
    if (name.empty() || name.size() > 255) {
      return Error(Errc::invalid_argument, "archive entry name must be 1-255 bytes: " + name.substr(0, 64));
    }
    if (name.size() > 100) {
      // Split at a '/' so that name <= 100 and prefix <= 155.
      // The last '/' within the prefix's 155 bytes leaves the shortest possible name part.
      const size_t cut = name.rfind('/', 155);
      if (cut == std::string::npos || cut == 0 || name.size() - cut - 1 > 100) {
        return Error(Errc::invalid_argument, "archive entry name cannot be split for ustar: " + name.substr(0, 64));
      }
      prefix = name.substr(0, cut);
      name = name.substr(cut + 1);
    }
    char h[kBlock];
    std::memset(h, 0, sizeof h);
    std::memcpy(h, name.data(), name.size());
    octal(h + 100, 8, f.mode & 07777);
    octal(h + 108, 8, 0);  // uid
    octal(h + 116, 8, 0);  // gid
    if (!octal(h + 124, 12, f.data.size())) {
      return Error(Errc::limit, "archive entry larger than 8 GB: " + f.name.substr(0, 64));
    }
    octal(h + 136, 12, static_cast<uint64_t>(mtime_s < 0 ? 0 : mtime_s));
    std::memset(h + 148, ' ', 8);  // checksum field counts as spaces while summing
    h[156] = '0';                  // regular file
    std::memcpy(h + 257, "ustar", 6);
    std::memcpy(h + 263, "00", 2);
    std::memcpy(h + 265, "root", 4);
    std::memcpy(h + 297, "root", 4);
    std::memcpy(h + 345, prefix.data(), prefix.size());
    unsigned sum = 0;
    for (unsigned char c : h) {
      sum += c;
    }
    octal(h + 148, 7, sum);  // six digits, NUL, then the space already there
    h[155] = ' ';
    out.append(h, sizeof h);
    out += f.data;
    out.append((kBlock - f.data.size() % kBlock) % kBlock, '\0');
  }
  out.append(2 * kBlock, '\0');
  return out;
}

std::string gzipStored(std::string_view data, int64_t mtime_s) {
  std::string out;
  out.reserve(data.size() + data.size() / kStoredMax * 5 + 32);
  out.push_back('\x1f');
  out.push_back('\x8b');
  out.push_back(8);  // CM = deflate
  out.push_back(0);  // FLG
  putLe32(out, static_cast<uint32_t>(mtime_s < 0 ? 0 : mtime_s));
  out.push_back(0);  // XFL
  out.push_back(3);  // OS = Unix
  size_t off = 0;
  do {
    const size_t n = std::min(kStoredMax, data.size() - off);
    const bool last = off + n == data.size();
    out.push_back(last ? 1 : 0);  // BFINAL, BTYPE=00 (stored), then byte-aligned
    out.push_back(static_cast<char>(n & 0xff));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(~n & 0xff));
    out.push_back(static_cast<char>((~n >> 8) & 0xff));
    out.append(data.substr(off, n));
    off += n;
  } while (off < data.size());
  putLe32(out, crc32(data));
  putLe32(out, static_cast<uint32_t>(data.size() & 0xffffffffu));
  return out;
}

}  // namespace psa::agent
