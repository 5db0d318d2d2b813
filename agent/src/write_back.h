// WriteBack: the agent side of write-back (issue 15, design.md "Write-back").
//   - P/down/{kind} documents: envelope verified with the config-signing keys, the request
//     parsed and checked (agent, validity, target exists and takes writes of its format, body)
//     and committed to the store's outbound queue; `accepted` (or a rejection with its reason)
//     is committed as a result in the same step.
//   - One dispatcher per write target: takes the next deliverable request (per-key order),
//     hands it to the adapter (WriteTarget) and records the outcome: delivered / failed /
//     expired as a final result (audited by the store in the same transaction), or a deferral
//     with back-off while the PMS cannot be reached.
//   - Results go out on P/down/result from the durable results queue and leave it on PUBACK.
//
// Threads: everything runs on one private worker thread (blocking store reads are allowed
// there); the link's ControlSink callback, store completions and target outcomes only post to
// it. A tick every 500 ms retries what is due (deferred requests, unpublished results).
#pragma once

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "agent_context.h"
#include "psa/adapters/write/write_target.h"
#include "psa/agent/signed_document.h"
#include "psa/store/log_budget.h"
#include "psa/store/outbound_queue.h"

namespace psa::agent {

class WriteBack {
 public:
  /// `ctx` (store, sources, link, config) must outlive this object; ctx.store must be open.
  explicit WriteBack(AgentContext& ctx);
  ~WriteBack();
  WriteBack(const WriteBack&) = delete;
  WriteBack& operator=(const WriteBack&) = delete;

  /// Loads the signing keys (a bad key file leaves every request rejected as unknown_key) and
  /// starts the tick. Call before the link starts.
  void start();
  /// Waits for the step in progress; later callbacks are dropped. Idempotent.
  void stop();

  /// A document from P/down/{kind} (link strand): posted to the worker.
  void onWriteRequest(std::string kind, std::string payload);

  store::OutboundQueue& queue() { return queue_; }

 private:
  struct TargetState {
    bool busy = false;
    bool dirty = true;  ///< something may be deliverable: ask the store
    int64_t wake_at_ms = 0;
  };

  void post(std::function<void()> task);
  void armTick();
  void tick();
  void handle(const std::string& kind, const std::string& payload);
  void reject(const std::string& id, const std::string& target, std::string_view reason,
              const std::string& error, bool authentic);
  void dispatchAll();
  void dispatch(const std::string& target);
  void onNext(const std::string& target, Result<store::NextOutcome> next);
  void deliverItem(const std::string& target, store::OutboundItem item);
  void finishItem(const std::string& target, const store::OutboundItem& item,
                  adapters::write::WriteStatus status, const std::string& reason,
                  const std::string& error, const std::string& pms_ref, int sent);
  void deferItem(const std::string& target, const store::OutboundItem& item, int sent,
                 const std::string& error);
  void targetDone(const std::string& target);
  void pumpResults();
  std::shared_ptr<adapters::write::WriteTarget> findTarget(const std::string& name,
                                                           adapters::SourcePtr& source) const;

  AgentContext& ctx_;
  store::OutboundQueue queue_;
  log::Logger log_{"write"};
  SigningKeys keys_;
  std::string agent_id_;

  boost::asio::thread_pool worker_{1};
  boost::asio::steady_timer tick_timer_{worker_};
  std::atomic<bool> stopping_{false};
  bool started_ = false;

  // Worker-only state.
  std::map<std::string, TargetState> targets_;
  std::set<int64_t> results_inflight_;
  int64_t results_cursor_ = 0;  ///< results up to here were handed to the link
  bool results_fetching_ = false;
  int64_t last_prune_ms_ = 0;
  /// At most 10 results and audit entries a minute for documents that failed verification.
  LogBudget unauth_{10, std::chrono::minutes(1)};
};

}  // namespace psa::agent
