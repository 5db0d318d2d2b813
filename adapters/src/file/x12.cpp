#include "psa/adapters/file/x12.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "file/token_codec.h"

namespace psa::adapters::file {

namespace {

constexpr size_t kIsaLength = 106;
/// Byte positions of the element separator in the fixed-length ISA.
constexpr std::array<size_t, 16> kIsaSeparators = {3,  6,  17, 20, 31, 34, 50, 53,
                                                   69, 76, 81, 83, 89, 99, 101, 103};
constexpr size_t kIsaRepetition = 82;  // ISA-11
constexpr size_t kIsa13 = 90;          // ISA-13, 9 digits
constexpr size_t kIsaComponent = 104;  // ISA-16
constexpr size_t kIsaTerminator = 105;
constexpr std::string_view kCheckpointTag = "x12v1";
constexpr size_t kMaxElements = 32;  // envelope segments have at most 16

bool isAlnum(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool allDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

/// Numeric value of a count element, or nullopt.
std::optional<uint64_t> parseCount(std::string_view s) {
  uint64_t v = 0;
  if (s.size() > 18 || !detail::TokenReader::parseDigits(s, v)) {
    return std::nullopt;
  }
  return v;
}

/// Control numbers of type N0 compare as numbers ("0001" == "1").
bool sameNumber(std::string_view a, std::string_view b) {
  if (!allDigits(a) || !allDigits(b)) {
    return false;
  }
  while (a.size() > 1 && a.front() == '0') {
    a.remove_prefix(1);
  }
  while (b.size() > 1 && b.front() == '0') {
    b.remove_prefix(1);
  }
  return a == b;
}

/// An identifier from the file as it may appear in a message: printable ASCII, short.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 16)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7F ? c : '?');
  }
  if (s.size() > 16) {
    out += "...";
  }
  return out;
}

/// Elements of a segment: [0] is the id, [i] is element i. Returns the count stored.
size_t splitElements(std::string_view seg, char sep,
                     std::array<std::string_view, kMaxElements>& out) {
  size_t n = 0;
  size_t start = 0;
  for (;;) {
    const size_t at = seg.find(sep, start);
    if (n == kMaxElements - 1 || at == std::string_view::npos) {
      out[n++] = seg.substr(start);
      return n;
    }
    out[n++] = seg.substr(start, at - start);
    start = at + 1;
  }
}

std::string_view element(const std::array<std::string_view, kMaxElements>& e, size_t n,
                         size_t i) {
  return i < n ? e[i] : std::string_view();
}

/// Validates a 106-byte ISA and reads its delimiters. Returns an error text or nullopt.
std::optional<std::string> parseIsa(std::string_view isa, X12Delimiters& d) {
  if (isa.size() != kIsaLength || isa.substr(0, 3) != "ISA") {
    return "not an ISA segment";
  }
  const char e = isa[3];
  if (isAlnum(e) || e == ' ' || e == '\r' || e == '\n') {
    return "ISA element separator must not be a letter, digit, space or line break";
  }
  for (size_t p : kIsaSeparators) {
    if (isa[p] != e) {
      return "ISA is not the fixed 106-byte layout: element separator expected at byte " +
             std::to_string(p) + " of the ISA";
    }
  }
  const char comp = isa[kIsaComponent];
  const char term = isa[kIsaTerminator];
  char rep = isa[kIsaRepetition];
  if (isAlnum(rep) || rep == ' ') {
    rep = '\0';  // 004010 and earlier: ISA-11 is the standards id ('U')
  }
  if (isAlnum(comp) || comp == ' ' || comp == '\r' || comp == '\n') {
    return "ISA-16 component separator must not be a letter, digit, space or line break";
  }
  if (isAlnum(term) || term == ' ') {
    return "segment terminator (byte after ISA-16) must not be a letter, digit or space";
  }
  if (comp == e || term == e || term == comp || (rep != '\0' && (rep == e || rep == comp ||
                                                                 rep == term))) {
    return "ISA delimiters are not distinct";
  }
  for (size_t i = 0; i < kIsaComponent; ++i) {
    const bool is_sep =
        std::find(kIsaSeparators.begin(), kIsaSeparators.end(), i) != kIsaSeparators.end();
    if (!is_sep && isa[i] == e) {
      return "ISA is not the fixed 106-byte layout: element separator inside a field at byte " +
             std::to_string(i) + " of the ISA";
    }
    if (isa[i] == term) {
      return "segment terminator appears inside the ISA at byte " + std::to_string(i);
    }
  }
  if (!allDigits(isa.substr(kIsa13, 9))) {
    return "ISA-13 (interchange control number) is not 9 digits";
  }
  d.element = e;
  d.component = comp;
  d.repetition = rep;
  d.segment = term;
  return std::nullopt;
}

enum class Level : uint8_t { before_isa, interchange, group, set };

}  // namespace

