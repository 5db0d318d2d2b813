#include "psa/adapters/hl7/batch.h"

#include <cstring>
#include <string>

namespace psa::adapters::hl7 {
namespace {

bool isBlank(std::string_view line) {
  for (char c : line) {
    if (c != ' ' && c != '\t') {
      return false;
    }
  }
  return true;
}

// True if `line` is segment `id` (three chars followed by a non-alphanumeric separator or end).
bool isSegment(std::string_view line, std::string_view id) {
  if (line.size() < 3 || line.substr(0, 3) != id) {
    return false;
  }
  if (line.size() == 3) {
    return true;
  }
  char c = line[3];
  bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  return !alnum && c != ' ';
}

// Field 1 of an envelope segment (BTS-1, FTS-1) as a count: nullopt when absent or empty;
// false return when present but not a non-negative number.
bool firstFieldCount(std::string_view line, std::optional<uint64_t>& out) {
  out.reset();
  if (line.size() <= 4) {
    return true;
  }
  const char sep = line[3];
  std::string_view f = line.substr(4);
  f = f.substr(0, f.find(sep));
  // Only the first component counts (NM; some senders add components).
  for (size_t k = 0; k < f.size(); ++k) {
    char c = f[k];
    bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && c != ' ' && c != '.' && c != '-' && c != '+') {
      f = f.substr(0, k);
      break;
    }
  }
  while (!f.empty() && f.front() == ' ') {
    f.remove_prefix(1);
  }
  while (!f.empty() && f.back() == ' ') {
    f.remove_suffix(1);
  }
  if (f.empty()) {
    return true;
  }
  if (f.size() > 12) {
    return false;
  }
  uint64_t v = 0;
  for (char c : f) {
    if (c < '0' || c > '9') {
      return false;
    }
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  out = v;
  return true;
}

Error lineError(size_t line, std::string_view what) {
  return Error(Errc::invalid_input, "line " + std::to_string(line) + ": " + std::string(what));
}

}  // namespace

Status Hl7File::checkCounts() const {
  for (size_t b = 0; b < batches.size(); ++b) {
    const Batch& batch = batches[b];
    if (batch.declared_count && *batch.declared_count != batch.message_count) {
      return Error(Errc::invalid_input,
                   "batch " + std::to_string(b + 1) + " (line " + std::to_string(batch.line) +
                       "): BTS-1 declares " + std::to_string(*batch.declared_count) +
                       " messages, found " + std::to_string(batch.message_count));
    }
  }
  if (declared_batch_count) {
    size_t found = batches.size();
    if (found == 0 && !messages.empty()) {
      found = 1;
    }
    if (*declared_batch_count != found) {
      return Error(Errc::invalid_input, "FTS-1 declares " + std::to_string(*declared_batch_count) +
                                            " batches, found " + std::to_string(found));
    }
  }
  return {};
}

Result<Hl7File> splitMessages(std::string_view text, const SplitLimits& limits) {
  if (text.size() > limits.max_file_bytes) {
    return Error(Errc::limit, "file is " + std::to_string(text.size()) + " bytes, limit " +
                                  std::to_string(limits.max_file_bytes));
  }
  Hl7File file;
  size_t pos = 0;
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") {
    pos = 3;
  }
  size_t line_no = 0;
  bool seen_segment = false;  // any non-blank line so far
  bool after_fts = false;
  // Current message: [msg_begin, msg_end) once open.
  bool msg_open = false;
  size_t msg_begin = 0;
  size_t msg_end = 0;
  size_t msg_line = 0;
  // Current batch.
  bool batch_open = false;  // a BHS was seen and not yet closed
  Batch batch;
  size_t batch_first = 0;  // first message index not yet in a closed batch

  auto close_message = [&]() -> Status {
    if (!msg_open) {
      return {};
    }
    if (file.messages.size() >= limits.max_messages) {
      return Error(Errc::limit, "line " + std::to_string(msg_line) + ": more than " +
                                    std::to_string(limits.max_messages) + " messages");
    }
    file.messages.push_back(
        FileMessage{text.substr(msg_begin, msg_end - msg_begin), msg_line, msg_begin});
    msg_open = false;
    return {};
  };
  auto close_batch = [&](std::string_view trailer, std::optional<uint64_t> count,
                         size_t line) -> Status {
    if (file.batches.size() >= limits.max_batches) {
      return Error(Errc::limit, "line " + std::to_string(line) + ": more than " +
                                    std::to_string(limits.max_batches) + " batches");
    }
    if (!batch_open) {
      batch = Batch{};
      batch.line = batch_first < file.messages.size() ? file.messages[batch_first].line : line;
    }
    batch.trailer = trailer;
    batch.declared_count = count;
    batch.first_message = batch_first;
    batch.message_count = file.messages.size() - batch_first;
    file.batches.push_back(batch);
    batch_first = file.messages.size();
    batch_open = false;
    batch = Batch{};
    return {};
  };

  const size_t n = text.size();
  while (pos < n) {
    // One line: [pos, eol), terminator [eol, next).
    size_t eol = pos;
    while (eol < n && text[eol] != '\r' && text[eol] != '\n') {
      ++eol;
    }
    size_t next = eol;
    if (next < n) {
      next += (text[next] == '\r' && next + 1 < n && text[next + 1] == '\n') ? 2 : 1;
    }
    ++line_no;
    std::string_view line = text.substr(pos, eol - pos);
    size_t line_start = pos;
    pos = next;

    if (isBlank(line)) {
      PSA_TRY(close_message());
      continue;
    }
    if (after_fts) {
      return lineError(line_no, "data after FTS");
    }
    if (isSegment(line, "MSH")) {
      PSA_TRY(close_message());
      msg_open = true;
      msg_begin = line_start;
      msg_end = next;
      msg_line = line_no;
    } else if (isSegment(line, "FHS")) {
      if (seen_segment) {
        return lineError(line_no, "FHS after the start of the file");
      }
      file.file_header = line;
    } else if (isSegment(line, "FTS")) {
      PSA_TRY(close_message());
      if (batch_open) {
        PSA_TRY(close_batch({}, std::nullopt, line_no));
      }
      file.file_trailer = line;
      if (!firstFieldCount(line, file.declared_batch_count)) {
        return lineError(line_no, "FTS-1 is not a number");
      }
      after_fts = true;
    } else if (isSegment(line, "BHS")) {
      PSA_TRY(close_message());
      if (batch_open) {
        PSA_TRY(close_batch({}, std::nullopt, line_no));
      }
      batch_open = true;
      batch = Batch{};
      batch.header = line;
      batch.line = line_no;
      batch_first = file.messages.size();
    } else if (isSegment(line, "BTS")) {
      PSA_TRY(close_message());
      std::optional<uint64_t> count;
      if (!firstFieldCount(line, count)) {
        return lineError(line_no, "BTS-1 is not a number");
      }
      PSA_TRY(close_batch(line, count, line_no));
    } else if (msg_open) {
      msg_end = next;  // another segment of the current message
    } else {
      return lineError(line_no, "segment outside a message");
    }
    seen_segment = true;
  }
  PSA_TRY(close_message());
  if (batch_open) {
    PSA_TRY(close_batch({}, std::nullopt, line_no));
  }
  return file;
}

}  // namespace psa::adapters::hl7
