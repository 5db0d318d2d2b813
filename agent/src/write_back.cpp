#include "write_back.h"

#include <algorithm>
#include <boost/asio/post.hpp>

#include "psa/adapters/hl7/message.h"
#include "psa/store/fatal.h"

namespace psa::agent {
namespace asio = boost::asio;
using adapters::write::DeliveryOutcome;
using adapters::write::WriteRequest;
using adapters::write::WriteResult;
using adapters::write::WriteStatus;

namespace {

constexpr std::chrono::milliseconds kTick{500};
constexpr size_t kMaxResultsInflight = 100;
constexpr int64_t kPruneEveryMs = 3600 * 1000;
constexpr int64_t kMaxSkewMs = 5 * 60 * 1000;
constexpr int64_t kRetryMinMs = 2000;
constexpr int64_t kRetryMaxMs = 5 * 60 * 1000;

// Reasons of `rejected` results (stable, part of P/down/result).
std::string_view envelopeReason(RejectReason r) {
  switch (r) {
    case RejectReason::bad_signature:
      return "bad_signature";
    case RejectReason::unknown_key:
      return "unknown_key";
    default:
      return "bad_envelope";
  }
}

// The id of a document whose envelope did not verify, read without trusting it, so the cloud
// can match the rejection to what it sent. "" when there is none.
std::string unverifiedId(std::string_view envelope) {
  json::Limits jl;
  jl.max_bytes = 4u << 20;
  jl.max_depth = 4;
  auto env = json::parse(envelope, jl);
  if (!env || !env->isObject()) {
    return {};
  }
  auto bytes = base64Decode(env->getString("payload"));
  return bytes ? adapters::write::requestIdOf(*bytes) : std::string();
}

// What orders requests of one target: the resource id, else (HL7) the patient's PID-3.
std::string orderingKey(const WriteRequest& req) {
  if (req.resource_id) {
    return "r:" + *req.resource_id;
  }
  if (req.format == adapters::write::WriteFormat::hl7v2) {
    adapters::hl7::Message m;
    if (m.parse(req.body)) {
      auto pid = m.findSegment("PID");
      if (pid) {
        const auto e = m.get(*pid, 3, 1, 1);
        if (e.hasValue()) {
          return "p:" + std::string(e.raw);
        }
      }
    }
  }
  return {};
}

int64_t backoffMs(uint32_t attempts) {
  int64_t ms = kRetryMinMs;
  for (uint32_t i = 1; i < attempts && ms < kRetryMaxMs; ++i) {
    ms *= 2;
  }
  return std::min(ms, kRetryMaxMs);
}

}  // namespace

WriteBack::WriteBack(AgentContext& ctx)
    : ctx_(ctx), queue_(*ctx.store, store::OutboundOptions{}), agent_id_(ctx.config->agent_id) {}

WriteBack::~WriteBack() { stop(); }

void WriteBack::start() {
  auto keys = SigningKeys::load(ctx_.config->cloud.config_signing_keys);
  if (keys) {
    keys_ = std::move(keys).value();
  } else {
    log_.error("signing_keys_unusable", {{"error", keys.error().message}});
  }
  started_ = true;
  post([this] {
    tick();
    armTick();
  });
}

void WriteBack::stop() {
  if (stopping_.exchange(true)) {
    return;
  }
  asio::post(worker_, [this] { tick_timer_.cancel(); });
  worker_.join();
}

void WriteBack::post(std::function<void()> task) {
  if (stopping_) {
    return;
  }
  asio::post(worker_, [this, task = std::move(task)] {
    if (stopping_) {
      return;
    }
    guardInvariant("write.worker", task);
  });
}

void WriteBack::onWriteRequest(std::string kind, std::string payload) {
  post([this, kind = std::move(kind), payload = std::move(payload)] { handle(kind, payload); });
}

void WriteBack::armTick() {
  tick_timer_.expires_after(kTick);
  tick_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) {
      return;
    }
    guardInvariant("write.tick", [this] {
      tick();
      armTick();
    });
  });
}

void WriteBack::tick() {
  const int64_t now = Clock::system()->nowMs();
  for (auto& [name, t] : targets_) {
    if (t.wake_at_ms != 0 && now >= t.wake_at_ms) {
      t.dirty = true;
      t.wake_at_ms = 0;
    }
  }
  dispatchAll();
  pumpResults();
  if (now - last_prune_ms_ >= kPruneEveryMs) {
    last_prune_ms_ = now;
    queue_.prune([this](Result<uint64_t> n) {
      if (n && *n > 0) {
        log_.info("outbound.pruned", {{"requests", *n}});
      }
    });
  }
}

