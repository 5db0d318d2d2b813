// The HL7 v2 message parser (message.h). One piece on purpose, ~850 lines: the delimiter scan
// (SSE2 where available), the segment/field index and the path lookups share one private
// layout of offsets, and splitting them would expose that layout in a header for no reader's
// benefit.
#include "psa/adapters/hl7/message.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define PSA_HL7_SSE2 1
#else
#define PSA_HL7_SSE2 0
#endif
#if defined(_MSC_VER)
#include <intrin.h>
#endif

namespace psa::adapters::hl7 {
namespace {

inline size_t lowestBit64(uint64_t mask) {
#if defined(_MSC_VER)
  unsigned long index = 0;
  _BitScanForward64(&index, mask);
  return index;
#else
  return static_cast<size_t>(__builtin_ctzll(mask));
#endif
}

bool isHeaderId(const char* p) {
  return (p[0] == 'M' && p[1] == 'S' && p[2] == 'H') ||
         (p[0] == 'F' && p[1] == 'H' && p[2] == 'S') || (p[0] == 'B' && p[1] == 'H' && p[2] == 'S');
}

Element makeElement(std::string_view raw) { return Element{raw, presenceOf(raw)}; }

// The n-th (1-based) piece of `s` split on `sep`; nullopt when there are fewer pieces.
std::optional<std::string_view> piece(std::string_view s, char sep, int n) {
  if (n <= 0) {
    return std::nullopt;
  }
  if (sep == 0) {
    return n == 1 ? std::optional<std::string_view>(s) : std::nullopt;
  }
  size_t start = 0;
  for (int k = 1; k < n; ++k) {
    const void* hit = std::memchr(s.data() + start, sep, s.size() - start);
    if (hit == nullptr) {
      return std::nullopt;
    }
    start = static_cast<size_t>(static_cast<const char*>(hit) - s.data()) + 1;
  }
  const void* hit = std::memchr(s.data() + start, sep, s.size() - start);
  size_t end =
      hit == nullptr ? s.size() : static_cast<size_t>(static_cast<const char*>(hit) - s.data());
  return s.substr(start, end - start);
}

int countPieces(std::string_view s, char sep) {
  if (sep == 0) {
    return 1;
  }
  return 1 + static_cast<int>(std::count(s.begin(), s.end(), sep));
}

bool parseNumber(std::string_view t, size_t& i, int& out) {
  size_t start = i;
  int v = 0;
  while (i < t.size() && t[i] >= '0' && t[i] <= '9' && i - start < 5) {
    v = v * 10 + (t[i] - '0');
    ++i;
  }
  if (i == start || (i < t.size() && t[i] >= '0' && t[i] <= '9') || v == 0) {
    return false;
  }
  out = v;
  return true;
}

}  // namespace

Presence presenceOf(std::string_view raw) {
  if (raw.empty()) {
    return Presence::empty;
  }
  if (raw.size() == 2 && raw[0] == '"' && raw[1] == '"') {
    return Presence::null;
  }
  return Presence::value;
}

bool isSegmentId(std::string_view id) {
  if (id.size() != 3) {
    return false;
  }
  for (char c : id) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
      return false;
    }
  }
  return true;
}

std::string Path::toString() const {
  std::string out = position > 0 ? "#" + std::to_string(position) : segment;
  if (position == 0 && occurrence > 1) {
    out += '[' + std::to_string(occurrence) + ']';
  }
  appendFieldPosition(out, field, repetition, component, subcomponent);
  return out;
}

