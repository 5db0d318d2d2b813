// Result<T>: the return type of every public API that can fail on outside input or the
// environment. Holds either a value or an Error (a std::error_code plus PHI-free context).
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace psa {

/// Error codes shared by every module. Each names a class of failure a caller can act on;
/// the accompanying message carries PHI-free context (ids, offsets, paths, counts).
enum class Errc {
  ok = 0,
  invalid_argument = 1,  ///< a caller passed something unusable
  invalid_input,         ///< bad outside input: HL7, CSV, JSON page, config, MQTT payload
  io,                    ///< file system / OS call failed
  full,                  ///< store at its disk budget: back-pressure, retry later
  corrupt,               ///< integrity check or decode of stored data failed
  crypto,                ///< encryption/authentication failure (tampered row, wrong key)
  key_file,              ///< key file missing, unreadable or unsafe permissions
  not_found,
  exists,
  timeout,
  unavailable,  ///< a peer (broker, PMS server) cannot be reached
  unauthorized,
  limit,     ///< a hard size/count/depth limit was exceeded
  closed,    ///< component shut down
  internal,  ///< broken invariant: a bug
  busy,      ///< in use by another program (a file still being written): try later
};

}  // namespace psa

namespace std {
template <>
struct is_error_code_enum<psa::Errc> : true_type {};
}  // namespace std

namespace psa {

const std::error_category& psaCategory() noexcept;

inline std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), psaCategory()};
}

/// A failure: a code to branch on and a message for people. Messages never carry PHI.
struct Error {
  std::error_code code;
  std::string message;

  Error() = default;
  Error(std::error_code c, std::string m) : code(c), message(std::move(m)) {}
  Error(Errc c, std::string m) : code(make_error_code(c)), message(std::move(m)) {}

  bool is(Errc e) const noexcept { return code == make_error_code(e); }
  /// "message (category: code text)", or just the code text when there is no message.
  std::string describe() const;
};

/// Either a T or an Error. Construct from a T or from an Error; check with ok()/operator bool.
template <class T>
class [[nodiscard]] Result {
 public:
  using value_type = T;

  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT
  Result(Errc code, std::string message) : v_(std::in_place_index<1>, code, std::move(message)) {}

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const& { assert(!ok()); return std::get<1>(v_); }
  Error&& error() && { assert(!ok()); return std::get<1>(std::move(v_)); }

  T valueOr(T fallback) const& { return ok() ? value() : std::move(fallback); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT: implicit by design
  Result(Errc code, std::string message) : error_(Error(code, std::move(message))) {}

  bool ok() const noexcept { return !error_.has_value(); }
  explicit operator bool() const noexcept { return ok(); }
  const Error& error() const& { assert(!ok()); return *error_; }
  Error&& error() && { assert(!ok()); return std::move(*error_); }

 private:
  std::optional<Error> error_;
};

using Status = Result<void>;

}  // namespace psa

/// Propagate an error from an expression returning Result<...>.
#define PSA_TRY(expr)                                    \
  do {                                                   \
    auto psa_try_result_ = (expr);                       \
    if (!psa_try_result_) {                              \
      return std::move(psa_try_result_).error();         \
    }                                                    \
  } while (0)