std::string_view x12ErrcName(X12Errc code) noexcept {
  switch (code) {
    case X12Errc::not_x12:
      return "not_x12";
    case X12Errc::truncated_isa:
      return "truncated_isa";
    case X12Errc::invalid_isa:
      return "invalid_isa";
    case X12Errc::invalid_segment:
      return "invalid_segment";
    case X12Errc::unterminated_segment:
      return "unterminated_segment";
    case X12Errc::segment_too_large:
      return "segment_too_large";
    case X12Errc::transaction_too_large:
      return "transaction_too_large";
    case X12Errc::unexpected_segment:
      return "unexpected_segment";
    case X12Errc::missing_se:
      return "missing_se";
    case X12Errc::missing_ge:
      return "missing_ge";
    case X12Errc::missing_iea:
      return "missing_iea";
    case X12Errc::invalid_element:
      return "invalid_element";
    case X12Errc::se_count_mismatch:
      return "se_count_mismatch";
    case X12Errc::se_control_mismatch:
      return "se_control_mismatch";
    case X12Errc::ge_count_mismatch:
      return "ge_count_mismatch";
    case X12Errc::ge_control_mismatch:
      return "ge_control_mismatch";
    case X12Errc::iea_count_mismatch:
      return "iea_count_mismatch";
    case X12Errc::iea_control_mismatch:
      return "iea_control_mismatch";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------
// Checkpoint

std::string X12Checkpoint::serialize() const {
  detail::TokenWriter w;
  w.str(kCheckpointTag);
  w.num(offset);
  w.num(line);
  w.num(segments);
  w.num(transactions);
  w.str(isa);
  w.str(line_break);
  w.str(gs);
  w.num(groups);
  w.num(sets);
  w.num(isa_segment);
  w.num(gs_segment);
  return w.take();
}

Result<X12Checkpoint> X12Checkpoint::deserialize(std::string_view text) {
  detail::TokenReader r(text);
  X12Checkpoint c;
  std::string_view tag;
  std::string_view isa;
  std::string_view line_break;
  std::string_view gs;
  if (!r.str(tag) || tag != kCheckpointTag || !r.num(c.offset) || !r.num(c.line) ||
      !r.num(c.segments) || !r.num(c.transactions) || !r.str(isa) || !r.str(line_break) ||
      !r.str(gs) || !r.num(c.groups) || !r.num(c.sets) || !r.num(c.isa_segment) ||
      !r.num(c.gs_segment) || !r.done()) {
    return Error(Errc::invalid_argument, "malformed X12 checkpoint");
  }
  c.isa = isa;
  c.line_break = line_break;
  c.gs = gs;
  return c;
}

// ---------------------------------------------------------------------------------------
// Parser

struct X12Parser::Impl {
  X12Options opt;

  std::string buf;
  uint64_t base = 0;
  size_t pos = 0;
  size_t scan_from = 0;  // where the terminator search of the current segment resumes
  bool finished = false;
  uint64_t line = 1;
  uint64_t seg_index = 0;  // segments consumed
  uint64_t tx_count = 0;
  uint64_t interchanges_closed = 0;

  Level level = Level::before_isa;
  bool any_interchange = false;

  // Interchange
  X12Delimiters delims;
  std::string isa;
  uint64_t isa_segment = 0;
  std::string line_break;
  bool line_break_known = false;
  std::string pending_break;
  uint64_t groups = 0;

  // Group
  std::string gs;
  uint64_t gs_segment = 0;
  std::array<std::string_view, kMaxElements> gs_el{};  // views into gs
  size_t gs_n = 0;
  uint64_t sets = 0;

  // Transaction set
  size_t st_start = 0;  // buf index
  size_t st_len = 0;    // the ST segment's length (without terminator)
  uint64_t st_line = 0;
  uint64_t st_segment = 0;
  uint64_t set_segments = 0;
  std::string st02;  // for messages

  // Current segment
  uint64_t seg_line = 1;
  uint64_t seg_offset = 0;

  // Output
  X12Transaction tx;
  std::string payload;

  // Resume point
  X12Checkpoint ck;

  std::optional<X12Issue> fatal;
  Error fatal_error;

  std::string where(uint64_t segment, uint64_t at_line, uint64_t at) const {
    return "segment " + std::to_string(segment) + " (line " + std::to_string(at_line) +
           ", byte " + std::to_string(at) + "): ";
  }

  Error fail(X12Errc code, uint64_t segment, uint64_t at_line, uint64_t at,
             const std::string& what) {
    X12Issue issue{code, segment, at_line, at, where(segment, at_line, at) + what};
    const Errc errc =
        (code == X12Errc::segment_too_large || code == X12Errc::transaction_too_large)
            ? Errc::limit
            : Errc::invalid_input;
    fatal_error = Error(errc, issue.message);
    fatal = std::move(issue);
    return fatal_error;
  }

  /// A fatal error at the current segment.
  Error failHere(X12Errc code, const std::string& what) {
    return fail(code, seg_index, seg_line, seg_offset, what);
  }

  /// A fatal error at end of input.
  Error failAtEnd(X12Errc code, const std::string& what) {
    return fail(code, seg_index + 1, line, base + pos, "end of file: " + what);
  }

  std::string setName() const {
    return "transaction set " + printable(st02) + " (ST at segment " +
           std::to_string(st_segment) + ")";
  }
  // An opening segment's index of 0 (a hand-made checkpoint) is left out.
  std::string groupName() const {
    return "functional group " + printable(element(gs_el, gs_n, 6)) +
           (gs_segment != 0 ? " (GS at segment " + std::to_string(gs_segment) + ")" : "");
  }
  std::string interchangeName() const {
    return "interchange " + isa.substr(kIsa13, 9) +
           (isa_segment != 0 ? " (ISA at segment " + std::to_string(isa_segment) + ")" : "");
  }

  void openInterchange(std::string_view isa_bytes) {
    isa.assign(isa_bytes);
    groups = 0;
    line_break_known = false;
    pending_break.clear();
    level = Level::interchange;
    any_interchange = true;
  }

  Status openGroup(std::string_view gs_bytes) {
    gs.assign(gs_bytes);
    std::string_view content(gs);
    content.remove_suffix(1);  // terminator
    gs_n = splitElements(content, delims.element, gs_el);
    if (gs_n < 9 || gs_el[1].empty() || !allDigits(gs_el[6]) || gs_el[6].size() > 9 ||
        gs_el[8].empty()) {
      return Error(Errc::invalid_input,
                   "GS needs GS-01..GS-08 with a numeric GS-06 (group control number)");
    }
    sets = 0;
    level = Level::group;
    return {};
  }

  /// Skips whitespace before an ISA (anywhere) or CR/LF between segments (not the
  /// terminator). Counts lines.
  void skipWhitespace() {
    const bool any_ws = level == Level::before_isa;
    const char term = delims.segment;
    while (pos < buf.size()) {
      const char c = buf[pos];
      const bool ws = any_ws ? (c == '\r' || c == '\n' || c == ' ' || c == '\t')
                             : ((c == '\r' || c == '\n') && c != term);
      if (!ws) {
        break;
      }
      if (c == '\n') {
        ++line;
      }
      if (!any_ws && !line_break_known && pending_break.size() < 2) {
        pending_break.push_back(c);
      }
      ++pos;
    }
  }

  /// Reads an ISA at pos. Returns nullopt to go on, Step::need_input, or an error.
  std::optional<Result<Step>> readIsa() {
    const size_t avail = buf.size() - pos;
    const std::string_view head(buf.data() + pos, std::min<size_t>(avail, 3));
    if (std::string_view("ISA").substr(0, head.size()) != head) {
      if (!any_interchange) {
        return fail(X12Errc::not_x12, seg_index + 1, line, base + pos,
                    "the file does not start with an ISA segment");
      }
      return fail(X12Errc::unexpected_segment, seg_index + 1, line, base + pos,
                  "data after the IEA that is not another ISA");
    }
    if (avail < kIsaLength) {
      if (!finished) {
        return Result<Step>(Step::need_input);
      }
      return fail(X12Errc::truncated_isa, seg_index + 1, line, base + pos,
                  "truncated ISA: " + std::to_string(avail) + " of 106 bytes before end of file");
    }
    const std::string_view isa_bytes(buf.data() + pos, kIsaLength);
    X12Delimiters d;
    seg_index++;
    seg_line = line;
    seg_offset = base + pos;
    if (auto bad = parseIsa(isa_bytes, d)) {
      return failHere(X12Errc::invalid_isa, *bad);
    }
    delims = d;
    line += static_cast<uint64_t>(std::count(isa_bytes.begin(), isa_bytes.end(), '\n'));
    openInterchange(isa_bytes);
    isa_segment = seg_index;
    pos += kIsaLength;
    scan_from = pos;
    return std::nullopt;
  }

  std::optional<Result<Step>> atEnd() {
    switch (level) {
      case Level::before_isa:
        if (!any_interchange) {
          return failAtEnd(X12Errc::not_x12, "no ISA segment (the file is empty)");
        }
        return Result<Step>(Step::end);
      case Level::interchange:
        return failAtEnd(X12Errc::missing_iea, interchangeName() + " has no IEA");
      case Level::group:
        return failAtEnd(X12Errc::missing_ge, groupName() + " has no GE");
      case Level::set:
        return failAtEnd(X12Errc::missing_se, setName() + " has no SE");
    }
    return std::nullopt;
  }

  /// Handles one complete segment [seg_start, seg_start+len) (terminator excluded).
  /// Returns Step::transaction after an SE, an error, or nullopt to continue.
  std::optional<Result<Step>> onSegment(size_t seg_start, size_t len) {
    const std::string_view seg(buf.data() + seg_start, len);
    const size_t id_len = std::min(seg.find(delims.element), seg.size());
    const std::string_view id = seg.substr(0, id_len);
    if (seg.empty()) {
      return failHere(X12Errc::invalid_segment, "empty segment");
    }
    if (id.size() < 2 || id.size() > 3 ||
        !std::all_of(id.begin(), id.end(),
                     [](char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); })) {
      return failHere(X12Errc::invalid_segment, "invalid segment id (expected 2-3 of A-Z, 0-9)");
    }
    const std::string sid(id);
    const bool envelope =
        id == "ISA" || id == "IEA" || id == "GS" || id == "GE" || id == "ST" || id == "SE";
    std::array<std::string_view, kMaxElements> el{};
    size_t n = 0;
    if (envelope) {
      n = splitElements(seg, delims.element, el);
    }
    switch (level) {
      case Level::before_isa:
        break;  // not reached: readIsa() handles this level
      case Level::interchange:
        if (id == "GS") {
          gs_segment = seg_index;
          if (auto st = openGroup(std::string_view(buf.data() + seg_start, len + 1)); !st) {
            return failHere(X12Errc::invalid_element, st.error().message);
          }
          ++groups;
          return std::nullopt;
        }
        if (id == "IEA") {
          const auto count = parseCount(element(el, n, 1));
          const std::string_view ctrl = element(el, n, 2);
          if (!count) {
            return failHere(X12Errc::invalid_element, "IEA-01 is missing or not a number");
          }
          if (*count != groups) {
            return failHere(X12Errc::iea_count_mismatch,
                            "IEA-01 is " + std::to_string(*count) + " but " + interchangeName() +
                                " has " + std::to_string(groups) + " functional groups");
          }
          if (!sameNumber(ctrl, std::string_view(isa).substr(kIsa13, 9))) {
            return failHere(X12Errc::iea_control_mismatch,
                            "IEA-02 '" + printable(ctrl) + "' does not match ISA-13 '" +
                                isa.substr(kIsa13, 9) + "'");
          }
          level = Level::before_isa;
          ++interchanges_closed;
          return std::nullopt;
        }
        if (id == "TA1") {
          return std::nullopt;  // interchange acknowledgment: envelope level, no record
        }
        if (id == "ISA") {
          return failHere(X12Errc::missing_iea, "ISA before the IEA of " + interchangeName());
        }
        return failHere(X12Errc::unexpected_segment,
                        sid + " outside a functional group (expected GS or IEA)");
      case Level::group:
        if (id == "ST") {
          if (element(el, n, 1).empty() || element(el, n, 2).empty()) {
            return failHere(X12Errc::invalid_element, "ST-01 and ST-02 are required");
          }
          st_start = seg_start;
          st_len = len;
          st_line = seg_line;
          st_segment = seg_index;
          st02.assign(element(el, n, 2));
          set_segments = 1;
          ++sets;
          level = Level::set;
          return std::nullopt;
        }
        if (id == "GE") {
          const auto count = parseCount(element(el, n, 1));
          const std::string_view ctrl = element(el, n, 2);
          if (!count) {
            return failHere(X12Errc::invalid_element, "GE-01 is missing or not a number");
          }
          if (*count != sets) {
            return failHere(X12Errc::ge_count_mismatch,
                            "GE-01 is " + std::to_string(*count) + " but " + groupName() +
                                " has " + std::to_string(sets) + " transaction sets");
          }
          if (!sameNumber(ctrl, element(gs_el, gs_n, 6))) {
            return failHere(X12Errc::ge_control_mismatch,
                            "GE-02 '" + printable(ctrl) + "' does not match GS-06 '" +
                                printable(element(gs_el, gs_n, 6)) + "'");
          }
          level = Level::interchange;
          return std::nullopt;
        }
        if (id == "GS" || id == "IEA" || id == "ISA") {
          return failHere(X12Errc::missing_ge, sid + " before the GE of " + groupName());
        }
        return failHere(X12Errc::unexpected_segment,
                        sid + " outside a transaction set (expected ST or GE)");
      case Level::set:
        ++set_segments;
        if (id == "SE") {
          return closeSet(seg_start + len + 1, el, n);
        }
        if (envelope) {
          return failHere(X12Errc::missing_se, sid + " before the SE of " + setName());
        }
        return std::nullopt;
    }
    return std::nullopt;
  }

  Result<Step> closeSet(size_t end, const std::array<std::string_view, kMaxElements>& el,
                        size_t n) {
    X12Transaction& t = tx;
    t.number = ++tx_count;
    t.line = st_line;
    t.end_line = delims.segment == '\n' ? line - 1 : line;
    t.begin_offset = base + st_start;
    t.end_offset = base + end;
    t.first_segment = st_segment;
    t.segment_count = set_segments;
    t.body = std::string_view(buf.data() + st_start, end - st_start);
    t.delimiters = delims;
    t.error.reset();

    std::array<std::string_view, kMaxElements> st_el{};
    const size_t st_n = splitElements(t.body.substr(0, st_len), delims.element, st_el);
    t.transaction_set_id = element(st_el, st_n, 1);
    t.control_number = element(st_el, st_n, 2);
    const std::string_view st03 = element(st_el, st_n, 3);
    t.implementation_convention = st03.empty() ? element(gs_el, gs_n, 8) : st03;
    t.functional_id = element(gs_el, gs_n, 1);
    t.sender_id = element(gs_el, gs_n, 2);
    t.receiver_id = element(gs_el, gs_n, 3);
    t.group_control = element(gs_el, gs_n, 6);
    t.interchange_control = std::string_view(isa).substr(kIsa13, 9);

    const auto count = parseCount(element(el, n, 1));
    const std::string_view se02 = element(el, n, 2);
    auto issue = [&](X12Errc code, const std::string& what) {
      t.error = X12Issue{code, seg_index, seg_line, seg_offset,
                         where(seg_index, seg_line, seg_offset) + what};
    };
    if (!count || *count != set_segments) {
      issue(X12Errc::se_count_mismatch,
            (count ? "SE-01 is " + std::to_string(*count) : std::string("SE-01 is not a number")) +
                " but " + setName() + " has " + std::to_string(set_segments) +
                " segments (ST..SE)");
    } else if (se02 != t.control_number) {
      issue(X12Errc::se_control_mismatch, "SE-02 '" + printable(se02) +
                                              "' does not match ST-02 '" +
                                              printable(t.control_number) + "'");
    }

    // Self-describing payload: ISA, GS, the set, GE*1*<GS-06>, IEA*1*<ISA-13>.
    const char e = delims.element;
    const char term = delims.segment;
    payload.clear();
    payload.reserve(isa.size() + gs.size() + t.body.size() + 48 + 5 * line_break.size());
    payload.append(isa).append(line_break);
    payload.append(gs).append(line_break);
    payload.append(t.body).append(line_break);
    payload.append("GE").push_back(e);
    payload.push_back('1');
    payload.push_back(e);
    payload.append(t.group_control).push_back(term);
    payload.append(line_break);
    payload.append("IEA").push_back(e);
    payload.push_back('1');
    payload.push_back(e);
    payload.append(t.interchange_control).push_back(term);
    payload.append(line_break);
    t.payload = payload;

    level = Level::group;
    ck.offset = base + end;
    ck.line = line;
    ck.segments = seg_index;
    ck.transactions = tx_count;
    ck.isa = isa;
    ck.line_break = line_break;
    ck.gs = gs;
    ck.groups = groups;
    ck.sets = sets;
    ck.isa_segment = isa_segment;
    ck.gs_segment = gs_segment;
    return Step::transaction;
  }

  Result<Step> next() {
    if (fatal) {
      return fatal_error;
    }
    for (;;) {
      skipWhitespace();
      if (pos == buf.size()) {
        if (!finished) {
          return Step::need_input;
        }
        if (auto r = atEnd()) {
          return std::move(*r);
        }
      }
      if (level == Level::before_isa) {
        if (auto r = readIsa()) {
          return std::move(*r);
        }
        continue;
      }
      if (!line_break_known) {
        line_break_known = true;
        // What followed the ISA's terminator: none, LF, CR or CRLF.
        line_break = pending_break.rfind("\r\n", 0) == 0 ? std::string("\r\n")
                                                            : pending_break.substr(0, 1);
      }
      // Find the terminator of the segment starting at pos.
      const size_t seg_start = pos;
      const size_t seg_limit = seg_start + opt.max_segment_bytes;
      const size_t set_limit =
          level == Level::set ? st_start + opt.max_transaction_bytes : SIZE_MAX;
      const size_t limit = std::min({buf.size(), seg_limit, set_limit});
      scan_from = std::max(scan_from, seg_start);
      const void* hit = scan_from < limit ? std::memchr(buf.data() + scan_from, delims.segment,
                                                        limit - scan_from)
                                          : nullptr;
      if (hit == nullptr) {
        scan_from = limit;
        if (limit < buf.size()) {  // a limit was reached with more bytes at hand
          if (limit == set_limit) {
            return fail(X12Errc::transaction_too_large, st_segment, st_line, base + st_start,
                        setName() + " is longer than max_transaction_bytes (" +
                            std::to_string(opt.max_transaction_bytes) + ")");
          }
          return fail(X12Errc::segment_too_large, seg_index + 1, line, base + seg_start,
                      "segment is longer than max_segment_bytes (" +
                          std::to_string(opt.max_segment_bytes) + ")");
        }
        if (!finished) {
          return Step::need_input;
        }
        return fail(X12Errc::unterminated_segment, seg_index + 1, line, base + seg_start,
                    "end of file inside a segment (no segment terminator)");
      }
      const size_t term_at = static_cast<size_t>(static_cast<const char*>(hit) - buf.data());
      ++seg_index;
      seg_line = line;
      seg_offset = base + seg_start;
      line += static_cast<uint64_t>(std::count(buf.data() + seg_start, buf.data() + term_at + 1,
                                               '\n'));
      pos = term_at + 1;
      scan_from = pos;
      if (auto r = onSegment(seg_start, term_at - seg_start)) {
        return std::move(*r);
      }
    }
  }

  void compact() {
    const size_t keep = level == Level::set ? st_start : pos;
    if (keep == 0 || keep < buf.size() - keep) {
      return;
    }
    buf.erase(0, keep);
    base += keep;
    pos -= keep;
    scan_from = scan_from >= keep ? scan_from - keep : 0;
    if (level == Level::set) {
      st_start = 0;
    }
  }
};

X12Parser::X12Parser(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
X12Parser::X12Parser(X12Parser&&) noexcept = default;
X12Parser& X12Parser::operator=(X12Parser&&) noexcept = default;
X12Parser::~X12Parser() = default;

Result<X12Parser> X12Parser::create(const X12Options& options, const X12Checkpoint& from) {
  if (options.max_segment_bytes < 1024 || options.max_segment_bytes > (size_t{16} << 20)) {
    return Error(Errc::invalid_argument, "X12 max_segment_bytes must be 1 KiB .. 16 MiB");
  }
  if (options.max_transaction_bytes < 1024 || options.max_transaction_bytes > (size_t{1} << 30)) {
    return Error(Errc::invalid_argument, "X12 max_transaction_bytes must be 1 KiB .. 1 GiB");
  }
  auto impl = std::make_unique<Impl>();
  impl->opt = options;
  Impl& m = *impl;
  if (from.isa.empty()) {
    if (from.offset != 0 || !from.gs.empty() || from.line != 1 || from.segments != 0) {
      return Error(Errc::invalid_argument, "X12 checkpoint without ISA must be the file start");
    }
  } else {
    X12Delimiters d;
    if (parseIsa(from.isa, d) || from.line < 1 || from.offset < kIsaLength ||
        from.line_break.size() > 2 ||
        from.line_break.find_first_not_of("\r\n") != std::string::npos) {
      return Error(Errc::invalid_argument, "X12 checkpoint has an invalid ISA or position");
    }
    m.delims = d;
    m.openInterchange(from.isa);
    m.line_break = from.line_break;
    m.line_break_known = true;
    m.groups = from.groups;
    m.isa_segment = from.isa_segment;
    m.gs_segment = from.gs_segment;
    if (!from.gs.empty()) {
      if (from.gs.size() < 4 || from.gs.substr(0, 2) != "GS" || from.gs[2] != d.element ||
          from.gs.back() != d.segment ||
          from.gs.find(d.segment) != from.gs.size() - 1 || !m.openGroup(from.gs)) {
        return Error(Errc::invalid_argument, "X12 checkpoint has an invalid GS");
      }
      m.sets = from.sets;
    }
  }
  m.base = from.offset;
  m.line = from.line;
  m.seg_index = from.segments;
  m.tx_count = from.transactions;
  m.ck = from;
  return X12Parser(std::move(impl));
}

void X12Parser::feed(std::string_view bytes) {
  Impl& m = *impl_;
  if (m.finished || m.fatal || bytes.empty()) {
    return;
  }
  m.compact();
  m.buf.append(bytes);
}

void X12Parser::finish() { impl_->finished = true; }

Result<X12Parser::Step> X12Parser::next() { return impl_->next(); }

const X12Transaction& X12Parser::transaction() const { return impl_->tx; }

X12Checkpoint X12Parser::checkpoint() const { return impl_->ck; }

const X12Issue* X12Parser::fatalIssue() const {
  return impl_->fatal ? &*impl_->fatal : nullptr;
}

size_t X12Parser::bufferedBytes() const { return impl_->buf.size(); }

uint64_t X12Parser::interchangesClosed() const { return impl_->interchanges_closed; }

}  // namespace psa::adapters::file
