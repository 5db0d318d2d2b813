#include "psa/adapters/api/vendor.h"

#include <cstdio>
#include <ctime>

#include "psa/adapters/api/fhir.h"
#include "psa/adapters/api/xml.h"
#include "psa/store/clock.h"
#include "psa/store/json.h"

namespace psa::adapters::api {
namespace {

Error bad(const std::string& where, const std::string& what, size_t offset) {
  return Error(Errc::invalid_input,
               (where.empty() ? "" : where + ": ") + what + " (byte " + std::to_string(offset) + ")");
}

std::string scalar(const json::Value* v) {
  if (v == nullptr) {
    return {};
  }
  if (v->isString()) {
    return v->asString();
  }
  if (v->isInteger()) {
    return std::to_string(v->asInt());
  }
  if (v->isNumber()) {
    return json::serialize(*v);
  }
  return {};
}

std::string printable(std::string_view s, size_t max = 200) {
  std::string out;
  for (char c : s) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return out;
}

Status itemsFrom(const json::Value& list, const VendorPageSpec& spec, const std::string& where,
                 VendorPage& page) {
  if (!list.isArray()) {
    return bad(where, "expected an array", list.pos().offset);
  }
  page.items.reserve(list.items().size());
  for (size_t i = 0; i < list.items().size(); ++i) {
    const json::Value& rec = list.items()[i];
    const std::string w = where + "[" + std::to_string(i) + "]";
    if (!rec.isObject()) {
      return bad(w, "expected an object", rec.pos().offset);
    }
    VendorItem item;
    item.id = scalar(rec.find(spec.id_field));
    if (item.id.empty() || item.id.size() > 256) {
      return bad(w, "missing or invalid " + spec.id_field, rec.pos().offset);
    }
    if (!spec.ts_field.empty()) {
      item.ts = scalar(rec.find(spec.ts_field));
    }
    for (const auto& f : spec.tombstone_fields) {
      const json::Value* t = rec.find(f);
      if (t != nullptr && ((t->isBool() && t->asBool()) || (t->isString() && t->asString() == "true"))) {
        item.tombstone = true;
      }
    }
    item.offset = rec.pos().offset;
    item.length = rec.endOffset() - rec.pos().offset;
    page.items.push_back(std::move(item));
  }
  return {};
}

json::Limits pageLimits() {
  json::Limits l;
  l.max_bytes = 256u << 20;
  l.max_depth = 64;
  l.max_string = 64u << 20;
  return l;
}

}  // namespace

Result<VendorPage> parseVendorPage(std::string_view text, const VendorPageSpec& spec) {
  auto doc = json::parse(text, pageLimits());
  if (!doc) {
    return Error(doc.error().code, "list page: " + scrubParseError(doc.error().message));
  }
  VendorPage page;
  if (spec.items_keys.empty()) {
    PSA_TRY(itemsFrom(*doc, spec, "items", page));
    return page;
  }
  if (!doc->isObject()) {
    return bad("list page", "expected an object", doc->pos().offset);
  }
  const json::Value* list = nullptr;
  std::string key;
  for (const auto& k : spec.items_keys) {
    if ((list = doc->find(k)) != nullptr) {
      key = k;
      break;
    }
  }
  if (list == nullptr) {
    return bad("list page", "no " + spec.items_keys.front() + " array", doc->pos().offset);
  }
  PSA_TRY(itemsFrom(*list, spec, key, page));
  if (!spec.next_field.empty()) {
    if (const json::Value* n = doc->find(spec.next_field); n != nullptr && n->isString()) {
      page.next = n->asString();
    }
  }
  if (!spec.total_field.empty()) {
    if (const json::Value* t = doc->find(spec.total_field); t != nullptr && t->isNumber()) {
      page.total = t->asInt();
    }
  }
  return page;
}

Result<UnityAnswer> parseUnityAnswer(std::string_view text, std::string_view action,
                                     const VendorPageSpec& spec) {
  auto doc = json::parse(text, pageLimits());
  if (!doc) {
    return Error(doc.error().code, "MagicJson answer: " + scrubParseError(doc.error().message));
  }
  if (!doc->isArray()) {
    return bad("MagicJson answer", "expected an array", doc->pos().offset);
  }
  UnityAnswer out;
  if (doc->items().empty()) {
    return out;
  }
  const json::Value& first = doc->items()[0];
  if (!first.isObject()) {
    return bad("MagicJson answer[0]", "expected an object", first.pos().offset);
  }
  if (const json::Value* e = first.find("Error"); e != nullptr) {
    out.error = true;
    out.message = printable(e->isString() ? e->asString() : json::serialize(*e));
    return out;
  }
  std::string key;
  for (char c : action) {
    key += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  key += "info";
  const json::Value* rows = first.find(key);
  if (rows == nullptr) {
    return bad("MagicJson answer[0]", "no " + key + " member", first.pos().offset);
  }
  PSA_TRY(itemsFrom(*rows, spec, key, out.rows));
  return out;
}

Result<KareoAnswer> parseKareoAnswer(std::string_view text, std::string_view operation,
                                     std::string_view list_element, std::string_view item_element) {
  static constexpr std::string_view kSoapNs = "http://schemas.xmlsoap.org/soap/envelope/";
  auto doc = xml::parse(text);
  if (!doc) {
    return Error(doc.error().code, "SOAP answer: " + doc.error().message);
  }
  const xml::Element& env = *doc;
  if (env.local != "Envelope" || env.ns != kSoapNs) {
    return bad("SOAP answer", "root is not a SOAP 1.1 Envelope", env.begin);
  }
  const xml::Element* body = env.child("Body", kSoapNs);
  if (body == nullptr) {
    return bad("SOAP answer", "no Body", env.begin);
  }
  KareoAnswer out;
  if (const xml::Element* fault = body->child("Fault", kSoapNs); fault != nullptr) {
    out.fault = true;
    if (const xml::Element* c = fault->child("faultcode"); c != nullptr) {
      out.fault_code = printable(c->text, 80);
    }
    if (const xml::Element* s = fault->child("faultstring"); s != nullptr) {
      out.fault_string = printable(s->text);
    }
    return out;
  }
  const std::string op(operation);
  const xml::Element* resp = body->child(op + "Response", kKareoNs);
  if (resp == nullptr) {
    return bad("SOAP answer", "no " + op + "Response", body->begin);
  }
  const xml::Element* result = resp->child(op + "Result", kKareoNs);
  if (result == nullptr) {
    return bad("SOAP answer", "no " + op + "Result", resp->begin);
  }
  if (const xml::Element* er = result->child("ErrorResponse", kKareoNs); er != nullptr) {
    const xml::Element* is = er->child("IsError", kKareoNs);
    out.is_error = is != nullptr && is->text == "true";
    if (const xml::Element* m = er->child("ErrorMessage", kKareoNs); m != nullptr && !m->isNil()) {
      out.error_message = printable(m->text);
    }
  }
  if (const xml::Element* sr = result->child("SecurityResponse", kKareoNs); sr != nullptr) {
    const xml::Element* ok = sr->child("SecurityResultSuccess", kKareoNs);
    out.security_ok = ok != nullptr && ok->text == "true";
    if (const xml::Element* r = sr->child("SecurityResult", kKareoNs); r != nullptr && !r->isNil()) {
      out.security_result = printable(r->text);
    }
  } else if (!out.is_error) {
    return bad("SOAP answer", "no SecurityResponse", result->begin);
  }
  if (out.is_error || !out.security_ok) {
    return out;
  }
  if (const xml::Element* key = result->child("Key", kKareoNs); key != nullptr && !key->isNil() &&
                                                                 !key->text.empty()) {
    out.next_key = key->text;
  }
  const xml::Element* list = result->child(std::string(list_element), kKareoNs);
  if (list == nullptr || list->isNil()) {
    return out;
  }
  for (size_t i = 0; i < list->children.size(); ++i) {
    const xml::Element& rec = list->children[i];
    if (rec.local != item_element) {
      continue;
    }
    VendorItem item;
    if (const xml::Element* id = rec.child("ID", kKareoNs); id != nullptr && !id->isNil()) {
      item.id = id->text;
    }
    if (item.id.empty() || item.id.size() > 256) {
      return bad(std::string(list_element) + "[" + std::to_string(i) + "]", "missing ID", rec.begin);
    }
    if (const xml::Element* ts = rec.child("LastModifiedDate", kKareoNs); ts != nullptr && !ts->isNil()) {
      item.ts = ts->text;
    }
    item.offset = rec.begin;
    item.length = rec.end - rec.begin;
    out.items.push_back(std::move(item));
  }
  return out;
}

namespace {
std::string xmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}
}  // namespace

std::string kareoEnvelope(std::string_view operation, std::string_view customer_key,
                          std::string_view user, std::string_view password,
                          std::string_view client_version,
                          const std::vector<std::pair<std::string, std::string>>& filter) {
  const std::string op(operation);
  std::string out =
      "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
      "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" "
      "xmlns:sch=\"" + std::string(kKareoNs) + "\"><soapenv:Header/><soapenv:Body><sch:" + op +
      "><sch:request><sch:RequestHeader><sch:ClientVersion>" + xmlEscape(client_version) +
      "</sch:ClientVersion><sch:CustomerKey>" + xmlEscape(customer_key) +
      "</sch:CustomerKey><sch:Password>" + xmlEscape(password) + "</sch:Password><sch:User>" +
      xmlEscape(user) + "</sch:User></sch:RequestHeader>";
  if (!filter.empty()) {
    out += "<sch:Filter>";
    for (const auto& [k, v] : filter) {
      out += "<sch:" + k + ">" + xmlEscape(v) + "</sch:" + k + ">";
    }
    out += "</sch:Filter>";
  }
  out += "</sch:request></sch:" + op + "></soapenv:Body></soapenv:Envelope>";
  return out;
}

std::string formatLocalTime(int64_t unix_ms, int offset_minutes, std::string_view pattern) {
  const std::tm tm = utcCalendar(
      (unix_ms + static_cast<int64_t>(offset_minutes) * 60000 - (unix_ms < 0 ? 999 : 0)) / 1000);
  std::string out;
  char buf[16];
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '%' || i + 1 >= pattern.size()) {
      out += pattern[i];
      continue;
    }
    bool unpadded = false;
    char c = pattern[++i];
    if (c == '-' && i + 1 < pattern.size()) {
      unpadded = true;
      c = pattern[++i];
    }
    int v = -1;
    switch (c) {
      case 'Y': std::snprintf(buf, sizeof buf, "%04d", tm.tm_year + 1900); out += buf; continue;
      case 'm': v = tm.tm_mon + 1; break;
      case 'd': v = tm.tm_mday; break;
      case 'H': v = tm.tm_hour; break;
      case 'M': v = tm.tm_min; break;
      case 'S': v = tm.tm_sec; break;
      case 'I': v = tm.tm_hour % 12 == 0 ? 12 : tm.tm_hour % 12; break;
      case 'p': out += tm.tm_hour < 12 ? "AM" : "PM"; continue;
      case '%': out += '%'; continue;
      default: out += '%'; out += c; continue;
    }
    std::snprintf(buf, sizeof buf, unpadded ? "%d" : "%02d", v);
    out += buf;
  }
  return out;
}

std::optional<int> parseUtcOffset(std::string_view text) {
  if (text == "Z" || text.empty()) {
    return 0;
  }
  if (text.size() != 6 || (text[0] != '+' && text[0] != '-') || text[3] != ':') {
    return std::nullopt;
  }
  auto d = [&](size_t i) { return text[i] >= '0' && text[i] <= '9' ? text[i] - '0' : -1; };
  if (d(1) < 0 || d(2) < 0 || d(4) < 0 || d(5) < 0) {
    return std::nullopt;
  }
  const int h = d(1) * 10 + d(2);
  const int m = d(4) * 10 + d(5);
  if (h > 14 || m > 59) {
    return std::nullopt;
  }
  return (text[0] == '-' ? -1 : 1) * (h * 60 + m);
}

}  // namespace psa::adapters::api