Result<Path> parsePath(std::string_view t) {
  auto bad = [&](size_t col, std::string_view what) {
    return Error(Errc::invalid_argument,
                 "path column " + std::to_string(col + 1) + ": expected " + std::string(what));
  };
  Path p;
  size_t i = 0;
  if (!t.empty() && t[0] == '#') {
    i = 1;
    if (!parseNumber(t, i, p.position)) {
      return bad(i, "a segment position 1..99999");
    }
  }
  for (; p.position == 0 && i < 3; ++i) {
    if (i >= t.size()) {
      return bad(i, "a 3-character segment id");
    }
    char c = t[i];
    if (c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 'a' + 'A');
    }
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
      return bad(i, "a 3-character segment id");
    }
    p.segment.push_back(c);
  }
  if (p.position == 0 && i < t.size() && t[i] == '[') {
    ++i;
    if (!parseNumber(t, i, p.occurrence)) {
      return bad(i, "a segment occurrence 1..99999");
    }
    if (i >= t.size() || t[i] != ']') {
      return bad(i, "']'");
    }
    ++i;
  }
  if (i >= t.size() || t[i] != '-') {
    return bad(i, "'-' and a field number");
  }
  ++i;
  if (!parseNumber(t, i, p.field)) {
    return bad(i, "a field number 1..99999");
  }
  if (i < t.size() && t[i] == '[') {
    ++i;
    if (!parseNumber(t, i, p.repetition)) {
      return bad(i, "a repetition 1..99999");
    }
    if (i >= t.size() || t[i] != ']') {
      return bad(i, "']'");
    }
    ++i;
  }
  if (i < t.size() && t[i] == '.') {
    ++i;
    if (!parseNumber(t, i, p.component)) {
      return bad(i, "a component number 1..99999");
    }
    if (i < t.size() && t[i] == '.') {
      ++i;
      if (!parseNumber(t, i, p.subcomponent)) {
        return bad(i, "a sub-component number 1..99999");
      }
    }
  }
  if (i != t.size()) {
    return bad(i, "end of path");
  }
  return p;
}

Status Message::fail(ErrorCode code, Errc errc, size_t offset, std::string text, Location where) {
  failure_.code = code;
  failure_.severity = Severity::error;
  failure_.location = std::move(where);
  failure_.byte_offset = offset;
  failure_.segment_index = segments_.size();
  failure_.errc = errc;
  failure_.text = std::move(text);
  segments_.clear();
  fields_.clear();
  text_ = {};
  return failure_.toError();
}

Message::Offsets& Message::Offsets::operator=(const Offsets& other) {
  if (this != &other) {
    size_ = 0;
    if (cap_ < other.size_) {
      data_.reset();
      cap_ = 0;
      grow(other.size_);
    }
    if (other.size_ != 0) {
      std::memcpy(data_.get(), other.data_.get(), other.size_ * sizeof(uint32_t));
    }
    size_ = other.size_;
  }
  return *this;
}

Message::Offsets& Message::Offsets::operator=(Offsets&& other) noexcept {
  if (this != &other) {
    data_ = std::move(other.data_);
    size_ = other.size_;
    cap_ = other.cap_;
    other.size_ = 0;
    other.cap_ = 0;
  }
  return *this;
}

void Message::Offsets::grow(size_t k) {
  size_t cap = std::max({cap_ * 2, size_ + k, size_t{64}});
  std::unique_ptr<uint32_t[]> data(new uint32_t[cap]);
  if (size_ != 0) {
    std::memcpy(data.get(), data_.get(), size_ * sizeof(uint32_t));
  }
  data_ = std::move(data);
  cap_ = cap;
}

struct Message::ParseState {
  std::string_view text;
  const unsigned char* p = nullptr;
  const Limits* limits = nullptr;
  unsigned char fs = 0;
  int rep_c = 256;  // delimiter bytes as ints; 256 (never a byte) when undefined
  int comp_c = 256;
  int sub_c = 256;
  size_t max_elements = 0;  // per segment: the id plus max_fields_per_segment
  size_t max_total = 0;
  size_t nesting_check = 0;  // fields shorter than this cannot exceed a nesting limit
  size_t seg_begin = 0;
  size_t first = 0;  // index in fields_ of the open segment's element 0 (one is always open)
  Status status;
};

Location Message::failLocation(const ParseState& ps, int element_index) const {
  Location loc;
  size_t count = fields_.size() - ps.first;
  if (count < 2) {
    return loc;
  }
  std::string_view id = ps.text.substr(ps.seg_begin, fields_[ps.first + 1] - 1 - ps.seg_begin);
  if (!isSegmentId(id)) {
    return loc;
  }
  loc.segment = std::string(id);
  loc.sequence = 1;
  for (const Segment& s : segments_) {
    if (element(s, 0) == id) {
      ++loc.sequence;
    }
  }
  loc.field = element_index > 0 && isHeaderId(id.data()) ? element_index + 1 : element_index;
  return loc;
}

