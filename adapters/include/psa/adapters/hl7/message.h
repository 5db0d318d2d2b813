// Zero-copy HL7 v2 (2.1 - 2.8) message parser.
//
// A Message indexes a caller-owned buffer: it records where each segment and each field
// starts (two compact arrays of 32-bit offsets) and hands out string_views into the buffer.
// Repetitions, components and sub-components are located on demand by scanning the field,
// so parsing allocates nothing per field, and a Message reused for the next buffer allocates
// nothing at all once warmed up. The parser never modifies the buffer: the stored payload is
// the received bytes. Decoding (escape sequences + MSH-18 character set) happens only in
// decode(), which returns UTF-8.
//
// Paths (parsePath, Message::get):
//   SEG[occ]-field[rep].component.subcomponent      e.g. PID-5[2].1, OBX[3]-5, MSH-9.2
//   - occ: occurrence of the segment id in the message (default 1)
//   - a path without [rep] and without component means the whole field, all repetitions;
//     with a component and no [rep], repetition 1.
//   - MSH-1 is the field separator, MSH-2 the encoding characters (FHS and BHS likewise);
//     both are atomic (never split into components).
//   - #N-field... names the N-th segment of the message by position (1-based), whatever its
//     id: inspect uses it for segments whose id is not three upper-case letters/digits.
//
// Three states of an element (the HL7 distinction that matters for updates):
//   absent - beyond the last field / repetition / component present in the message
//   empty  - present with zero length ("PID|1||" : PID-2 is empty, PID-3 empty, PID-4 absent)
//   null   - exactly "" (two double quotes): the sender explicitly clears the value
// A present field has at least one repetition, which has at least one component, which has
// at least one sub-component (so PID-2.1 of an empty PID-2 is empty, PID-2.2 absent).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "psa/adapters/hl7/encoding.h"
#include "psa/adapters/hl7/issue.h"
#include "psa/store/result.h"

namespace psa::adapters::hl7 {

/// Hard limits the parser enforces (Errc::limit with byte offset and segment index).
/// Memory used by a parsed message is at most ~20 bytes per segment plus 4 bytes per field.
struct Limits {
  size_t max_message_bytes = 16u << 20;  ///< clamped to 4 GiB - 1
  size_t max_segments = 100000;
  size_t max_fields_per_segment = 1000;
  size_t max_total_fields = 1u << 20;  ///< segment ids plus fields, whole message
  size_t max_repetitions = 10000;      ///< per field
  size_t max_components = 1000;        ///< per repetition
  size_t max_subcomponents = 1000;     ///< per component
};

enum class Presence : uint8_t { absent, empty, null, value };

/// One field, repetition, component or sub-component: raw bytes (escapes not resolved, in the
/// message charset) viewing the parsed buffer, and its presence state.
struct Element {
  std::string_view raw;
  Presence presence = Presence::absent;

  bool absent() const { return presence == Presence::absent; }
  bool present() const { return presence != Presence::absent; }
  /// Present with zero length.
  bool empty() const { return presence == Presence::empty; }
  /// The HL7 explicit null `""`.
  bool isNull() const { return presence == Presence::null; }
  /// Present, not empty and not null.
  bool hasValue() const { return presence == Presence::value; }
};

/// The presence of a raw (still escaped) value: empty, the HL7 explicit null `""`, or a value.
Presence presenceOf(std::string_view raw);

/// A segment id as a path names it: exactly 3 upper-case letters or digits ("PID", "ZP1").
bool isSegmentId(std::string_view id);

/// A parsed path (see the file comment). Numbers are 1-based; 0 = not given.
struct Path {
  std::string segment;  ///< upper-case segment id, e.g. "PID"; empty when position is used
  int position = 0;     ///< "#N": the N-th segment (1-based); 0 = by id and occurrence
  int occurrence = 1;
  int field = 0;
  int repetition = 0;
  int component = 0;
  int subcomponent = 0;

  std::string toString() const;
  friend bool operator==(const Path&, const Path&) = default;
};

/// Parses "PID-5[2].1" and friends ("#4-2" by segment position). Segment ids are 3
/// letters/digits (case-insensitive); numbers 1..99999. Errors: Errc::invalid_argument naming
/// the column.
Result<Path> parsePath(std::string_view text);

/// A parsed message. Holds views into the parsed buffer: keep the buffer alive and unchanged
/// while the Message and any Element taken from it are used. Not thread-safe for parse();
/// const methods may be called concurrently.
class Message {
 public:
  Message() = default;

  /// Parses one message. Leading CR/LF and a UTF-8 byte order mark are skipped; segments end
  /// at CR, LF or CRLF; blank (or all-blank) lines are ignored. The first segment must be
  /// MSH (or FHS/BHS, which carry delimiters the same way); everything else is left to
  /// validate(). Reuses capacity from a previous parse.
  /// Errors: Errc::invalid_input (no MSH at the start, no field separator; HL7 100/101),
  /// Errc::limit (a Limits value exceeded; HL7 207); failure() has the details. On failure
  /// the message is empty.
  Status parse(std::string_view text, const Limits& limits = {});

