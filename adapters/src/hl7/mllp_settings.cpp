#include "hl7/mllp_settings.h"

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <map>

#include "psa/adapters/source.h"
#include "psa/store/os/utf8_path.h"

namespace psa::adapters::hl7 {
namespace {

bool parsePort(std::string_view text, uint16_t& port) {
  if (text.empty() || text.size() > 5) {
    return false;
  }
  uint32_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return false;
    }
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 65535) {
    return false;
  }
  port = static_cast<uint16_t>(v);
  return true;
}

bool parseIp(const std::string& host, bool v6, uint8_t* out) {
  boost::system::error_code ec;
  if (v6) {
    const auto a = boost::asio::ip::make_address_v6(host, ec);
    if (!ec) {
      const auto bytes = a.to_bytes();
      std::copy(bytes.begin(), bytes.end(), out);
    }
  } else {
    const auto a = boost::asio::ip::make_address_v4(host, ec);
    if (!ec) {
      const auto bytes = a.to_bytes();
      std::copy(bytes.begin(), bytes.end(), out);
    }
  }
  return !ec;
}

bool alnumUpper(std::string_view s, size_t lo, size_t hi) {
  return s.size() >= lo && s.size() <= hi && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
         });
}

std::vector<std::string> strings(const json::Value* v) {
  std::vector<std::string> out;
  if (v == nullptr) {
    return out;
  }
  if (v->isString()) {
    out.push_back(v->asString());
  } else if (v->isArray()) {
    for (const auto& item : v->items()) {
      if (item.isString()) {
        out.push_back(item.asString());
      }
    }
  }
  return out;
}

std::optional<std::string> checkListen(const json::Value& v) {
  std::vector<std::string> list;
  if (v.isString()) {
    list.push_back(v.asString());
  } else if (v.isArray()) {
    if (v.items().empty()) {
      return "expected at least one HOST:PORT";
    }
    for (const auto& item : v.items()) {
      if (!item.isString()) {
        return "expected HOST:PORT or a list of them";
      }
      list.push_back(item.asString());
    }
  } else {
    return "expected HOST:PORT or a list of them";
  }
  for (size_t k = 0; k < list.size(); ++k) {
    auto ep = parseListenEndpoint(list[k]);
    if (!ep) {
      return ep.error().message;
    }
    for (size_t j = 0; j < k; ++j) {
      if (list[j] == list[k]) {
        return "\"" + list[k] + "\" is listed twice";
      }
    }
  }
  return std::nullopt;
}

std::optional<std::string> checkAllow(const json::Value& v) {
  for (const auto& item : v.items()) {
    if (!item.isString()) {
      continue;  // reported by the item type check
    }
    if (auto r = parseCidr(item.asString()); !r) {
      return r.error().message;
    }
  }
  return std::nullopt;
}

std::optional<std::string> checkSegments(const json::Value& v) {
  for (const auto& item : v.items()) {
    if (item.isString() && !alnumUpper(item.asString(), 3, 3)) {
      return "\"" + item.asString() + "\" is not a segment id (three upper-case letters/digits)";
    }
  }
  return std::nullopt;
}

std::optional<std::string> checkMessageTypes(const json::Value& v) {
  for (const auto& item : v.items()) {
    if (!item.isString()) {
      continue;
    }
    const std::string& s = item.asString();
    const size_t caret = s.find('^');
    const bool ok = caret == std::string::npos
                        ? alnumUpper(s, 3, 3)
                        : alnumUpper(std::string_view(s).substr(0, caret), 3, 3) &&
                              alnumUpper(std::string_view(s).substr(caret + 1), 1, 8);
    if (!ok) {
      return "\"" + s + "\": expected TYPE or TYPE^TRIGGER (e.g. ADT or ADT^A08)";
    }
  }
  return std::nullopt;
}

std::optional<std::string> checkNonEmpty(const json::Value& v) {
  if (v.asString().empty()) {
    return std::string("must not be empty");
  }
  return std::nullopt;
}

void checkKindMap(const json::Value& v, const std::string& path,
                  std::vector<schema::Issue>& issues) {
  if (!v.isObject()) {
    return;
  }
  for (const auto& [key, kind] : v.members()) {
    const std::string p = schema::childPath(path, key);
    if (!kind.isString()) {
      issues.push_back({p, kind.pos().line, kind.pos().column, "expected a kind name"});
      continue;
    }
    std::map<std::string, std::string> one{{key, kind.asString()}};
    if (auto c = Classifier::fromConfig(one); !c) {
      issues.push_back({p, kind.pos().line, kind.pos().column, c.error().message});
    }
  }
}