bool Message::checkNesting(ParseState& ps, size_t begin, size_t end) {
  const Limits& limits = *ps.limits;
  const int field_index = static_cast<int>(fields_.size() - ps.first - 1);
  size_t reps = 1;
  size_t comps = 1;
  size_t subs = 1;
  for (size_t k = begin; k < end; ++k) {
    const int c = ps.p[k];
    if (c == ps.rep_c) {
      if (++reps > limits.max_repetitions) {
        ps.status =
            fail(ErrorCode::application_internal_error, Errc::limit, k,
                 "field has more than " + std::to_string(limits.max_repetitions) + " repetitions",
                 failLocation(ps, field_index));
        return false;
      }
      comps = subs = 1;
    } else if (c == ps.comp_c) {
      if (++comps > limits.max_components) {
        ps.status =
            fail(ErrorCode::application_internal_error, Errc::limit, k,
                 "field has more than " + std::to_string(limits.max_components) + " components",
                 failLocation(ps, field_index));
        return false;
      }
      subs = 1;
    } else if (c == ps.sub_c) {
      if (++subs > limits.max_subcomponents) {
        ps.status = fail(ErrorCode::application_internal_error, Errc::limit, k,
                         "component has more than " + std::to_string(limits.max_subcomponents) +
                             " sub-components",
                         failLocation(ps, field_index));
        return false;
      }
    }
  }
  return true;
}

void Message::openSegment(ParseState& ps, size_t begin) {
  // Not limited itself: segments are (max_segments), and blank ones are dropped again.
  ps.seg_begin = begin;
  ps.first = fields_.size();
  fields_.push_back(static_cast<uint32_t>(begin));
}

bool Message::closeSegment(ParseState& ps, size_t end) {
  const size_t count = fields_.size() - ps.first;
  if (count == 1) {
    bool blank = true;
    for (size_t k = ps.seg_begin; k < end; ++k) {
      if (ps.p[k] != ' ' && ps.p[k] != '\t') {
        blank = false;
        break;
      }
    }
    if (blank) {
      fields_.truncate(ps.first);
      return true;
    }
  }
  if (segments_.size() >= ps.limits->max_segments) {
    ps.status = fail(ErrorCode::application_internal_error, Errc::limit, ps.seg_begin,
                     "more than " + std::to_string(ps.limits->max_segments) + " segments", {});
    return false;
  }
  const bool header = count >= 2 && fields_[ps.first + 1] == ps.seg_begin + 4 &&
                      isHeaderId(ps.text.data() + ps.seg_begin);
  segments_.push_back(Segment{static_cast<uint32_t>(ps.seg_begin), static_cast<uint32_t>(end),
                              static_cast<uint32_t>(ps.first), static_cast<uint32_t>(count),
                              header});
  return true;
}

// Any field separator or terminator at `pos` (the hot loop handles the common cases itself).
bool Message::onEvent(ParseState& ps, size_t pos) {
  const size_t field_begin = fields_.back();
  if (pos - field_begin >= ps.nesting_check && !checkNesting(ps, field_begin, pos)) {
    return false;
  }
  if (ps.p[pos] == ps.fs) {
    if (fields_.size() - ps.first >= ps.max_elements) {
      ps.status = fail(
          ErrorCode::application_internal_error, Errc::limit, pos,
          "segment has more than " + std::to_string(ps.limits->max_fields_per_segment) + " fields",
          failLocation(ps, 0));
      return false;
    }
    if (fields_.size() >= ps.max_total) {
      ps.status = fail(ErrorCode::application_internal_error, Errc::limit, pos,
                       "message has more than " + std::to_string(ps.max_total) + " fields",
                       failLocation(ps, 0));
      return false;
    }
    fields_.push_back(static_cast<uint32_t>(pos + 1));
    return true;
  }
  if (!closeSegment(ps, pos)) {
    return false;
  }
  openSegment(ps, pos + 1);
  return true;
}

