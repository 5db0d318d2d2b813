#include "psa/store/result.h"

namespace psa {
namespace {

class PsaCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "psa"; }
  std::string message(int code) const override {
    switch (static_cast<Errc>(code)) {
      case Errc::ok: return "ok";
      case Errc::invalid_argument: return "invalid argument";
      case Errc::invalid_input: return "invalid input";
      case Errc::io: return "I/O error";
      case Errc::full: return "store full";
      case Errc::corrupt: return "corrupt data";
      case Errc::crypto: return "decryption or authentication failed";
      case Errc::key_file: return "key file problem";
      case Errc::not_found: return "not found";
      case Errc::exists: return "already exists";
      case Errc::timeout: return "timed out";
      case Errc::unavailable: return "unavailable";
      case Errc::unauthorized: return "unauthorized";
      case Errc::limit: return "limit exceeded";
      case Errc::closed: return "closed";
      case Errc::internal: return "internal error";
      case Errc::busy:
        return "busy";
    }
    return "unknown error " + std::to_string(code);
  }
};

}  // namespace

const std::error_category& psaCategory() noexcept {
  static const PsaCategory category;
  return category;
}

std::string Error::describe() const {
  if (message.empty()) {
    return code.message();
  }
  return message + " (" + code.message() + ")";
}

}  // namespace psa