std::map<std::string, std::string> kindMap(const json::Value* v) {
  std::map<std::string, std::string> out;
  if (v != nullptr && v->isObject()) {
    for (const auto& [key, kind] : v->members()) {
      if (kind.isString()) {
        out[key] = kind.asString();
      }
    }
  }
  return out;
}

std::filesystem::path resolve(const std::filesystem::path& state_dir, const std::string& p) {
  return os::resolveUtf8Path(state_dir, p);
}

}  // namespace

Result<ListenEndpoint> parseListenEndpoint(std::string_view text) {
  ListenEndpoint ep;
  ep.text = std::string(text);
  auto bad = [&](const std::string& why) {
    return Error(Errc::invalid_argument, "\"" + std::string(text) + "\": " + why);
  };
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("expected [IPV6]:PORT");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    ep.v6 = true;
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return bad("expected HOST:PORT (e.g. 0.0.0.0:2575 or [::]:2575)");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return bad("an IPv6 address needs brackets: [ADDRESS]:PORT");
    }
  }
  if (!parsePort(port, ep.port)) {
    return bad("port must be a number 0..65535");
  }
  ep.host = std::string(host);
  if (!ep.v6 && ep.host == "localhost") {
    ep.host = "127.0.0.1";
  }
  uint8_t buf[16];
  if (!parseIp(ep.host, ep.v6, buf)) {
    return bad(ep.v6 ? "not an IPv6 address" : "not an IPv4 address (or localhost)");
  }
  return ep;
}

bool CidrRange::contains(const uint8_t* addr, bool addr_v6) const {
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (addr_v6 && !v6 && std::equal(kMapped, kMapped + 12, addr)) {
    addr += 12;
    addr_v6 = false;
  }
  if (addr_v6 != v6) {
    return false;
  }
  int bits = prefix;
  for (size_t k = 0; bits > 0; ++k, bits -= 8) {
    const uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((addr[k] & mask) != bytes[k]) {
      return false;
    }
  }
  return true;
}

Result<CidrRange> parseCidr(std::string_view text) {
  CidrRange r;
  r.text = std::string(text);
  auto bad = [&](const std::string& why) {
    return Error(Errc::invalid_argument, "\"" + std::string(text) + "\": " + why);
  };
  const size_t slash = text.find('/');
  std::string host(text.substr(0, slash));
  r.v6 = host.find(':') != std::string::npos;
  if (!parseIp(host, r.v6, r.bytes.data())) {
    return bad("expected an IPv4 or IPv6 address or network (e.g. 10.0.0.0/8, fd00::/8)");
  }
  const int max_prefix = r.v6 ? 128 : 32;
  r.prefix = max_prefix;
  if (slash != std::string_view::npos) {
    uint16_t p = 0;
    if (!parsePort(text.substr(slash + 1), p) || p > max_prefix) {
      return bad("prefix length must be 0.." + std::to_string(max_prefix));
    }
    r.prefix = p;
  }
  for (int bit = r.prefix; bit < max_prefix; ++bit) {
    if (r.bytes[static_cast<size_t>(bit / 8)] & (0x80 >> (bit % 8))) {
      return bad("host bits set after /" + std::to_string(r.prefix) +
                 " (write the network address)");
    }
  }
  return r;
}

