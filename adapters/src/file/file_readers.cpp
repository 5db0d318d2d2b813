#include "file/file_readers.h"

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "psa/adapters/file/csv.h"
#include "psa/adapters/file/x12.h"
#include "psa/adapters/hl7/identity.h"
#include "psa/adapters/hl7/message.h"
#include "psa/adapters/hl7/validate.h"

namespace psa::adapters::file {

namespace {

std::string where(uint64_t line, uint64_t offset) {
  return "line " + std::to_string(line) + ", byte " + std::to_string(offset);
}

store::Record baseRecord(const ReaderContext& ctx, store::Kind kind, std::string_view format) {
  store::Record r;
  r.source = ctx.config->name;
  r.vendor = ctx.config->vendor;
  r.kind = kind;
  r.format = std::string(format);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Streaming reader shared by CSV and X12: reads the file in chunks into the parser.

template <class Parser>
class Feeder {
 public:
  Feeder(const InputFile* file, uint64_t size, uint64_t pos)
      : file_(file), size_(size), pos_(pos) {}

  // Feeds the next chunk (or finishes). Error on a read failure.
  Status refill(Parser& parser) {
    if (finished_) {
      return {};
    }
    if (pos_ >= size_) {
      parser.finish();
      finished_ = true;
      return {};
    }
    if (buf_.empty()) {
      buf_.resize(kReadChunk);
    }
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kReadChunk, size_ - pos_));
    auto n = file_->readAt(pos_, buf_.data(), want);
    if (!n) {
      return std::move(n).error();
    }
    if (*n == 0) {  // shorter than it was: the end comes early
      parser.finish();
      finished_ = true;
      return {};
    }
    parser.feed(std::string_view(buf_.data(), *n));
    pos_ += *n;
    if (pos_ >= size_) {
      parser.finish();
      finished_ = true;
    }
    return {};
  }

 private:
  const InputFile* file_;
  uint64_t size_;
  uint64_t pos_;
  bool finished_ = false;
  std::string buf_;
};

// ---------------------------------------------------------------------------------------------
// CSV

class CsvReader final : public FormatReader {
 public:
  CsvReader(const ReaderContext& ctx, CsvParser parser, int64_t shift, uint64_t start)
      : ctx_(ctx),
        parser_(std::move(parser)),
        shift_(shift),
        feeder_(ctx.file, ctx.file_size, start) {}

  static Result<FormatReaderPtr> create(const ReaderContext& ctx, const std::string& cp_text) {
    const CsvSettings& s = ctx.profile->csv;
    CsvCheckpoint cp;
    if (!cp_text.empty()) {
      auto parsed = CsvCheckpoint::deserialize(cp_text);
      if (!parsed) {
        return Error(Errc::invalid_argument,
                     "stored CSV checkpoint unreadable: " + parsed.error().message);
      }
      cp = std::move(parsed).value();
    }
    int64_t shift = 0;
    if (!s.header) {
      // No header row: hand the parser the configured names as if a 1-byte header had been
      // read, and map its offsets back to the file (a UTF-8 BOM is skipped here).
      uint64_t file_start = 0;
      char bom[3] = {};
      auto n = ctx.file->readAt(0, bom, 3);
      if (!n) {
        return std::move(n).error();
      }
      const bool has_bom = *n == 3 && std::memcmp(bom, "\xEF\xBB\xBF", 3) == 0;
      if (has_bom) {
        file_start = 3;
      }
      shift = static_cast<int64_t>(file_start) - 1;
      if (cp_text.empty()) {
        cp.offset = 1;
        cp.line = 1;
        cp.header = s.columns;
        cp.encoding = has_bom ? TextEncoding::utf8 : s.options.encoding;
      }
    }
    auto parser = CsvParser::create(s.options, cp);
    if (!parser) {
      return Error(Errc::invalid_argument, parser.error().message);
    }
    const uint64_t start = static_cast<uint64_t>(static_cast<int64_t>(cp.offset) + shift);
    return FormatReaderPtr(
        std::make_unique<CsvReader>(ctx, std::move(parser).value(), shift, start));
  }

