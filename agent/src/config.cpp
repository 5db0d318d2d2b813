#include "psa/agent/config.h"

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "psa/cloudlink/topics.h"
#include "psa/store/os/utf8_path.h"

namespace psa::agent {
namespace {

using schema::Field;
using schema::Issue;
using schema::ObjectSchema;
using schema::Type;

std::optional<std::string> checkTopicLevel(const json::Value& v) {
  if (!cloudlink::Topics::validLevel(v.asString())) {
    return "must be non-empty and contain no '/', '+', '#' (it is an MQTT topic level)";
  }
  return std::nullopt;
}

std::optional<std::string> checkNonEmpty(const json::Value& v) {
  if (v.asString().empty()) {
    return "must not be empty";
  }
  return std::nullopt;
}

// mqtts://host:port (port optional, default 8883). Plain mqtt:// is refused: TLS is mandatory.
bool splitMqttUrl(const std::string& url, std::string& host, int& port, std::string& problem) {
  const std::string scheme = "mqtts://";
  if (url.rfind(scheme, 0) != 0) {
    problem = "expected mqtts://HOST[:PORT] (TLS is mandatory)";
    return false;
  }
  std::string rest = url.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') {
    rest.pop_back();
  }
  port = 8883;
  std::string port_text;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) {
      problem = "unterminated IPv6 address in URL";
      return false;
    }
    host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') {
        problem = "expected ':' after the IPv6 address";
        return false;
      }
      port_text = rest.substr(close + 2);
    }
  } else {
    auto colon = rest.rfind(':');
    host = rest.substr(0, colon);
    if (colon != std::string::npos) {
      port_text = rest.substr(colon + 1);
    }
  }
  if (host.empty() || host.find('/') != std::string::npos) {
    problem = "expected mqtts://HOST[:PORT]";
    return false;
  }
  if (!port_text.empty()) {
    char* end = nullptr;
    long p = std::strtol(port_text.c_str(), &end, 10);
    if (*end != '\0' || p < 1 || p > 65535) {
      problem = "port must be 1..65535";
      return false;
    }
    port = static_cast<int>(p);
  }
  return true;
}

std::optional<std::string> checkMqttUrl(const json::Value& v) {
  std::string host, problem;
  int port;
  if (!splitMqttUrl(v.asString(), host, port, problem)) {
    return problem;
  }
  return std::nullopt;
}

// cloud.urls: the endpoints of one broker cluster, each a cloud.url.
std::optional<std::string> checkMqttUrls(const json::Value& v) {
  if (!v.isArray() || v.items().empty()) {
    return "expected a list of mqtts://HOST:PORT (at least one)";
  }
  for (size_t i = 0; i < v.items().size(); ++i) {
    const json::Value& u = v.items()[i];
    if (!u.isString()) {
      return "item " + std::to_string(i + 1) + ": expected mqtts://HOST:PORT";
    }
    if (auto problem = checkMqttUrl(u)) {
      return "item " + std::to_string(i + 1) + ": " + *problem;
    }
  }
  return std::nullopt;
}

// A config names the broker by exactly one of cloud.url and cloud.urls, and the MQTT user name
// at most one way; a password needs a user name.
void checkCloudSection(const json::Value& cloud, const std::string& path,
                       std::vector<schema::Issue>& issues) {
  const bool username = cloud.find("username") != nullptr;
  const json::Value* from_cert = cloud.find("username_from_certificate");
  const bool cert_name = from_cert != nullptr && from_cert->isBool() && from_cert->asBool();
  auto issue = [&](const char* words) {
    issues.push_back(schema::Issue{path, cloud.pos().line, cloud.pos().column, words});
  };
  if (username && cert_name) {
    issue("give cloud.username or cloud.username_from_certificate, not both");
  }
  if (cloud.find("password_file") != nullptr && !username && !cert_name) {
    issue("cloud.password_file needs cloud.username (or cloud.username_from_certificate)");
  }
  const bool url = cloud.find("url") != nullptr;
  const bool urls = cloud.find("urls") != nullptr;
  if (url == urls) {
    issues.push_back(schema::Issue{path, cloud.pos().line, cloud.pos().column,
                                   url ? "give cloud.url or cloud.urls, not both"
                                       : "missing cloud.url (or cloud.urls, a list of them)"});
  }
}

