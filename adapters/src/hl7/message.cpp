#include "psa/adapters/hl7/message.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

namespace psa::adapters::hl7 {
namespace {

enum Cls : uint8_t { kData = 0, kField, kTerm, kRep, kComp, kSub };

bool isHeaderId(const char* p) {
  return (p[0] == 'M' && p[1] == 'S' && p[2] == 'H') || (p[0] == 'F' && p[1] == 'H' && p[2] == 'S') ||
         (p[0] == 'B' && p[1] == 'H' && p[2] == 'S');
}

bool validSegmentId(std::string_view id) {
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

Presence presenceOf(std::string_view raw) {
  if (raw.empty()) {
    return Presence::empty;
  }
  if (raw.size() == 2 && raw[0] == '"' && raw[1] == '"') {
    return Presence::null;
  }
  return Presence::value;
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
  size_t end = hit == nullptr ? s.size() : static_cast<size_t>(static_cast<const char*>(hit) - s.data());
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

std::string Path::toString() const {
  std::string out = segment;
  if (occurrence > 1) {
    out += '[' + std::to_string(occurrence) + ']';
  }
  out += '-' + std::to_string(field);
  if (repetition > 0) {
    out += '[' + std::to_string(repetition) + ']';
  }
  if (component > 0) {
    out += '.' + std::to_string(component);
    if (subcomponent > 0) {
      out += '.' + std::to_string(subcomponent);
    }
  }
  return out;
}

Result<Path> parsePath(std::string_view t) {
  auto bad = [&](size_t col, std::string_view what) {
    return Error(Errc::invalid_argument,
                 "path column " + std::to_string(col + 1) + ": expected " + std::string(what));
  };
  Path p;
  size_t i = 0;
  for (; i < 3; ++i) {
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
  if (i < t.size() && t[i] == '[') {
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

Status Message::fail(ErrorCode code, Errc errc, size_t offset, std::string text,
                     Location where) {
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
    return fail(ErrorCode::application_internal_error, Errc::limit, max_bytes,
                "message is " + std::to_string(text.size()) + " bytes, limit " +
                    std::to_string(max_bytes),
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
  std::string header_id(text.substr(i, 3));
  if (n - i < 4 || p[i + 3] == '\r' || p[i + 3] == '\n') {
    return fail(ErrorCode::required_field_missing, Errc::invalid_input, i + 3,
                "field separator (MSH-1) missing", Location{header_id, 1, 1});
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

  std::array<uint8_t, 256> cls{};
  if (d.subcomponent != 0) {
    cls[static_cast<unsigned char>(d.subcomponent)] = kSub;
  }
  if (d.component != 0) {
    cls[static_cast<unsigned char>(d.component)] = kComp;
  }
  if (d.repetition != 0) {
    cls[static_cast<unsigned char>(d.repetition)] = kRep;
  }
  cls[static_cast<unsigned char>(d.field)] = kField;
  cls['\r'] = kTerm;
  cls['\n'] = kTerm;

  const size_t max_elements = limits.max_fields_per_segment + 1;
  const size_t max_total = std::max<size_t>(limits.max_total_fields, 1);
  const size_t max_reps = limits.max_repetitions;
  const size_t max_comps = limits.max_components;
  const size_t max_subs = limits.max_subcomponents;

  size_t seg_begin = i;
  size_t first = 0;
  fields_.push_back(static_cast<uint32_t>(i));
  size_t reps = 1;
  size_t comps = 1;
  size_t subs = 1;

  auto where = [&](int field) {
    Location loc;
    size_t count = fields_.size() - first;
    if (count >= 2) {
      std::string_view id = text.substr(seg_begin, fields_[first + 1] - 1 - seg_begin);
      if (validSegmentId(id)) {
        loc.segment = std::string(id);
        loc.sequence = 1;
        for (const Segment& s : segments_) {
          if (element(s, 0) == id) {
            ++loc.sequence;
          }
        }
        bool header = isHeaderId(id.data());
        loc.field = field > 0 && header ? field + 1 : field;
      }
    }
    return loc;
  };
  auto current_field = [&]() { return static_cast<int>(fields_.size() - first - 1); };

  // Closes the segment [seg_begin, end). Returns false (after fail()) on a limit.
  auto close_segment = [&](size_t end, Status& st) {
    size_t count = fields_.size() - first;
    if (count == 1) {
      bool blank = true;
      for (size_t k = seg_begin; k < end; ++k) {
        if (p[k] != ' ' && p[k] != '\t') {
          blank = false;
          break;
        }
      }
      if (blank) {
        fields_.resize(first);
        return true;
      }
    }
    if (segments_.size() >= limits.max_segments) {
      st = fail(ErrorCode::application_internal_error, Errc::limit, seg_begin,
                "more than " + std::to_string(limits.max_segments) + " segments", {});
      return false;
    }
    bool header = count >= 2 && fields_[first + 1] == seg_begin + 4 &&
                  isHeaderId(text.data() + seg_begin);
    segments_.push_back(Segment{static_cast<uint32_t>(seg_begin), static_cast<uint32_t>(end),
                                static_cast<uint32_t>(first), static_cast<uint32_t>(count),
                                header});
    return true;
  };

  bool open = true;
  while (true) {
    while (i < n && cls[p[i]] == kData) {
      ++i;
    }
    if (i >= n) {
      break;
    }
    switch (cls[p[i]]) {
      case kField:
        if (fields_.size() - first >= max_elements) {
          return fail(ErrorCode::application_internal_error, Errc::limit, i,
                      "segment has more than " + std::to_string(limits.max_fields_per_segment) +
                          " fields",
                      where(0));
        }
        if (fields_.size() >= max_total) {
          return fail(ErrorCode::application_internal_error, Errc::limit, i,
                      "message has more than " + std::to_string(max_total) + " fields",
                      where(0));
        }
        fields_.push_back(static_cast<uint32_t>(i + 1));
        reps = comps = subs = 1;
        break;
      case kRep:
        if (++reps > max_reps) {
          return fail(ErrorCode::application_internal_error, Errc::limit, i,
                      "field has more than " + std::to_string(max_reps) + " repetitions",
                      where(current_field()));
        }
        comps = subs = 1;
        break;
      case kComp:
        if (++comps > max_comps) {
          return fail(ErrorCode::application_internal_error, Errc::limit, i,
                      "field has more than " + std::to_string(max_comps) + " components",
                      where(current_field()));
        }
        subs = 1;
        break;
      case kSub:
        if (++subs > max_subs) {
          return fail(ErrorCode::application_internal_error, Errc::limit, i,
                      "component has more than " + std::to_string(max_subs) +
                          " sub-components",
                      where(current_field()));
        }
        break;
      case kTerm: {
        Status st;
        if (!close_segment(i, st)) {
          return st;
        }
        while (i < n && (p[i] == '\r' || p[i] == '\n')) {
          ++i;
        }
        if (i >= n) {
          open = false;
        } else {
          seg_begin = i;
          first = fields_.size();
          if (fields_.size() >= max_total) {
            return fail(ErrorCode::application_internal_error, Errc::limit, i,
                        "message has more than " + std::to_string(max_total) + " fields", {});
          }
          fields_.push_back(static_cast<uint32_t>(i));
          reps = comps = subs = 1;
        }
        continue;  // i already points at the next unread byte
      }
      default:
        break;
    }
    ++i;
  }
  if (open) {
    Status st;
    if (!close_segment(n, st)) {
      return st;
    }
  }
  if (segments_.empty()) {  // cannot happen (the header segment is never blank), but be safe
    return fail(ErrorCode::segment_sequence, Errc::invalid_input, 0,
                "message does not start with an MSH segment", {});
  }
  if (header_id == "MSH") {
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
