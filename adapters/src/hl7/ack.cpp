#include "psa/adapters/hl7/ack.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <random>

#include "psa/store/clock.h"

namespace psa::adapters::hl7 {
namespace {

constexpr char kHex[] = "0123456789ABCDEF";
constexpr size_t kMaxErrSegments = 16;
constexpr size_t kRejectScanBytes = 4096;

// major*10000 + minor*100 + patch for "2.5.1"; -1 when not of that form.
int versionKey(std::string_view v) {
  int parts[3] = {0, 0, 0};
  int idx = 0;
  bool digit = false;
  for (char c : v) {
    if (c >= '0' && c <= '9') {
      if (parts[idx] > 99) {
        return -1;
      }
      parts[idx] = parts[idx] * 10 + (c - '0');
      digit = true;
    } else if (c == '.' && digit && idx < 2) {
      ++idx;
      digit = false;
    } else {
      return -1;
    }
  }
  if (!digit || idx == 0) {
    return -1;
  }
  return parts[0] * 10000 + parts[1] * 100 + parts[2];
}

void appendTimestamp(std::string& out, const ClockPtr& clock) {
  // Formatting costs more than the rest of an ACK: cache it per second and thread.
  struct Cache {
    std::time_t second = -1;
    char text[32] = {};
    size_t size = 0;
  };
  thread_local Cache cache;
  std::time_t t = std::chrono::system_clock::to_time_t(clock->now());
  if (t != cache.second) {
    const std::tm tm = utcCalendar(static_cast<int64_t>(t));
    int n = std::snprintf(cache.text, sizeof cache.text, "%04d%02d%02d%02d%02d%02d+0000",
                          tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                          tm.tm_sec);
    cache.size = n > 0 ? static_cast<size_t>(n) : 0;
    cache.second = t;
  }
  out.append(cache.text, cache.size);
}

std::string_view ackCode(Outcome outcome, bool enhanced) {
  switch (outcome) {
    case Outcome::accept:
      return enhanced ? "CA" : "AA";
    case Outcome::error:
      return enhanced ? "CE" : "AE";
    case Outcome::reject:
      return enhanced ? "CR" : "AR";
  }
  return enhanced ? "CR" : "AR";
}

bool isDelimiterChar(char c) {
  auto u = static_cast<unsigned char>(c);
  bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  return u > 0x20 && u < 0x7f && !alnum;
}

// The values an ACK echoes, raw in `src` delimiters.
struct Echo {
  Delimiters src;
  std::string_view msh3, msh4, msh5, msh6, msh10, msh11, msh12, msh18, trigger, version;
};

void appendInt(std::string& out, int v) { out += std::to_string(v); }

void appendLocation25(std::string& out, const Location& loc, const Delimiters& d) {
  if (loc.segment.empty()) {
    return;
  }
  out += loc.segment;
  out.push_back(d.component);
  appendInt(out, loc.sequence > 0 ? loc.sequence : 1);
  if (loc.field > 0) {
    out.push_back(d.component);
    appendInt(out, loc.field);
    if (loc.component > 0) {
      out.push_back(d.component);
      appendInt(out, loc.repetition > 0 ? loc.repetition : 1);
      out.push_back(d.component);
      appendInt(out, loc.component);
      if (loc.subcomponent > 0) {
        out.push_back(d.component);
        appendInt(out, loc.subcomponent);
      }
    }
  }
}

void writeAck(std::string& out, const Echo& e, const Delimiters& dst, bool enhanced,
              Outcome outcome, std::span<const Issue> issues, std::string_view text,
              const AckOptions& options) {
  const char fs = dst.field;
  auto echo = [&](std::string_view raw) { transcodeTo(raw, e.src, dst, out); };
  const int key = versionKey(e.version);

  out += "MSH";
  out.push_back(fs);
  out += dst.encodingCharacters();
  out.push_back(fs);
  echo(e.msh5);
  out.push_back(fs);
  echo(e.msh6);
  out.push_back(fs);
  echo(e.msh3);
  out.push_back(fs);
  echo(e.msh4);
  out.push_back(fs);
  appendTimestamp(out, options.clock);
  out.push_back(fs);
  out.push_back(fs);
  out += "ACK";
  if (key != 20100) {
    out.push_back(dst.component);
    echo(e.trigger);
    if (key < 20200 || key >= 20301) {
      out.push_back(dst.component);
      out += "ACK";
    }
  }
  out.push_back(fs);
  options.control_id(out);
  out.push_back(fs);
  echo(e.msh11);
  out.push_back(fs);
  echo(e.msh12);
  if (!e.msh18.empty()) {
    for (int k = 0; k < 6; ++k) {
      out.push_back(fs);
    }
    echo(e.msh18);
  }
  out.push_back('\r');

  out += "MSA";
  out.push_back(fs);
  out += ackCode(outcome, enhanced);
  out.push_back(fs);
  echo(e.msh10);
  if (text.empty() && outcome != Outcome::accept && !issues.empty()) {
    text = issues.front().text;
  }
  if (!text.empty()) {
    out.push_back(fs);
    escapeTo(text, dst, out);
  }
  out.push_back('\r');

  if (issues.empty()) {
    return;
  }
  const size_t count = std::min(issues.size(), kMaxErrSegments);
  const bool v25 = key < 0 || key >= 20500;
  if (v25) {
    for (size_t k = 0; k < count; ++k) {
      const Issue& issue = issues[k];
      out += "ERR";
      out.push_back(fs);
      out.push_back(fs);
      appendLocation25(out, issue.location, dst);
      out.push_back(fs);
      appendInt(out, static_cast<int>(issue.code));
      out.push_back(dst.component);
      escapeTo(errorCodeText(issue.code), dst, out);
      out.push_back(dst.component);
      out += "HL70357";
      out.push_back(fs);
      out += severityCode(issue.severity);
      out.push_back('\r');
    }
    return;
  }
  // Before v2.5: one ERR, ERR-1 (ELD) repeating: SEG^seq^field^code&text&HL70357.
  out += "ERR";
  out.push_back(fs);
  for (size_t k = 0; k < count; ++k) {
    const Issue& issue = issues[k];
    if (k > 0) {
      out.push_back(dst.repetition);
    }
    if (!issue.location.segment.empty()) {
      out += issue.location.segment;
      out.push_back(dst.component);
      appendInt(out, issue.location.sequence > 0 ? issue.location.sequence : 1);
    } else {
      out.push_back(dst.component);
    }
    out.push_back(dst.component);
    if (!issue.location.segment.empty() && issue.location.field > 0) {
      appendInt(out, issue.location.field);
    }
    out.push_back(dst.component);
    appendInt(out, static_cast<int>(issue.code));
    out.push_back(dst.subcomponent);
    escapeTo(errorCodeText(issue.code), dst, out);
    out.push_back(dst.subcomponent);
    out += "HL70357";
  }
  out.push_back('\r');
}

bool hasAckRequest(std::string_view msh15, std::string_view msh16) {
  auto set = [](std::string_view v) { return !v.empty() && v != "\"\""; };
  return set(msh15) || set(msh16);
}

}  // namespace

std::optional<AckMode> parseAckMode(std::string_view text) {
  if (text == "auto") {
    return AckMode::automatic;
  }
  if (text == "original") {
    return AckMode::original;
  }
  if (text == "enhanced") {
    return AckMode::enhanced;
  }
  return std::nullopt;
}

Outcome outcomeFor(std::span<const Issue> issues) {
  Outcome result = Outcome::accept;
  for (const Issue& issue : issues) {
    if (issue.severity != Severity::error) {
      continue;
    }
    auto code = static_cast<int>(issue.code);
    if (code >= 200) {
      return Outcome::reject;
    }
    result = Outcome::error;
  }
  return result;
}

ControlIdFn defaultControlIds() {
  struct State {
    std::string prefix;
    std::atomic<uint64_t> counter{0};
  };
  auto state = std::make_shared<State>();
  auto secs = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
  std::random_device rd;
  uint32_t rnd = rd() & 0xFFFF;
  char prefix[13];
  size_t len = 0;
  prefix[len++] = 'A';
  for (int shift = 28; shift >= 0; shift -= 4) {
    prefix[len++] = kHex[(secs >> shift) & 0xF];
  }
  for (int shift = 12; shift >= 0; shift -= 4) {
    prefix[len++] = kHex[(rnd >> shift) & 0xF];
  }
  state->prefix.assign(prefix, len);
  return [state](std::string& out) {
    uint64_t n = state->counter.fetch_add(1, std::memory_order_relaxed) & 0xFFFFFFF;
    out += state->prefix;
    for (int shift = 24; shift >= 0; shift -= 4) {
      out.push_back(kHex[(n >> shift) & 0xF]);
    }
  };
}

AckBuilder::AckBuilder(AckOptions options) : options_(std::move(options)) {
  if (!options_.clock) {
    options_.clock = Clock::system();
  }
  if (!options_.control_id) {
    options_.control_id = defaultControlIds();
  }
}

AckMode AckBuilder::modeFor(const Message& msg) const {
  if (options_.mode != AckMode::automatic) {
    return options_.mode;
  }
  return hasAckRequest(msg.acceptAckType(), msg.applicationAckType()) ? AckMode::enhanced
                                                                      : AckMode::original;
}

bool AckBuilder::shouldSend(const Message& msg, Outcome outcome) const {
  if (modeFor(msg) == AckMode::original) {
    return true;
  }
  std::string_view accept = msg.acceptAckType();
  if (accept == "NE") {
    return false;
  }
  if (accept == "ER") {
    return outcome != Outcome::accept;
  }
  if (accept == "SU") {
    return outcome == Outcome::accept;
  }
  return true;  // AL, empty or unknown
}

void AckBuilder::buildTo(std::string& out, const Message& msg, Outcome outcome,
                         std::span<const Issue> issues, std::string_view text) const {
  Echo e;
  e.src = msg.delimiters();
  e.msh3 = msg.field(0, 3).raw;
  e.msh4 = msg.field(0, 4).raw;
  e.msh5 = msg.field(0, 5).raw;
  e.msh6 = msg.field(0, 6).raw;
  e.msh10 = msg.field(0, 10).raw;
  e.msh11 = msg.field(0, 11).raw;
  e.msh12 = msg.field(0, 12).raw;
  e.msh18 = msg.field(0, 18).raw;
  e.trigger = msg.triggerEvent();
  e.version = msg.version();
  Delimiters dst = e.src.usable() ? e.src : Delimiters::standard();
  writeAck(out, e, dst, modeFor(msg) == AckMode::enhanced, outcome, issues, text, options_);
}

std::string AckBuilder::build(const Message& msg, Outcome outcome, std::span<const Issue> issues,
                              std::string_view text) const {
  std::string out;
  out.reserve(160);
  buildTo(out, msg, outcome, issues, text);
  return out;
}

std::string AckBuilder::buildReject(std::string_view raw, const Issue& failure) const {
  Echo e;
  e.src = Delimiters::standard();
  std::string_view msh15, msh16;
  size_t i = 0;
  if (raw.size() >= 3 && raw.substr(0, 3) == "\xEF\xBB\xBF") {
    i = 3;
  }
  while (i < raw.size() && (raw[i] == '\r' || raw[i] == '\n')) {
    ++i;
  }
  std::string_view line = raw.substr(i, kRejectScanBytes);
  line = line.substr(0, line.find_first_of("\r\n"));
  if (line.size() >= 4 && line.substr(0, 3) == "MSH" && isDelimiterChar(line[3])) {
    const char sep = line[3];
    std::string_view el[16];
    size_t count = 0;
    std::string_view rest = line.substr(4);
    while (count < 16) {
      size_t cut = rest.find(sep);
      el[count++] = rest.substr(0, cut);
      if (cut == std::string_view::npos) {
        break;
      }
      rest = rest.substr(cut + 1);
    }
    // el[k] is MSH-(k+2).
    Delimiters src{};
    src.field = sep;
    src.component = src.repetition = src.escape = src.subcomponent = src.truncation = 0;
    std::string_view enc = el[0];
    if (enc.size() >= 4 && enc.size() <= 5) {
      Delimiters candidate{sep, enc[0], enc[1], enc[2], enc[3], enc.size() == 5 ? enc[4] : '\0'};
      if (candidate.usable()) {
        src = candidate;
      }
    }
    e.src = src;
    auto at = [&](int field) {
      return field - 2 < static_cast<int>(count) ? el[field - 2] : std::string_view{};
    };
    auto first_component = [&](std::string_view v, int n) -> std::string_view {
      if (src.component == 0) {
        return n == 1 ? v : std::string_view{};
      }
      for (int k = 1; k < n; ++k) {
        size_t cut = v.find(src.component);
        if (cut == std::string_view::npos) {
          return {};
        }
        v = v.substr(cut + 1);
      }
      return v.substr(0, v.find(src.component));
    };
    e.msh3 = at(3);
    e.msh4 = at(4);
    e.msh5 = at(5);
    e.msh6 = at(6);
    e.trigger = first_component(at(9), 2);
    e.msh10 = at(10);
    e.msh11 = at(11);
    e.msh12 = at(12);
    e.version = first_component(e.msh12, 1);
    msh15 = at(15);
    msh16 = at(16);
  }
  if (e.msh12.empty()) {
    e.msh12 = "2.5.1";
    e.version = "2.5.1";
  }
  bool enhanced = options_.mode == AckMode::enhanced ||
                  (options_.mode == AckMode::automatic && hasAckRequest(msh15, msh16));
  std::string out;
  out.reserve(160);
  Issue issue = failure;
  if (issue.code == ErrorCode::none) {
    issue.code = ErrorCode::application_internal_error;
  }
  std::span<const Issue> issues(&issue, 1);
  writeAck(out, e, Delimiters::standard(), enhanced, Outcome::reject, issues, {}, options_);
  return out;
}

}  // namespace psa::adapters::hl7