std::shared_ptr<ObjectSchema> makeSchema(std::vector<Field> fields) {
  auto s = std::make_shared<ObjectSchema>();
  s->fields = std::move(fields);
  return s;
}

ObjectSchema buildConfigSchema() {
  auto agent = makeSchema({
      Field::str("id")
          .req()
          .verify(checkTopicLevel)
          .describe("this agent's id, e.g. practice-0042"),
      Field::str("tenant").req().verify(checkTopicLevel).describe("the tenant, e.g. acme-health"),
      Field::str("state_dir")
          .def(json::Value::string(os::pathToUtf8(platformDefaults().state_dir)))
          .verify(checkNonEmpty),
      Field::str("log_level")
          .def(json::Value::string("info"))
          .oneOf({"debug", "info", "warn", "error"}),
      platformDefaults().log_file.empty()
          ? Field::str("log_file").describe("also log to this file (size-rotated)")
          : Field::str("log_file")
                .def(json::Value::string(os::pathToUtf8(platformDefaults().log_file)))
                .describe("also log to this file (size-rotated)"),
      Field::integer("log_max_bytes").def(json::Value::integer(10 << 20)).range(4096, 1e12),
      Field::integer("log_keep").def(json::Value::integer(5)).range(0, 100),
  });
  auto store = makeSchema({
      Field::str("path").def(json::Value::string("queue.db")).verify(checkNonEmpty),
      Field::str("key_file").def(json::Value::string("queue.key")).verify(checkNonEmpty),
      Field::integer("max_bytes").def(json::Value::integer(10737418240)).range(1 << 20, 1e15),
      Field::integer("retain_delivered_s").def(json::Value::integer(0)).range(0, 365 * 86400),
      Field::integer("audit_retain_s")
          .def(json::Value::integer(400 * 86400))
          .range(0, 10 * 366 * 86400)
          .describe("keep audit entries this long (0 = forever); pruning keeps the chain verifiable"),
      Field::integer("dedupe_window_s").def(json::Value::integer(7 * 86400)).range(0, 365 * 86400),
      Field::integer("dedupe_max_entries")
          .def(json::Value::integer(0))
          .range(0, 1e12)
          .describe("most identities the dedupe index keeps (0 = a tenth of max_bytes at ~160 "
                    "bytes each); past it the oldest go first and the window shortens"),
      Field::str("integrity_check").def(json::Value::string("quick")).oneOf({"quick", "full", "off"}),
  });
  auto signing_key = [](const json::Value& v) -> std::optional<std::string> {
    if (v.isString()) {
      return v.asString().empty() ? std::optional<std::string>("must not be empty") : std::nullopt;
    }
    if (v.isArray()) {
      if (v.items().empty()) {
        return "expected at least one key file";
      }
      for (const auto& item : v.items()) {
        if (!item.isString() || item.asString().empty()) {
          return "expected a file name or a list of file names";
        }
      }
      return std::nullopt;
    }
    return "expected a file name or a list of file names";
  };
  auto cloud = makeSchema({
      Field::str("url").verify(checkMqttUrl).describe("mqtts://HOST:PORT of the broker"),
      Field::anyValue("urls")
          .verify(checkMqttUrls)
          .describe("several endpoints of one broker cluster, instead of url"),
      Field::str("ca_file")
          .req()
          .verify(checkNonEmpty)
          .describe("CA that signs the broker's certificate"),
      Field::str("cert_file")
          .req()
          .verify(checkNonEmpty)
          .describe("this agent's client certificate"),
      Field::str("key_file").req().verify(checkNonEmpty).describe("this agent's client key"),
      Field::str("username")
          .verify(checkNonEmpty)
          .describe("MQTT user name, for brokers that want one beside the certificate"),
      Field::boolean("username_from_certificate")
          .def(json::Value::boolean(false))
          .describe("send the client certificate's common name as the MQTT user name"),
      Field::str("password_file")
          .verify(checkNonEmpty)
          .describe("file whose first line is the MQTT password (readable by the service only)"),
      Field::integer("max_inflight").def(json::Value::integer(100)).range(1, 1000),
      Field::str("confirm").def(json::Value::string("broker")).oneOf({"broker", "receipt"}),
      Field::anyValue("config_signing_key").verify(signing_key),
      Field::anyValue("release_keys")
          .verify(signing_key)
          .describe("Ed25519 public keys (PEM) that sign upgrade packages; never the "
                    "config-signing keys"),
      Field::integer("keepalive_s").def(json::Value::integer(30)).range(5, 3600),
      Field::integer("session_expiry_s")
          .def(json::Value::integer(7 * 86400))
          .range(0, 4294967295.0),
      Field::integer("receipt_timeout_s").def(json::Value::integer(120)).range(1, 86400),
      Field::integer("puback_timeout_s").def(json::Value::integer(30)).range(1, 3600),
      Field::integer("status_interval_s").def(json::Value::integer(300)).range(5, 86400),
      Field::integer("upgrade_health_timeout_s")
          .def(json::Value::integer(120))
          .range(5, 3600)
          .describe("how long a new version has to come up healthy before it is rolled back"),
      Field::integer("upgrade_health_settle_s")
          .def(json::Value::integer(10))
          .range(0, 600)
          .describe("how long a healthy new version must stay up (a crash loop is rolled back)"),
  });
  cloud->check = checkCloudSection;
  auto control = makeSchema({
      Field::str("socket")
          .def(json::Value::string(os::pathToUtf8(platformDefaults().control_address)))
          .verify(checkNonEmpty),
  });
  ObjectSchema root;
  root.fields = {
      Field::obj("agent", agent).req(),
      Field::obj("store", store),
      Field::obj("cloud", cloud),
      Field::obj("control", control),
      Field::obj("http", httpSchema()).describe("local status page and Prometheus /metrics"),
      Field::array("adapters", Type::object).def(json::Value::array()),
      Field::obj("policy", adapters::policy::policySchema())
          .describe("minimum-necessary field policy, applied before records are stored"),
  };
  return root;
}

