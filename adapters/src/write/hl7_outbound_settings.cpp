// Config schema and settings of the `hl7-mllp-out` adapter type.
#include <algorithm>

#include "psa/adapters/source.h"
#include "psa/adapters/write/hl7_outbound.h"

namespace psa::adapters::write {
namespace {

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

// "host:port", "1.2.3.4:port", "[v6]:port"; port 1..65535.
Result<HostPort> parseConnect(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return Error(Errc::invalid_argument, "\"" + std::string(text) + "\": " + std::string(why));
  };
  HostPort hp;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("expected [IPV6]:PORT");
    }
    hp.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
    if (hp.host.empty() ||
        hp.host.find_first_not_of("0123456789abcdefABCDEF:.") != std::string::npos) {
      return bad("not an IPv6 address");
    }
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
      return bad("expected HOST:PORT (e.g. pms.example.local:6661)");
    }
    hp.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
    const bool name_ok =
        hp.host.size() <= 253 && std::all_of(hp.host.begin(), hp.host.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '.';
        });
    if (!name_ok) {
      return bad("expected a host name or IP address before the port (IPv6 in brackets)");
    }
  }
  int value = 0;
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return bad("port must be a number 1..65535");
  }
  for (char c : port) {
    value = value * 10 + (c - '0');
  }
  if (value < 1 || value > 65535) {
    return bad("port must be a number 1..65535");
  }
  hp.port = static_cast<uint16_t>(value);
  return hp;
}

std::filesystem::path resolve(const std::string& file, const std::filesystem::path& dir) {
  if (file.empty()) {
    return {};
  }
  std::filesystem::path p(file);
  return p.is_absolute() || dir.empty() ? p : dir / p;
}

}  // namespace

schema::ObjectSchemaPtr writeSwitchSchema() {
  using schema::Field;
  auto s = std::make_shared<schema::ObjectSchema>();
  s->fields = {
      Field::boolean("enabled")
          .def(json::Value::boolean(false))
          .describe("accept write requests for this adapter (off by default)"),
      Field::boolean("dry_run")
          .def(json::Value::boolean(false))
          .describe("validate and report delivered (pms_ref \"dry-run\") without touching the PMS"),
  };
  return s;
}

schema::ObjectSchemaPtr hl7OutboundSchema() {
  using schema::Field;
  auto tls = std::make_shared<schema::ObjectSchema>();
  tls->fields = {
      Field::str("ca_file").describe("CA of the PMS's certificate (PEM); absent: system trust"),
      Field::str("cert_file").describe("client certificate (PEM), when the PMS requires one"),
      Field::str("key_file").describe("client private key (PEM)"),
      Field::str("server_name").describe("name the PMS's certificate carries; default: host"),
  };
  tls->check = [](const json::Value& v, const std::string& path,
                  std::vector<schema::Issue>& issues) {
    if (v.isObject() && (v.find("cert_file") == nullptr) != (v.find("key_file") == nullptr)) {
      issues.push_back({path, v.pos().line, v.pos().column,
                        "a client certificate needs both cert_file and key_file"});
    }
  };

  auto s = std::make_shared<schema::ObjectSchema>();
  s->fields = commonAdapterFields();
  std::vector<Field> own = {
      Field::str("connect")
          .req()
          .verify([](const json::Value& v) -> std::optional<std::string> {
            auto hp = parseConnect(v.asString());
            return hp ? std::nullopt : std::optional<std::string>(hp.error().message);
          })
          .describe("HOST:PORT of the PMS's inbound MLLP interface"),
      Field::integer("ack_timeout_s")
          .def(json::Value::integer(30))
          .range(1, 3600)
          .describe("wait this long for the ACK, then reconnect and resend the same MSH-10"),
      Field::integer("connect_timeout_s").def(json::Value::integer(10)).range(1, 600),
      Field::integer("retry_min_ms").def(json::Value::integer(500)).range(10, 600000),
      Field::integer("retry_max_s").def(json::Value::integer(30)).range(1, 3600),
      Field::integer("max_tries")
          .def(json::Value::integer(10))
          .range(1, 1000)
          .describe("connects and sends without an answer before the request is retried later"),
      Field::obj("tls", tls)
          .describe("connect over TLS (name at least one option, e.g. server_name)"),
      Field::obj("write", writeSwitchSchema()),
  };
  s->fields.insert(s->fields.end(), own.begin(), own.end());
  return s;
}

Result<Hl7OutboundSettings> parseHl7OutboundSettings(const json::Value& in,
                                                     const std::filesystem::path& state_dir) {
  const json::Value config = schema::withDefaults(in, *hl7OutboundSchema());
  Hl7OutboundSettings s;
  s.name = config.getString("name");
  s.vendor = config.getString("vendor");
  auto hp = parseConnect(config.getString("connect"));
  if (!hp) {
    return Error(Errc::invalid_argument, "connect: " + hp.error().message);
  }
  s.host = hp->host;
  s.port = hp->port;
  s.ack_timeout = std::chrono::seconds(config.getInt("ack_timeout_s", 30));
  s.connect_timeout = std::chrono::seconds(config.getInt("connect_timeout_s", 10));
  s.retry_min = std::chrono::milliseconds(config.getInt("retry_min_ms", 500));
  s.retry_max = std::chrono::seconds(config.getInt("retry_max_s", 30));
  s.max_tries = static_cast<int>(config.getInt("max_tries", 10));
  // TLS when the "tls" object names at least one option: the config's defaults turn an absent
  // optional section into an empty object, so "tls": {} cannot mean anything else than absent.
  if (const json::Value* tls = config.find("tls");
      tls != nullptr && tls->isObject() && !tls->members().empty()) {
    s.tls = true;
    s.ca_file = resolve(tls->getString("ca_file"), state_dir);
    s.cert_file = resolve(tls->getString("cert_file"), state_dir);
    s.key_file = resolve(tls->getString("key_file"), state_dir);
    s.server_name = tls->getString("server_name");
    if (s.cert_file.empty() != s.key_file.empty()) {
      return Error(Errc::invalid_argument,
                   "tls: a client certificate needs both cert_file and key_file");
    }
  }
  if (const json::Value* w = config.find("write"); w != nullptr && w->isObject()) {
    s.write.enabled = w->getBool("enabled", false);
    s.write.dry_run = w->getBool("dry_run", false);
  }
  return s;
}

}  // namespace psa::adapters::write
