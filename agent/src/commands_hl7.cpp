// `pms-agent hl7 inspect FILE [--json]` and `pms-agent hl7 send FILE --to HOST:PORT`: a
// technician's view of what a PMS sends, and a test sender. Neither needs a running agent.
// Their output shows message content on the technician's terminal; nothing is logged.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "command.h"
#include "hl7_file.h"
#include "psa/adapters/hl7/batch.h"
#include "psa/adapters/hl7/inspect.h"
#include "psa/adapters/hl7/message.h"
#include "psa/adapters/hl7/mllp.h"
#include "psa/adapters/hl7/mllp_client.h"
#include "psa/adapters/hl7/validate.h"
#include "psa/store/json.h"
#include "psa/store/os/system_error.h"

namespace psa::agent {

namespace hl7 = psa::adapters::hl7;

Result<std::unique_ptr<FileMessages>> readMessages(const std::string& file) {
  auto out = std::make_unique<FileMessages>();
  std::error_code ec;
  const auto size = std::filesystem::file_size(file, ec);
  if (ec) {
    return Error(Errc::io, "cannot read " + file + ": " + ec.message());
  }
  if (size > (size_t{1} << 30)) {
    return Error(Errc::limit, file + ": larger than 1 GiB");
  }
  std::FILE* f = std::fopen(file.c_str(), "rb");
  if (f == nullptr) {
    return Error(Errc::io, "cannot read " + file + ": " + os::errnoText(errno));
  }
  out->text.resize(size);
  const size_t got = size ? std::fread(out->text.data(), 1, size, f) : 0;
  std::fclose(f);
  out->text.resize(got);
  std::string_view text = out->text;
  if (!text.empty() && text.front() == hl7::kMllpStart) {
    hl7::MllpDecoder decoder(size_t{1} << 30);
    if (auto st = decoder.feed(text); !st) {
      return st.error();
    }
    size_t frame = 0;
    auto take = [&](const hl7::MllpEvent& ev) -> Status {
      if (ev.type == hl7::MllpEvent::Type::frame) {
        ++frame;
        if (!ev.data.empty()) {
          out->frames.emplace_back(ev.data);
          out->items.push_back({{}, 0, frame});
        }
        return {};
      }
      if (ev.fault == hl7::MllpFault::junk_before_start) {
        return {};
      }
      return Error(Errc::invalid_input, file + ": MLLP framing error at byte " +
                                            std::to_string(ev.offset) + ": " +
                                            std::string(hl7::mllpFaultName(ev.fault)));
    };
    while (auto ev = decoder.next()) {
      PSA_TRY(take(*ev));
    }
    if (auto ev = decoder.finish()) {
      PSA_TRY(take(*ev));
    }
    for (size_t k = 0; k < out->items.size(); ++k) {
      out->items[k].body = out->frames[k];
    }
  } else {
    auto split = hl7::splitMessages(text);
    if (!split) {
      return Error(split.error().code, file + ": " + split.error().message);
    }
    for (const auto& m : split.value().messages) {
      out->items.push_back({m.text, m.line, 0});
    }
    if (auto st = split.value().checkCounts(); !st) {
      return Error(st.error().code, file + ": " + st.error().message);
    }
  }
  if (out->items.empty()) {
    return Error(Errc::invalid_input, file + ": no HL7 message found (expected MSH segments)");
  }
  return out;
}

std::string where(const FileMessages::Item& item) {
  return item.line ? "line " + std::to_string(item.line) : "frame " + std::to_string(item.frame);
}

namespace {

// ---- inspect ----------------------------------------------------------------------------

int inspect(const po::variables_map& vm, CommandContext& ctx) {
  const std::string file = vm["file"].as<std::string>();
  const bool as_json = vm.count("json") > 0;
  hl7::InspectOptions options;
  options.include_empty = vm.count("empty") > 0;
  auto read = readMessages(file);
  if (!read) {
    ctx.err << "FAIL  " << read.error().message << "\n";
    return kExitFailure;
  }
  const FileMessages& fm = *read.value();
  bool all_ok = true;
  std::string json = "{\"file\":" + hl7::jsonString(file) + ",\"messages\":[";
  for (size_t k = 0; k < fm.items.size(); ++k) {
    const auto& item = fm.items[k];
    hl7::Message msg;
    const Status parsed = msg.parse(item.body);
    std::vector<hl7::Issue> issues;
    if (parsed) {
      hl7::validate(msg, hl7::ValidationRules{}, issues);
    } else {
      issues.push_back(msg.failure());
    }
    all_ok = all_ok && issues.empty();
    if (as_json) {
      std::string one = parsed ? hl7::inspectJson(msg, options) : std::string("{}");
      std::string extra = "\"index\":" + std::to_string(k + 1);
      extra += item.line ? ",\"line\":" + std::to_string(item.line)
                         : ",\"frame\":" + std::to_string(item.frame);
      extra += ",\"parsed\":" + std::string(parsed ? "true" : "false");
      extra += ",\"valid\":" + std::string(issues.empty() ? "true" : "false");
      extra += ",\"issues\":[";
      for (size_t i = 0; i < issues.size(); ++i) {
        extra += (i ? "," : "") + std::string("{\"code\":") +
                 std::to_string(static_cast<int>(issues[i].code)) +
                 ",\"location\":" + hl7::jsonString(issues[i].location.toString()) +
                 ",\"text\":" + hl7::jsonString(issues[i].describe()) + "}";
      }
      extra += "]";
      // Splice the extra members into the object inspectJson produced.
      one.insert(1, extra + (one.size() > 2 ? "," : ""));
      json += (k ? "," : "") + one;
      continue;
    }
    ctx.out << "# message " << (k + 1) << " of " << fm.items.size() << " (" << where(item);
    if (parsed) {
      ctx.out << ", " << msg.messageType() << (msg.triggerEvent().empty() ? "" : "^")
              << msg.triggerEvent() << ", version " << msg.version() << ", "
              << msg.segmentCount() << " segments, charset " << hl7::charsetName(msg.charset());
    }
    ctx.out << ")\n";
    if (parsed) {
      ctx.out << hl7::inspectText(msg, options);
    }
    if (issues.empty()) {
      ctx.out << "# valid\n";
    }
    for (const auto& issue : issues) {
      ctx.out << "# INVALID " << issue.describe() << "\n";
    }
    if (k + 1 < fm.items.size()) {
      ctx.out << "\n";
    }
  }
  if (as_json) {
    json += "],\"valid\":" + std::string(all_ok ? "true" : "false") + "}";
    auto pretty = json::parse(json);
    ctx.out << (pretty ? json::serialize(pretty.value(), true) : json) << "\n";
  }
  return all_ok ? kExitOk : kExitFailure;
}

// ---- send -------------------------------------------------------------------------------

// "HOST:PORT" or "[V6]:PORT".
bool parseTarget(const std::string& to, std::string& host, uint16_t& port) {
  std::string p;
  if (!to.empty() && to.front() == '[') {
    const size_t close = to.find(']');
    if (close == std::string::npos || close + 1 >= to.size() || to[close + 1] != ':') {
      return false;
    }
    host = to.substr(1, close - 1);
    p = to.substr(close + 2);
  } else {
    const size_t colon = to.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      return false;
    }
    host = to.substr(0, colon);
    p = to.substr(colon + 1);
  }
  if (p.empty() || p.size() > 5 || !std::all_of(p.begin(), p.end(), ::isdigit)) {
    return false;
  }
  const int v = std::stoi(p);
  if (v < 1 || v > 65535 || host.empty()) {
    return false;
  }
  port = static_cast<uint16_t>(v);
  return true;
}

// Segment terminators as HL7 wants them on the wire: CR (files often have LF or CRLF).
std::string wireForm(std::string_view body) {
  std::string out;
  out.reserve(body.size() + 1);
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < body.size() && body[i + 1] == '\n') {
        ++i;
      }
      if (!out.empty() && out.back() != '\r') {
        out.push_back('\r');
      }
      continue;
    }
    out.push_back(c);
  }
  if (!out.empty() && out.back() != '\r') {
    out.push_back('\r');
  }
  return out;
}

