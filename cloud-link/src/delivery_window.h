// DeliveryWindow: the link's book of records between publish and release — in flight (awaiting
// their PUBACK), awaiting the cloud's receipt (cloud.confirm "receipt"), acknowledged and
// waiting for the next ack batch to the store — and the poison-record suspects kept across
// connections. A plain class: no MQTT, no store, no clock of its own (callers pass the time), so
// it is unit-tested directly (tests/unit/cloudlink/delivery_window_test.cpp).
//
// Threads: not thread-safe; CloudLink owns one and touches it only on its strand.
// Errors: none; unknown packet ids and msg-ids are ignored (reported through return values).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "psa/cloudlink/cloud_link.h"

namespace psa::cloudlink::detail {

using SteadyTime = std::chrono::steady_clock::time_point;

/// A record published and awaiting its PUBACK (a chunked record: one per chunk).
struct InFlight {
  int64_t seq = 0;
  std::string msg_id;
  SteadyTime sent_at;
  uint32_t attempts = 0;
  bool receipted = false;  ///< receipt mode: the receipt came before the PUBACK
  std::vector<int> unanswered;  ///< packet ids still awaiting their PUBACK
};

class DeliveryWindow {
 public:
  /// A record the connection broke on each time it was sent alone.
  struct Conviction {
    int strikes = 0;
    std::string last_error;  ///< the connection's last error, in words
  };

  DeliveryWindow(Confirm confirm, std::chrono::milliseconds receipt_timeout);

  /// Records in flight.
  size_t inFlight() const { return inflight_.size(); }
  /// Publishes in flight (a chunked record counts each chunk): what the broker's Receive
  /// Maximum and cloud.max_inflight bound.
  size_t publishesInFlight() const { return by_mid_.size(); }
  size_t awaitingReceipt() const { return awaiting_receipt_.size(); }
  /// Records sent or released as delivered but not yet confirmed to the store.
  bool hasPendingAcks() const { return !pending_acks_.empty(); }
  /// Sending one record at a time until every suspect got an answer.
  bool probing() const { return !suspects_.empty(); }
  size_t suspects() const { return suspects_.size(); }
  /// How many records may be in flight: 1 while probing, else `max_inflight`.
  size_t window(size_t max_inflight) const { return probing() ? 1 : max_inflight; }
  /// When the oldest record in flight was sent; nullopt if none is.
  std::optional<SteadyTime> oldestSentAt() const;

  /// Before publishing a leased record: if it was convicted as poison, forgets it and returns
  /// why (the caller dead-letters it instead of sending it). Otherwise spends one unit of the
  /// probe budget (when it runs out, the suspects were delivered some other way: probing ends).
  std::optional<Conviction> beforePublish(const std::string& msg_id);
  /// A record published with packet id `mid` (a chunked record: one packet id per chunk). True
  /// if it is a resend: sent before on another lease (`attempts` > 0) or returned to the store
  /// by releaseAll()/a receipt timeout.
  bool sent(int mid, int64_t seq, std::string msg_id, uint32_t attempts, SteadyTime now);
  bool sent(const std::vector<int>& mids, int64_t seq, std::string msg_id, uint32_t attempts,
            SteadyTime now);
  /// Forgets a record whose chunks could not all be published (the connection is going, or a
  /// publish was refused); the caller decides its fate.
  void abandon(int64_t seq);

  /// The PUBACK for `mid` (`success`: a success reason code). Returns the record once its fate
  /// is decided, taken out of flight (and no longer a suspect): every packet of it answered
  /// with success, or this one failed (its other packets' answers are then ignored). nullopt
  /// if `mid` is not ours or the record still awaits other chunks' answers.
  std::optional<InFlight> answered(int mid, bool success = true);
  /// A success PUBACK for `f`: in broker mode, or if its receipt already came, it becomes a
  /// pending ack; in receipt mode it awaits its receipt until now + receipt_timeout.
  void delivered(const InFlight& f, SteadyTime now);
  /// A receipt naming `ids` (receipt mode): each awaited one becomes a pending ack, each still
  /// in flight is marked receipted. Returns how many matched.
  size_t receipt(const std::vector<std::string>& ids);
  /// Records whose receipt did not come by `now`: (msg-id, seq), taken out of the window and
  /// counted as released (their next publish is a resend).
  std::vector<std::pair<std::string, int64_t>> takeReceiptTimeouts(SteadyTime now);

  /// Store seqs to ack (in order of release); the window forgets them.
  std::vector<int64_t> takePendingAcks();

  /// The connection died with records in flight (`words`: why). Those records become suspects;
  /// a suspect that was alone in flight, sent within the poison window, and on a connection
  /// that died kPoisonStrikes times is convicted (beforePublish() then reports it). Returns
  /// the msg-id convicted now, if any.
  std::optional<std::string> suspectInflight(const std::string& words, SteadyTime now);
  /// The connection ended: every record in flight or awaiting its receipt goes back to the
  /// store (same msg-ids on resend). Pending acks and suspects stay. Returns how many.
  size_t releaseAll();

  /// A record alone in flight that broke the connection this many times is poison.
  static constexpr int kPoisonStrikes = 2;
  /// ... when it was sent at most this long before the connection died.
  static constexpr std::chrono::milliseconds kPoisonWindow{5000};
  /// Extra sends allowed while probing before the suspects are dropped.
  static constexpr size_t kProbeMargin = 16;

 private:
  const Confirm confirm_;
  const std::chrono::milliseconds receipt_timeout_;
  std::unordered_map<int64_t, InFlight> inflight_;                ///< seq -> record
  std::unordered_map<int, int64_t> by_mid_;                       ///< packet id -> seq
  std::unordered_map<std::string, int64_t> inflight_by_msg_;      ///< receipt mode: msg-id -> seq
  std::unordered_map<std::string, int64_t> awaiting_receipt_;     ///< msg-id -> seq
  std::deque<std::pair<SteadyTime, std::string>> receipt_queue_;  ///< deadline, msg-id
  std::unordered_set<int64_t> released_seqs_;  ///< returned to the store: next publish is a resend
  std::unordered_map<std::string, int> suspects_;           ///< msg-id -> solo connection deaths
  std::unordered_map<std::string, std::string> convicted_;  ///< msg-id -> last error
  size_t probe_budget_ = 0;
  std::vector<int64_t> pending_acks_;
};

}  // namespace psa::cloudlink::detail
