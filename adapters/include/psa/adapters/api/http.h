// The HTTP transport of the API adapters: plain request/response values and an interface, so
// only http_beast.cpp includes Boost.Beast and OpenSSL (template-heavy) and tests or other
// transports can stand in. Thread-safe: one transport serves one adapter's worker thread (and
// its token calls).
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "psa/store/result.h"

namespace psa::adapters::api {

using Headers = std::vector<std::pair<std::string, std::string>>;

/// ASCII case-insensitive comparison.
bool iequals(std::string_view a, std::string_view b);

/// Case-insensitive header lookup (first match).
std::optional<std::string> findHeader(const Headers& headers, std::string_view name);

struct HttpRequest {
  std::string method = "GET";
  std::string url;  ///< absolute http(s) URL, already percent-encoded
  Headers headers;  ///< sent in this order; "User-Agent: pms-agent" is added when absent
  std::string body;
};

struct HttpResponse {
  int status = 0;
  Headers headers;   ///< as received, duplicates kept (a repeated name next to its first)
  std::string body;  ///< empty when streamed to a BodySink
  std::optional<std::string> header(std::string_view name) const {
    return findHeader(headers, name);
  }
};

/// Receives a streamed body chunk by chunk; return false to abort the transfer (the call then
/// fails with Errc::invalid_input: the reader refused the data).
using BodySink = std::function<bool(std::string_view chunk)>;

struct TransportOptions {
  std::filesystem::path ca_file;  ///< empty: the system trust store; else only this CA bundle
  bool verify_tls = true;         ///< false only for explicitly configured test setups
  /// Applies to connecting, the TLS handshake, and each read or write (an idle timeout: a
  /// large body that keeps arriving never times out). DNS uses the system resolver's own.
  std::chrono::milliseconds timeout{30000};
  size_t max_body = 256u << 20;  ///< larger non-streamed bodies fail with Errc::limit
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;

  /// Sends `req` and reads the whole body. Blocking; call from a worker thread, never from an
  /// I/O thread. Errors: Errc::unavailable (DNS, connect, TLS with the precise reason such as
  /// "certificate verify failed: unable to get local issuer certificate", reset, short body,
  /// malformed answer), Errc::timeout ("no answer within N s"), Errc::limit (body over
  /// max_body, header over 64 KiB), Errc::closed (cancelled by cancelAll()),
  /// Errc::invalid_argument (an unusable URL or header). HTTP error statuses are not errors:
  /// they come back in the response. Messages name host:port, never a path, query or body.
  virtual Result<HttpResponse> send(const HttpRequest& req) = 0;

  /// Like send(), but a 2xx body is handed to `sink` in chunks as it arrives (constant memory);
  /// other statuses are read whole into the response. A short or broken body is an error even
  /// after some chunks were delivered: the caller must treat those chunks as unconfirmed.
  virtual Result<HttpResponse> sendStreaming(const HttpRequest& req, const BodySink& sink) = 0;

  /// Aborts every request in flight (they fail with Errc::closed) and makes later ones fail
  /// at once. Callable from any thread; does not wait for the aborted calls to return. Used by
  /// stop().
  virtual void cancelAll() = 0;
};

using HttpTransportPtr = std::shared_ptr<HttpTransport>;

/// The transport on Boost.Beast + Boost.Asio + OpenSSL, the same code on Linux and Windows.
/// Requests run on the caller's thread (no threads of its own); one kept-alive connection per
/// origin is reused between requests. TLS 1.2 or later; with verify_tls the server's chain and
/// host name are verified against ca_file (only that bundle) or, when it is empty, the
/// operating system's trust store. Errors: Errc::io when ca_file cannot be read or holds no PEM
/// certificate, or the system trust store cannot be opened; Errc::internal when OpenSSL cannot
/// make a TLS context.
Result<HttpTransportPtr> makeHttpTransport(const TransportOptions& options);

}  // namespace psa::adapters::api
