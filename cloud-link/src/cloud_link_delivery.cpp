// CloudLink's delivery path: leasing records from the store, publishing them to P/up/{kind},
// handling PUBACKs and receipts, and acking, retrying or dead-lettering them in the store.
#include "cloud_link_impl.h"
#include "psa/cloudlink/chunks.h"
#include "psa/cloudlink/envelope.h"

namespace psa::cloudlink {

void CloudLink::Impl::suspectInflight(const std::string& words) {
  if (window_.inFlight() == 0) {
    return;
  }
  if (auto convicted = window_.suspectInflight(words, steadyNow())) {
    log_.warn("record.poison",
              {{"msg_id", *convicted}, {"strikes", DeliveryWindow::kPoisonStrikes}});
  }
  log_.info("link.probe", {{"suspects", window_.suspects()}});
}

bool CloudLink::Impl::canPublish() const {
  return state_ == LinkState::connected && !stopping_ && !session_broken_;
}

bool CloudLink::Impl::canLease() const {
  if (!canPublish() || lease_outstanding_ || release_outstanding_ || need_release_ ||
      !deliverable_hint_) {
    return false;
  }
  if (ready_.size() >= readyTarget()) {
    return false;
  }
  if (options_.confirm == Confirm::receipt &&
      window_.awaitingReceipt() + window_.inFlight() + ready_.size() >= options_.max_unreceipted) {
    return false;
  }
  return true;
}

void CloudLink::Impl::pump() {
  while (!ready_.empty() &&
         window_.publishesInFlight() <
             window_.window(recordWindow(options_.max_inflight, broker_)) &&
         canPublish()) {
    store::Leased next = std::move(ready_.front());
    ready_.pop_front();
    publishRecord(std::move(next));
  }
  if (!canLease()) {
    return;
  }
  size_t n = readyTarget() - ready_.size();
  if (options_.confirm == Confirm::receipt) {
    n = std::min(n, options_.max_unreceipted - window_.awaitingReceipt() - window_.inFlight() -
                        ready_.size());
  }
  lease_outstanding_ = true;
  deliverable_hint_ = false;
  lease_requested_ = n;
  auto self = shared_from_this();
  reader_.lease(n, [self](Result<std::vector<store::Leased>> result) {
    self->post([self, result = std::move(result)]() mutable { self->onLeased(std::move(result)); });
  });
}

void CloudLink::Impl::onLeased(Result<std::vector<store::Leased>> result) {
  lease_outstanding_ = false;
  if (!result) {
    updateStatus([](LinkStatus& s) { ++s.store_errors; });
    log_.error("store.lease_failed", {{"error", result.error().describe()}});
    lease_retry_at_ = steadyNow() + milliseconds(1000);
    return;
  }
  std::vector<store::Leased>& records = result.value();
  if (need_release_) {
    requestRelease();  // the session ended while this lease was outstanding
    return;
  }
  if (!canPublish()) {
    // Covered by the releaseAll() that follows the end of the session / stop.
    advanceStop();
    return;
  }
  if (records.size() >= lease_requested_) {
    deliverable_hint_ = true;
  }
  for (store::Leased& leased : records) {
    ready_.push_back(std::move(leased));
  }
  pump();
  syncCounts();
}

int CloudLink::Impl::publishOn(MqttSession& session, int& mid, const std::string& topic,
                               const UserProperties& props, const std::string& content_type,
                               std::string_view payload, bool& metadata_unusable) {
  mosquitto_property* list = nullptr;
  int rc = MOSQ_ERR_SUCCESS;
  for (const auto& [name, value] : props) {
    rc = mosquitto_property_add_string_pair(&list, MQTT_PROP_USER_PROPERTY, name.c_str(),
                                            value.c_str());
    if (rc != MOSQ_ERR_SUCCESS) {
      break;
    }
  }
  if (rc == MOSQ_ERR_SUCCESS) {
    rc = mosquitto_property_add_string(&list, MQTT_PROP_CONTENT_TYPE, content_type.c_str());
  }
  if (rc != MOSQ_ERR_SUCCESS) {
    mosquitto_property_free_all(&list);
    metadata_unusable = true;
    return rc;
  }
  // Topic alias: an established one replaces the topic; a new one goes with the topic and
  // counts as established once the publish is queued (packets leave in order, so the broker
  // learns it before any publish that uses it alone).
  int alias = 0;
  bool establish = false;
  if (auto it = topic_aliases_.find(topic); it != topic_aliases_.end()) {
    alias = it->second;
  } else if (topic_aliases_.size() < static_cast<size_t>(broker_.topic_alias_maximum)) {
    alias = static_cast<int>(topic_aliases_.size()) + 1;
    establish = true;
  }
  if (alias > 0) {
    mosquitto_property_add_int16(&list, MQTT_PROP_TOPIC_ALIAS, static_cast<uint16_t>(alias));
  }
  static const std::string kAliasOnly;
  rc = session.publish(&mid, alias > 0 && !establish ? kAliasOnly : topic, payload, false, list);
  mosquitto_property_free_all(&list);
  if (rc == MOSQ_ERR_SUCCESS && alias > 0) {
    if (establish) {
      topic_aliases_.emplace(topic, alias);
    } else {
      updateStatus([](LinkStatus& st) { ++st.aliased; });
    }
  }
  return rc;
}

void CloudLink::Impl::publishRecord(store::Leased&& leased) {
  auto s = session();
  if (!s) {
    session_broken_ = true;
    return;
  }
  const store::Record& r = leased.record;
  if (auto c = window_.beforePublish(r.msg_id)) {
    deadLetter(leased.seq, r.msg_id, 0,
               "the connection broke each time this record was sent alone (" +
                   std::to_string(c->strikes) + " times, last: " + c->last_error +
                   "); the broker probably refuses it (e.g. over its message size limit)");
    return;
  }
  const UserProperties props = userProperties(r);
  const std::string content_type(contentTypeFor(r.format));
  const std::string topic = topics_.up(r.kind);
  const std::string_view payload = r.payload.reveal();
  // Larger than the broker's Maximum Packet Size: one publish per chunk (design.md "Chunked
  // records"), all in flight together; the record is released when every chunk is answered.
  // (Planned with the whole topic and room for a topic alias: what the first publish carries.)
  const size_t alias_bytes = broker_.topic_alias_maximum > 0 ? 3 : 0;
  auto plan =
      planChunks(broker_.maximum_packet_size == 0 ? 0 : broker_.maximum_packet_size - alias_bytes,
                 topic, props, content_type, payload.size());
  if (!plan) {
    deadLetter(leased.seq, r.msg_id, 0x95, plan.error().message);
    return;
  }
  std::vector<int> mids;
  bool metadata_unusable = false;
  int rc = MOSQ_ERR_SUCCESS;
  if (!plan.value()) {
    int mid = 0;
    rc = publishOn(*s, mid, topic, props, content_type, payload, metadata_unusable);
    mids.push_back(mid);
  } else {
    const ChunkPlan& p = **plan;
    mids.reserve(p.chunks);
    for (size_t k = 1; k <= p.chunks && rc == MOSQ_ERR_SUCCESS; ++k) {
      int mid = 0;
      rc = publishOn(*s, mid, topic, chunkProperties(props, k, p.chunks), content_type,
                     payload.substr((k - 1) * p.chunk_bytes, p.chunk_bytes), metadata_unusable);
      mids.push_back(mid);
    }
    if (rc == MOSQ_ERR_SUCCESS) {
      log_.info("record.chunked", {{"msg_id", r.msg_id},
                                   {"bytes", payload.size()},
                                   {"chunks", p.chunks},
                                   {"max_packet", broker_.maximum_packet_size}});
    }
  }
  // A chunk that could not be published: the ones before it are in flight at the broker, but
  // their answers no longer count (the record is decided below and resent whole if retried).
  if (metadata_unusable) {
    deadLetter(leased.seq, r.msg_id, 0,
               "metadata not usable as MQTT user properties (" +
                   std::string(mosquitto_strerror(rc)) + ")");
    return;
  }
  switch (rc) {
    case MOSQ_ERR_SUCCESS: {
      const bool resend = window_.sent(mids, leased.seq, r.msg_id, leased.attempts, steadyNow());
      updateStatus([&](LinkStatus& st) {
        ++st.published;
        if (resend) {
          ++st.resent;
        }
        if (mids.size() > 1) {
          ++st.chunked;
          st.chunks_published += mids.size();
        }
      });
      return;
    }
    case MOSQ_ERR_NO_CONN:
      // The connection is going away; releaseAll() after `ended` returns this record.
      session_broken_ = true;
      return;
    case MOSQ_ERR_OVERSIZE_PACKET:
      deadLetter(leased.seq, r.msg_id, 0x95,
                 "packet too large for the broker (maximum packet size " +
                     std::to_string(s->maximumPacketSize()) + " bytes)");
      return;
    case MOSQ_ERR_PAYLOAD_SIZE:
      deadLetter(leased.seq, r.msg_id, 0, "payload larger than MQTT allows");
      return;
    case MOSQ_ERR_NOMEM:
      retryRecord(leased.seq, r.msg_id, leased.attempts, -1, "out of memory while publishing");
      return;
    case MOSQ_ERR_QOS_NOT_SUPPORTED:
      setLastError("broker does not support QoS 1");
      retryRecord(leased.seq, r.msg_id, leased.attempts, -1, "broker does not support QoS 1");
      return;
    default:
      deadLetter(leased.seq, r.msg_id, 0,
                 std::string("publish rejected by the MQTT library: ") + mosquitto_strerror(rc));
      return;
  }
}

milliseconds CloudLink::Impl::retryDelay(uint32_t attempts) {
  int64_t d = options_.retry_initial.count();
  for (uint32_t i = 0; i < attempts && d < options_.retry_max.count(); ++i) {
    d *= 2;
  }
  d = std::min<int64_t>(d, options_.retry_max.count());
  std::uniform_int_distribution<int64_t> dist(d / 2, d);
  return milliseconds(dist(rng_));
}

void CloudLink::Impl::retryRecord(int64_t seq, const std::string& msg_id, uint32_t attempts,
                                  int code, std::string reason) {
  const milliseconds delay = retryDelay(attempts);
  updateStatus([&](LinkStatus& s) {
    ++s.retried;
    if (code >= 0x80) {
      ++s.reason_codes[code];
    }
  });
  log_.warn("record.retry", {{"msg_id", msg_id},
                             {"code", code},
                             {"reason", reason},
                             {"retry_ms", static_cast<int64_t>(delay.count())}});
  retry_due_.push(steadyNow() + delay);
  auto self = shared_from_this();
  reader_.nack(seq, delay, std::move(reason), [self](Status st) {
    self->post([self, st = std::move(st)] {
      self->storeResult("nack", st);
      self->deliverable_hint_ = true;
      self->pump();
    });
  });
}

void CloudLink::Impl::deadLetter(int64_t seq, const std::string& msg_id, int code,
                                 std::string reason) {
  updateStatus([&](LinkStatus& s) {
    ++s.dead_lettered;
    if (code >= 0x80) {
      ++s.reason_codes[code];
    }
  });
  log_.warn("record.dead_letter", {{"msg_id", msg_id}, {"code", code}, {"reason", reason}});
  auto self = shared_from_this();
  reader_.deadLetter(seq, std::move(reason), [self](Status st) {
    self->post([self, st = std::move(st)] { self->storeResult("dead_letter", st); });
  });
}

void CloudLink::Impl::storeResult(const char* op, const Status& st) {
  if (!st) {
    updateStatus([](LinkStatus& s) { ++s.store_errors; });
    log_.error("store.error", {{"op", op}, {"error", st.error().describe()}});
  }
}

void CloudLink::Impl::onPuback(int mid, int rc) {
  last_puback_at_ = steadyNow();
  if (control_.onPuback(mid, rc)) {
    return;
  }
  std::optional<InFlight> answered =
      window_.answered(mid, classifyPuback(rc) == PubackAction::delivered);
  if (!answered) {
    return;  // not ours (e.g. a mid of a message published before a stop)
  }
  const InFlight& f = *answered;
  PubackAction action = classifyPuback(rc);
  if (rc == 0x87) {
    denied_on_connection_ = true;
  }
  if (action == PubackAction::dead_letter && rc == 0x87 && !records_accepted_) {
    // Not authorized, and the broker has accepted no record on this connection: the ACL
    // denies this agent everything (a broker-side misconfiguration), not this record's topic.
    // Dead-lettering would move the whole queue aside; retry with back-off instead, so
    // delivery resumes by itself once the ACL is fixed.
    action = PubackAction::retry;
    setLastError(deniedWords());
  }
  switch (action) {
    case PubackAction::delivered:
      records_accepted_ = true;
      window_.delivered(f, steadyNow());
      if (window_.hasPendingAcks()) {
        scheduleAckFlush();
      }
      break;
    case PubackAction::retry:
      retryRecord(f.seq, f.msg_id, f.attempts, rc, pubackReason(rc));
      break;
    case PubackAction::dead_letter:
      deadLetter(f.seq, f.msg_id, rc, pubackReason(rc));
      break;
  }
}

void CloudLink::Impl::scheduleAckFlush() {
  if (ack_flush_posted_) {
    return;
  }
  ack_flush_posted_ = true;
  // Posting lets every PUBACK already queued on the strand join this batch.
  post([this] {
    ack_flush_posted_ = false;
    flushAcks(false);
  });
}

void CloudLink::Impl::flushAcks(bool force) {
  if (!window_.hasPendingAcks() || (acks_outstanding_ > 0 && !force)) {
    return;
  }
  std::vector<int64_t> batch = window_.takePendingAcks();
  const size_t n = batch.size();
  ++acks_outstanding_;
  auto self = shared_from_this();
  reader_.ack(std::move(batch), [self, n](Status st) {
    self->post([self, n, st = std::move(st)] {
      --self->acks_outstanding_;
      if (st) {
        self->acked_total_ += n;
        self->updateStatus([&](LinkStatus& s) { s.acked += n; });
      } else {
        self->storeResult("ack", st);
      }
      self->flushAcks(false);
      self->advanceStop();
    });
  });
}

void CloudLink::Impl::requestRelease() {
  if (lease_outstanding_) {
    need_release_ = true;
    return;
  }
  need_release_ = false;
  release_outstanding_ = true;
  auto self = shared_from_this();
  reader_.releaseAll([self](Status st) {
    self->post([self, st = std::move(st)] {
      self->release_outstanding_ = false;
      self->storeResult("release_all", st);
      self->deliverable_hint_ = true;
      self->pump();
      self->advanceStop();
    });
  });
}

void CloudLink::Impl::onReceipt(const SessionEvent& ev) {
  ReceiptLimits limits;
  limits.max_bytes = options_.max_control_bytes;
  Result<std::vector<std::string>> ids =
      ev.oversize ? Result<std::vector<std::string>>(
                        Error(Errc::limit, "receipt of " + std::to_string(ev.payload_size) +
                                               " bytes exceeds the limit"))
                  : parseReceipt(ev.payload, limits);
  if (!ids) {
    updateStatus([](LinkStatus& s) { ++s.receipts_invalid; });
    log_.warn("receipt.invalid", {{"size", ev.payload_size}, {"error", ids.error().message}});
    return;
  }
  updateStatus([](LinkStatus& s) { ++s.receipts; });
  if (options_.confirm != Confirm::receipt) {
    return;  // broker mode: records are released on PUBACK already
  }
  const size_t matched = window_.receipt(ids.value());
  log_.debug("receipt.accepted", {{"ids", ids->size()}, {"matched", matched}});
  if (matched > 0) {
    scheduleAckFlush();
    syncCounts();
    pump();
  }
}

}  // namespace psa::cloudlink
