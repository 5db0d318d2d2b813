// The streaming CSV parser (csv.h). One piece on purpose, ~800 lines: the RFC 4180 state
// machine, its resumable checkpoint and the row-to-JSON writer share the parser's private
// state, and the fuzzer (tests/fuzz/fuzz_csv.cpp) exercises them as one unit.
#include "psa/adapters/file/csv.h"

#include <algorithm>
#include <array>
#include <unordered_map>

#include "file/token_codec.h"

namespace psa::adapters::file {

namespace {

constexpr size_t kMinRecordBytes = 16;
constexpr size_t kMaxRecordBytes = size_t{1} << 30;
constexpr size_t kMaxColumns = 65536;
constexpr std::string_view kCheckpointTag = "csv1";

/// Scanner states. A record is a sequence of fields; `after_cr` waits for the byte after a
/// CR to swallow the LF of a CRLF.
enum class St : uint8_t { field_start, unquoted, quoted, quoted_quote, after_quote, after_cr };

enum class Scan : uint8_t { record, need_input, end, fatal };

/// One field of the record under construction: its decoded bytes in field_data_ and where
/// it starts in the file (relative to the record start).
struct FieldSpan {
  uint32_t begin = 0;  ///< in field_data
  uint32_t end = 0;
  uint32_t raw_begin = 0;   ///< byte offset of the field's first byte from the record start
  uint32_t line_delta = 0;  ///< lines from the record's first line
  bool quoted = false;
};

std::string where(uint64_t line, uint64_t offset) {
  return "line " + std::to_string(line) + ", byte " + std::to_string(offset) + ": ";
}

/// Physical lines ended within `s` (LF, CRLF, lone CR).
uint64_t countLineEnds(std::string_view s) {
  uint64_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n') {
      ++n;
    } else if (s[i] == '\r' && (i + 1 >= s.size() || s[i + 1] != '\n')) {
      ++n;
    }
  }
  return n;
}

/// Checks header names: non-empty, unique. Returns the 0-based index of the bad column and
/// (for duplicates) of the first one with the same name.
struct HeaderProblem {
  CsvErrc code;
  size_t column;
  size_t first;
};

std::optional<HeaderProblem> checkHeaderNames(const std::vector<std::string>& names) {
  std::unordered_map<std::string_view, size_t> seen;
  seen.reserve(names.size() * 2);
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i].empty()) {
      return HeaderProblem{CsvErrc::empty_header_name, i, i};
    }
    auto [it, inserted] = seen.emplace(names[i], i);
    if (!inserted) {
      return HeaderProblem{CsvErrc::duplicate_header_name, i, it->second};
    }
  }
  return std::nullopt;
}

/// A header name as it may appear in an error message: printable ASCII only, shortened.
std::string printableName(std::string_view name) {
  std::string out;
  for (char c : name.substr(0, 64)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7F ? c : '?');
  }
  if (name.size() > 64) {
    out += "...";
  }
  return out;
}

}  // namespace

