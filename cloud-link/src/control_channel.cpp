#include "control_channel.h"

#include <mqtt_protocol.h>

#include <algorithm>

#include "psa/cloudlink/policy.h"

namespace psa::cloudlink::detail {

namespace {

bool validCommandName(std::string_view name) {
  if (name.empty() || name.size() > 64) {
    return false;
  }
  for (char c : name) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) {
      return false;
    }
  }
  return true;
}

}  // namespace

ControlChannel::ControlChannel(const Topics& topics, size_t max_control_bytes, size_t max_queue,
                               LinkStatus& status, const log::Logger& log)
    : topics_(topics),
      max_control_bytes_(max_control_bytes),
      max_queue_(max_queue),
      status_(status),
      log_(log) {}

void ControlChannel::onMessage(SessionEvent ev) {
  const std::string& topic = ev.topic;
  const bool is_config = topic == topics_.configSet();
  const bool is_chunk = topic == topics_.upgradeChunk();
  const std::string cmd_prefix = topics_.prefix() + "/cmd/";
  const std::string down_prefix = topics_.prefix() + "/down/";
  const bool is_cmd = !is_config && !is_chunk && topic.rfind(cmd_prefix, 0) == 0;
  const bool is_write = !is_config && !is_cmd && !is_chunk && topic.rfind(down_prefix, 0) == 0;
  std::string name = is_cmd     ? topic.substr(cmd_prefix.size())
                     : is_write ? topic.substr(down_prefix.size())
                                : std::string();
  const char* what = is_config  ? "config"
                     : is_cmd   ? "command"
                     : is_chunk ? "upgrade_chunk"
                                : "write";
  std::string problem;
  if (!is_config && !is_cmd && !is_write && !is_chunk) {
    problem = "unexpected topic";
  } else if (ev.oversize) {
    problem = "payload of " + std::to_string(ev.payload_size) + " bytes exceeds the limit of " +
              std::to_string(max_control_bytes_);
  } else if (is_cmd && (name == "result" || !validCommandName(name))) {
    problem = "invalid command name";
  } else if (is_write && !store::parseKind(name)) {
    // P/down/result (our own results; No Local keeps them away anyway) or an unknown kind.
    problem = "not a write-back kind";
  } else if (sink_ == nullptr) {
    problem = "no control sink";
  }
  if (!problem.empty()) {
    ++status_.control_rejected;
    log_.warn("control.rejected", {{"kind", what}, {"size", ev.payload_size}, {"reason", problem}});
    return;
  }
  ++status_.control_received;
  if (is_chunk) {
    // One per package chunk: the agent logs the download's progress, not every chunk.
    log_.debug("control.received", {{"kind", what}, {"size", ev.payload_size}});
    sink_->onUpgradeChunk(std::move(ev.payload));
    return;
  }
  log_.info("control.received", {{"kind", what}, {"name", name}, {"size", ev.payload_size}});
  if (is_config) {
    sink_->onConfigDocument(std::move(ev.payload));
  } else if (is_cmd) {
    sink_->onCommand(std::move(name), std::move(ev.payload));
  } else {
    sink_->onWriteRequest(std::move(name), std::move(ev.payload));
  }
}

void ControlChannel::queueStatus(std::string json) {
  ControlItem item;
  item.topic = topics_.status();
  item.payload = std::move(json);
  item.retain = true;
  item.is_status = true;
  queue(std::move(item));
}

void ControlChannel::queue(ControlItem item) {
  if (item.is_status) {
    // Only the newest status matters.
    queue_.erase(std::remove_if(queue_.begin(), queue_.end(),
                                [](const ControlItem& c) { return c.is_status; }),
                 queue_.end());
  } else if (queue_.size() >= max_queue_) {
    if (item.done) {
      item.done(
          Error(Errc::full, "cloud link queue full (" + std::to_string(max_queue_) + " messages)"));
    }
    return;
  }
  queue_.push_back(std::move(item));
}

void ControlChannel::flush(MqttSession& session, SteadyTime now, bool retain_available) {
  while (!queue_.empty() && inflight_.size() < kMaxInflight) {
    ControlItem& item = queue_.front();
    mosquitto_property* props = nullptr;
    mosquitto_property_add_string(&props, MQTT_PROP_CONTENT_TYPE, "application/json");
    int mid = 0;
    const int rc =
        session.publish(&mid, item.topic, item.payload, item.retain && retain_available, props);
    mosquitto_property_free_all(&props);
    if (rc == MOSQ_ERR_NO_CONN) {
      return;
    }
    ControlItem taken = std::move(item);
    queue_.pop_front();
    if (rc == MOSQ_ERR_SUCCESS) {
      taken.sent_at = now;
      inflight_.emplace(mid, std::move(taken));
    } else if (taken.done) {
      taken.done(
          Error(Errc::invalid_argument, std::string("cannot publish: ") + mosquitto_strerror(rc)));
    }
  }
}

bool ControlChannel::onPuback(int mid, int rc) {
  auto c = inflight_.find(mid);
  if (c == inflight_.end()) {
    return false;
  }
  ControlItem item = std::move(c->second);
  inflight_.erase(c);
  if (item.done) {
    if (rc < 0x80) {
      item.done(Status{});
    } else {
      item.done(Error(Errc::unavailable, pubackReason(rc)));
    }
  }
  if (rc >= 0x80) {
    ++status_.reason_codes[rc];
    log_.warn("control.puback_error", {{"topic", item.topic}, {"code", rc}});
  } else if (item.is_status) {
    ++status_.status_published;
  }
  return true;
}

void ControlChannel::requeueInflight() {
  for (auto& [mid, item] : inflight_) {
    queue_.push_front(std::move(item));
  }
  inflight_.clear();
}

void ControlChannel::failQueued() {
  std::deque<ControlItem> pending;
  pending.swap(queue_);
  for (ControlItem& item : pending) {
    if (item.done) {
      item.done(Error(Errc::closed, "cloud link stopped"));
    }
  }
}

std::optional<SteadyTime> ControlChannel::oldestSentAt() const {
  std::optional<SteadyTime> oldest;
  for (const auto& [mid, c] : inflight_) {
    if (!oldest || c.sent_at < *oldest) {
      oldest = c.sent_at;
    }
  }
  return oldest;
}

}  // namespace psa::cloudlink::detail