  Result<Item::Type> next(Item& out) override {
    if (!fatal_.code.empty()) {
      return Error(fatal_errc_, fatal_.message);
    }
    for (;;) {
      auto st = parser_.next();
      if (!st) {
        const CsvIssue* issue = parser_.fatalIssue();
        fatal_errc_ =
            st.error().code == make_error_code(Errc::limit) ? Errc::limit : Errc::invalid_input;
        if (issue != nullptr) {
          fatal_.code = std::string(csvErrcName(issue->code));
          fatal_.line = issue->line;
          fatal_.offset = fileOffset(issue->offset);
          fatal_.message = rewrite(*issue);
        } else {
          fatal_.code = "csv";
          fatal_.message = st.error().message;
        }
        return Error(fatal_errc_, fatal_.message);
      }
      switch (*st) {
        case CsvParser::Step::row: {
          const CsvRow& row = parser_.row();
          if (row.error) {
            out.type = Item::Type::dead;
            out.record = baseRecord(ctx_, ctx_.profile->kind, store::format::kBinary);
            out.record.payload = Sensitive<std::string>(std::string(row.raw));
            out.reason = ctx_.label + " row " + std::to_string(row.number) + ": " +
                         rewrite(*row.error) + " (" + std::string(csvErrcName(row.error->code)) +
                         ")";
          } else {
            out.type = Item::Type::record;
            out.record = baseRecord(ctx_, ctx_.profile->kind, store::format::kCsvJson);
            out.record.payload = Sensitive<std::string>(std::string(row.json));
            out.reason.clear();
          }
          return out.type;
        }
        case CsvParser::Step::need_input:
          if (auto r = feeder_.refill(parser_); !r) {
            fatal_errc_ = Errc::io;
            fatal_.code = "read_error";
            fatal_.message = r.error().message;
            return Error(Errc::io, fatal_.message);
          }
          break;
        case CsvParser::Step::end:
          out.type = Item::Type::end;
          return out.type;
      }
    }
  }

  std::string checkpoint() const override { return parser_.checkpoint().serialize(); }

  std::string position() const override {
    const CsvCheckpoint cp = parser_.checkpoint();
    return "row " + std::to_string(cp.rows) + " done, next at " +
           where(cp.line, fileOffset(cp.offset));
  }

  const FatalIssue& fatal() const override { return fatal_; }

 private:
  uint64_t fileOffset(uint64_t parser_offset) const {
    return static_cast<uint64_t>(static_cast<int64_t>(parser_offset) + shift_);
  }

  // The parser's message with the byte offset in file terms.
  std::string rewrite(const CsvIssue& issue) const {
    if (shift_ == 0) {
      return issue.message;
    }
    const std::string prefix = where(issue.line, issue.offset) + ": ";
    std::string rest =
        issue.message.rfind(prefix, 0) == 0 ? issue.message.substr(prefix.size()) : issue.message;
    return where(issue.line, fileOffset(issue.offset)) + ": " + rest;
  }

  const ReaderContext& ctx_;
  CsvParser parser_;
  int64_t shift_;
  Feeder<CsvParser> feeder_;
  FatalIssue fatal_;
  Errc fatal_errc_ = Errc::invalid_input;
};

// ---------------------------------------------------------------------------------------------
// X12

class X12Reader final : public FormatReader {
 public:
  X12Reader(const ReaderContext& ctx, X12Parser parser, uint64_t start)
      : ctx_(ctx), parser_(std::move(parser)), feeder_(ctx.file, ctx.file_size, start) {}

  static Result<FormatReaderPtr> create(const ReaderContext& ctx, const std::string& cp_text) {
    X12Checkpoint cp;
    if (!cp_text.empty()) {
      auto parsed = X12Checkpoint::deserialize(cp_text);
      if (!parsed) {
        return Error(Errc::invalid_argument,
                     "stored X12 checkpoint unreadable: " + parsed.error().message);
      }
      cp = std::move(parsed).value();
    }
    auto parser = X12Parser::create(ctx.config->x12, cp);
    if (!parser) {
      return Error(Errc::invalid_argument, parser.error().message);
    }
    return FormatReaderPtr(std::make_unique<X12Reader>(ctx, std::move(parser).value(), cp.offset));
  }

