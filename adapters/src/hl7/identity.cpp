#include "psa/adapters/hl7/identity.h"

#include "psa/store/digest.h"

namespace psa::adapters::hl7 {
namespace {

void appendPrefixed(std::string& out, std::string_view value) {
  out += std::to_string(value.size());
  out.push_back(':');
  out.append(value);
}

}  // namespace

std::string dedupeIdentity(const Message& msg) {
  std::string_view msh3 = msg.field(0, 3).raw;
  std::string_view msh4 = msg.field(0, 4).raw;
  std::string_view msh10 = msg.field(0, 10).raw;
  std::string out;
  out.reserve(6 + 3 * 8 + msh3.size() + msh4.size() + msh10.size() + 64);
  out += "hl7v2:";
  appendPrefixed(out, msh3);
  appendPrefixed(out, msh4);
  appendPrefixed(out, msh10);
  const auto digest = sha256(msg.content());
  appendHex(out, digest.data(), digest.size());
  return out;
}

}  // namespace psa::adapters::hl7