Status Message::parse(std::string_view text, const Limits& limits) {
  segments_.clear();
  fields_.clear();
  text_ = {};
  delims_ = Delimiters::standard();
  charset_ = Charset::ascii;
  failure_.code = ErrorCode::none;
  failure_.location = Location{};
  failure_.text.clear();
  failure_.byte_offset = 0;
  failure_.segment_index = 0;

  const size_t max_bytes =
      std::min<size_t>(limits.max_message_bytes, std::numeric_limits<uint32_t>::max() - 1);
  if (text.size() > max_bytes) {
    return fail(
        ErrorCode::application_internal_error, Errc::limit, max_bytes,
        "message is " + std::to_string(text.size()) + " bytes, limit " + std::to_string(max_bytes),
        {});
  }
  const size_t n = text.size();
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t i = 0;
  if (n >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF) {
    i = 3;
  }
  while (i < n && (p[i] == '\r' || p[i] == '\n')) {
    ++i;
  }
  if (n - i < 3 || !isHeaderId(text.data() + i)) {
    return fail(ErrorCode::segment_sequence, Errc::invalid_input, i,
                "message does not start with an MSH segment", {});
  }
  const bool is_msh = p[i] == 'M';
  if (n - i < 4 || p[i + 3] == '\r' || p[i + 3] == '\n') {
    return fail(ErrorCode::required_field_missing, Errc::invalid_input, i + 3,
                "field separator (MSH-1) missing", Location{std::string(text.substr(i, 3)), 1, 1});
  }
  Delimiters d{};
  d.field = text[i + 3];
  d.component = d.repetition = d.escape = d.subcomponent = d.truncation = 0;
  {
    char* slots[5] = {&d.component, &d.repetition, &d.escape, &d.subcomponent, &d.truncation};
    size_t k = 0;
    for (size_t j = i + 4; j < n && k < 5; ++j, ++k) {
      char c = text[j];
      if (c == d.field || c == '\r' || c == '\n') {
        break;
      }
      *slots[k] = c;
    }
  }
  delims_ = d;
  text_ = text;

  // Hot loop: only field separators and segment terminators are located here (64 bytes at a
  // time with SSE2); repetitions, components and sub-components are found on demand by the
  // accessors, and their limits checked only for fields long enough to exceed one.
  ParseState ps;
  ps.text = text;
  ps.p = p;
  ps.limits = &limits;
  ps.fs = static_cast<unsigned char>(d.field);
  ps.rep_c = d.repetition != 0 ? static_cast<unsigned char>(d.repetition) : 256;
  ps.comp_c = d.component != 0 ? static_cast<unsigned char>(d.component) : 256;
  ps.sub_c = d.subcomponent != 0 ? static_cast<unsigned char>(d.subcomponent) : 256;
  ps.max_elements = limits.max_fields_per_segment == std::numeric_limits<size_t>::max()
                        ? limits.max_fields_per_segment
                        : limits.max_fields_per_segment + 1;
  ps.max_total = std::max<size_t>(limits.max_total_fields, 1);
  ps.nesting_check =
      std::min({limits.max_repetitions, limits.max_components, limits.max_subcomponents});
  openSegment(ps, i);

  // Fast-path state, in registers: the open field's start, and how many more field separators
  // the open segment and the message may take.
  const unsigned char fs = ps.fs;
  const size_t nesting_check = ps.nesting_check;
  const size_t max_segments = limits.max_segments;
  size_t field_start = i;
  size_t elements_left = ps.max_elements - 1;
  size_t total_left = ps.max_total - 1;
  auto slow = [this, &ps, &field_start, &elements_left, &total_left](size_t pos) {
    if (!onEvent(ps, pos)) {
      return false;
    }
    total_left = ps.max_total > fields_.size() ? ps.max_total - fields_.size() : 0;
    field_start = fields_.back();
    elements_left = ps.max_elements - (fields_.size() - ps.first);
    return true;
  };
  // A field separator.
  auto separator = [&](size_t pos) {
    if (elements_left != 0 && total_left != 0 && pos - field_start < nesting_check) [[likely]] {
      fields_.push_back(static_cast<uint32_t>(pos + 1));
      field_start = pos + 1;
      --elements_left;
      --total_left;
      return true;
    }
    return slow(pos);
  };
  // A CR or LF: close the open segment and open the next one right after it. The common case
  // (a segment with fields, a short last field, room for more segments) inline.
  auto terminator = [&](size_t pos) {
    const size_t first = ps.first;
    const size_t count = fields_.size() - first;
    if (count >= 2 && pos - field_start < nesting_check && segments_.size() < max_segments)
        [[likely]] {
      const size_t begin = ps.seg_begin;
      const bool header = fields_[first + 1] == begin + 4 && isHeaderId(text.data() + begin);
      segments_.push_back(Segment{static_cast<uint32_t>(begin), static_cast<uint32_t>(pos),
                                  static_cast<uint32_t>(first), static_cast<uint32_t>(count),
                                  header});
      ps.seg_begin = pos + 1;
      ps.first = fields_.size();
      fields_.push_back(static_cast<uint32_t>(pos + 1));
      field_start = pos + 1;
      elements_left = ps.max_elements - 1;
      return true;
    }
    return slow(pos);
  };
  i += 3;  // the field separator after the header segment id is the first event
#if PSA_HL7_SSE2
  const __m128i vfs = _mm_set1_epi8(static_cast<char>(fs));
  const __m128i vcr = _mm_set1_epi8('\r');
  const __m128i vlf = _mm_set1_epi8('\n');
  // Bit k of fsm / tm: byte at+k is the field separator / a CR or LF.
  auto masks = [&](const unsigned char* at, uint64_t& fsm, uint64_t& tm) {
    const __m128i v0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
    const __m128i v1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at + 16));
    const __m128i v2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at + 32));
    const __m128i v3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at + 48));
    auto f = [&](__m128i v) {
      return static_cast<uint64_t>(
          static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, vfs))));
    };
    auto t = [&](__m128i v) {
      return static_cast<uint64_t>(static_cast<uint32_t>(
          _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, vcr), _mm_cmpeq_epi8(v, vlf)))));
    };
    fsm = f(v0) | (f(v1) << 16) | (f(v2) << 32) | (f(v3) << 48);
    tm = t(v0) | (t(v1) << 16) | (t(v2) << 32) | (t(v3) << 48);
  };
  while (i < n) {
    uint64_t fsm;
    uint64_t tm;
    if (i + 64 <= n) {
      masks(p + i, fsm, tm);
    } else {  // the tail, through a padded copy (never read past the buffer)
      alignas(16) unsigned char tail[64];
      std::memset(tail, fs == 'A' ? 'B' : 'A', sizeof tail);
      std::memcpy(tail, p + i, n - i);
      masks(tail, fsm, tm);
      const uint64_t valid = (uint64_t{1} << (n - i)) - 1;
      fsm &= valid;
      tm &= valid;
    }
    // No limit can be reached inside this block (it adds at most 64 fields, every field
    // ending in it is shorter than nesting_check): write the separators' offsets in runs.
    const bool roomy = elements_left >= 128 && total_left >= 128 && nesting_check >= 128 &&
                       i - field_start < nesting_check - 64;
    if (roomy) [[likely]] {
      while ((fsm | tm) != 0) {
        const uint64_t below = tm != 0 ? (tm & (0 - tm)) - 1 : ~uint64_t{0};
        uint64_t run = fsm & below;
        if (run != 0) {
          fsm &= ~below;
          uint32_t* out = fields_.room(64);
          size_t last = 0;
          do {
            last = i + lowestBit64(run);
            run &= run - 1;
            *out++ = static_cast<uint32_t>(last + 1);
          } while (run != 0);
          fields_.commit(out);
          field_start = last + 1;
        }
        if (tm != 0) {
          const size_t pos = i + lowestBit64(tm);
          tm &= tm - 1;
          if (!terminator(pos)) {
            return ps.status;
          }
        }
      }
      total_left = ps.max_total - fields_.size();
      elements_left = ps.max_elements - (fields_.size() - ps.first);
    } else {  // near a limit: one event at a time, every check
      uint64_t all = fsm | tm;
      while (all != 0) {
        const size_t pos = i + lowestBit64(all);
        all &= all - 1;
        if (!(p[pos] == fs ? separator(pos) : terminator(pos))) {
          return ps.status;
        }
      }
    }
    i += 64;
  }