// ------------------------------------------------------------------------------ intake

void WriteBack::handle(const std::string& kind, const std::string& payload) {
  const int64_t now = Clock::system()->nowMs();
  auto opened = openSignedPayload(payload, keys_);
  if (opened.rejection) {
    reject(unverifiedId(payload), "", envelopeReason(opened.rejection->reason),
           opened.rejection->message, false);
    return;
  }
  const std::string& bytes = opened.doc;
  auto parsed = adapters::write::parseWriteRequest(bytes);
  if (!parsed) {
    reject(adapters::write::requestIdOf(bytes), "", adapters::write::kReasonBadRequest,
           parsed.error().message, true);
    return;
  }
  WriteRequest req = std::move(parsed).value();
  if (req.agent_id != agent_id_) {
    reject(req.id, req.target, "wrong_agent",
           "request is for agent \"" + req.agent_id + "\", this is \"" + agent_id_ + "\"", true);
    return;
  }
  if (store::kindName(req.kind) != kind) {
    reject(req.id, req.target, adapters::write::kReasonBadRequest,
           "write request: kind \"" + std::string(store::kindName(req.kind)) +
               "\" does not match the topic's \"" + kind + "\"",
           true);
    return;
  }
  // A resend of an id the queue holds is answered with its current state, whatever the time
  // or the target's switch say now.
  auto known = queue_.show(req.id);
  if (!known && !known.error().is(Errc::not_found)) {
    log_.error("outbound.read_failed", {{"id", req.id}, {"error", known.error().message}});
    return;  // nothing committed: the cloud resends until it sees a result
  }
  if (!known) {
    if (now >= req.expires_at_ms) {
      reject(req.id, req.target, "expired",
             "request expired at " + formatRfc3339(req.expires_at_ms), true);
      return;
    }
    if (req.issued_at_ms > now + kMaxSkewMs) {
      reject(req.id, req.target, "not_yet_valid",
             "request is issued at " + formatRfc3339(req.issued_at_ms) + ", in the future", true);
      return;
    }
    adapters::SourcePtr source;
    auto target = findTarget(req.target, source);
    if (!source) {
      reject(req.id, req.target, "unknown_target",
             "no adapter named \"" + req.target + "\" is configured", true);
      return;
    }
    if (!target) {
      reject(req.id, req.target, "read_only_target",
             "adapter \"" + req.target + "\" (" + source->type() + ") does not take writes", true);
      return;
    }
    if (!target->writeSwitch().enabled) {
      reject(req.id, req.target, "write_disabled",
             "writes are disabled on adapter \"" + req.target + "\" (write.enabled is false)",
             true);
      return;
    }
    if (!target->acceptsFormat(req.format)) {
      reject(req.id, req.target, "unsupported_format",
             "adapter \"" + req.target + "\" (" + source->type() + ") does not take format " +
                 std::string(adapters::write::writeFormatName(req.format)),
             true);
      return;
    }
    if (auto body = adapters::write::validateBodyFor(req.format, req.body); !body) {
      reject(req.id, req.target, adapters::write::kReasonBadBody, body.error().message, true);
      return;
    }
  }
  WriteResult accepted;
  accepted.id = req.id;
  accepted.status = WriteStatus::accepted;
  accepted.target = req.target;
  accepted.at_ms = now;
  store::OutboundPut put;
  put.id = req.id;
  put.target = req.target;
  put.op = std::string(adapters::write::writeOpName(req.op));
  put.kind = std::string(store::kindName(req.kind));
  put.format = std::string(adapters::write::writeFormatName(req.format));
  put.issued_at_ms = req.issued_at_ms;
  put.expires_at_ms = req.expires_at_ms;
  put.ordering_key = Sensitive<std::string>(orderingKey(req));
  put.document = Sensitive<std::string>(bytes);
  put.accepted_result = accepted.toJson();
  queue_.put(std::move(put), [this, id = req.id,
                              target = req.target](Result<store::PutOutcome> out) {
    post([this, id, target, out = std::move(out)] {
      if (!out) {
        // Nothing committed: no result either; the cloud resends.
        log_.error("outbound.put_failed", {{"id", id}, {"error", out.error().message}});
        return;
      }
      switch (out->status) {
        case store::PutStatus::queued:
          log_.info("write.accepted", {{"id", id}, {"target", target}});
          targets_[target].dirty = true;
          dispatch(target);
          pumpResults();
          break;
        case store::PutStatus::known:
          log_.info("write.resend", {{"id", id}, {"target", target}, {"state", out->state}});
          pumpResults();
          break;
        case store::PutStatus::replayed:
          reject(id, target, "replayed_id",
                 "id " + id + " was already used for another request (" + out->state + ")", true);
          break;
        case store::PutStatus::full:
          reject(id, target, "outbound_full", out->error, true);
          break;
      }
    });
  });
}

