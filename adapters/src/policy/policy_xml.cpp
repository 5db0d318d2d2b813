// The default SSN mask on vendor XML (Kareo SOAP and the like): the text of every element
// whose local name is like an SSN (<SocialSecurityNumber>, <ns:SSN>) is masked to its last
// four in place. Only plain text is touched (no markup, no entity), so the document stays
// well-formed; configured rules do not address XML.
#include "policy/policy_internal.h"

namespace psa::adapters::policy {
namespace {

bool nameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.' || c == ':';
}

}  // namespace

Outcome maskXmlSsnElements(std::string_view payload) {
  Outcome out;
  std::string s(payload);
  size_t i = 0;
  while ((i = s.find('<', i)) != std::string::npos) {
    size_t name_end = i + 1;
    while (name_end < s.size() && nameChar(s[name_end])) {
      ++name_end;
    }
    const std::string name = s.substr(i + 1, name_end - i - 1);
    const size_t close = s.find('>', name_end);
    if (name.empty() || close == std::string::npos || s[close - 1] == '/') {
      ++i;
      continue;
    }
    const size_t text_end = s.find('<', close + 1);
    if (text_end == std::string::npos) {
      break;
    }
    const size_t colon = name.rfind(':');
    const std::string local = colon == std::string::npos ? name : name.substr(colon + 1);
    const std::string_view text(s.data() + close + 1, text_end - close - 1);
    if (ssnLikeName(local) && s.compare(text_end, name.size() + 2, "</" + name) == 0 &&
        text.find('&') == std::string_view::npos) {
      Counts c;
      if (auto masked = transformValue(LeafAction{Action::mask, 4}, text, {}, true, c)) {
        s.replace(close + 1, text.size(), *masked);
        out.counts += c;
      }
    }
    i = close + 1;
  }
  if (out.counts.total() > 0) {
    out.changed = true;
    out.payload = std::move(s);
  }
  return out;
}

}  // namespace psa::adapters::policy