#else
  for (; i < n; ++i) {
    if (p[i] == fs || p[i] == '\r' || p[i] == '\n') {
      if (!(p[i] == fs ? separator(i) : terminator(i))) {
        return ps.status;
      }
    }
  }
#endif
  {  // the open segment ends at the end of the text (an empty one is dropped as blank)
    const size_t field_begin = fields_.back();
    if (n - field_begin >= ps.nesting_check && !checkNesting(ps, field_begin, n)) {
      return ps.status;
    }
    if (!closeSegment(ps, n)) {
      return ps.status;
    }
  }
  if (segments_.empty()) {  // cannot happen (the header segment is never blank), but be safe
    return fail(ErrorCode::segment_sequence, Errc::invalid_input, 0,
                "message does not start with an MSH segment", {});
  }
  if (is_msh) {
    Element cs = get(0, 18, 1);
    if (cs.hasValue()) {
      charset_ = charsetFromName(cs.raw);
    }
  }
  return {};
}

std::string_view Message::element(const Segment& s, uint32_t index) const {
  uint32_t begin = fields_[s.first_field + index];
  uint32_t end = index + 1 < s.count ? fields_[s.first_field + index + 1] - 1 : s.end;
  return text_.substr(begin, end - begin);
}

std::string_view Message::content() const {
  if (segments_.empty()) {
    return {};
  }
  return text_.substr(segments_.front().begin, segments_.back().end - segments_.front().begin);
}

