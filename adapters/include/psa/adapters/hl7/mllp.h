// MLLP (Minimal Lower Layer Protocol) framing: <VT 0x0B> message <FS 0x1C><CR 0x0D>.
//
// MllpDecoder is a pure, incremental decoder: feed it byte chunks as they arrive, pull events
// (frames and framing faults) out. It is O(n) in the input, holds at most max_frame_bytes of
// buffered data, and never loses sync for good:
//   - bytes before a start block: skipped and reported once per run (junk_before_start) when
//     the next start block arrives or at finish(); CR, LF, space and tab between frames are
//     ignored silently;
//   - a start block inside a frame: the partial frame is discarded (start_in_frame) and a new
//     frame begins;
//   - a frame longer than max_frame_bytes: reported (oversize, with the frame's first bytes so
//     the caller can still read MSH-10 for a reject ACK), then everything is discarded up to
//     the next end block (or start block, which begins a new frame);
//   - an end block not followed by CR: the frame is delivered anyway, flagged
//     missing_end_cr; the byte after 0x1C is processed as if between frames (so 0x1C 0x0B
//     starts the next frame right away). At finish(), a frame whose end block arrived but
//     not the CR is delivered the same way;
//   - end of stream inside a frame: reported (truncated) and discarded.
// A frame may be empty (0x0B 0x1C 0x0D, used as a keep-alive by some senders); the decoder
// delivers it and leaves the decision to the caller.
//
// Zero-copy: a frame that lies entirely within one chunk is returned as a view into that
// chunk; a frame spanning chunks is assembled in an internal buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "psa/store/result.h"

namespace psa::adapters::hl7 {

inline constexpr char kMllpStart = '\x0b';
inline constexpr char kMllpEnd = '\x1c';
inline constexpr char kMllpCr = '\x0d';

enum class MllpFault : uint8_t {
  none,
  junk_before_start,  ///< `bytes` non-blank bytes outside a frame were skipped
  start_in_frame,     ///< a start block inside a frame; `bytes` of the partial frame discarded
  oversize,           ///< frame exceeded max_frame_bytes; `data` is its head, `bytes` the limit
  missing_end_cr,     ///< (on a frame event) 0x1C not followed by 0x0D
  truncated,          ///< stream ended inside a frame; `bytes` discarded
};

std::string_view mllpFaultName(MllpFault fault);

struct MllpEvent {
  enum class Type : uint8_t { frame, fault };
  Type type = Type::frame;
  /// For a frame: none or missing_end_cr. For a fault event: the fault.
  MllpFault fault = MllpFault::none;
  /// Frame: the message bytes (no framing). Oversize: the frame's first min(max_frame_bytes,
  /// 4 KiB) bytes. Valid until the next call to next(), feed() or finish().
  std::string_view data;
  /// Frame: its size. junk_before_start, start_in_frame, truncated: bytes skipped/discarded.
  /// oversize: the limit that was exceeded (the frame's total size is never known).
  /// Events do not depend on how the stream was chunked.
  size_t bytes = 0;
  /// Stream offset (bytes fed before) of the start block, or of the first junk byte.
  uint64_t offset = 0;
};

/// Counters since construction.
struct MllpStats {
  uint64_t frames = 0;
  uint64_t faults = 0;
  uint64_t junk_bytes = 0;       ///< skipped outside frames (blank bytes not counted)
  uint64_t discarded_bytes = 0;  ///< of partial, oversize and truncated frames
};

/// Incremental MLLP decoder. Not thread-safe (one per connection, used on its strand).
class MllpDecoder {
 public:
  static constexpr size_t kDefaultMaxFrame = 16u << 20;
  static constexpr size_t kOversizeHead = 4096;

  explicit MllpDecoder(size_t max_frame_bytes = kDefaultMaxFrame);

  /// Supplies the next chunk of the stream. The decoder reads it lazily in next(), so the
  /// caller keeps `chunk` alive and unchanged until next() has returned nullopt.
  /// Errors: Errc::invalid_argument if the previous chunk is not drained yet (nothing changes).
  Status feed(std::string_view chunk);

  /// The next event from the fed bytes, or nullopt when the current chunk is drained (any
  /// partial frame is kept internally, bounded by max_frame_bytes).
  std::optional<MllpEvent> next();

  /// True when the last chunk has been consumed completely.
  bool drained() const { return pos_ >= chunk_.size(); }

  /// End of stream: the last event, if any (a frame missing its final CR, a truncated frame,
  /// or pending junk); resets the decoder for a new stream. Requires a drained chunk
  /// (otherwise the undrained rest is ignored and counted as discarded).
  std::optional<MllpEvent> finish();

  const MllpStats& stats() const { return stats_; }
  size_t maxFrameBytes() const { return max_frame_; }
  /// Bytes currently held for a partial frame.
  size_t buffered() const { return buf_.size(); }
  /// Junk bytes skipped since the last frame (not yet reported); a listener may close a
  /// connection that sends too much of it.
  size_t pendingJunk() const { return junk_; }

 private:
  enum class State : uint8_t { idle, frame, after_end, discard };

  MllpEvent fault(MllpFault f, size_t bytes, uint64_t offset, std::string_view data = {});
  std::string_view frameView() const;
  void keepPartial();
  void beginFrame();
  void releaseHandedOut();
  size_t nextEnd();
  size_t nextStart(size_t limit) const;

  size_t max_frame_;
  State state_ = State::idle;
  std::string_view chunk_;
  size_t pos_ = 0;
  uint64_t chunk_offset_ = 0;  // stream offset of chunk_[0]
  std::string buf_;            // partial frame spanning chunks (when buffering_)
  bool buffering_ = false;
  size_t frame_start_ = 0;     // in chunk_, when !buffering_
  size_t content_end_ = 0;     // in chunk_, when state_ == after_end && !buffering_
  uint64_t frame_offset_ = 0;  // stream offset of the current frame's start block
  size_t junk_ = 0;
  uint64_t junk_offset_ = 0;
  std::string head_;        // oversize head
  bool clear_buf_ = false;  // buf_ was handed out; clear on the next call
  size_t end_cache_ = 0;    // next end block at or after pos_ in chunk_ (or size)
  bool end_cache_valid_ = false;
  bool restart_ = false;  // finish() was called: offsets restart at the next feed
  MllpStats stats_;
};

/// `msg` framed for MLLP: 0x0B msg 0x1C 0x0D.
std::string mllpFrame(std::string_view msg);
/// Appends the framed `msg` to `out`.
void mllpFrameTo(std::string_view msg, std::string& out);

}  // namespace psa::adapters::hl7