  /// True after a successful parse().
  bool parsed() const { return !segments_.empty(); }
  /// The problem that made the last parse() fail (code none after success).
  const Issue& failure() const { return failure_; }

  /// The buffer given to parse().
  std::string_view text() const { return text_; }
  /// From the first byte of the first segment to the last byte of the last segment (no BOM,
  /// no leading or trailing terminators): the part that identifies the content.
  std::string_view content() const;
  const Delimiters& delimiters() const { return delims_; }
  /// Character set from MSH-18 (first repetition).
  Charset charset() const { return charset_; }

  size_t segmentCount() const { return segments_.size(); }
  std::string_view segmentId(size_t segment) const;
  /// The segment's bytes without its terminator.
  std::string_view segmentText(size_t segment) const;
  /// Byte offset of the segment in text().
  size_t segmentOffset(size_t segment) const;
  /// 1-based occurrence of segment `segment`'s id up to and including it.
  int occurrenceOf(size_t segment) const;
  /// Index of the `occurrence`-th segment with id `id`.
  std::optional<size_t> findSegment(std::string_view id, int occurrence = 1) const;
  size_t countSegments(std::string_view id) const;

  /// Number of the last field present in the segment (MSH counts MSH-1).
  int fieldCount(size_t segment) const;
  /// A whole field (all repetitions).
  Element field(size_t segment, int field) const;
  /// rep/comp/sub are 1-based; 0 means "the whole" (rep 0 with comp > 0 means rep 1).
  Element get(size_t segment, int field, int rep, int comp = 0, int sub = 0) const;
  Element get(const Path& path) const;
  /// Absent if `path` does not parse.
  Element get(std::string_view path) const;

  /// 0 when absent.
  int repetitionCount(size_t segment, int field) const;
  int componentCount(size_t segment, int field, int rep) const;
  int subcomponentCount(size_t segment, int field, int rep, int comp) const;

  /// The element's value as UTF-8: escapes resolved, charset converted. "" for absent,
  /// empty and null elements (check presence first).
  std::string decode(const Element& element) const;
  void decodeTo(const Element& element, std::string& out) const;

  /// Shortcuts into the first segment (raw, "" when absent).
  std::string_view messageType() const;  ///< MSH-9.1
  /// MSH-9.2; for v2.1-style messages without it, EVN-1.
  std::string_view triggerEvent() const;
  std::string_view messageStructure() const;    ///< MSH-9.3
  std::string_view controlId() const;           ///< MSH-10
  std::string_view processingId() const;        ///< MSH-11.1
  std::string_view version() const;             ///< MSH-12.1
  std::string_view acceptAckType() const;       ///< MSH-15
  std::string_view applicationAckType() const;  ///< MSH-16

 private:
  struct Segment {
    uint32_t begin;        // offset of the segment id
    uint32_t end;          // one past the last byte (terminator excluded)
    uint32_t first_field;  // index into fields_ of element 0 (the segment id)
    uint32_t count;        // elements: id + one per field separator
    bool header;           // MSH/FHS/BHS: field 1 is the separator itself
  };

  struct ParseState;  // parser bookkeeping (message.cpp)

  // Growable array of 32-bit offsets that can hand out raw room for batched writes.
  class Offsets {
   public:
    Offsets() = default;
    Offsets(const Offsets& other) { *this = other; }
    Offsets& operator=(const Offsets& other);
    Offsets(Offsets&& other) noexcept { *this = std::move(other); }
    Offsets& operator=(Offsets&& other) noexcept;
    ~Offsets() = default;

    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    void clear() { size_ = 0; }
    void truncate(size_t n) { size_ = n; }
    uint32_t operator[](size_t i) const { return data_[i]; }
    uint32_t back() const { return data_[size_ - 1]; }
    void push_back(uint32_t v) {
      if (size_ == cap_) {
        grow(1);
      }
      data_[size_++] = v;
    }
    /// Room for at least `k` more values; write them, then commit(end of what was written).
    uint32_t* room(size_t k) {
      if (cap_ - size_ < k) {
        grow(k);
      }
      return data_.get() + size_;
    }
    void commit(const uint32_t* end) { size_ = static_cast<size_t>(end - data_.get()); }

   private:
    void grow(size_t k);
    std::unique_ptr<uint32_t[]> data_;
    size_t size_ = 0;
    size_t cap_ = 0;
  };

  std::string_view element(const Segment& s, uint32_t index) const;
  Status fail(ErrorCode code, Errc errc, size_t offset, std::string text, Location where);
  // Parser slow paths; false after fail().
  bool onEvent(ParseState& ps, size_t pos);
  void openSegment(ParseState& ps, size_t begin);
  bool closeSegment(ParseState& ps, size_t end);
  bool checkNesting(ParseState& ps, size_t begin, size_t end);
  Location failLocation(const ParseState& ps, int element) const;

  std::string_view text_;
  Delimiters delims_;
  Charset charset_ = Charset::ascii;
  std::vector<Segment> segments_;
  Offsets fields_;  // start offset of each element
  Issue failure_;
};

/// Parses into a new Message (convenience; allocates).
Result<Message> parseMessage(std::string_view text, const Limits& limits = {});

}  // namespace psa::adapters::hl7