schema::ObjectSchemaPtr mllpSchema() {
  using schema::Field;
  using schema::ObjectSchema;
  using schema::Type;
  auto tls = std::make_shared<ObjectSchema>();
  tls->fields = {
      Field::str("cert_file").req().verify(checkNonEmpty).describe("server certificate (PEM, chain)"),
      Field::str("key_file").req().verify(checkNonEmpty).describe("server private key (PEM)"),
      Field::str("client_ca_file")
          .verify(checkNonEmpty)
          .describe("CA for client certificates; when set, a client certificate is required"),
      Field::str("min_version").def(json::Value::string("1.2")).oneOf({"1.2", "1.3"}),
  };
  auto kind_map = std::make_shared<ObjectSchema>();
  kind_map->allow_unknown = true;
  kind_map->check = checkKindMap;

  auto s = std::make_shared<ObjectSchema>();
  s->fields = commonAdapterFields();
  std::vector<Field> own = {
      Field::anyValue("listen")
          .req()
          .verify(checkListen)
          .describe("HOST:PORT or a list of them, e.g. 0.0.0.0:2575 or [::]:2575"),
      Field::obj("tls", tls).describe("serve MLLP over TLS"),
      Field::array("allow", Type::string)
          .verify(checkAllow)
          .describe("peer networks allowed to connect (CIDR); absent: any"),
      Field::integer("idle_timeout_s")
          .def(json::Value::integer(600))
          .range(0, 7 * 86400)
          .describe("close a connection without a whole frame or ACK for this long; 0: never"),
      Field::integer("write_timeout_s").def(json::Value::integer(60)).range(1, 3600),
      Field::integer("max_connections")
          .def(json::Value::integer(512))
          .range(1, 65535)
          .describe("when reached, the longest-idle connection makes room for a new one"),
      Field::integer("max_connections_per_peer")
          .def(json::Value::integer(64))
          .range(1, 65535)
          .describe("open connections from one remote address (at most max_connections)"),
      Field::integer("max_message_bytes").def(json::Value::integer(16 << 20)).range(1024, 64 << 20),
      Field::integer("max_pipeline")
          .def(json::Value::integer(256))
          .range(1, 4096)
          .describe("received, not yet acknowledged messages per connection"),
      Field::str("ack_mode")
          .def(json::Value::string("auto"))
          .oneOf({"auto", "original", "enhanced"})
          .describe("auto: enhanced when the message sets MSH-15/MSH-16, else original"),
      Field::boolean("dedupe").def(json::Value::boolean(true)),
      Field::array("required_segments", Type::string)
          .def(json::Value::array())
          .verify(checkSegments),
      Field::array("message_types", Type::string)
          .def(json::Value::array())
          .verify(checkMessageTypes)
          .describe("accepted MSH-9 types (ADT or ADT^A08); empty: all"),
      Field::array("versions", Type::string)
          .def(json::Value::array())
          .describe("accepted MSH-12 versions; empty: 2.1 to 2.8.2"),
      Field::array("processing_ids", Type::string)
          .def(json::Value::array())
          .describe("accepted MSH-11 processing ids; empty: P, T, D"),
      Field::obj("kind_map", kind_map).describe("TYPE or TYPE^TRIGGER -> record kind overrides"),
  };
  s->fields.insert(s->fields.end(), own.begin(), own.end());
  return s;
}

Result<MllpSettings> parseMllpSettings(const json::Value& in,
                                       const std::filesystem::path& state_dir) {
  const json::Value config = schema::withDefaults(in, *mllpSchema());
  MllpSettings s;
  s.name = config.getString("name");
  s.vendor = config.getString("vendor");
  for (const auto& text : strings(config.find("listen"))) {
    auto ep = parseListenEndpoint(text);
    if (!ep) {
      return Error(Errc::invalid_argument, "listen: " + ep.error().message);
    }
    s.listen.push_back(std::move(ep).value());
  }
  if (s.listen.empty()) {
    return Error(Errc::invalid_argument, "listen: expected HOST:PORT or a list of them");
  }
  if (const json::Value* tls = config.find("tls"); tls != nullptr && tls->isObject()) {
    MllpTlsSettings t;
    t.cert_file = resolve(state_dir, tls->getString("cert_file"));
    t.key_file = resolve(state_dir, tls->getString("key_file"));
    if (std::string ca = tls->getString("client_ca_file"); !ca.empty()) {
      t.client_ca_file = resolve(state_dir, ca);
    }
    t.min_version = tls->getString("min_version", "1.2");
    if (tls->getString("cert_file").empty() || tls->getString("key_file").empty()) {
      return Error(Errc::invalid_argument, "tls: cert_file and key_file are required");
    }
    s.tls = std::move(t);
  }
  for (const auto& text : strings(config.find("allow"))) {
    auto r = parseCidr(text);
    if (!r) {
      return Error(Errc::invalid_argument, "allow: " + r.error().message);
    }
    s.allow.push_back(std::move(r).value());
  }
  s.idle_timeout = std::chrono::seconds(config.getInt("idle_timeout_s", 600));
  s.write_timeout = std::chrono::seconds(config.getInt("write_timeout_s", 60));
  s.max_connections = static_cast<size_t>(config.getInt("max_connections", 512));
  s.max_connections_per_peer = static_cast<size_t>(config.getInt("max_connections_per_peer", 64));
  s.max_message_bytes = static_cast<size_t>(config.getInt("max_message_bytes", 16 << 20));
  s.max_pipeline = static_cast<size_t>(config.getInt("max_pipeline", 256));
  auto mode = parseAckMode(config.getString("ack_mode", "auto"));
  if (!mode) {
    return Error(Errc::invalid_argument, "ack_mode: expected auto, original or enhanced");
  }
  s.ack_mode = *mode;
  s.dedupe = config.getBool("dedupe", true);
  s.rules.required_segments = strings(config.find("required_segments"));
  s.rules.accepted_message_types = strings(config.find("message_types"));
  s.rules.accepted_versions = strings(config.find("versions"));
  s.rules.accepted_processing_ids = strings(config.find("processing_ids"));
  auto classifier = Classifier::fromConfig(kindMap(config.find("kind_map")));
  if (!classifier) {
    return Error(Errc::invalid_argument, "kind_map: " + classifier.error().message);
  }
  s.classifier = std::move(classifier).value();
  return s;
}

}  // namespace psa::adapters::hl7
