#include "psa/agent/remote_config.h"

#include <algorithm>
#include <set>

namespace psa::agent {
namespace {

constexpr const char* kSettableHint =
    "the cloud may set adapters, policy, agent.log_level, cloud.status_interval_s and tuning "
    "values";

bool contains(const std::vector<std::string>& list, const std::string& dotted) {
  return std::find(list.begin(), list.end(), dotted) != list.end();
}

bool isLive(const std::string& dotted) { return contains(remoteLiveValues(), dotted); }

bool isSettable(const std::string& dotted) {
  return isLive(dotted) || contains(remoteRestartValues(), dotted);
}

std::string forbiddenMessage(const std::string& dotted) {
  if (dotted == "agent.id" || dotted == "agent.tenant") {
    return "the agent's identity cannot be changed remotely";
  }
  if (dotted == "agent.state_dir") {
    return "the state directory cannot be changed remotely";
  }
  if (dotted == "cloud.ca_file" || dotted == "cloud.config_signing_key" ||
      dotted == "cloud.release_keys") {
    return "trust anchors cannot be changed remotely";
  }
  if (dotted == "cloud.cert_file" || dotted == "cloud.key_file" || dotted == "cloud.url" ||
      dotted.rfind("cloud.urls", 0) == 0 || dotted == "cloud.username" ||
      dotted == "cloud.password_file" || dotted == "cloud.username_from_certificate") {
    return "the cloud identity and endpoint cannot be changed remotely";
  }
  return std::string("a local setting cannot be changed remotely (") + kSettableHint + ")";
}

}  // namespace

const std::vector<std::string>& remoteLiveValues() {
  static const std::vector<std::string> values = {"agent.log_level", "cloud.status_interval_s",
                                                  "policy.rules", "policy.default_ssn_mask"};
  return values;
}

const std::vector<std::string>& remoteRestartValues() {
  static const std::vector<std::string> values = {
      "agent.log_max_bytes",      "agent.log_keep",        "store.max_bytes",
      "store.retain_delivered_s", "store.dedupe_window_s", "store.dedupe_max_entries",
      "cloud.max_inflight",       "cloud.keepalive_s",     "cloud.receipt_timeout_s",
      "cloud.puback_timeout_s"};
  return values;
}

bool sameJson(const json::Value& a, const json::Value& b) {
  if (a.type() != b.type()) {
    return false;
  }
  if (a.isObject()) {
    if (a.members().size() != b.members().size()) {
      return false;
    }
    for (const auto& [k, v] : a.members()) {
      const json::Value* other = b.find(k);
      if (other == nullptr || !sameJson(v, *other)) {
        return false;
      }
    }
    return true;
  }
  if (a.isArray()) {
    if (a.items().size() != b.items().size()) {
      return false;
    }
    for (size_t i = 0; i < a.items().size(); ++i) {
      if (!sameJson(a.items()[i], b.items()[i])) {
        return false;
      }
    }
    return true;
  }
  return a == b;
}

OverlayCheck checkOverlay(const json::Value& config, const json::Value& running_doc) {
  OverlayCheck out;
  if (!config.isObject()) {
    out.schema.push_back(PathError{"config", "expected an object"});
    return out;
  }
  const schema::ObjectSchema& root = configSchema();
  for (const auto& [key, value] : config.members()) {
    const std::string path = "config." + key;
    if (key == "adapters") {
      if (!value.isArray()) {
        out.schema.push_back(PathError{path, "expected an array of adapter objects"});
      } else {
        out.overlay.set("adapters", value);
      }
      continue;
    }
    const schema::Field* section = root.field(key);
    if (section == nullptr || !section->object) {
      out.schema.push_back(PathError{path, std::string("unknown key (") + kSettableHint + ")"});
      continue;
    }
    if (!value.isObject()) {
      out.schema.push_back(PathError{path, "expected an object"});
      continue;
    }
    const json::Value* running_section = running_doc.find(key);
    for (const auto& [name, v] : value.members()) {
      const std::string vpath = path + "." + name;
      const std::string dotted = key + "." + name;
      const schema::Field* field = section->object->field(name);
      if (field == nullptr) {
        out.schema.push_back(PathError{vpath, "unknown key"});
        continue;
      }
      if (isSettable(dotted) && running_section != nullptr) {
        std::vector<schema::Issue> issues;
        schema::validateField(v, *field, vpath, issues);
        for (auto& i : issues) {
          out.schema.push_back(PathError{i.path, i.message});
        }
        json::Value* target = out.overlay.find(key);
        if (target == nullptr) {
          target = &out.overlay.set(key, json::Value::object());
        }
        target->set(name, v);
        const json::Value* current = running_section->find(name);
        if (!isLive(dotted) && issues.empty() && (current == nullptr || !sameJson(*current, v))) {
          out.pending_restart.push_back(dotted);
        }
        continue;
      }
      const json::Value* current = running_section ? running_section->find(name) : nullptr;
      if (current != nullptr && sameJson(*current, v)) {
        continue;  // repeated unchanged: harmless
      }
      out.forbidden.push_back(PathError{vpath, forbiddenMessage(dotted)});
    }
  }
  return out;
}

json::Value mergeOverlay(const json::Value& base_doc, const json::Value& overlay) {
  json::Value out = base_doc;
  if (!overlay.isObject()) {
    return out;
  }
  for (const auto& [key, value] : overlay.members()) {
    if (key == "adapters" || !value.isObject()) {
      out.set(key, value);
      continue;
    }
    json::Value* section = out.find(key);
    if (section == nullptr || !section->isObject()) {
      section = &out.set(key, json::Value::object());
    }
    for (const auto& [name, v] : value.members()) {
      section->set(name, v);
    }
  }
  return out;
}

ConfigLoad buildEffectiveConfig(const json::Value& base_doc, const json::Value& overlay,
                                const std::filesystem::path& source_file,
                                const adapters::SourceRegistry& registry) {
  return parseConfig(json::serialize(mergeOverlay(base_doc, overlay)), source_file, registry);
}

std::vector<std::string> restartOnlyChanges(const json::Value& running_doc,
                                            const json::Value& next_doc) {
  std::vector<std::string> out;
  std::set<std::string> keys;
  for (const auto* doc : {&running_doc, &next_doc}) {
    if (doc->isObject()) {
      for (const auto& [k, v] : doc->members()) {
        keys.insert(k);
      }
    }
  }
  for (const auto& key : keys) {
    if (key == "adapters") {
      continue;
    }
    const json::Value* a = running_doc.find(key);
    const json::Value* b = next_doc.find(key);
    if (a != nullptr && b != nullptr && a->isObject() && b->isObject()) {
      std::set<std::string> names;
      for (const auto* s : {a, b}) {
        for (const auto& [n, v] : s->members()) {
          names.insert(n);
        }
      }
      for (const auto& n : names) {
        if (isLive(key + "." + n)) {
          continue;
        }
        const json::Value* x = a->find(n);
        const json::Value* y = b->find(n);
        if ((x == nullptr) != (y == nullptr) || (x != nullptr && !sameJson(*x, *y))) {
          out.push_back(key + "." + n);
        }
      }
      continue;
    }
    if ((a == nullptr) != (b == nullptr) || (a != nullptr && !sameJson(*a, *b))) {
      out.push_back(key);
    }
  }
  return out;
}

}  // namespace psa::agent
