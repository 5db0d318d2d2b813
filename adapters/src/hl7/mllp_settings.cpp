#include "hl7/mllp_settings.h"

#include <algorithm>
#include <map>

#include "psa/adapters/source.h"

namespace psa::adapters::hl7 {
namespace {

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

}  // namespace

schema::ObjectSchemaPtr mllpSchema() {
  using schema::Field;
  using schema::ObjectSchema;
  using schema::Type;

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
      Field::obj("tls", net::serverTlsSchema()).describe("serve MLLP over TLS"),
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
    auto t = net::readServerTls(*tls, state_dir);
    if (!t) {
      return t.error();
    }
    s.tls = std::move(t).value();
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
