#include "psa/adapters/api/xml.h"

#include <map>

namespace psa::adapters::xml {

const Element* Element::child(std::string_view l, std::string_view n) const {
  for (const auto& c : children) {
    if (c.local == l && (n.empty() || c.ns == n)) {
      return &c;
    }
  }
  return nullptr;
}

const std::string* Element::attribute(std::string_view l, std::string_view n) const {
  for (const auto& a : attributes) {
    if (a.local == l && (n.empty() || a.ns == n)) {
      return &a.value;
    }
  }
  return nullptr;
}

bool Element::isNil() const {
  const std::string* v = attribute("nil", kXsiNs);
  return v != nullptr && (*v == "true" || *v == "1");
}

namespace {

bool nameStart(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':' || c >= 0x80;
}
bool nameChar(unsigned char c) {
  return nameStart(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}
bool space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

void appendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Parser {
 public:
  Parser(std::string_view s, const Limits& l) : s_(s), limits_(l) {}

  Result<Element> run() {
    if (s_.size() > limits_.max_bytes) {
      return Error(Errc::limit, "XML document larger than " + std::to_string(limits_.max_bytes) + " bytes");
    }
    if (s_.substr(0, 3) == "\xEF\xBB\xBF") {
      i_ = 3;
    }
    if (!misc()) {
      return err_;
    }
    if (i_ >= s_.size() || s_[i_] != '<') {
      fail("expected the root element");
      return err_;
    }
    Element root;
    std::vector<std::map<std::string, std::string>> scopes;
    if (!element(root, 1, scopes)) {
      return err_;
    }
    if (!misc()) {
      return err_;
    }
    if (i_ != s_.size()) {
      fail("content after the root element");
      return err_;
    }
    return root;
  }

 private:
  bool fail(const std::string& what, Errc code = Errc::invalid_input) {
    err_ = Error(code, "XML byte " + std::to_string(i_) + ": " + what);
    return false;
  }

  // Comments, PIs, whitespace (and the XML declaration) outside the root.
  bool misc() {
    for (;;) {
      while (i_ < s_.size() && space(s_[i_])) {
        ++i_;
      }
      if (s_.substr(i_, 4) == "<!--") {
        if (!comment()) return false;
      } else if (s_.substr(i_, 2) == "<?") {
        if (!pi()) return false;
      } else if (s_.substr(i_, 9) == "<!DOCTYPE") {
        return fail("DTDs are not accepted");
      } else {
        return true;
      }
    }
  }

  bool comment() {
    const size_t end = s_.find("-->", i_ + 4);
    if (end == std::string_view::npos) {
      return fail("unterminated comment");
    }
    i_ = end + 3;
    return true;
  }

  bool pi() {
    const size_t end = s_.find("?>", i_ + 2);
    if (end == std::string_view::npos) {
      return fail("unterminated processing instruction");
    }
    i_ = end + 2;
    return true;
  }

  bool name(std::string& out) {
    if (i_ >= s_.size() || !nameStart(static_cast<unsigned char>(s_[i_]))) {
      return fail("expected a name");
    }
    const size_t start = i_;
    while (i_ < s_.size() && nameChar(static_cast<unsigned char>(s_[i_]))) {
      ++i_;
    }
    out.assign(s_.substr(start, i_ - start));
    return true;
  }

  // Decodes text up to `stop` (exclusive) with entity references.
  bool decode(size_t stop, std::string& out) {
    while (i_ < stop) {
      const char c = s_[i_];
      if (c == '&') {
        const size_t semi = s_.find(';', i_);
        if (semi == std::string_view::npos || semi > stop || semi - i_ > 12) {
          return fail("unterminated entity reference");
        }
        const std::string_view ref = s_.substr(i_ + 1, semi - i_ - 1);
        if (ref == "lt") out += '<';
        else if (ref == "gt") out += '>';
        else if (ref == "amp") out += '&';
        else if (ref == "quot") out += '"';
        else if (ref == "apos") out += '\'';
        else if (ref.size() > 1 && ref[0] == '#') {
          uint32_t cp = 0;
          const bool hex = ref[1] == 'x';
          const std::string_view digits = ref.substr(hex ? 2 : 1);
          if (digits.empty() || digits.size() > 8) {
            return fail("invalid character reference");
          }
          for (char d : digits) {
            int v;
            if (d >= '0' && d <= '9') v = d - '0';
            else if (hex && d >= 'a' && d <= 'f') v = d - 'a' + 10;
            else if (hex && d >= 'A' && d <= 'F') v = d - 'A' + 10;
            else return fail("invalid character reference");
            cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(v);
          }
          if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return fail("character reference out of range");
          }
          appendUtf8(out, cp);
        } else {
          return fail("unknown entity (DTD entities are not accepted)");
        }
        i_ = semi + 1;
      } else if (c == '<') {
        return fail("'<' in text");
      } else {
        out += c;
        ++i_;
      }
    }
    return true;
  }

  static void splitName(const std::string& qname, std::string& prefix, std::string& local) {
    const size_t colon = qname.find(':');
    if (colon == std::string::npos) {
      prefix.clear();
      local = qname;
    } else {
      prefix = qname.substr(0, colon);
      local = qname.substr(colon + 1);
    }
  }

  bool resolve(const std::vector<std::map<std::string, std::string>>& scopes,
               const std::string& prefix, std::string& ns) {
    if (prefix == "xml") {
      ns = "http://www.w3.org/XML/1998/namespace";
      return true;
    }
    for (auto it = scopes.rbegin(); it != scopes.rend(); ++it) {
      auto f = it->find(prefix);
      if (f != it->end()) {
        ns = f->second;
        return true;
      }
    }
    if (prefix.empty()) {
      ns.clear();
      return true;
    }
    return fail("undeclared namespace prefix");
  }

  bool element(Element& el, size_t depth, std::vector<std::map<std::string, std::string>>& scopes) {
    if (depth > limits_.max_depth) {
      return fail("nesting deeper than " + std::to_string(limits_.max_depth), Errc::limit);
    }
    if (++elements_ > limits_.max_elements) {
      return fail("more than " + std::to_string(limits_.max_elements) + " elements", Errc::limit);
    }
    el.begin = i_;
    ++i_;  // '<'
    if (!name(el.name)) {
      return false;
    }
    std::map<std::string, std::string> scope;
    bool empty = false;
    for (;;) {
      const size_t before = i_;
      while (i_ < s_.size() && space(s_[i_])) {
        ++i_;
      }
      if (i_ >= s_.size()) {
        return fail("unterminated start tag");
      }
      if (s_[i_] == '>') {
        ++i_;
        break;
      }
      if (s_.substr(i_, 2) == "/>") {
        i_ += 2;
        empty = true;
        break;
      }
      if (i_ == before) {
        return fail("expected whitespace between attributes");
      }
      Attribute a;
      if (!name(a.name)) {
        return false;
      }
      while (i_ < s_.size() && space(s_[i_])) ++i_;
      if (i_ >= s_.size() || s_[i_] != '=') {
        return fail("expected '=' after an attribute name");
      }
      ++i_;
      while (i_ < s_.size() && space(s_[i_])) ++i_;
      if (i_ >= s_.size() || (s_[i_] != '"' && s_[i_] != '\'')) {
        return fail("expected a quoted attribute value");
      }
      const char q = s_[i_++];
      const size_t close = s_.find(q, i_);
      if (close == std::string_view::npos) {
        return fail("unterminated attribute value");
      }
      if (!decode(close, a.value)) {
        return false;
      }
      i_ = close + 1;
      for (const auto& other : el.attributes) {
        if (other.name == a.name) {
          return fail("duplicate attribute");
        }
      }
      if (el.attributes.size() >= limits_.max_attributes) {
        return fail("too many attributes", Errc::limit);
      }
      if (a.name == "xmlns") {
        scope[""] = a.value;
      } else if (a.name.rfind("xmlns:", 0) == 0) {
        scope[a.name.substr(6)] = a.value;
      }
      el.attributes.push_back(std::move(a));
    }
    scopes.push_back(std::move(scope));
    std::string prefix;
    splitName(el.name, prefix, el.local);
    if (!resolve(scopes, prefix, el.ns)) {
      return false;
    }
    for (auto& a : el.attributes) {
      std::string p;
      splitName(a.name, p, a.local);
      if (a.name == "xmlns" || p == "xmlns") {
        a.ns = "http://www.w3.org/2000/xmlns/";
      } else if (!p.empty() && !resolve(scopes, p, a.ns)) {
        return false;
      }
    }
    if (!empty) {
      if (!content(el, depth, scopes)) {
        return false;
      }
    }
    scopes.pop_back();
    el.end = i_;
    return true;
  }

  bool content(Element& el, size_t depth, std::vector<std::map<std::string, std::string>>& scopes) {
    for (;;) {
      if (i_ >= s_.size()) {
        return fail("unterminated element");
      }
      if (s_[i_] != '<') {
        const size_t lt = s_.find('<', i_);
        if (lt == std::string_view::npos) {
          i_ = s_.size();
          return fail("unterminated element");
        }
        if (!decode(lt, el.text)) {
          return false;
        }
        continue;
      }
      if (s_.substr(i_, 2) == "</") {
        i_ += 2;
        std::string end_name;
        if (!name(end_name)) {
          return false;
        }
        if (end_name != el.name) {
          return fail("end tag does not match the open element");
        }
        while (i_ < s_.size() && space(s_[i_])) ++i_;
        if (i_ >= s_.size() || s_[i_] != '>') {
          return fail("unterminated end tag");
        }
        ++i_;
        return true;
      }
      if (s_.substr(i_, 4) == "<!--") {
        if (!comment()) return false;
        continue;
      }
      if (s_.substr(i_, 9) == "<![CDATA[") {
        const size_t end = s_.find("]]>", i_ + 9);
        if (end == std::string_view::npos) {
          return fail("unterminated CDATA section");
        }
        el.text.append(s_.substr(i_ + 9, end - i_ - 9));
        i_ = end + 3;
        continue;
      }
      if (s_.substr(i_, 2) == "<?") {
        if (!pi()) return false;
        continue;
      }
      if (s_.substr(i_, 2) == "<!") {
        return fail("DTDs are not accepted");
      }
      el.children.emplace_back();
      if (!element(el.children.back(), depth + 1, scopes)) {
        return false;
      }
    }
  }

  std::string_view s_;
  Limits limits_;
  size_t i_ = 0;
  size_t elements_ = 0;
  Error err_;
};

}  // namespace

Result<Element> parse(std::string_view text, const Limits& limits) {
  return Parser(text, limits).run();
}

}  // namespace psa::adapters::xml