std::string_view csvErrcName(CsvErrc code) noexcept {
  switch (code) {
    case CsvErrc::ragged_row:
      return "ragged_row";
    case CsvErrc::quote_in_unquoted_field:
      return "quote_in_unquoted_field";
    case CsvErrc::text_after_closing_quote:
      return "text_after_closing_quote";
    case CsvErrc::invalid_utf8:
      return "invalid_utf8";
    case CsvErrc::unterminated_quote:
      return "unterminated_quote";
    case CsvErrc::record_too_large:
      return "record_too_large";
    case CsvErrc::missing_header:
      return "missing_header";
    case CsvErrc::empty_header_name:
      return "empty_header_name";
    case CsvErrc::duplicate_header_name:
      return "duplicate_header_name";
    case CsvErrc::too_many_columns:
      return "too_many_columns";
    case CsvErrc::unsupported_encoding:
      return "unsupported_encoding";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------
// Checkpoint

std::string CsvCheckpoint::serialize() const {
  detail::TokenWriter w;
  w.str(kCheckpointTag);
  w.num(offset);
  w.num(line);
  w.num(rows);
  w.num(static_cast<uint64_t>(encoding));
  w.num(header.size());
  for (const auto& h : header) {
    w.str(h);
  }
  return w.take();
}

Result<CsvCheckpoint> CsvCheckpoint::deserialize(std::string_view text) {
  detail::TokenReader r(text);
  std::string_view tag;
  CsvCheckpoint c;
  uint64_t enc = 0;
  uint64_t n = 0;
  if (!r.str(tag) || tag != kCheckpointTag || !r.num(c.offset) || !r.num(c.line) ||
      !r.num(c.rows) || !r.num(enc) || !r.num(n) ||
      enc > static_cast<uint64_t>(TextEncoding::auto_detect) || n > kMaxColumns) {
    return Error(Errc::invalid_argument, "malformed CSV checkpoint");
  }
  c.encoding = static_cast<TextEncoding>(enc);
  c.header.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    std::string_view h;
    if (!r.str(h)) {
      return Error(Errc::invalid_argument, "malformed CSV checkpoint");
    }
    c.header.emplace_back(h);
  }
  if (!r.done()) {
    return Error(Errc::invalid_argument, "malformed CSV checkpoint: trailing bytes");
  }
  return c;
}

// ---------------------------------------------------------------------------------------
// Parser

struct CsvParser::Impl {
  CsvOptions opt;
  TextEncoding enc = TextEncoding::utf8;  // in effect (after BOM detection)
  char delim = ',';
  std::array<uint8_t, 256> unquoted_special{};
  std::array<uint8_t, 256> quoted_special{};

  // Input window: buf[0] is file offset `base`.
  std::string buf;
  uint64_t base = 0;
  size_t pos = 0;
  bool finished = false;
  bool bom_checked = false;

  // Scanner
  St st = St::field_start;
  bool need_begin = true;
  bool last_cr = false;  // previous byte inside a quoted field was CR (CRLF counts once)
  bool trim_now = false;
  uint64_t line = 1;

  // Record under construction
  size_t rec_start = 0;  // buf index
  size_t rec_end = 0;    // buf index one past the content (before the line ending)
  uint64_t rec_line = 1;
  uint64_t rec_end_line = 1;
  size_t field_count = 0;
  size_t span_cap = 0;  // spans kept (the rest are counted only)
  size_t discard_from = 0;
  std::string field_data;
  std::vector<FieldSpan> spans;
  uint64_t quote_line = 0;
  uint64_t quote_offset = 0;
  struct Pending {
    CsvErrc code;
    uint64_t line;
    uint64_t offset;
  };
  std::optional<Pending> rec_error;  // first quote error in the record

  // Header
  bool have_header = false;
  std::vector<std::string> header;
  std::vector<std::string> key_prefix;  // `"Name":`

  // Output
  uint64_t rows = 0;
  CsvRow row;
  std::string json;
  std::string utf8_fields;
  std::vector<std::pair<size_t, size_t>> utf8_spans;  // into utf8_fields
  std::vector<std::string_view> field_views;

  // Resume point
  uint64_t ck_offset = 0;
  uint64_t ck_line = 1;

  std::optional<CsvIssue> fatal;
  Error fatal_error;

  bool isTrimSpace(char c) const { return c == ' ' || (c == '\t' && delim != '\t'); }

  // --- fatal errors ---
  Scan fail(CsvErrc code, uint64_t at_line, uint64_t at_offset, const std::string& what) {
    CsvIssue issue{code, at_line, at_offset, where(at_line, at_offset) + what};
    const Errc errc = (code == CsvErrc::record_too_large || code == CsvErrc::too_many_columns)
                          ? Errc::limit
                          : Errc::invalid_input;
    fatal_error = Error(errc, issue.message);
    fatal = std::move(issue);
    return Scan::fatal;
  }

  // --- record assembly ---
  void startField() {
    ++field_count;
    if (field_count <= span_cap) {
      FieldSpan s;
      s.begin = static_cast<uint32_t>(field_data.size());
      s.raw_begin = static_cast<uint32_t>(pos - rec_start);
      s.line_delta = static_cast<uint32_t>(line - rec_line);
      spans.push_back(s);
    } else {
      discard_from = field_data.size();
    }
  }

  void endField() {
    if (field_count > span_cap) {
      field_data.resize(discard_from);
      return;
    }
    FieldSpan& s = spans.back();
    size_t end = field_data.size();
    if (trim_now && !s.quoted) {
      while (end > s.begin && isTrimSpace(field_data[end - 1])) {
        --end;
      }
      field_data.resize(end);
    }
    s.end = static_cast<uint32_t>(end);
  }

  void noteError(CsvErrc code, uint64_t at_line, uint64_t at_offset) {
    if (!rec_error) {
      rec_error = Pending{code, at_line, at_offset};
    }
  }

  void beginRecord() {
    rec_start = pos;
    rec_line = line;
    st = St::field_start;
    last_cr = false;
    field_data.clear();
    spans.clear();
    field_count = 0;
    rec_error.reset();
    trim_now = opt.trim == CsvTrim::all || (opt.trim == CsvTrim::headers && !have_header);
    span_cap = (have_header ? header.size() : opt.max_columns) + 1;
    startField();
    need_begin = false;
  }

  /// Consumes the line ending `c` at pos.
  void endLine(char c) {
    rec_end = pos;
    rec_end_line = line;
    ++pos;
    ++line;
    if (c == '\r') {
      st = St::after_cr;
    }
  }

  Scan atEof() {
    switch (st) {
      case St::field_start:
        if (pos == rec_start) {
          return Scan::end;
        }
        break;
      case St::quoted:
        return fail(CsvErrc::unterminated_quote, quote_line, quote_offset,
                    "quoted field is not closed before the end of the file");
      default:
        break;
    }
    endField();
    rec_end = pos;
    rec_end_line = line;
    return Scan::record;
  }

  /// The record's content passed max_record_bytes: the byte at rec_start + max is one too many.
  Scan failTooLarge() {
    const uint64_t at = base + rec_start + opt.max_record_bytes;
    std::string what = "record starting at line " + std::to_string(rec_line) + ", byte " +
                       std::to_string(base + rec_start) + " is longer than max_record_bytes (" +
                       std::to_string(opt.max_record_bytes) + ")";
    if (st == St::quoted) {
      what += "; it is inside a quoted field opened at line " + std::to_string(quote_line) +
              ", byte " + std::to_string(quote_offset) + " (unterminated quote?)";
    }
    return fail(CsvErrc::record_too_large, lineAt(opt.max_record_bytes), at, what);
  }

  /// Scans from pos until a record is complete or input runs out.
  Scan scan() {
    const char* b = buf.data();
    const size_t size = buf.size();
    // One byte past the limit may be scanned: if it is the line ending the record fits,
    // otherwise (checked here, or at completion in next()) the record is too large.
    const size_t limit = std::min(size, rec_start + opt.max_record_bytes + 1);
    for (;;) {
      if (st == St::after_cr) {
        if (pos < size) {
          if (b[pos] == '\n') {
            ++pos;
          }
          return Scan::record;
        }
        return finished ? Scan::record : Scan::need_input;
      }
      if (pos >= limit) {
        if (limit < size) {
          return failTooLarge();
        }
        return finished ? atEof() : Scan::need_input;
      }
      switch (st) {
        case St::field_start: {
          const char c = b[pos];
          if (trim_now && isTrimSpace(c)) {
            ++pos;
            continue;
          }
          if (c == '"') {
            if (field_count <= span_cap) {
              spans.back().quoted = true;
            }
            quote_line = line;
            quote_offset = base + pos;
            last_cr = false;
            ++pos;
            st = St::quoted;
            continue;
          }
          st = St::unquoted;
          [[fallthrough]];
        }
        case St::unquoted: {
          const size_t start = pos;
          while (pos < limit && unquoted_special[static_cast<uint8_t>(b[pos])] == 0) {
            ++pos;
          }
          if (pos > start) {
            field_data.append(b + start, pos - start);
          }
          if (pos >= limit) {
            continue;
          }
          const char c = b[pos];
          if (c == delim) {
            endField();
            ++pos;
            startField();
            st = St::field_start;
          } else if (c == '"') {
            noteError(CsvErrc::quote_in_unquoted_field, line, base + pos);
            field_data.push_back('"');
            ++pos;
          } else {
            endField();
            endLine(c);
            if (st != St::after_cr) {
              return Scan::record;
            }
          }
          continue;
        }
        case St::quoted: {
          const size_t start = pos;
          while (pos < limit && quoted_special[static_cast<uint8_t>(b[pos])] == 0) {
            ++pos;
          }
          if (pos > start) {
            field_data.append(b + start, pos - start);
            last_cr = false;
          }
          if (pos >= limit) {
            continue;
          }
          const char c = b[pos++];
          if (c == '"') {
            st = St::quoted_quote;
          } else if (c == '\r') {
            field_data.push_back(c);
            ++line;
            last_cr = true;
            continue;
          } else {  // '\n'
            field_data.push_back(c);
            if (!last_cr) {
              ++line;
            }
          }
          last_cr = false;
          continue;
        }
        case St::quoted_quote:
        case St::after_quote: {
          const char c = b[pos];
          if (c == '"' && st == St::quoted_quote) {
            field_data.push_back('"');
            ++pos;
            st = St::quoted;
          } else if (c == delim) {
            endField();
            ++pos;
            startField();
            st = St::field_start;
          } else if (c == '\r' || c == '\n') {
            endField();
            endLine(c);
            if (st != St::after_cr) {
              return Scan::record;
            }
          } else if (trim_now && isTrimSpace(c)) {
            ++pos;
            st = St::after_quote;
          } else {
            // Lenient from here: the rest of the field is data, quotes included.
            noteError(CsvErrc::text_after_closing_quote, line, base + pos);
            st = St::unquoted;
          }
          continue;
        }
        case St::after_cr:
          break;  // handled above
      }
    }
  }

  /// Reads a leading byte-order mark. Returns false while more bytes are needed.
  bool checkBom() {
    const std::string_view avail(buf.data() + pos, buf.size() - pos);
    static constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";
    static constexpr std::string_view kUtf16Le = "\xFF\xFE";
    static constexpr std::string_view kUtf16Be = "\xFE\xFF";
    auto isPrefix = [&](std::string_view bom) {
      return avail.size() < bom.size() && bom.substr(0, avail.size()) == avail;
    };
    if (!finished && (isPrefix(kUtf8Bom) || isPrefix(kUtf16Le) || isPrefix(kUtf16Be))) {
      return false;
    }
    bom_checked = true;
    if (avail.substr(0, 3) == kUtf8Bom) {
      pos += 3;
      enc = TextEncoding::utf8;
    } else if (avail.substr(0, 2) == kUtf16Le || avail.substr(0, 2) == kUtf16Be) {
      fail(CsvErrc::unsupported_encoding, 1, base,
           "UTF-16/UTF-32 byte-order mark; only UTF-8 and Windows-1252 files are supported");
    }
    return true;
  }

  bool isBlank() const {
    return !rec_error && field_count == 1 && !spans[0].quoted && spans[0].begin == spans[0].end;
  }

  /// Line and offset of a position inside the current record.
  uint64_t lineAt(size_t rel) const {
    return rec_line + countLineEnds(std::string_view(buf.data() + rec_start, rel));
  }

  /// Encoding of the completed record, or the invalid byte (relative to rec_start).
  std::optional<size_t> decideEncoding(TextEncoding& row_enc) const {
    row_enc = enc;
    if (enc == TextEncoding::windows1252) {
      return std::nullopt;
    }
    const std::string_view raw(buf.data() + rec_start, rec_end - rec_start);
    const size_t bad = findInvalidUtf8(raw);
    if (bad == std::string_view::npos) {
      row_enc = TextEncoding::utf8;
      return std::nullopt;
    }
    if (enc == TextEncoding::auto_detect) {
      row_enc = TextEncoding::windows1252;
      return std::nullopt;
    }
    return bad;
  }

  std::string quoteErrorText(CsvErrc code) const {
    return code == CsvErrc::quote_in_unquoted_field ? "'\"' inside an unquoted field"
                                                    : "text after the closing quote of a field";
  }

  /// Fills field_views with the record's values as UTF-8.
  void decodeFields(TextEncoding row_enc) {
    field_views.clear();
    const size_t n = std::min(field_count, spans.size());
    if (row_enc == TextEncoding::windows1252) {
      utf8_fields.clear();
      std::vector<std::pair<size_t, size_t>>& at = utf8_spans;
      at.clear();
      for (size_t i = 0; i < n; ++i) {
        const size_t from = utf8_fields.size();
        appendWindows1252AsUtf8(
            utf8_fields,
            std::string_view(field_data.data() + spans[i].begin, spans[i].end - spans[i].begin));
        at.emplace_back(from, utf8_fields.size() - from);
      }
      for (const auto& [from, len] : at) {
        field_views.emplace_back(utf8_fields.data() + from, len);
      }
    } else {
      for (size_t i = 0; i < n; ++i) {
        field_views.emplace_back(field_data.data() + spans[i].begin,
                                 spans[i].end - spans[i].begin);
      }
    }
  }

  Scan takeHeader() {
    const uint64_t rec_offset = base + rec_start;
    if (rec_error) {
      return fail(rec_error->code, rec_error->line, rec_error->offset,
                  quoteErrorText(rec_error->code) + " in the header row");
    }
    TextEncoding row_enc;
    if (auto bad = decideEncoding(row_enc)) {
      return fail(CsvErrc::invalid_utf8, lineAt(*bad), rec_offset + *bad,
                  "invalid UTF-8 in the header row");
    }
    if (field_count > opt.max_columns) {
      const FieldSpan& s = spans[opt.max_columns];
      return fail(CsvErrc::too_many_columns, rec_line + s.line_delta, rec_offset + s.raw_begin,
                  "header has more than max_columns (" + std::to_string(opt.max_columns) +
                      ") columns");
    }
    decodeFields(row_enc);
    std::vector<std::string> names(field_views.begin(), field_views.end());
    if (auto problem = checkHeaderNames(names)) {
      const FieldSpan& s = spans[problem->column];
      const uint64_t at_line = rec_line + s.line_delta;
      const uint64_t at = rec_offset + s.raw_begin;
      if (problem->code == CsvErrc::empty_header_name) {
        return fail(CsvErrc::empty_header_name, at_line, at,
                    "header column " + std::to_string(problem->column + 1) + " has no name");
      }
      return fail(CsvErrc::duplicate_header_name, at_line, at,
                  "duplicate header name '" + printableName(names[problem->column]) +
                      "' (columns " + std::to_string(problem->first + 1) + " and " +
                      std::to_string(problem->column + 1) + ")");
    }
    setHeader(std::move(names));
    return Scan::record;
  }

  void setHeader(std::vector<std::string> names) {
    header = std::move(names);
    key_prefix.clear();
    for (const auto& h : header) {
      std::string k;
      appendJsonString(k, h);
      k.push_back(':');
      key_prefix.push_back(std::move(k));
    }
    have_header = true;
  }

  void finishRow() {
    row.number = ++rows;
    row.line = rec_line;
    row.end_line = rec_end_line;
    row.begin_offset = base + rec_start;
    row.end_offset = base + pos;
    row.raw = std::string_view(buf.data() + rec_start, rec_end - rec_start);
    row.error.reset();
    row.json = {};
    row.fields = {};
    json.clear();
    auto row_tag = [&] { return " (row " + std::to_string(row.number) + ")"; };
    auto issue = [&](CsvErrc code, uint64_t at_line, uint64_t at, const std::string& what) {
      row.error = CsvIssue{code, at_line, at, where(at_line, at) + what};
    };
    if (rec_error) {
      issue(rec_error->code, rec_error->line, rec_error->offset,
            quoteErrorText(rec_error->code) + row_tag());
      return;
    }
    const size_t k = header.size();
    if (field_count != k) {
      const std::string what = "row " + std::to_string(row.number) + " has " +
                               std::to_string(field_count) + " fields, header has " +
                               std::to_string(k);
      if (field_count > k) {
        const FieldSpan& s = spans[k];
        issue(CsvErrc::ragged_row, rec_line + s.line_delta, row.begin_offset + s.raw_begin, what);
      } else {
        issue(CsvErrc::ragged_row, rec_end_line, base + rec_end, what);
      }
      return;
    }
    TextEncoding row_enc;
    if (auto bad = decideEncoding(row_enc)) {
      issue(CsvErrc::invalid_utf8, lineAt(*bad), row.begin_offset + *bad,
            "invalid UTF-8" + row_tag());
      return;
    }
    decodeFields(row_enc);
    json.push_back('{');
    for (size_t i = 0; i < k; ++i) {
      if (i != 0) {
        json.push_back(',');
      }
      json.append(key_prefix[i]);
      appendJsonString(json, field_views[i]);
    }
    json.push_back('}');
    row.json = json;
    row.fields = field_views;
  }

  void compact() {
    const size_t keep = need_begin ? pos : rec_start;
    if (keep == 0 || keep < buf.size() - keep) {
      return;  // amortised: move only when at least half the buffer is dead
    }
    buf.erase(0, keep);
    base += keep;
    pos -= keep;
    rec_start = need_begin ? 0 : rec_start - keep;
    rec_end = rec_end >= keep ? rec_end - keep : 0;  // set while waiting in after_cr
  }
};

CsvParser::CsvParser(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CsvParser::CsvParser(CsvParser&&) noexcept = default;
CsvParser& CsvParser::operator=(CsvParser&&) noexcept = default;
CsvParser::~CsvParser() = default;

Result<CsvParser> CsvParser::create(const CsvOptions& options, const CsvCheckpoint& from) {
  const char d = options.delimiter;
  if (d != ',' && d != ';' && d != '\t' && d != '|') {
    return Error(Errc::invalid_argument, "CSV delimiter must be one of , ; | or tab");
  }
  if (options.max_record_bytes < kMinRecordBytes || options.max_record_bytes > kMaxRecordBytes) {
    return Error(Errc::invalid_argument, "CSV max_record_bytes must be 16 B .. 1 GiB");
  }
  if (options.max_columns < 1 || options.max_columns > kMaxColumns) {
    return Error(Errc::invalid_argument, "CSV max_columns must be 1 .. 65536");
  }
  if (from.line < 1 || (from.header.empty() != (from.offset == 0)) ||
      (from.header.empty() && from.rows != 0)) {
    return Error(Errc::invalid_argument,
                 "CSV checkpoint is inconsistent (a header is needed exactly when offset > 0)");
  }
  if (!from.header.empty() &&
      (from.header.size() > options.max_columns || checkHeaderNames(from.header))) {
    return Error(Errc::invalid_argument, "CSV checkpoint header is invalid");
  }
  auto impl = std::make_unique<Impl>();
  impl->opt = options;
  impl->delim = d;
  for (unsigned char c : {static_cast<unsigned char>(d), static_cast<unsigned char>('"'),
                          static_cast<unsigned char>('\r'), static_cast<unsigned char>('\n')}) {
    impl->unquoted_special[c] = 1;
  }
  for (unsigned char c : {'"', '\r', '\n'}) {
    impl->quoted_special[c] = 1;
  }
  impl->enc = options.encoding;
  impl->base = from.offset;
  impl->line = from.line;
  impl->rows = from.rows;
  impl->ck_offset = from.offset;
  impl->ck_line = from.line;
  if (!from.header.empty()) {
    impl->enc = from.encoding;
    impl->bom_checked = true;
    impl->setHeader(from.header);
  }
  return CsvParser(std::move(impl));
}

void CsvParser::feed(std::string_view bytes) {
  Impl& m = *impl_;
  if (m.finished || m.fatal || bytes.empty()) {
    return;
  }
  m.compact();
  m.buf.append(bytes);
}

void CsvParser::finish() { impl_->finished = true; }

Result<CsvParser::Step> CsvParser::next() {
  Impl& m = *impl_;
  if (m.fatal) {
    return m.fatal_error;
  }
  for (;;) {
    if (!m.bom_checked) {
      if (!m.checkBom()) {
        return Step::need_input;
      }
      if (m.fatal) {
        return m.fatal_error;
      }
    }
    if (m.need_begin) {
      m.beginRecord();
    }
    switch (m.scan()) {
      case Scan::need_input:
        return Step::need_input;
      case Scan::fatal:
        return m.fatal_error;
      case Scan::end:
        if (!m.have_header) {
          m.fail(CsvErrc::missing_header, m.line, m.base + m.pos,
                 "no header row (the file is empty or blank)");
          return m.fatal_error;
        }
        return Step::end;
      case Scan::record:
        break;
    }
    if (m.rec_end - m.rec_start > m.opt.max_record_bytes) {
      m.failTooLarge();
      return m.fatal_error;
    }
    m.need_begin = true;
    if (m.isBlank()) {
      m.ck_offset = m.base + m.pos;
      m.ck_line = m.line;
      continue;
    }
    if (!m.have_header) {
      if (m.takeHeader() == Scan::fatal) {
        return m.fatal_error;
      }
      m.ck_offset = m.base + m.pos;
      m.ck_line = m.line;
      continue;
    }
    m.finishRow();
    m.ck_offset = m.base + m.pos;
    m.ck_line = m.line;
    return Step::row;
  }
}

const CsvRow& CsvParser::row() const { return impl_->row; }

const std::vector<std::string>& CsvParser::header() const { return impl_->header; }

CsvCheckpoint CsvParser::checkpoint() const {
  const Impl& m = *impl_;
  CsvCheckpoint c;
  c.offset = m.ck_offset;
  c.line = m.ck_line;
  c.rows = m.rows;
  if (m.have_header) {
    c.header = m.header;
    c.encoding = m.enc;
  } else {
    // Nothing read yet that a resume could reuse: start over from the top.
    c.offset = 0;
    c.line = 1;
    c.encoding = m.opt.encoding;
  }
  return c;
}

const CsvIssue* CsvParser::fatalIssue() const {
  return impl_->fatal ? &*impl_->fatal : nullptr;
}

size_t CsvParser::bufferedBytes() const { return impl_->buf.size(); }

}  // namespace psa::adapters::file
