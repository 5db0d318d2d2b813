#include "psa/adapters/hl7/mllp.h"

#include <algorithm>
#include <cstring>

namespace psa::adapters::hl7 {
namespace {

constexpr size_t kReleaseCapacity = 1u << 20;

bool isBlank(char c) { return c == '\r' || c == '\n' || c == ' ' || c == '\t'; }

}  // namespace

std::string_view mllpFaultName(MllpFault fault) {
  switch (fault) {
    case MllpFault::none:
      return "none";
    case MllpFault::junk_before_start:
      return "junk_before_start";
    case MllpFault::start_in_frame:
      return "start_in_frame";
    case MllpFault::oversize:
      return "oversize";
    case MllpFault::missing_end_cr:
      return "missing_end_cr";
    case MllpFault::truncated:
      return "truncated";
  }
  return "unknown";
}

MllpDecoder::MllpDecoder(size_t max_frame_bytes)
    : max_frame_(std::max<size_t>(max_frame_bytes, 1)) {}

Status MllpDecoder::feed(std::string_view chunk) {
  if (!drained()) {
    return Error(Errc::invalid_argument, "MLLP decoder: previous chunk not drained");
  }
  releaseHandedOut();
  if (restart_) {
    chunk_offset_ = 0;
    restart_ = false;
  } else {
    chunk_offset_ += chunk_.size();
  }
  chunk_ = chunk;
  pos_ = 0;
  end_cache_ = 0;
  end_cache_valid_ = false;
  return {};
}

void MllpDecoder::releaseHandedOut() {
  if (clear_buf_) {
    buf_.clear();
    if (buf_.capacity() > kReleaseCapacity) {
      std::string().swap(buf_);
    }
    buffering_ = false;
    clear_buf_ = false;
  }
}

size_t MllpDecoder::nextEnd() {
  if (end_cache_valid_ && end_cache_ >= pos_) {
    return end_cache_;
  }
  const void* hit = std::memchr(chunk_.data() + pos_, kMllpEnd, chunk_.size() - pos_);
  end_cache_ = hit == nullptr ? chunk_.size()
                              : static_cast<size_t>(static_cast<const char*>(hit) - chunk_.data());
  end_cache_valid_ = true;
  return end_cache_;
}

size_t MllpDecoder::nextStart(size_t limit) const {
  const void* hit = std::memchr(chunk_.data() + pos_, kMllpStart, limit - pos_);
  return hit == nullptr ? limit
                        : static_cast<size_t>(static_cast<const char*>(hit) - chunk_.data());
}

MllpEvent MllpDecoder::fault(MllpFault f, size_t bytes, uint64_t offset, std::string_view data) {
  ++stats_.faults;
  MllpEvent ev;
  ev.type = MllpEvent::Type::fault;
  ev.fault = f;
  ev.bytes = bytes;
  ev.offset = offset;
  ev.data = data;
  return ev;
}

std::string_view MllpDecoder::frameView() const {
  if (buffering_) {
    return buf_;
  }
  return chunk_.substr(frame_start_, content_end_ - frame_start_);
}

void MllpDecoder::beginFrame() {
  frame_offset_ = chunk_offset_ + pos_;
  ++pos_;
  state_ = State::frame;
  buf_.clear();
  buffering_ = false;
  frame_start_ = pos_;
}

void MllpDecoder::keepPartial() {
  if (buffering_) {
    return;
  }
  if (state_ == State::frame) {  // the frame's bytes so far: [frame_start_, pos_)
    buf_.assign(chunk_.data() + frame_start_, pos_ - frame_start_);
    buffering_ = true;
  } else if (state_ == State::after_end) {
    buf_.assign(chunk_.data() + frame_start_, content_end_ - frame_start_);
    buffering_ = true;
  }
}

std::optional<MllpEvent> MllpDecoder::next() {
  releaseHandedOut();
  const size_t n = chunk_.size();
  const char* d = chunk_.data();
  while (pos_ < n) {
    switch (state_) {
      case State::idle: {
        while (pos_ < n && d[pos_] != kMllpStart) {
          if (!isBlank(d[pos_])) {
            if (junk_ == 0) {
              junk_offset_ = chunk_offset_ + pos_;
            }
            ++junk_;
          }
          ++pos_;
        }
        if (pos_ >= n) {
          break;
        }
        beginFrame();
        if (junk_ > 0) {
          size_t junk = junk_;
          junk_ = 0;
          stats_.junk_bytes += junk;
          return fault(MllpFault::junk_before_start, junk, junk_offset_);
        }
        break;
      }
      case State::frame: {
        const size_t end = nextEnd();
        const size_t start = nextStart(end);
        const size_t stop = start;  // data runs [pos_, stop)
        const size_t have = buffering_ ? buf_.size() : pos_ - frame_start_;
        const size_t total = have + (stop - pos_);
        if (total > max_frame_) {
          // Deterministic whatever the chunking: the head is the first min(limit, 4 KiB)
          // bytes, and the event names the limit (the total is not known yet).
          const size_t head_size = std::min(kOversizeHead, max_frame_);
          head_.clear();
          std::string_view prior = buffering_ ? std::string_view(buf_)
                                              : chunk_.substr(frame_start_, pos_ - frame_start_);
          head_.append(prior.substr(0, head_size));
          if (head_.size() < head_size) {
            head_.append(chunk_.substr(pos_, std::min(stop - pos_, head_size - head_.size())));
          }
          stats_.discarded_bytes += total;
          buf_.clear();
          if (buf_.capacity() > kReleaseCapacity) {
            std::string().swap(buf_);
          }
          buffering_ = false;
          pos_ = stop;
          state_ = State::discard;
          return fault(MllpFault::oversize, max_frame_, frame_offset_, head_);
        }
        if (start < end) {  // a start block inside the frame
          stats_.discarded_bytes += total;
          pos_ = start;
          beginFrame();
          return fault(MllpFault::start_in_frame, total, frame_offset_);
        }
        if (end < n) {  // end block
          if (buffering_) {
            buf_.append(d + pos_, end - pos_);
          } else {
            content_end_ = end;
          }
          pos_ = end + 1;
          state_ = State::after_end;
          break;
        }
        if (buffering_) {
          buf_.append(d + pos_, n - pos_);
        }
        pos_ = n;
        break;
      }
      case State::after_end: {
        MllpEvent ev;
        ev.type = MllpEvent::Type::frame;
        ev.data = frameView();
        ev.bytes = ev.data.size();
        ev.offset = frame_offset_;
        if (d[pos_] == kMllpCr) {
          ++pos_;
        } else {
          ev.fault = MllpFault::missing_end_cr;
          ++stats_.faults;
        }
        ++stats_.frames;
        state_ = State::idle;
        if (buffering_) {
          clear_buf_ = true;  // ev.data views buf_: release on the next call
        }
        return ev;
      }
      case State::discard: {
        const size_t end = nextEnd();
        const size_t start = nextStart(end);
        if (start < end) {
          stats_.discarded_bytes += start - pos_;
          pos_ = start;
          beginFrame();
          break;
        }
        stats_.discarded_bytes += end - pos_;
        if (end < n) {
          pos_ = end + 1;
          state_ = State::idle;
        } else {
          pos_ = n;
        }
        break;
      }
    }
  }
  keepPartial();
  return std::nullopt;
}

std::optional<MllpEvent> MllpDecoder::finish() {
  releaseHandedOut();
  if (!drained()) {  // misuse: the rest of the chunk was never read
    stats_.discarded_bytes += chunk_.size() - pos_;
    keepPartial();
    pos_ = chunk_.size();
  }
  std::optional<MllpEvent> ev;
  switch (state_) {
    case State::idle:
      if (junk_ > 0) {
        stats_.junk_bytes += junk_;
        ev = fault(MllpFault::junk_before_start, junk_, junk_offset_);
      }
      break;
    case State::frame: {
      size_t have = buffering_ ? buf_.size() : pos_ - frame_start_;
      stats_.discarded_bytes += have;
      ev = fault(MllpFault::truncated, have, frame_offset_);
      buf_.clear();
      buffering_ = false;
      break;
    }
    case State::after_end: {
      MllpEvent frame;
      frame.type = MllpEvent::Type::frame;
      frame.fault = MllpFault::missing_end_cr;
      frame.data = frameView();
      frame.bytes = frame.data.size();
      frame.offset = frame_offset_;
      ++stats_.frames;
      ++stats_.faults;
      if (buffering_) {
        clear_buf_ = true;
      }
      ev = frame;
      break;
    }
    case State::discard:
      break;
  }
  state_ = State::idle;
  junk_ = 0;
  // chunk_ stays (an after_end frame may view it), consumed; offsets restart at the next feed.
  restart_ = true;
  return ev;
}

void mllpFrameTo(std::string_view msg, std::string& out) {
  out.reserve(out.size() + msg.size() + 3);
  out.push_back(kMllpStart);
  out.append(msg);
  out.push_back(kMllpEnd);
  out.push_back(kMllpCr);
}

std::string mllpFrame(std::string_view msg) {
  std::string out;
  mllpFrameTo(msg, out);
  return out;
}

}  // namespace psa::adapters::hl7
