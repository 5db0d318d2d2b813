#include "psa/adapters/write/hl7_out_message.h"

#include <cstdio>
#include <vector>

#include "psa/adapters/hl7/message.h"
#include "psa/adapters/hl7/mllp_client.h"
#include "psa/store/clock.h"

namespace psa::adapters::write {
namespace {

std::vector<std::string_view> splitSegments(std::string_view body) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start < body.size()) {
    size_t end = body.find_first_of("\r\n", start);
    if (end == std::string_view::npos) {
      end = body.size();
    }
    std::string_view seg = body.substr(start, end - start);
    if (seg.find_first_not_of(" \t") != std::string_view::npos) {
      out.push_back(seg);
    }
    start = end + 1;
  }
  return out;
}

// Appends `s` without control characters, keeping the total at most kMaxAckErrorBytes.
void appendClean(std::string& out, std::string_view s) {
  for (char c : s) {
    if (out.size() >= kMaxAckErrorBytes) {
      return;
    }
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? ' ' : c);
  }
}

}  // namespace

std::string controlIdFor(std::string_view request_id) {
  return std::string(request_id.size() > 20 ? request_id.substr(request_id.size() - 20)
                                            : request_id);
}

std::string hl7Timestamp(int64_t unix_ms) {
  const int64_t s = unix_ms >= 0 ? unix_ms / 1000 : (unix_ms - 999) / 1000;
  const std::tm tm = utcCalendar(s);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d%02d%02d%02d%02d%02d+0000", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

Result<PreparedMessage> prepareOutbound(std::string_view body, std::string_view request_id,
                                        int64_t now_ms) {
  if (body.substr(0, 3) == "\xEF\xBB\xBF") {
    body.remove_prefix(3);  // a UTF-8 byte order mark, as the parser allows
  }
  const std::vector<std::string_view> segments = splitSegments(body);
  if (segments.empty() || segments[0].size() < 8 || segments[0].substr(0, 3) != "MSH") {
    return Error(Errc::invalid_input, "body: expected an HL7 message starting with MSH");
  }
  // MSH split at its field separator: parts[0] "MSH", parts[1] MSH-2, parts[n-1] MSH-n.
  const std::string_view msh = segments[0];
  const char sep = msh[3];
  std::vector<std::string> parts;
  parts.emplace_back("MSH");
  for (size_t pos = 4;;) {
    const size_t next = msh.find(sep, pos);
    parts.emplace_back(msh.substr(pos, next == std::string_view::npos ? next : next - pos));
    if (next == std::string_view::npos) {
      break;
    }
    pos = next + 1;
  }
  if (parts.size() < 10) {
    parts.resize(10);
  }
  // Empty or the HL7 null "": the agent fills them in.
  if (parts[6].empty() || parts[6] == "\"\"") {
    parts[6] = hl7Timestamp(now_ms);
  }
  if (parts[9].empty() || parts[9] == "\"\"") {
    parts[9] = controlIdFor(request_id);
  }
  PreparedMessage out;
  out.text = parts[0];
  for (size_t k = 1; k < parts.size(); ++k) {
    out.text += sep;
    out.text += parts[k];
  }
  out.text += '\r';
  for (size_t k = 1; k < segments.size(); ++k) {
    out.text.append(segments[k]);
    out.text += '\r';
  }
  hl7::Message msg;
  if (auto st = msg.parse(out.text); !st) {
    return Error(Errc::invalid_input, "body: " + msg.failure().describe());
  }
  out.control_id = msg.decode(msg.get(0, 10, 0));
  if (out.control_id.empty()) {
    return Error(Errc::invalid_input, "body: HL7 101 (Required field missing) at MSH-10");
  }
  return out;
}

AckReading readAck(std::string_view ack, std::string_view sent_control_id) {
  AckReading r;
  auto summary = hl7::summarizeAck(ack);
  if (!summary) {
    r.error = summary.error().message;
    return r;
  }
  r.code = summary->code;
  r.control_id = summary->control_id;
  if (r.control_id != sent_control_id) {
    r.verdict = AckVerdict::stale;
    return r;
  }
  const std::string& c = r.code;
  if (c == "AA" || c == "CA") {
    r.verdict = AckVerdict::delivered;
    return r;
  }
  if (c != "AE" && c != "AR" && c != "CE" && c != "CR") {
    r.error = "acknowledgement with an unknown MSA-1 code";
    return r;
  }
  r.verdict = AckVerdict::failed;
  appendClean(r.error, c);
  bool first = true;
  auto part = [&](std::string_view text) {
    if (text.empty()) {
      return;
    }
    appendClean(r.error, first ? ": " : "; ");
    appendClean(r.error, text);
    first = false;
  };
  for (const std::string& line : summary->errors) {
    part(line);
  }
  // ERR-8 (user message, v2.5+) of each ERR: summarizeAck does not read it.
  hl7::Message msg;
  if (msg.parse(ack)) {
    for (int occ = 1;; ++occ) {
      auto err = msg.findSegment("ERR", occ);
      if (!err) {
        break;
      }
      part(msg.decode(msg.get(*err, 8, 0)));
    }
  }
  part(summary->text);
  return r;
}

}  // namespace psa::adapters::write
