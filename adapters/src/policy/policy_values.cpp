// Value transforms and element-reference parsing of the field policy.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>

#include "policy/policy_internal.h"
#include "psa/store/digest.h"

namespace psa::adapters::policy {
namespace {

bool isDigits(std::string_view s) {
  if (s.empty()) {
    return false;
  }
  for (char c : s) {
    if (c < '0' || c > '9') {
      return false;
    }
  }
  return true;
}

// The start of the last `keep` characters of `value` (UTF-8 code points when `utf8`).
size_t keepFrom(std::string_view value, int keep, bool utf8) {
  size_t pos = value.size();
  int kept = 0;
  while (pos > 0 && kept < keep) {
    --pos;
    if (utf8) {
      while (pos > 0 && (static_cast<unsigned char>(value[pos]) & 0xC0) == 0x80) {
        --pos;
      }
    }
    ++kept;
  }
  return pos;
}

std::optional<std::string> mask(std::string_view value, int keep, bool utf8) {
  const size_t from = keepFrom(value, keep, utf8);
  std::string out;
  size_t i = 0;
  while (i < from) {
    size_t step = 1;
    if (utf8) {
      while (i + step < from && (static_cast<unsigned char>(value[i + step]) & 0xC0) == 0x80) {
        ++step;
      }
    }
    out += '*';
    i += step;
  }
  out.append(value.substr(from));
  if (out == value) {
    return std::nullopt;  // nothing left to hide (short, or masked already)
  }
  return out;
}

// A date (YYYY, YYYYMM..., YYYY-MM...) -> its year; a ZIP (5 or 9 digits, 12345-6789) -> its
// first three digits; nullopt for anything else.
std::optional<std::string> generalize(std::string_view v) {
  if (v.size() == 3 && isDigits(v)) {
    return std::string(v);  // a ZIP generalized already
  }
  const bool zip5 = v.size() == 5 && isDigits(v);
  const bool zip9 = v.size() == 9 && isDigits(v);
  const bool zip_plus4 =
      v.size() == 10 && v[5] == '-' && isDigits(v.substr(0, 5)) && isDigits(v.substr(6));
  if (zip5 || zip9 || zip_plus4) {
    return std::string(v.substr(0, 3));
  }
  if (v.size() >= 4 && isDigits(v.substr(0, 4))) {
    const std::string_view rest = v.substr(4);
    const bool compact = rest.empty() || isDigits(rest.substr(0, std::min<size_t>(rest.size(), 4)));
    const bool iso =
        !rest.empty() && rest[0] == '-' && rest.size() >= 3 && isDigits(rest.substr(1, 2));
    if (compact || iso) {
      return std::string(v.substr(0, 4));
    }
  }
  return std::nullopt;
}

std::string lowerAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

bool validKey(std::string_view k) {
  return !k.empty() && k.find_first_of("[]") == std::string_view::npos;
}

std::vector<std::string> splitDots(std::string_view text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t dot = text.find('.', start);
    out.emplace_back(text.substr(start, dot == std::string_view::npos ? text.npos : dot - start));
    if (dot == std::string_view::npos) {
      return out;
    }
    start = dot + 1;
  }
}

}  // namespace

std::string applyEdits(std::string_view text, std::vector<Edit> edits) {
  std::sort(edits.begin(), edits.end(),
            [](const Edit& a, const Edit& b) { return a.begin < b.begin; });
  std::string out;
  size_t at = 0;
  for (const Edit& e : edits) {
    if (e.begin < at) {
      continue;
    }
    out.append(text.substr(at, e.begin - at));
    out.append(e.text);
    at = e.end;
  }
  out.append(text.substr(at));
  return out;
}

std::string hashToken(const std::string& key, std::string_view value) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(value.data()), value.size(), mac, &len);
  std::string out = "h:";
  appendHex(out, mac, 16);
  return out;
}

std::optional<std::string> transformValue(const LeafAction& act, std::string_view value,
                                          const std::string& key, bool utf8, Counts& counts) {
  if (value.empty()) {
    return std::nullopt;
  }
  switch (act.action) {
    case Action::drop:
      ++counts.dropped;
      return std::string();
    case Action::mask: {
      auto out = mask(value, act.keep, utf8);
      if (out) {
        ++counts.masked;
      }
      return out;
    }
    case Action::hash:
      if (value.size() == 34 && value.substr(0, 2) == "h:") {
        return std::nullopt;  // a token already (a resend of a stored record)
      }
      ++counts.hashed;
      return hashToken(key, value);
    case Action::generalize: {
      auto out = generalize(value);
      if (!out) {
        ++counts.dropped;  // not a date or ZIP we can coarsen: do not let it through
        return std::string();
      }
      if (*out == value) {
        return std::nullopt;
      }
      ++counts.generalized;
      return out;
    }
  }
  return std::nullopt;
}

