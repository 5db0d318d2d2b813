// A small blocking HTTP client for the HttpServer tests: raw bytes over a real TCP (or TLS)
// connection to 127.0.0.1, every step bounded by a deadline so a server that does not answer
// fails the test instead of hanging it. Each client runs its own io_context on the test's
// thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace psa::agent::http::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using boost::system::error_code;
using HttpReply = bhttp::response<bhttp::string_body>;

/// How long any single client step may take before the test counts it as "no answer".
inline constexpr std::chrono::seconds kStepDeadline{10};

/// "GET <target> HTTP/1.1" with a Host header and `extra` header lines ("Name: value\r\n").
inline std::string requestText(std::string_view method, std::string_view target,
                               std::string_view host = "127.0.0.1", std::string_view extra = "") {
  return std::string(method) + " " + std::string(target) +
         " HTTP/1.1\r\nHost: " + std::string(host) + "\r\n" + std::string(extra) + "\r\n";
}

/// Stream: beast::tcp_stream or beast::ssl_stream<beast::tcp_stream>.
template <class Stream>
class BasicClient {
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

 public:
  BasicClient() : stream_(io_) {}
  explicit BasicClient(asio::ssl::context& tls) : stream_(io_, tls) {}

  /// Connects to 127.0.0.1:port (and runs the TLS handshake for a TLS client).
  error_code connect(uint16_t port) {
    lowest().expires_after(kStepDeadline);
    error_code ec = run([&](auto done) {
      lowest().async_connect(asio::ip::tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), port),
                             done);
    });
    if constexpr (kTls) {
      if (!ec) {
        ec = handshake();
      }
    }
    return ec;
  }

  /// Writes `bytes` completely.
  error_code send(std::string_view bytes) {
    lowest().expires_after(kStepDeadline);
    return run([&](auto done) { asio::async_write(stream_, asio::buffer(bytes), done); });
  }

  /// Reads one response; nullopt (and lastError()) if none arrives. `head`: the response to a
  /// HEAD request (a Content-Length without a body).
  std::optional<HttpReply> receive(bool head = false) {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(1 << 20);
    parser.skip(head);
    lowest().expires_after(kStepDeadline);
    last_error_ = run([&](auto done) { bhttp::async_read(stream_, buffer_, parser, done); });
    if (last_error_) {
      return std::nullopt;
    }
    return parser.release();
  }

  /// send() then receive().
  std::optional<HttpReply> exchange(std::string_view request, bool head = false) {
    if ((last_error_ = send(request))) {
      return std::nullopt;
    }
    return receive(head);
  }

  /// Reads until the server ends the connection (end of stream, reset, TLS close) and returns
  /// every byte that came before; nullopt if the connection is still open after `within`.
  std::optional<std::string> readUntilClosed(std::chrono::milliseconds within) {
    std::string all = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    lowest().expires_after(within);
    for (;;) {
      char chunk[4096];
      size_t n = 0;
      const error_code ec = run([&](auto done) {
        stream_.async_read_some(asio::buffer(chunk),
                                [&n, done](const error_code& e, size_t got) mutable {
                                  n = got;
                                  done(e);
                                });
      });
      all.append(chunk, n);
      if (ec == beast::error::timeout) {
        return std::nullopt;
      }
      if (ec) {
        return all;
      }
    }
  }

  /// True once the server has closed the connection (within `within`).
  bool closedByServer(std::chrono::milliseconds within) {
    return readUntilClosed(within).has_value();
  }

  error_code lastError() const { return last_error_; }
  Stream& stream() { return stream_; }

 private:
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  error_code handshake() {
    lowest().expires_after(kStepDeadline);
    return run([&](auto done) { stream_.async_handshake(asio::ssl::stream_base::client, done); });
  }

  // Starts one operation and runs the client's io_context until it completes. The tcp_stream
  // deadline set before each step bounds the wait.
  template <class Start>
  error_code run(Start start) {
    std::optional<error_code> result;
    start([&result](const error_code& ec, auto&&...) { result = ec; });
    io_.restart();
    while (!result && io_.run_one() != 0) {
    }
    return result.value_or(asio::error::operation_aborted);
  }

  asio::io_context io_;
  Stream stream_;
  beast::flat_buffer buffer_;
  error_code last_error_;
};

using Client = BasicClient<beast::tcp_stream>;
using TlsClient = BasicClient<beast::ssl_stream<beast::tcp_stream>>;

}  // namespace psa::agent::http::testing