void validateAdapters(const json::Value& list, const adapters::SourceRegistry& registry,
                      std::vector<Issue>& issues) {
  std::set<std::string> names;
  for (size_t k = 0; k < list.items().size(); ++k) {
    const json::Value& a = list.items()[k];
    const std::string path = schema::indexPath("adapters", k);
    if (!a.isObject()) {
      continue;  // the generic array check reported it
    }
    const json::Value* type = a.find("type");
    if (type == nullptr || !type->isString()) {
      issues.push_back(Issue{schema::childPath(path, "type"), a.pos().line, a.pos().column,
                             "required string is missing (adapter type)"});
      continue;
    }
    const adapters::SourceFactory* factory = registry.find(type->asString());
    if (factory == nullptr) {
      std::string known;
      for (const auto& t : registry.types()) {
        known += (known.empty() ? "" : ", ") + t;
      }
      issues.push_back(Issue{schema::childPath(path, "type"), type->pos().line, type->pos().column,
                             "unknown adapter type \"" + type->asString() + "\" (known: " +
                                 (known.empty() ? "none built in" : known) + ")"});
      continue;
    }
    schema::validate(a, *factory->schema, path, issues);
    if (const json::Value* name = a.find("name"); name != nullptr && name->isString()) {
      if (!names.insert(name->asString()).second) {
        issues.push_back(Issue{schema::childPath(path, "name"), name->pos().line,
                               name->pos().column,
                               "duplicate adapter name \"" + name->asString() + "\""});
      }
    }
  }
}

std::vector<std::filesystem::path> signingKeys(const json::Value& v) {
  std::vector<std::filesystem::path> out;
  if (v.isString()) {
    out.emplace_back(v.asString());
  } else if (v.isArray()) {
    for (const auto& item : v.items()) {
      out.emplace_back(item.asString());
    }
  }
  return out;
}

}  // namespace

