// ControlChannel: the link's control traffic, apart from records. Incoming: documents on
// P/config/set and P/cmd/{name}, checked (size, command name, a sink to take them) and handed
// to the agent's ControlSink. Outgoing: P/status (retained; only the newest is kept),
// P/config/state, P/cmd/result and P/audit, held in a bounded queue while offline, published
// up to kMaxInflight at a time, requeued when a connection ends, their `done` callbacks run on
// the PUBACK (or with Errc::full / Errc::closed).
//
// Threads: not thread-safe; CloudLink owns one and calls it only on its strand, so the sink and
// every `done` callback run on that strand.
// Errors: bad incoming messages are counted (LinkStatus::control_rejected) and logged by id and
// size, never by content; publish failures reach the item's `done`.
#pragma once

#include <deque>
#include <optional>
#include <string>
#include <unordered_map>

#include "delivery_window.h"
#include "mqtt_session.h"
#include "psa/cloudlink/cloud_link.h"
#include "psa/cloudlink/topics.h"
#include "psa/store/log.h"

namespace psa::cloudlink::detail {

/// One outgoing control message.
struct ControlItem {
  SteadyTime sent_at{};
  std::string topic;
  std::string payload;
  bool retain = false;
  bool is_status = false;
  CloudLink::PublishCallback done;
};

class ControlChannel {
 public:
  /// Control messages in flight at once (they share the broker's receive maximum with records).
  static constexpr size_t kMaxInflight = 16;

  /// `topics`, `status` and `log` belong to the link and outlive the channel; `status` gets the
  /// control counters.
  ControlChannel(const Topics& topics, size_t max_control_bytes, size_t max_queue,
                 LinkStatus& status, const log::Logger& log);

  /// Where config documents and commands go (nullptr: they are rejected).
  void setSink(ControlSink* sink) { sink_ = sink; }

  /// A PUBLISH on a topic other than P/receipt: a config document or a command for the sink.
  void onMessage(SessionEvent ev);

  /// Queues the retained P/status, replacing a status still queued.
  void queueStatus(std::string json);
  /// Queues `item`; when the queue is full, `item.done` gets Errc::full at once.
  void queue(ControlItem item);
  /// Publishes queued items on `session` while fewer than kMaxInflight are in flight. Stops at
  /// MOSQ_ERR_NO_CONN (the connection is going away); other publish errors go to `done`.
  /// Without `retain_available` (the broker keeps no retained messages) nothing is retained.
  void flush(MqttSession& session, SteadyTime now, bool retain_available);
  /// The PUBACK for `mid`: runs its `done` and returns true, or false if `mid` is not a
  /// control message.
  bool onPuback(int mid, int rc);
  /// The connection ended: messages in flight go back to the front of the queue.
  void requeueInflight();
  /// The link stopped: every queued message's `done` gets Errc::closed; the queue empties.
  void failQueued();

  size_t inFlight() const { return inflight_.size(); }
  /// When the oldest control message in flight was sent; nullopt if none is.
  std::optional<SteadyTime> oldestSentAt() const;

 private:
  const Topics& topics_;
  const size_t max_control_bytes_;
  const size_t max_queue_;
  LinkStatus& status_;
  const log::Logger& log_;
  ControlSink* sink_ = nullptr;
  std::deque<ControlItem> queue_;
  std::unordered_map<int, ControlItem> inflight_;  ///< mid -> message awaiting PUBACK
};

}  // namespace psa::cloudlink::detail