void WriteBack::reject(const std::string& id, const std::string& target, std::string_view reason,
                       const std::string& error, bool authentic) {
  uint64_t suppressed = 0;
  if (!authentic && !unauth_.take(suppressed)) {
    return;  // a flood of forged documents: bounded results and audit entries
  }
  log_.warn("write.rejected", {{"id", id}, {"target", target}, {"reason", reason}});
  if (ctx_.store != nullptr) {
    json::Value detail = json::Value::object();
    detail.set("id", json::Value::string(id));
    detail.set("target", json::Value::string(target));
    detail.set("status", json::Value::string("rejected"));
    detail.set("reason", json::Value::string(std::string(reason)));
    if (suppressed > 0) {
      detail.set("suppressed", json::Value::integer(static_cast<int64_t>(suppressed)));
    }
    store::AuditEntry e;
    e.actor = authentic ? "cloud" : "unauthenticated";
    e.action = "write.rejected";
    e.detail = json::serialize(detail);
    ctx_.store->audit(std::move(e));
  }
  if (id.empty()) {
    return;  // nothing to answer under
  }
  WriteResult r;
  r.id = id;
  r.status = WriteStatus::rejected;
  r.reason = std::string(reason);
  r.error = error;
  r.target = target;
  r.at_ms = Clock::system()->nowMs();
  queue_.queueResult(id, r.toJson(), [this, id](Result<bool> ok) {
    if (!ok) {
      log_.error("outbound.result_failed", {{"id", id}, {"error", ok.error().message}});
      return;
    }
    post([this] { pumpResults(); });
  });
}

// ------------------------------------------------------------------------------ dispatch

std::shared_ptr<adapters::write::WriteTarget> WriteBack::findTarget(
    const std::string& name, adapters::SourcePtr& source) const {
  if (!ctx_.sources) {
    return nullptr;
  }
  for (const auto& s : ctx_.sources()) {
    if (s && s->name() == name) {
      source = s;
      return std::dynamic_pointer_cast<adapters::write::WriteTarget>(s);
    }
  }
  return nullptr;
}

void WriteBack::dispatchAll() {
  if (!ctx_.sources) {
    return;
  }
  for (const auto& s : ctx_.sources()) {
    if (s && std::dynamic_pointer_cast<adapters::write::WriteTarget>(s)) {
      dispatch(s->name());
    }
  }
}

void WriteBack::dispatch(const std::string& target) {
  TargetState& t = targets_[target];
  if (t.busy || !t.dirty) {
    return;
  }
  t.busy = true;
  t.dirty = false;
  queue_.next(target, [this, target](Result<store::NextOutcome> next) {
    post([this, target, next = std::move(next)]() mutable { onNext(target, std::move(next)); });
  });
}

void WriteBack::onNext(const std::string& target, Result<store::NextOutcome> next) {
  TargetState& t = targets_[target];
  if (!next) {
    log_.error("outbound.next_failed", {{"target", target}, {"error", next.error().message}});
    t.busy = false;
    t.wake_at_ms = Clock::system()->nowMs() + kRetryMinMs;
    return;
  }
  if (!next->item) {
    t.busy = false;
    t.wake_at_ms = next->wake_at_ms;
    return;
  }
  deliverItem(target, std::move(*next->item));
}

void WriteBack::deliverItem(const std::string& target, store::OutboundItem item) {
  auto parsed = adapters::write::parseWriteRequest(item.document.reveal());
  if (!parsed) {
    // It parsed when it was accepted: the stored document is not what we wrote.
    finishItem(target, item, WriteStatus::failed, "corrupt", parsed.error().message, "", 0);
    return;
  }
  if (Clock::system()->nowMs() >= item.expires_at_ms) {
    finishItem(target, item, WriteStatus::expired, "expired",
               "expires_at passed before it could be delivered", "", 0);
    return;
  }
  adapters::SourcePtr source;
  auto sink = findTarget(target, source);
  if (!sink) {
    // The adapter was removed or replaced by a config change: keep the request until it is back.
    deferItem(target, item, 0, "target \"" + target + "\" is not a configured write target");
    return;
  }
  auto shared = std::make_shared<store::OutboundItem>(std::move(item));
  sink->deliver(std::move(parsed).value(), [this, target, shared](DeliveryOutcome out) {
    post([this, target, shared, out = std::move(out)] {
      switch (out.status) {
        case DeliveryOutcome::Status::delivered:
          finishItem(target, *shared, WriteStatus::delivered, "", "", out.pms_ref, out.attempts);
          break;
        case DeliveryOutcome::Status::failed:
          finishItem(target, *shared, WriteStatus::failed, "pms_error", out.error, "",
                     out.attempts);
          break;
        case DeliveryOutcome::Status::expired:
          finishItem(target, *shared, WriteStatus::expired, "expired", out.error, "", out.attempts);
          break;
        case DeliveryOutcome::Status::rejected:
          finishItem(target, *shared, WriteStatus::rejected, "write_disabled", out.error, "",
                     out.attempts);
          break;
        case DeliveryOutcome::Status::retryable:
          deferItem(target, *shared, out.attempts, out.error);
          break;
      }
    });
  });
}