std::string_view Message::segmentId(size_t segment) const {
  if (segment >= segments_.size()) {
    return {};
  }
  return element(segments_[segment], 0);
}

std::string_view Message::segmentText(size_t segment) const {
  if (segment >= segments_.size()) {
    return {};
  }
  const Segment& s = segments_[segment];
  return text_.substr(s.begin, s.end - s.begin);
}

size_t Message::segmentOffset(size_t segment) const {
  return segment < segments_.size() ? segments_[segment].begin : text_.size();
}

int Message::occurrenceOf(size_t segment) const {
  if (segment >= segments_.size()) {
    return 0;
  }
  std::string_view id = segmentId(segment);
  int occ = 0;
  for (size_t k = 0; k <= segment; ++k) {
    if (segmentId(k) == id) {
      ++occ;
    }
  }
  return occ;
}

std::optional<size_t> Message::findSegment(std::string_view id, int occurrence) const {
  if (occurrence <= 0) {
    return std::nullopt;
  }
  int seen = 0;
  for (size_t k = 0; k < segments_.size(); ++k) {
    if (segmentId(k) == id && ++seen == occurrence) {
      return k;
    }
  }
  return std::nullopt;
}

size_t Message::countSegments(std::string_view id) const {
  size_t count = 0;
  for (size_t k = 0; k < segments_.size(); ++k) {
    if (segmentId(k) == id) {
      ++count;
    }
  }
  return count;
}

int Message::fieldCount(size_t segment) const {
  if (segment >= segments_.size()) {
    return 0;
  }
  const Segment& s = segments_[segment];
  return static_cast<int>(s.header ? s.count : s.count - 1);
}

Element Message::field(size_t segment, int field) const {
  if (segment >= segments_.size() || field <= 0) {
    return {};
  }
  const Segment& s = segments_[segment];
  uint32_t index = static_cast<uint32_t>(field);
  if (s.header) {
    if (field == 1) {
      return Element{text_.substr(s.begin + 3, 1), Presence::value};
    }
    index = static_cast<uint32_t>(field - 1);
  }
  if (index >= s.count) {
    return {};
  }
  return makeElement(element(s, index));
}