int send(const po::variables_map& vm, CommandContext& ctx) {
  const std::string file = vm["file"].as<std::string>();
  if (!vm.count("to")) {
    ctx.err << "pms-agent hl7 send: --to HOST:PORT is required\n";
    return kExitUsage;
  }
  hl7::MllpClientOptions opts;
  if (!parseTarget(vm["to"].as<std::string>(), opts.host, opts.port)) {
    ctx.err << "pms-agent hl7 send: --to: expected HOST:PORT or [IPV6]:PORT, got \""
            << vm["to"].as<std::string>() << "\"\n";
    return kExitUsage;
  }
  const double timeout_s = vm["timeout"].as<double>();
  if (!(timeout_s > 0 && timeout_s <= 3600)) {
    ctx.err << "pms-agent hl7 send: --timeout: expected seconds in (0, 3600]\n";
    return kExitUsage;
  }
  opts.timeout = std::chrono::milliseconds(static_cast<int64_t>(std::ceil(timeout_s * 1000)));
  opts.tls = vm.count("tls") > 0;
  if (vm.count("ca")) opts.ca_file = vm["ca"].as<std::string>();
  if (vm.count("cert")) opts.cert_file = vm["cert"].as<std::string>();
  if (vm.count("key")) opts.key_file = vm["key"].as<std::string>();
  if (vm.count("server-name")) opts.server_name = vm["server-name"].as<std::string>();
  if (!opts.tls && (vm.count("ca") || vm.count("cert") || vm.count("key"))) {
    ctx.err << "pms-agent hl7 send: --ca, --cert and --key need --tls\n";
    return kExitUsage;
  }
  if (opts.cert_file.empty() != opts.key_file.empty()) {
    ctx.err << "pms-agent hl7 send: --cert and --key go together\n";
    return kExitUsage;
  }
  const bool as_json = vm.count("json") > 0;

  auto read = readMessages(file);
  if (!read) {
    ctx.err << "FAIL  " << read.error().message << "\n";
    return kExitFailure;
  }
  const FileMessages& fm = *read.value();
  auto client = hl7::MllpClient::connect(opts);
  if (!client) {
    ctx.err << "FAIL  " << client.error().message << "\n";
    return kExitFailure;
  }
  size_t accepted = 0;
  size_t sent = 0;
  bool broken = false;
  json::Value results = json::Value::array();
  for (size_t k = 0; k < fm.items.size(); ++k) {
    const auto& item = fm.items[k];
    json::Value r = json::Value::object();
    r.set("index", json::Value::integer(static_cast<int64_t>(k + 1)));
    r.set(item.line ? "line" : "frame",
          json::Value::integer(static_cast<int64_t>(item.line ? item.line : item.frame)));
    std::string label = "message " + std::to_string(k + 1) + " (" + where(item) + ")";
    if (broken) {
      r.set("error", json::Value::string("not sent: connection lost"));
      results.push(std::move(r));
      if (!as_json) {
        ctx.out << label << ": not sent (connection lost)\n";
      }
      continue;
    }
    ++sent;
    auto ack = client.value()->exchange(wireForm(item.body));
    if (!ack) {
      broken = true;
      r.set("error", json::Value::string(ack.error().message));
      results.push(std::move(r));
      if (!as_json) {
        ctx.out << label << ": no ACK: " << ack.error().message << "\n";
      }
      continue;
    }
    auto summary = hl7::summarizeAck(ack.value());
    if (!summary) {
      r.set("error", json::Value::string(summary.error().message));
      results.push(std::move(r));
      if (!as_json) {
        ctx.out << label << ": unreadable ACK: " << summary.error().message << "\n";
      }
      continue;
    }
    const auto& s = summary.value();
    accepted += s.accepted() ? 1 : 0;
    r.set("msa1", json::Value::string(s.code));
    r.set("msa2", json::Value::string(s.control_id));
    if (!s.text.empty()) {
      r.set("text", json::Value::string(s.text));
    }
    json::Value errs = json::Value::array();
    for (const auto& e : s.errors) {
      errs.push(json::Value::string(e));
    }
    r.set("errors", std::move(errs));
    results.push(std::move(r));
    if (!as_json) {
      ctx.out << label << ": " << s.code << "  MSA-2=" << s.control_id;
      if (!s.text.empty()) {
        ctx.out << "  \"" << s.text << "\"";
      }
      ctx.out << "\n";
      for (const auto& e : s.errors) {
        ctx.out << "    ERR " << e << "\n";
      }
    }
  }
  const bool ok = accepted == fm.items.size();
  if (as_json) {
    json::Value v = json::Value::object();
    v.set("to", json::Value::string(client.value()->peer()));
    v.set("messages", json::Value::integer(static_cast<int64_t>(fm.items.size())));
    v.set("accepted", json::Value::integer(static_cast<int64_t>(accepted)));
    v.set("ok", json::Value::boolean(ok));
    v.set("acks", std::move(results));
    ctx.out << json::serialize(v, true) << "\n";
  } else {
    ctx.out << (ok ? "OK    " : "FAIL  ") << fm.items.size() << " message"
            << (fm.items.size() == 1 ? "" : "s") << " to " << client.value()->peer() << ": "
            << accepted << " accepted, " << (sent - accepted) << " not accepted";
    if (sent < fm.items.size()) {
      ctx.out << ", " << (fm.items.size() - sent) << " not sent";
    }
    ctx.out << "\n";
  }
  return ok ? kExitOk : kExitFailure;
}

}  // namespace

