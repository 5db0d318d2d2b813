// A small, strict, namespace-aware XML parser for SOAP responses (Kareo/Tebra): elements,
// attributes, character data, CDATA, the five predefined entities and character references.
// DTDs are refused (no entity expansion, no external fetches). Enforces size, depth and count
// limits; errors give the byte offset and never quote document text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "psa/store/result.h"

namespace psa::adapters::xml {

struct Attribute {
  std::string name;   ///< as written ("i:nil", "xmlns:a")
  std::string local;  ///< part after the prefix
  std::string ns;     ///< resolved namespace URI ("" for unprefixed attributes)
  std::string value;  ///< entities decoded
};

struct Element {
  std::string name;   ///< qualified name as written ("s:Envelope")
  std::string local;  ///< local part ("Envelope")
  std::string ns;     ///< resolved namespace URI
  std::vector<Attribute> attributes;
  std::vector<Element> children;
  std::string text;   ///< character data directly inside this element (entities decoded)
  size_t begin = 0;   ///< byte offset of '<' of the start tag
  size_t end = 0;     ///< one past the '>' of the end tag (or of an empty-element tag)

  /// First child with this local name (and namespace, when `ns` is non-empty), or nullptr.
  const Element* child(std::string_view local, std::string_view ns = {}) const;
  /// Attribute value by local name and namespace, or nullptr.
  const std::string* attribute(std::string_view local, std::string_view ns = {}) const;
  /// xsi:nil="true"
  bool isNil() const;
};

struct Limits {
  size_t max_bytes = 64u << 20;
  size_t max_depth = 64;
  size_t max_elements = 2'000'000;
  size_t max_attributes = 64;  ///< per element
};

inline constexpr std::string_view kXsiNs = "http://www.w3.org/2001/XMLSchema-instance";

/// Parses one document (an optional XML declaration, comments and processing instructions
/// around exactly one root element). Errors: Errc::invalid_input ("byte N: what"),
/// Errc::limit.
Result<Element> parse(std::string_view text, const Limits& limits = {});

}  // namespace psa::adapters::xml
