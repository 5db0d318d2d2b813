#include "fhir_map/primitives.h"

#include <array>
#include <cctype>

namespace psa::adapters::fhir_map {
namespace {

constexpr std::array<std::string_view, 20> kPrimitives = {
    "boolean",      "integer",  "string",      "decimal",     "uri",  "url",  "canonical",
    "base64Binary", "instant",  "date",        "dateTime",    "time", "code", "oid",
    "id",           "markdown", "unsignedInt", "positiveInt", "uuid", "xhtml"};

bool digits(std::string_view s, size_t at, size_t n) {
  if (at + n > s.size()) {
    return false;
  }
  for (size_t i = at; i < at + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

// hh:mm:ss(.fraction)? starting at `at`; returns the end or npos.
size_t timeOfDay(std::string_view s, size_t at) {
  if (!digits(s, at, 2) || at + 8 > s.size() || s[at + 2] != ':' || !digits(s, at + 3, 2) ||
      s[at + 5] != ':' || !digits(s, at + 6, 2)) {
    return std::string_view::npos;
  }
  if (s.substr(at, 2) > "23" || s.substr(at + 3, 2) > "59" || s.substr(at + 6, 2) > "60") {
    return std::string_view::npos;
  }
  size_t i = at + 8;
  if (i < s.size() && s[i] == '.') {
    size_t j = i + 1;
    while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) {
      ++j;
    }
    if (j == i + 1) {
      return std::string_view::npos;
    }
    i = j;
  }
  return i;
}

bool zone(std::string_view s, size_t at) {
  if (at + 1 == s.size() && s[at] == 'Z') {
    return true;
  }
  return at + 6 == s.size() && (s[at] == '+' || s[at] == '-') && digits(s, at + 1, 2) &&
         s[at + 3] == ':' && digits(s, at + 4, 2) && s.substr(at + 1, 2) <= "14" &&
         s.substr(at + 4, 2) <= "59";
}

// YYYY, YYYY-MM or YYYY-MM-DD; returns the end or npos.
size_t datePart(std::string_view s) {
  if (!digits(s, 0, 4)) {
    return std::string_view::npos;
  }
  if (s.size() == 4 || s[4] != '-') {
    return 4;
  }
  if (!digits(s, 5, 2) || s.substr(5, 2) < "01" || s.substr(5, 2) > "12") {
    return std::string_view::npos;
  }
  if (s.size() == 7 || s[7] != '-') {
    return 7;
  }
  if (!digits(s, 8, 2) || s.substr(8, 2) < "01" || s.substr(8, 2) > "31") {
    return std::string_view::npos;
  }
  return 10;
}

// A date with an optional time that then needs a zone; `full`: instant (all parts required).
bool dateTime(std::string_view s, bool full) {
  size_t i = datePart(s);
  if (i == std::string_view::npos) {
    return false;
  }
  if (i == s.size()) {
    return !full;
  }
  if (i != 10 || s[i] != 'T') {
    return false;
  }
  i = timeOfDay(s, i + 1);
  return i != std::string_view::npos && zone(s, i);
}

bool idChars(std::string_view s) {
  if (s.empty() || s.size() > 64) {
    return false;
  }
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

// code: [^\s]+( [^\s]+)*
bool codeChars(std::string_view s) {
  if (s.empty() || s.front() == ' ' || s.back() == ' ') {
    return false;
  }
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\t' || c == '\r' || c == '\n' || (c == ' ' && s[i + 1] == ' ')) {
      return false;
    }
  }
  return true;
}

bool noWhitespace(std::string_view s) {
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return !s.empty();
}

bool onlyBlank(std::string_view s) {
  for (char c : s) {
    if (!std::isspace(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool isPrimitiveType(std::string_view type) {
  for (auto p : kPrimitives) {
    if (p == type) {
      return true;
    }
  }
  return false;
}

const char* checkPrimitive(std::string_view type, const json::Value& v) {
  if (type == "boolean") {
    return v.isBool() ? nullptr : "a boolean expected";
  }
  if (type == "decimal") {
    return v.isNumber() ? nullptr : "a decimal number expected";
  }
  if (type == "integer" || type == "unsignedInt" || type == "positiveInt") {
    if (!v.isInteger()) {
      return "an integer expected";
    }
    if (v.asInt() > 2147483647 || v.asInt() < -2147483648LL) {
      return "integer out of the 32-bit range";
    }
    if (type == "unsignedInt" && v.asInt() < 0) {
      return "an unsignedInt must not be negative";
    }
    if (type == "positiveInt" && v.asInt() < 1) {
      return "a positiveInt must be at least 1";
    }
    return nullptr;
  }
  if (!v.isString()) {
    return "a JSON string expected";
  }
  const std::string& s = v.asString();
  if (s.empty() || onlyBlank(s)) {
    return "empty value not allowed";
  }
  if (type == "date") {
    return datePart(s) == s.size() ? nullptr : "not a valid date (YYYY, YYYY-MM, YYYY-MM-DD)";
  }
  if (type == "dateTime") {
    return dateTime(s, false) ? nullptr : "not a valid dateTime";
  }
  if (type == "instant") {
    return dateTime(s, true) && s.size() > 10 ? nullptr
                                              : "not a valid instant (date, time and zone)";
  }
  if (type == "time") {
    return timeOfDay(s, 0) == s.size() ? nullptr : "not a valid time";
  }
  if (type == "id") {
    return idChars(s) ? nullptr : "not a valid id ([A-Za-z0-9-.]{1,64})";
  }
  if (type == "code") {
    return codeChars(s) ? nullptr : "not a valid code (no leading, trailing or double spaces)";
  }
  if (type == "uri" || type == "url" || type == "canonical" || type == "oid" || type == "uuid") {
    return noWhitespace(s) ? nullptr : "not a valid uri (no whitespace)";
  }
  return nullptr;  // string, markdown, base64Binary, xhtml: any non-blank text
}

}  // namespace psa::adapters::fhir_map