void addHl7Commands(CommandTable& table) {
  table.add(Command{
      "hl7 inspect", "FILE", "parse an HL7 v2 file and print it field by field",
      "FILE holds one or more messages (CR, LF or CRLF line ends; blank lines or batch\n"
      "envelopes between messages) or an MLLP capture. Each message is listed as\n"
      "`PATH = value` (escapes and the MSH-18 character set decoded) and validated.\n"
      "The output shows message content: keep it off tickets and chat. Exit 1 if any\n"
      "message does not parse or is invalid.",
      [](po::options_description& o, po::positional_options_description& p) {
        o.add_options()("file", po::value<std::string>()->required(), "HL7 file")(
            "json", "machine-readable output")("empty", "also list present-but-empty fields");
        p.add("file", 1);
      },
      inspect});
  table.add(Command{
      "hl7 send", "FILE --to HOST:PORT",
      "send the messages of a file over MLLP and print each ACK",
      "Sends every message of FILE (as for hl7 inspect) on one connection, one at a time,\n"
      "and prints each ACK's MSA-1 and MSA-2 with any ERR segments. Needs no running agent.\n"
      "Exit 1 if any ACK is not AA/CA (or none came).",
      [](po::options_description& o, po::positional_options_description& p) {
        o.add_options()("file", po::value<std::string>()->required(), "HL7 file")(
            "to", po::value<std::string>(), "HOST:PORT of the MLLP listener")(
            "tls", "connect with TLS")("ca", po::value<std::string>(),
                                       "CA file that signs the listener's certificate")(
            "cert", po::value<std::string>(), "client certificate (PEM)")(
            "key", po::value<std::string>(), "client key (PEM)")(
            "server-name", po::value<std::string>(),
            "name expected in the listener's certificate (default: HOST)")(
            "timeout", po::value<double>()->default_value(10.0),
            "seconds to wait for the connection and for each ACK")(
            "json", "machine-readable output");
        p.add("file", 1);
      },
      send});
}

}  // namespace psa::agent
