// Shell-style file name patterns for the file-drop adapter's include/exclude lists and
// per-pattern settings. Pure functions; thread-safe.
//
// Syntax: '*' matches any run of characters except '/', '**' any run including '/' ('**/'
// also matches no directory at all: '**/a.csv' matches 'a.csv' and 'x/y/a.csv'), '?' one
// character except '/', '[abc]' / '[a-z]' / '[!abc]' (or '[^abc]') one character of (not of)
// the set. Every other byte matches itself (no escapes: '\' is an ordinary character, as in
// Windows paths). Matching is on bytes; `ignore_case` folds ASCII letters only.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace psa::adapters::file {

/// Longest pattern accepted by globProblem().
inline constexpr size_t kMaxGlobBytes = 256;

/// Why `pattern` is unusable ("unterminated '[' at column 4", "empty pattern", ...), or
/// nullopt when it is fine. Config validation calls this; globMatch() treats a malformed
/// class as literal characters.
std::optional<std::string> globProblem(std::string_view pattern);

/// True when all of `text` matches `pattern`. Cost O(pattern x text).
bool globMatch(std::string_view pattern, std::string_view text, bool ignore_case = false);

/// The file-drop rule: a pattern containing '/' is matched against the relative path
/// (`sub/dir/name.csv`, '/' separated), any other pattern against the file name alone.
bool globMatchPath(std::string_view pattern, std::string_view relative_path,
                   bool ignore_case = false);

}  // namespace psa::adapters::file
