// UTF-8 text <-> std::filesystem::path. Inside the agent, text is UTF-8 (config values, JSON,
// log fields); the OS boundary is std::filesystem::path. Constructing a path from a plain
// std::string, or calling path::string(), converts with the platform's narrow encoding, which on
// Windows (mingw's libstdc++) is not UTF-8: "café" would name a different file. Use these two
// wherever a path comes from or goes into text. Header-only, the same on every OS.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace psa::os {

/// The path named by UTF-8 `text` (forward or backward slashes; both are separators on
/// Windows).
inline std::filesystem::path pathFromUtf8(std::string_view text) {
  return std::filesystem::path(std::u8string(text.begin(), text.end()));
}

/// The path as UTF-8 text, with the separators the OS uses.
inline std::string pathToUtf8(const std::filesystem::path& path) {
  const std::u8string u = path.u8string();
  return std::string(u.begin(), u.end());
}

/// A path from the config: UTF-8 `text`, taken relative to `base` (the state directory) unless
/// it is absolute, empty, or `base` is empty. Names that start with two separators (UNC shares
/// \\server\share, device names like the pipe \\.\pipe\pms-agent) are absolute too, whatever
/// the library's path grammar makes of them.
inline std::filesystem::path resolveUtf8Path(const std::filesystem::path& base,
                                             std::string_view text) {
  std::filesystem::path p = pathFromUtf8(text);
  auto separator = [](char c) { return c == '/' || c == '\\'; };
  const bool double_separator = text.size() >= 2 && separator(text[0]) && separator(text[1]);
  return p.is_absolute() || double_separator || text.empty() || base.empty() ? p : base / p;
}

}  // namespace psa::os
