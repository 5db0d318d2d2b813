#include "psa/adapters/hl7/mllp_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <optional>

#include "net/client_tls.h"
#include "psa/adapters/hl7/message.h"
#include "psa/adapters/hl7/mllp.h"

namespace psa::adapters::hl7 {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

struct MllpClient::Impl {
  MllpClientOptions options;
  asio::io_context io{1};
  std::optional<ssl::context> ctx;
  tcp::socket socket{io};
  std::optional<ssl::stream<tcp::socket&>> tls;
  MllpDecoder decoder;
  std::deque<std::string> frames;
  std::string chunk;
  bool eof = false;
  std::string peer;

  explicit Impl(const MllpClientOptions& o) : options(o), decoder(o.max_frame_bytes) {
    chunk.resize(64 * 1024);
  }

  // Runs the io_context until `done` or the deadline; on timeout cancels and drains.
  bool runUntil(const bool& done) {
    io.restart();
    io.run_for(options.timeout);
    if (done) {
      return true;
    }
    error_code ignored;
    socket.cancel(ignored);
    io.restart();
    io.run();
    return false;
  }

  Status write(std::string_view bytes) {
    bool done = false;
    error_code result;
    auto handler = [&](const error_code& ec, size_t) {
      result = ec;
      done = true;
    };
    if (tls) {
      asio::async_write(*tls, asio::buffer(bytes.data(), bytes.size()), handler);
    } else {
      asio::async_write(socket, asio::buffer(bytes.data(), bytes.size()), handler);
    }
    if (!runUntil(done)) {
      return Error(Errc::timeout, "no progress sending to " + peer + " within " +
                                      std::to_string(options.timeout.count()) + " ms");
    }
    if (result) {
      if (result == asio::error::broken_pipe || result == asio::error::connection_reset ||
          result == asio::error::eof) {
        return Error(Errc::closed, "connection to " + peer + " closed by the peer");
      }
      return Error(Errc::io, "sending to " + peer + ": " + result.message());
    }
    return {};
  }

