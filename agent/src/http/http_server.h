// The agent's small HTTP(S) server for the status page and /metrics, on the agent's
// io_context: bounded connections, a deadline on every request, small header limits, GET and
// HEAD only. Handlers run on one worker thread of the server's own (they read the store and
// the link's status, which must not block an io thread). Built only when the config has an
// `http` section.
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "http/request_gate.h"
#include "psa/agent/http_settings.h"
#include "psa/store/result.h"

namespace psa::agent::http {

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::map<std::string, std::string> headers;  ///< extra headers (e.g. Content-Security-Policy)
};

/// Answers an admitted request; runs on the server's worker thread; must not throw.
using Handler = std::function<Response(const Request&)>;

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, HttpSettings settings, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Loads the TLS context and the bearer token (a file other accounts can read is refused),
  /// then binds. A port held by another program is not an error here: the server logs it and
  /// keeps trying every 30 s (the status page must never keep records from flowing).
  Status start();
  /// Closes the listener and every connection; waits for a running handler.
  void stop();
  /// The bound port (0 before the bind succeeded).
  uint16_t port() const;
  /// "serving", "waiting for the port", "stopped".
  std::string state() const;

  struct Impl;  ///< public only for the .cpp's connection classes

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace psa::agent::http