bool ssnLikeName(std::string_view name) {
  std::string n;
  for (char c : name) {
    if (c == '_' || c == '-' || c == ' ' || c == '.') {
      continue;
    }
    n += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  const auto ends = [&n](std::string_view tail) {
    return n.size() >= tail.size() && n.compare(n.size() - tail.size(), tail.size(), tail) == 0;
  };
  return ends("ssn") || n.find("socialsecurity") != std::string::npos || n == "ssno" ||
         n == "ssnumber";
}

std::optional<Hl7Ref> parseHl7Ref(std::string_view text) {
  Hl7Ref r;
  if (const size_t at = text.find('@'); at != std::string_view::npos) {
    r.type = std::string(text.substr(at + 1));
    text = text.substr(0, at);
    if (r.type.empty() || r.type.size() > 10) {
      return std::nullopt;
    }
    for (char c : r.type) {
      if (!std::isalnum(static_cast<unsigned char>(c))) {
        return std::nullopt;
      }
    }
  }
  if (text.size() < 5 || text[3] != '-') {
    return std::nullopt;
  }
  for (int i = 0; i < 3; ++i) {
    const char c = text[static_cast<size_t>(i)];
    if (!std::isupper(static_cast<unsigned char>(c)) &&
        !std::isdigit(static_cast<unsigned char>(c))) {
      return std::nullopt;
    }
  }
  r.segment = std::string(text.substr(0, 3));
  const auto parts = splitDots(text.substr(4));
  if (parts.size() > 3) {
    return std::nullopt;
  }
  int* targets[3] = {&r.field, &r.component, &r.subcomponent};
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!isDigits(parts[i]) || parts[i].size() > 5) {
      return std::nullopt;
    }
    *targets[i] = std::stoi(parts[i]);
    if (*targets[i] < 1) {
      return std::nullopt;
    }
  }
  // MSH-1 and MSH-2 are the delimiters themselves; rewriting them would break the message.
  const bool header = r.segment == "MSH" || r.segment == "FHS" || r.segment == "BHS";
  if (header && r.field <= 2) {
    return std::nullopt;
  }
  return r;
}

std::optional<JsonRef> parseJsonRef(std::string_view text) {
  JsonRef r;
  if (text.substr(0, 2) == "*.") {
    r.any_depth = true;
    text = text.substr(2);
  }
  r.path = splitDots(text);
  for (const auto& k : r.path) {
    if (!validKey(k) || k == "*") {
      return std::nullopt;
    }
  }
  return r;
}

std::optional<CsvRef> parseCsvRef(std::string_view text) {
  if (text.empty()) {
    return std::nullopt;
  }
  return CsvRef{lowerAscii(text), false};
}

std::optional<FhirRef> parseFhirRef(std::string_view text) {
  FhirRef r;
  if (const size_t open = text.find('['); open != std::string_view::npos) {
    const std::string_view filter = text.substr(open);
    const std::string_view prefix = "[system=";
    if (filter.size() <= prefix.size() + 1 || filter.substr(0, prefix.size()) != prefix ||
        filter.back() != ']') {
      return std::nullopt;
    }
    r.system = std::string(filter.substr(prefix.size(), filter.size() - prefix.size() - 1));
    text = text.substr(0, open);
  }
  auto parts = splitDots(text);
  if (parts.size() < 2) {
    return std::nullopt;
  }
  r.resource = parts.front();
  const bool type_name =
      !r.resource.empty() && std::isupper(static_cast<unsigned char>(r.resource[0]));
  if (r.resource != "*" && !type_name) {
    return std::nullopt;
  }
  for (char c : r.resource) {
    if (c != '*' && !std::isalnum(static_cast<unsigned char>(c))) {
      return std::nullopt;
    }
  }
  r.path.assign(parts.begin() + 1, parts.end());
  for (const auto& k : r.path) {
    if (!validKey(k) || k == "*") {
      return std::nullopt;
    }
  }
  return r;
}

}  // namespace psa::adapters::policy