  Result<Item::Type> next(Item& out) override {
    if (!fatal_.code.empty()) {
      return Error(fatal_errc_, fatal_.message);
    }
    for (;;) {
      auto st = parser_.next();
      if (!st) {
        fatal_errc_ =
            st.error().code == make_error_code(Errc::limit) ? Errc::limit : Errc::invalid_input;
        if (const X12Issue* issue = parser_.fatalIssue()) {
          fatal_.code = std::string(x12ErrcName(issue->code));
          fatal_.line = issue->line;
          fatal_.offset = issue->offset;
          fatal_.message = issue->message;
        } else {
          fatal_.code = "x12";
          fatal_.message = st.error().message;
        }
        return Error(fatal_errc_, fatal_.message);
      }
      switch (*st) {
        case X12Parser::Step::transaction: {
          const X12Transaction& t = parser_.transaction();
          out.record = baseRecord(ctx_, store::Kind::billing, store::format::kX12);
          out.record.payload = Sensitive<std::string>(std::string(t.payload));
          if (t.error) {
            out.type = Item::Type::dead;
            out.reason = ctx_.label + " transaction set " + std::to_string(t.number) + ": " +
                         t.error->message + " (" + std::string(x12ErrcName(t.error->code)) + ")";
          } else {
            out.type = Item::Type::record;
            out.reason.clear();
          }
          return out.type;
        }
        case X12Parser::Step::need_input:
          if (auto r = feeder_.refill(parser_); !r) {
            fatal_errc_ = Errc::io;
            fatal_.code = "read_error";
            fatal_.message = r.error().message;
            return Error(Errc::io, fatal_.message);
          }
          break;
        case X12Parser::Step::end:
          out.type = Item::Type::end;
          return out.type;
      }
    }
  }

  std::string checkpoint() const override { return parser_.checkpoint().serialize(); }

  std::string position() const override {
    const X12Checkpoint cp = parser_.checkpoint();
    return "transaction set " + std::to_string(cp.transactions) + " done, next at " +
           where(cp.line, cp.offset);
  }

  const FatalIssue& fatal() const override { return fatal_; }

 private:
  const ReaderContext& ctx_;
  X12Parser parser_;
  Feeder<X12Parser> feeder_;
  FatalIssue fatal_;
  Errc fatal_errc_ = Errc::invalid_input;
};

// ---------------------------------------------------------------------------------------------
// HL7 v2 (the file is in memory, already split)

class Hl7Reader final : public FormatReader {
 public:
  Hl7Reader(const ReaderContext& ctx, size_t index) : ctx_(ctx), index_(index) {}

  static Result<FormatReaderPtr> create(const ReaderContext& ctx, const std::string& cp_text) {
    size_t index = 0;
    if (!cp_text.empty()) {
      unsigned long long idx = 0, off = 0;
      int used = 0;
      if (std::sscanf(cp_text.c_str(), "hl7:%llu:%llu%n", &idx, &off, &used) != 2 ||
          static_cast<size_t>(used) != cp_text.size()) {
        return Error(Errc::invalid_argument, "stored HL7 checkpoint unreadable");
      }
      const auto& msgs = ctx.hl7_file->messages;
      const uint64_t expect = idx < msgs.size() ? msgs[idx].offset : ctx.text.size();
      if (idx > msgs.size() || expect != off) {
        return Error(Errc::invalid_argument, "stored HL7 checkpoint does not fit this file");
      }
      index = static_cast<size_t>(idx);
    }
    return FormatReaderPtr(std::make_unique<Hl7Reader>(ctx, index));
  }