std::filesystem::path Config::resolve(const std::string& path) const {
  return os::resolveUtf8Path(state_dir, path);
}

const schema::ObjectSchema& configSchema() {
  static const ObjectSchema schema = buildConfigSchema();
  return schema;
}

ConfigLoad parseConfig(std::string_view text, const std::filesystem::path& source_file,
                       const adapters::SourceRegistry& registry) {
  ConfigLoad out;
  json::Limits limits;
  limits.max_bytes = 4u << 20;
  limits.max_depth = 32;
  auto parsed = json::parse(text, limits);
  if (!parsed) {
    out.fatal = "not valid JSON: " + parsed.error().message;
    // "line L column C: what" -> an issue at that position.
    Issue issue;
    issue.message = parsed.error().message;
    unsigned line = 0, col = 0;
    if (std::sscanf(parsed.error().message.c_str(), "line %u column %u", &line, &col) == 2) {
      issue.line = line;
      issue.column = col;
      auto colon = issue.message.find(": ");
      if (colon != std::string::npos) {
        issue.message = issue.message.substr(colon + 2);
      }
    }
    issue.message = "not valid JSON: " + issue.message;
    out.issues.push_back(std::move(issue));
    return out;
  }
  const json::Value& doc = *parsed;
  schema::validate(doc, configSchema(), "", out.issues);
  if (const json::Value* list = doc.find("adapters"); list != nullptr && list->isArray()) {
    validateAdapters(*list, registry, out.issues);
  }
  if (!out.issues.empty()) {
    std::stable_sort(out.issues.begin(), out.issues.end(), [](const Issue& a, const Issue& b) {
      return a.line != b.line ? a.line < b.line : a.column < b.column;
    });
    return out;
  }

  auto cfg = std::make_shared<Config>();
  cfg->source_file = source_file;
  cfg->doc = schema::withDefaults(doc, configSchema());
  const json::Value& agent = *cfg->doc.find("agent");
  cfg->agent_id = agent.getString("id");
  cfg->tenant = agent.getString("tenant");
  cfg->state_dir = os::pathFromUtf8(agent.getString("state_dir"));
  log::parseLevel(agent.getString("log_level"), cfg->log_level);
  if (const json::Value* lf = agent.find("log_file")) {
    cfg->log_file = cfg->resolve(lf->asString());
  }
  cfg->log_max_bytes = static_cast<uint64_t>(agent.getInt("log_max_bytes"));
  cfg->log_keep = static_cast<int>(agent.getInt("log_keep"));

  const json::Value& st = *cfg->doc.find("store");
  cfg->store.db_path = cfg->resolve(st.getString("path"));
  cfg->store.key_file = cfg->resolve(st.getString("key_file"));
  cfg->store.max_bytes = static_cast<uint64_t>(st.getInt("max_bytes"));
  cfg->store.retain_delivered = std::chrono::seconds(st.getInt("retain_delivered_s"));
  cfg->store.audit_retain = std::chrono::seconds(st.getInt("audit_retain_s"));
  cfg->store.dedupe_window = std::chrono::seconds(st.getInt("dedupe_window_s"));
  cfg->store.dedupe_max_entries = static_cast<uint64_t>(st.getInt("dedupe_max_entries"));
  const std::string ic = st.getString("integrity_check");
  cfg->store.integrity_check = ic == "full"  ? store::IntegrityCheck::full
                               : ic == "off" ? store::IntegrityCheck::off
                                             : store::IntegrityCheck::quick;

  if (const json::Value* cl = doc.find("cloud")) {
    const json::Value& c = *cfg->doc.find("cloud");
    (void)cl;
    CloudSettings& s = cfg->cloud;
    s.configured = true;
    if (const json::Value* urls = c.find("urls")) {
      for (const auto& u : urls->items()) {
        s.urls.push_back(u.asString());
      }
      s.url = s.urls.front();  // what one-endpoint readers (status, logs) show
    } else {
      s.url = c.getString("url");
    }
    std::string problem;
    splitMqttUrl(s.url, s.host, s.port, problem);
    s.ca_file = cfg->resolve(c.getString("ca_file"));
    s.cert_file = cfg->resolve(c.getString("cert_file"));
    s.key_file = cfg->resolve(c.getString("key_file"));
    s.username = c.getString("username");
    if (const std::string f = c.getString("password_file"); !f.empty()) {
      s.password_file = cfg->resolve(f);
    }
    s.username_from_certificate = c.getBool("username_from_certificate");
    s.max_inflight = static_cast<int>(c.getInt("max_inflight"));
    s.confirm = c.getString("confirm");
    if (const json::Value* keys = c.find("config_signing_key")) {
      for (const auto& k : signingKeys(*keys)) {
        s.config_signing_keys.push_back(cfg->resolve(k.string()));
      }
    }
    if (const json::Value* keys = c.find("release_keys")) {
      for (const auto& k : signingKeys(*keys)) {
        s.release_keys.push_back(cfg->resolve(k.string()));
      }
    }
    s.keepalive_s = static_cast<int>(c.getInt("keepalive_s"));
    s.session_expiry_s = static_cast<int>(c.getInt("session_expiry_s"));
    s.receipt_timeout_s = static_cast<int>(c.getInt("receipt_timeout_s"));
    s.puback_timeout_s = static_cast<int>(c.getInt("puback_timeout_s"));
    s.status_interval_s = static_cast<int>(c.getInt("status_interval_s"));
    s.upgrade_health_timeout_s = static_cast<int>(c.getInt("upgrade_health_timeout_s"));
    s.upgrade_health_settle_s = static_cast<int>(c.getInt("upgrade_health_settle_s"));
  }
  cfg->control_socket = cfg->resolve(cfg->doc.find("control")->getString("socket"));
  // Served only when the file has the section. withDefaults() fills in absent optional sections:
  // drop that copy, or `config show` would list a section that is off and a config rebuilt from
  // the document (remote config: buildEffectiveConfig) would turn the endpoint on.
  if (const json::Value* http = doc.find("http")) {
    auto settings = readHttpSettings(*cfg->doc.find("http"), cfg->state_dir);
    if (!settings) {
      out.issues.push_back(Issue{"http", http->pos().line, http->pos().column,
                                 settings.error().message});
      return out;
    }
    cfg->http = std::move(settings).value();
  } else {
    cfg->doc.erase("http");
  }

  cfg->policy = adapters::policy::readPolicySettings(cfg->doc.find("policy"));
  for (const auto& a : cfg->doc.find("adapters")->items()) {
    const auto* factory = registry.find(a.getString("type"));
    cfg->adapters.push_back(factory ? schema::withDefaults(a, *factory->schema) : a);
  }
  out.config = std::move(cfg);
  return out;
}

ConfigLoad loadConfig(const std::filesystem::path& file, const adapters::SourceRegistry& registry) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    ConfigLoad out;
    std::error_code ec;
    out.fatal = std::filesystem::exists(file, ec)
                    ? "cannot read config file " + file.string() + " (permission denied?)"
                    : "config file " + file.string() + " does not exist";
    return out;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return parseConfig(ss.str(), file, registry);
}

json::Value maskedConfig(const Config& config, const adapters::SourceRegistry& registry) {
  json::Value out = schema::mask(config.doc, configSchema());
  if (json::Value* list = out.find("adapters"); list != nullptr && list->isArray()) {
    for (auto& a : list->items()) {
      if (const auto* f = registry.find(a.getString("type"))) {
        a = schema::mask(a, *f->schema);
      }
    }
  }
  return out;
}

std::filesystem::path configPath(const std::string& from_option) {
  if (!from_option.empty()) {
    return os::pathFromUtf8(from_option);
  }
  if (const char* env = std::getenv("PMS_AGENT_CONFIG"); env != nullptr && *env != '\0') {
    return os::pathFromUtf8(env);
  }
  return platformDefaults().config_file;
}

}  // namespace psa::agent
