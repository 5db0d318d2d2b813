// The discovery listener: one io_context on the calling thread, run for the given time.
// Every connection decodes MLLP frames, passes each message on and answers it in order.
#include "psa/adapters/discover/mllp_capture.h"

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <memory>

#include "psa/adapters/hl7/ack.h"
#include "psa/adapters/hl7/message.h"
#include "psa/adapters/hl7/mllp.h"
#include "psa/adapters/net/listen_socket.h"

namespace psa::adapters::discover {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
namespace hl7 = psa::adapters::hl7;

struct Shared {
  const std::function<void(std::string_view)>* on_message;
  hl7::AckBuilder acks;
  CaptureStats stats;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, Shared& shared) : socket_(std::move(socket)), shared_(shared) {}

  void start() { read(); }

 private:
  void read() {
    socket_.async_read_some(
        asio::buffer(buf_), [self = shared_from_this()](boost::system::error_code ec, size_t n) {
          if (ec) {
            return;  // peer closed or the listener stopped: nothing is kept either way
          }
          self->onBytes(std::string_view(self->buf_.data(), n));
          self->read();
        });
  }

  void onBytes(std::string_view bytes) {
    if (!decoder_.feed(bytes)) {
      return;
    }
    while (auto ev = decoder_.next()) {
      if (ev->type == hl7::MllpEvent::Type::fault) {
        ++shared_.stats.framing_faults;
        continue;
      }
      if (ev->data.empty()) {
        continue;  // keep-alive
      }
      ++shared_.stats.frames;
      (*shared_.on_message)(ev->data);
      hl7::Message msg;
      queue(msg.parse(ev->data) ? shared_.acks.build(msg, hl7::Outcome::accept)
                                : shared_.acks.buildReject(ev->data, msg.failure()));
    }
  }

  void queue(const std::string& ack) {
    out_.push_back(hl7::mllpFrame(ack));
    if (out_.size() == 1) {
      write();
    }
  }

  void write() {
    asio::async_write(socket_, asio::buffer(out_.front()),
                      [self = shared_from_this()](boost::system::error_code ec, size_t) {
                        if (ec) {
                          return;
                        }
                        self->out_.pop_front();
                        if (!self->out_.empty()) {
                          self->write();
                        }
                      });
  }

  tcp::socket socket_;
  Shared& shared_;
  hl7::MllpDecoder decoder_;
  std::array<char, 64 * 1024> buf_{};
  std::deque<std::string> out_;
};

void accept(tcp::acceptor& acceptor, Shared& shared) {
  acceptor.async_accept([&acceptor, &shared](boost::system::error_code ec, tcp::socket socket) {
    if (ec) {
      return;
    }
    ++shared.stats.connections;
    std::make_shared<Connection>(std::move(socket), shared)->start();
    accept(acceptor, shared);
  });
}

}  // namespace

Result<CaptureStats> captureMllp(const net::ListenEndpoint& endpoint,
                                 std::chrono::milliseconds duration,
                                 const std::function<void(std::string_view)>& on_message,
                                 const std::function<void(uint16_t)>& on_listening) {
  asio::io_context io;
  boost::system::error_code ec;
  const std::string host = endpoint.host == "localhost" ? "127.0.0.1" : endpoint.host;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) {
    return Error(Errc::invalid_argument, "listen: " + endpoint.text + ": not an IP address");
  }
  const tcp::endpoint ep(address, endpoint.port);
  tcp::acceptor acceptor(io);
  acceptor.open(ep.protocol(), ec);
  if (!ec) {
    net::setListenOptions(acceptor, ec);
  }
  if (!ec) {
    acceptor.bind(ep, ec);
  }
  if (!ec) {
    acceptor.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return Error(Errc::unavailable, "cannot listen on " + endpoint.text + ": " + ec.message());
  }
  Shared shared{&on_message, hl7::AckBuilder{}, {}};
  shared.stats.port = acceptor.local_endpoint().port();
  if (on_listening) {
    on_listening(shared.stats.port);
  }
  accept(acceptor, shared);
  io.run_for(duration);
  return shared.stats;
}

}  // namespace psa::adapters::discover