  Result<Item::Type> next(Item& out) override {
    const auto& msgs = ctx_.hl7_file->messages;
    if (index_ >= msgs.size()) {
      out.type = Item::Type::end;
      return out.type;
    }
    const hl7::FileMessage& fm = msgs[index_++];
    const std::string at = ctx_.label + " message " + std::to_string(index_) + " (" +
                           where(fm.line, fm.offset) + "): ";
    issues_.clear();
    store::Kind kind = store::Kind::other;
    bool good = false;
    if (auto st = msg_.parse(fm.text); !st) {
      issues_.push_back(msg_.failure());
    } else {
      kind = ctx_.config->hl7_classifier.classify(msg_);
      good = hl7::validate(msg_, ctx_.config->hl7_rules, issues_);
    }
    out.record = baseRecord(ctx_, kind, store::format::kHl7v2);
    out.record.payload = Sensitive<std::string>(std::string(fm.text));
    if (good) {
      out.type = Item::Type::record;
      out.reason.clear();
      if (ctx_.config->hl7_dedupe) {
        out.record.dedupe_identity = Sensitive<std::string>(hl7::dedupeIdentity(msg_));
      }
    } else {
      out.type = Item::Type::dead;
      out.reason =
          at + (issues_.empty() ? std::string("invalid message") : issues_.front().describe());
      if (issues_.size() > 1) {
        out.reason += " (+" + std::to_string(issues_.size() - 1) + " more)";
      }
    }
    return out.type;
  }

  std::string checkpoint() const override {
    const auto& msgs = ctx_.hl7_file->messages;
    const uint64_t off = index_ < msgs.size() ? msgs[index_].offset : ctx_.text.size();
    return "hl7:" + std::to_string(index_) + ":" + std::to_string(off);
  }

  std::string position() const override {
    const auto& msgs = ctx_.hl7_file->messages;
    if (index_ < msgs.size()) {
      return "message " + std::to_string(index_) + " done, next at " +
             where(msgs[index_].line, msgs[index_].offset);
    }
    return "message " + std::to_string(index_) + " done (all)";
  }

  const FatalIssue& fatal() const override { return fatal_; }

 private:
  const ReaderContext& ctx_;
  size_t index_;
  hl7::Message msg_;
  std::vector<hl7::Issue> issues_;
  FatalIssue fatal_;
};

// ---------------------------------------------------------------------------------------------
// Opaque: the whole file is one record.

class OpaqueReader final : public FormatReader {
 public:
  OpaqueReader(const ReaderContext& ctx, bool done) : ctx_(ctx), done_(done) {}

  Result<Item::Type> next(Item& out) override {
    if (done_) {
      out.type = Item::Type::end;
      return out.type;
    }
    done_ = true;
    out.type = Item::Type::record;
    out.record = baseRecord(ctx_, ctx_.profile->kind, store::format::kBinary);
    out.record.payload = Sensitive<std::string>(std::string(ctx_.text));
    out.reason.clear();
    return out.type;
  }
  std::string checkpoint() const override { return done_ ? "opaque:1" : "opaque:0"; }
  std::string position() const override { return done_ ? "whole file" : "start"; }
  const FatalIssue& fatal() const override { return fatal_; }

 private:
  const ReaderContext& ctx_;
  bool done_;
  FatalIssue fatal_;
};

}  // namespace

Result<FormatReaderPtr> makeReader(const ReaderContext& ctx, const std::string& checkpoint) {
  switch (ctx.profile->format) {
    case FileFormat::csv:
      return CsvReader::create(ctx, checkpoint);
    case FileFormat::x12:
      return X12Reader::create(ctx, checkpoint);
    case FileFormat::hl7:
      return Hl7Reader::create(ctx, checkpoint);
    case FileFormat::opaque:
      if (!checkpoint.empty() && checkpoint != "opaque:0" && checkpoint != "opaque:1") {
        return Error(Errc::invalid_argument, "stored checkpoint does not fit an opaque file");
      }
      return FormatReaderPtr(std::make_unique<OpaqueReader>(ctx, checkpoint == "opaque:1"));
  }
  return Error(Errc::invalid_argument, "unknown format");
}

}  // namespace psa::adapters::file