Element Message::get(size_t segment, int field_no, int rep, int comp, int sub) const {
  if (rep < 0 || comp < 0 || sub < 0) {
    return {};
  }
  Element f = field(segment, field_no);
  if (f.absent()) {
    return f;
  }
  if (segments_[segment].header && field_no <= 2) {
    return (rep <= 1 && comp <= 1 && sub <= 1) ? f : Element{};
  }
  if (sub > 0 && comp == 0) {
    comp = 1;
  }
  if (rep == 0) {
    if (comp == 0) {
      return f;
    }
    rep = 1;
  }
  auto r = piece(f.raw, delims_.repetition, rep);
  if (!r) {
    return {};
  }
  if (comp == 0) {
    return makeElement(*r);
  }
  auto c = piece(*r, delims_.component, comp);
  if (!c) {
    return {};
  }
  if (sub == 0) {
    return makeElement(*c);
  }
  auto s = piece(*c, delims_.subcomponent, sub);
  if (!s) {
    return {};
  }
  return makeElement(*s);
}

Element Message::get(const Path& path) const {
  if (path.position > 0) {
    return get(static_cast<size_t>(path.position - 1), path.field, path.repetition, path.component,
               path.subcomponent);
  }
  auto seg = findSegment(path.segment, path.occurrence);
  if (!seg) {
    return {};
  }
  return get(*seg, path.field, path.repetition, path.component, path.subcomponent);
}

Element Message::get(std::string_view path) const {
  auto p = parsePath(path);
  if (!p) {
    return {};
  }
  return get(*p);
}

int Message::repetitionCount(size_t segment, int field_no) const {
  Element f = field(segment, field_no);
  if (f.absent()) {
    return 0;
  }
  if (segments_[segment].header && field_no <= 2) {
    return 1;
  }
  return countPieces(f.raw, delims_.repetition);
}

int Message::componentCount(size_t segment, int field_no, int rep) const {
  Element r = get(segment, field_no, rep == 0 ? 1 : rep);
  if (r.absent()) {
    return 0;
  }
  if (segments_[segment].header && field_no <= 2) {
    return 1;
  }
  return countPieces(r.raw, delims_.component);
}

int Message::subcomponentCount(size_t segment, int field_no, int rep, int comp) const {
  Element c = get(segment, field_no, rep == 0 ? 1 : rep, comp == 0 ? 1 : comp);
  if (c.absent()) {
    return 0;
  }
  if (segments_[segment].header && field_no <= 2) {
    return 1;
  }
  return countPieces(c.raw, delims_.subcomponent);
}

void Message::decodeTo(const Element& element, std::string& out) const {
  if (!element.hasValue()) {
    return;
  }
  if (delims_.escape == 0 ||
      std::memchr(element.raw.data(), delims_.escape, element.raw.size()) == nullptr) {
    toUtf8To(element.raw, charset_, out);
    return;
  }
  std::string bytes;
  unescapeTo(element.raw, delims_, bytes);
  toUtf8To(bytes, charset_, out);
}

std::string Message::decode(const Element& element) const {
  std::string out;
  decodeTo(element, out);
  return out;
}

std::string_view Message::messageType() const { return get(0, 9, 1, 1).raw; }

std::string_view Message::triggerEvent() const {
  std::string_view trigger = get(0, 9, 1, 2).raw;
  if (trigger.empty() && version() == "2.1") {
    if (auto evn = findSegment("EVN")) {
      return get(*evn, 1, 1, 1).raw;
    }
  }
  return trigger;
}

std::string_view Message::messageStructure() const { return get(0, 9, 1, 3).raw; }
std::string_view Message::controlId() const { return field(0, 10).raw; }
std::string_view Message::processingId() const { return get(0, 11, 1, 1).raw; }
std::string_view Message::version() const { return get(0, 12, 1, 1).raw; }
std::string_view Message::acceptAckType() const { return get(0, 15, 1, 1).raw; }
std::string_view Message::applicationAckType() const { return get(0, 16, 1, 1).raw; }

Result<Message> parseMessage(std::string_view text, const Limits& limits) {
  Message m;
  Status st = m.parse(text, limits);
  if (!st) {
    return std::move(st).error();
  }
  return m;
}

}  // namespace psa::adapters::hl7