  // Reads one chunk; false with `err` on failure.
  bool readChunk(std::optional<Error>& err) {
    bool done = false;
    error_code result;
    size_t n = 0;
    auto handler = [&](const error_code& ec, size_t got) {
      result = ec;
      n = got;
      done = true;
    };
    if (tls) {
      tls->async_read_some(asio::buffer(chunk), handler);
    } else {
      socket.async_read_some(asio::buffer(chunk), handler);
    }
    if (!runUntil(done)) {
      err = Error(Errc::timeout, "no acknowledgement from " + peer + " within " +
                                     std::to_string(options.timeout.count()) + " ms");
      return false;
    }
    if (result) {
      eof = true;
      if (result == asio::error::eof || result == asio::error::connection_reset ||
          result == ssl::error::stream_truncated) {
        err = Error(Errc::closed, "connection closed by " + peer);
      } else {
        err = Error(Errc::io, "receiving from " + peer + ": " + result.message());
      }
      return false;
    }
    if (auto st = decoder.feed(std::string_view(chunk.data(), n)); !st) {
      err = st.error();
      return false;
    }
    while (auto ev = decoder.next()) {
      if (ev->type == MllpEvent::Type::frame) {
        frames.emplace_back(ev->data);
      } else if (ev->fault == MllpFault::oversize) {
        err = Error(Errc::limit, "acknowledgement from " + peer + " larger than " +
                                     std::to_string(options.max_frame_bytes) + " bytes");
      }
    }
    return true;
  }
};

MllpClient::MllpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MllpClient::~MllpClient() { close(); }

const std::string& MllpClient::peer() const { return impl_->peer; }

Result<std::unique_ptr<MllpClient>> MllpClient::connect(const MllpClientOptions& options) {
  if (options.host.empty() || options.port == 0) {
    return Error(Errc::invalid_argument, "expected HOST and PORT");
  }
  if (options.cert_file.empty() != options.key_file.empty()) {
    return Error(Errc::invalid_argument, "a client certificate needs both cert and key files");
  }
  auto impl = std::make_unique<Impl>(options);
  Impl& d = *impl;
  const std::string target = (options.host.find(':') != std::string::npos
                                  ? "[" + options.host + "]"
                                  : options.host) +
                             ":" + std::to_string(options.port);
  d.peer = target;

  if (options.tls) {
    d.ctx.emplace(ssl::context::tls_client);
    PSA_TRY(net::configureClientTls(
        *d.ctx, net::ClientTlsFiles{options.ca_file, options.cert_file, options.key_file}));
  }

  // Resolve and connect.
  tcp::resolver resolver(d.io);
  error_code ec;
  auto endpoints = resolver.resolve(options.host, std::to_string(options.port), ec);
  if (ec) {
    return Error(Errc::unavailable, "cannot resolve " + options.host + ": " + ec.message());
  }
  bool done = false;
  error_code result;
  asio::async_connect(d.socket, endpoints, [&](const error_code& e, const tcp::endpoint&) {
    result = e;
    done = true;
  });
  if (!d.runUntil(done)) {
    return Error(Errc::timeout, "connecting to " + target + ": no answer within " +
                                    std::to_string(options.timeout.count()) + " ms");
  }
  if (result) {
    return Error(Errc::unavailable, "connecting to " + target + ": " + result.message());
  }
  d.socket.set_option(tcp::no_delay(true), ec);

  if (options.tls) {
    d.tls.emplace(d.socket, *d.ctx);
    SSL* ssl_handle = d.tls->native_handle();
    net::expectServerName(ssl_handle,
                          options.server_name.empty() ? options.host : options.server_name);
    done = false;
    d.tls->async_handshake(ssl::stream_base::client, [&](const error_code& e) {
      result = e;
      done = true;
    });
    if (!d.runUntil(done)) {
      return Error(Errc::timeout, "TLS handshake with " + target + ": no answer within " +
                                      std::to_string(options.timeout.count()) + " ms");
    }
    if (result) {
      return Error(Errc::unauthorized, "TLS handshake with " + target +
                                           " failed: " + net::handshakeFailure(ssl_handle, result));
    }
  }
  return std::unique_ptr<MllpClient>(new MllpClient(std::move(impl)));
}

Status MllpClient::send(std::string_view message) { return sendRaw(mllpFrame(message)); }

Status MllpClient::sendRaw(std::string_view bytes) {
  if (!impl_->socket.is_open()) {
    return Error(Errc::closed, "connection closed");
  }
  return impl_->write(bytes);
}

Status MllpClient::shutdownSend() {
  // TCP half-close (over TLS without close_notify: the server sees the stream end).
  error_code ec;
  impl_->socket.shutdown(tcp::socket::shutdown_send, ec);
  if (ec) {
    return Error(Errc::io, "shutdown: " + ec.message());
  }
  return {};
}

Result<std::string> MllpClient::receive() {
  Impl& d = *impl_;
  while (d.frames.empty()) {
    if (d.eof || !d.socket.is_open()) {
      return Error(Errc::closed, "connection closed by " + d.peer);
    }
    std::optional<Error> err;
    if (!d.readChunk(err)) {
      return std::move(*err);
    }
    if (err) {
      return std::move(*err);
    }
  }
  std::string out = std::move(d.frames.front());
  d.frames.pop_front();
  return out;
}

Result<std::string> MllpClient::exchange(std::string_view message) {
  PSA_TRY(send(message));
  return receive();
}

void MllpClient::close() {
  if (!impl_) {
    return;
  }
  error_code ec;
  impl_->socket.close(ec);
}

Result<AckSummary> summarizeAck(std::string_view ack) {
  Message msg;
  if (auto st = msg.parse(ack); !st) {
    return Error(Errc::invalid_input, "acknowledgement does not parse: " + st.error().message);
  }
  auto msa = msg.findSegment("MSA");
  if (!msa) {
    return Error(Errc::invalid_input, "acknowledgement has no MSA segment");
  }
  AckSummary s;
  s.code = msg.decode(msg.get(*msa, 1, 0));
  s.control_id = msg.decode(msg.get(*msa, 2, 0));
  s.text = msg.decode(msg.get(*msa, 3, 0));
  const std::string_view version = msg.version();
  for (int occ = 1;; ++occ) {
    auto err = msg.findSegment("ERR", occ);
    if (!err) {
      break;
    }
    const bool v25 = !(version.size() >= 3 && version.substr(0, 2) == "2." &&
                       version[2] >= '1' && version[2] <= '4');
    if (v25 && msg.field(*err, 3).present()) {
      // ERR-2 location (SEG^seq^field^...), ERR-3 code^text^table, ERR-4 severity.
      std::string line = "HL7 " + msg.decode(msg.get(*err, 3, 1, 1)) + " (" +
                         msg.decode(msg.get(*err, 3, 1, 2)) + ")";
      const std::string seg = msg.decode(msg.get(*err, 2, 1, 1));
      if (!seg.empty()) {
        line += " at " + seg;
        const std::string seq = msg.decode(msg.get(*err, 2, 1, 2));
        if (!seq.empty() && seq != "1") {
          line += "[" + seq + "]";
        }
        const std::string field = msg.decode(msg.get(*err, 2, 1, 3));
        if (!field.empty()) {
          line += "-" + field;
          const std::string comp = msg.decode(msg.get(*err, 2, 1, 5));
          if (!comp.empty()) {
            line += "." + comp;
          }
        }
      }
      const std::string sev = msg.decode(msg.get(*err, 4, 0));
      if (!sev.empty()) {
        line += " severity " + sev;
      }
      s.errors.push_back(std::move(line));
    } else {
      // Before v2.5: ERR-1 repeats SEG^seq^field^code&text&table.
      const int reps = msg.repetitionCount(*err, 1);
      for (int r = 1; r <= reps; ++r) {
        std::string line = "HL7 " + msg.decode(msg.get(*err, 1, r, 4, 1)) + " (" +
                           msg.decode(msg.get(*err, 1, r, 4, 2)) + ")";
        const std::string seg = msg.decode(msg.get(*err, 1, r, 1));
        if (!seg.empty()) {
          line += " at " + seg;
          const std::string field = msg.decode(msg.get(*err, 1, r, 3));
          if (!field.empty()) {
            line += "-" + field;
          }
        }
        s.errors.push_back(std::move(line));
      }
    }
  }
  return s;
}

}  // namespace psa::adapters::hl7