void WriteBack::finishItem(const std::string& target, const store::OutboundItem& item,
                           WriteStatus status, const std::string& reason, const std::string& error,
                           const std::string& pms_ref, int sent) {
  WriteResult r;
  r.id = item.id;
  r.status = status;
  r.reason = reason;
  r.error = error;
  r.target = target;
  r.pms_ref = pms_ref;
  r.attempts = static_cast<int>(item.attempts) + sent;
  r.at_ms = Clock::system()->nowMs();
  const std::string status_name(adapters::write::writeStatusName(status));
  queue_.finish(
      item.id, status_name, r.toJson(), static_cast<uint32_t>(std::max(sent, 0)),
      [this, target, id = item.id, status_name](Result<bool> ok) {
        post([this, target, id, status_name, ok = std::move(ok)] {
          if (!ok) {
            log_.error("outbound.finish_failed", {{"id", id}, {"error", ok.error().message}});
          } else {
            log_.info("write.finished", {{"id", id}, {"target", target}, {"status", status_name}});
          }
          targetDone(target);
          pumpResults();
        });
      });
}

void WriteBack::deferItem(const std::string& target, const store::OutboundItem& item, int sent,
                          const std::string& error) {
  const uint32_t attempts = item.attempts + static_cast<uint32_t>(std::max(sent, 0));
  const int64_t at = Clock::system()->nowMs() + backoffMs(std::max<uint32_t>(attempts, 1));
  log_.warn("write.deferred", {{"id", item.id}, {"target", target}, {"attempts", attempts}});
  queue_.defer(
      item.id, at, static_cast<uint32_t>(std::max(sent, 0)), error,
      [this, target, id = item.id](Result<bool> ok) {
        post([this, target, id, ok = std::move(ok)] {
          if (!ok) {
            log_.error("outbound.defer_failed", {{"id", id}, {"error", ok.error().message}});
          }
          targetDone(target);
        });
      });
}

void WriteBack::targetDone(const std::string& target) {
  TargetState& t = targets_[target];
  t.busy = false;
  t.dirty = true;
  dispatch(target);
}

// ------------------------------------------------------------------------------ results

void WriteBack::pumpResults() {
  cloudlink::CloudLink* link = ctx_.link;
  if (link == nullptr || results_fetching_ || results_inflight_.size() >= kMaxResultsInflight) {
    return;
  }
  results_fetching_ = true;
  queue_.pendingResults(
      results_cursor_, kMaxResultsInflight - results_inflight_.size(),
      [this](Result<std::vector<store::PendingResult>> rs) {
        post([this, rs = std::move(rs)]() mutable {
          results_fetching_ = false;
          if (!rs) {
            log_.error("outbound.results_read_failed", {{"error", rs.error().message}});
            return;
          }
          cloudlink::CloudLink* link = ctx_.link;
          for (store::PendingResult& r : *rs) {
            results_cursor_ = std::max(results_cursor_, r.seq);
            if (link == nullptr || !results_inflight_.insert(r.seq).second) {
              continue;
            }
            const int64_t seq = r.seq;
            link->publishWriteResult(std::move(r.json), [this, seq](Status st) {
              post([this, seq, st = std::move(st)] {
                results_inflight_.erase(seq);
                if (!st) {
                  // Held back (link stopped, its queue full, error PUBACK): publish it again.
                  results_cursor_ = std::min(results_cursor_, seq - 1);
                  return;
                }
                queue_.ackResult(seq, [this](Result<bool> ok) {
                  if (!ok) {
                    log_.error("outbound.result_ack_failed", {{"error", ok.error().message}});
                  }
                });
              });
            });
          }
        });
      });
}

}  // namespace psa::agent
