#include "http/http_server.h"

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <future>
#include <mutex>
#include <optional>
#include <type_traits>
#include <unordered_map>

#include "build_info.h"
#include "http/request_reader.h"
#include "psa/adapters/net/listen_socket.h"
#include "psa/store/fatal.h"
#include "psa/store/log.h"
#include "psa/store/os/secret_file.h"

namespace psa::agent::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr auto kBindRetry = std::chrono::seconds(30);
constexpr size_t kMinTokenLength = 16;

enum class State { stopped, waiting, serving };

class Connection {
 public:
  virtual ~Connection() = default;
  virtual void close() = 0;
};

const char* reasonText(int status) {
  return bhttp::obsolete_reason(static_cast<bhttp::status>(status)).data();
}

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& context, HttpSettings s, Handler h)
      : io(context),
        settings(std::move(s)),
        handler(std::move(h)),
        strand(asio::make_strand(context)),
        acceptor(strand),
        retry_timer(strand) {}

  asio::io_context& io;
  HttpSettings settings;
  Handler handler;
  AccessPolicy policy;
  std::unique_ptr<asio::ssl::context> tls;
  asio::strand<asio::io_context::executor_type> strand;
  tcp::acceptor acceptor;          // strand
  asio::steady_timer retry_timer;  // strand
  std::string bind_error;          // strand: the last bind failure logged
  bool closed = false;             // strand
  asio::thread_pool worker{1};
  std::atomic<State> state{State::stopped};
  std::atomic<uint16_t> port{0};
  std::atomic<size_t> connections{0};
  std::mutex mu;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> open;  // mu
  log::Logger logger{"http"};

  void bindAndAccept();
  void accept();
  template <class Stream>
  void serve(Stream stream);
};

namespace {

// One connection: read a request, admit it, let the worker answer, write, repeat while the
// client keeps the connection alive. Every step runs on the connection's strand.
template <class Stream>
class Session : public Connection, public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

 public:
  Session(std::shared_ptr<HttpServer::Impl> server, Stream stream)
      : server_(std::move(server)), stream_(std::move(stream)) {}
  ~Session() override {
    server_->connections.fetch_sub(1);
    std::lock_guard lock(server_->mu);
    server_->open.erase(this);
  }

  void start() {
    if constexpr (kTls) {
      lowest().expires_after(server_->settings.request_timeout);
      stream_.async_handshake(
          asio::ssl::stream_base::server, [self = this->shared_from_this()](const error_code& ec) {
            if (ec) {
              // Scanners and wrong clients: not worth a log line each.
              self->server_->logger.debug("tls_handshake_failed", {{"error", ec.message()}});
              return;
            }
            self->read();
          });
    } else {
      read();
    }
  }

  void close() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] {
      error_code ignored;
      self->lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
      self->lowest().close();
    });
  }

 private:
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  void read() {
    parser_.emplace();
    applyLimits(*parser_);
    lowest().expires_after(server_->settings.request_timeout);
    bhttp::async_read(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](const error_code& ec, size_t) { self->onRead(ec); });
  }

  void onRead(const error_code& ec) {
    if (ec == bhttp::error::end_of_stream) {
      return finish();
    }
    if (ec) {
      if (const int status = parseRefusal(ec); status != 0) {
        // Refused before any handler: say why, then close.
        keep_alive_ = false;
        Response r;
        r.status = status;
        r.body = std::string(reasonText(status)) + "\n";
        return write(std::move(r));
      }
      return;  // timeout, reset, TLS error: nothing to answer
    }
    const auto& req = parser_->get();
    Request request = toRequest(req);
    keep_alive_ = req.keep_alive();
    head_ = req.method() == bhttp::verb::head;
    version_ = req.version();
    if (Verdict v = admit(request, server_->policy); v.status != 0) {
      server_->logger.debug("refused", {{"status", v.status}, {"reason", v.reason}});
      Response r;
      r.status = v.status;
      r.body = v.reason + "\n";
      if (v.status == 405) {
        r.headers["Allow"] = "GET, HEAD";
      } else if (v.status == 401) {
        r.headers["WWW-Authenticate"] = "Bearer realm=\"pms-agent\"";
      }
      keep_alive_ = keep_alive_ && v.status != 421;
      return write(std::move(r));
    }
    asio::post(server_->worker, [self = this->shared_from_this(), request = std::move(request)] {
      Response r = guardInvariant("http.handler", [&] { return self->server_->handler(request); });
      asio::post(self->stream_.get_executor(),
                 [self, r = std::move(r)]() mutable { self->write(std::move(r)); });
    });
  }

  void write(Response r) {
    response_.emplace();
    auto& res = *response_;
    res.version(version_);
    res.result(static_cast<unsigned>(r.status));
    res.set(bhttp::field::server, "pms-agent");
    res.set(bhttp::field::content_type, r.content_type);
    res.set(bhttp::field::cache_control, "no-store");
    res.set("X-Content-Type-Options", "nosniff");
    res.set("X-Frame-Options", "DENY");
    res.set("Referrer-Policy", "no-referrer");
    for (const auto& [name, value] : r.headers) {
      res.set(name, value);
    }
    res.keep_alive(keep_alive_);
    res.content_length(r.body.size());
    if (!head_) {
      res.body() = std::move(r.body);
    }
    lowest().expires_after(server_->settings.request_timeout);
    bhttp::async_write(stream_, res,
                       [self = this->shared_from_this()](const error_code& ec, size_t) {
                         if (ec) {
                           return;
                         }
                         if (!self->keep_alive_) {
                           return self->finish();
                         }
                         self->read();
                       });
  }

  void finish() {
    if constexpr (kTls) {
      lowest().expires_after(server_->settings.request_timeout);
      stream_.async_shutdown([self = this->shared_from_this()](const error_code&) {});
    } else {
      error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
  }

  std::shared_ptr<HttpServer::Impl> server_;
  Stream stream_;
  beast::flat_buffer buffer_{kHeaderLimit};
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<bhttp::response<bhttp::string_body>> response_;
  bool keep_alive_ = false;
  bool head_ = false;
  unsigned version_ = 11;
};

}  // namespace

template <class Stream>
void HttpServer::Impl::serve(Stream stream) {
  auto session = std::make_shared<Session<Stream>>(shared_from_this(), std::move(stream));
  {
    std::lock_guard lock(mu);
    open.emplace(session.get(), session);
  }
  session->start();
}

void HttpServer::Impl::accept() {
  acceptor.async_accept(
      asio::make_strand(io), [self = shared_from_this()](const error_code& ec, tcp::socket socket) {
        if (self->closed) {
          return;
        }
        if (!ec) {
          if (self->connections.fetch_add(1) >= self->settings.max_connections) {
            // Over the bound: close at once rather than queue (a scrape retries).
            self->connections.fetch_sub(1);
            self->logger.debug("connection_refused", {{"reason", "max_connections"}});
            error_code ignored;
            socket.close(ignored);
          } else if (self->tls) {
            self->serve(beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)),
                                                             *self->tls));
          } else {
            self->serve(beast::tcp_stream(std::move(socket)));
          }
        }
        self->accept();
      });
}

void HttpServer::Impl::bindAndAccept() {
  if (closed) {
    return;
  }
  error_code ec;
  const tcp::endpoint ep(asio::ip::make_address(settings.listen.host, ec), settings.listen.port);
  std::string step = "address";
  if (!ec) {
    step = "open";
    acceptor.open(ep.protocol(), ec);
  }
  if (!ec) {
    step = "options";
    adapters::net::setListenOptions(acceptor, ec);
  }
  if (!ec) {
    step = "bind";
    acceptor.bind(ep, ec);
  }
  if (!ec) {
    step = "listen";
    acceptor.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    error_code ignored;
    acceptor.close(ignored);
    std::string error = settings.listen.text + ": " + step + ": " + ec.message();
    if (ec == asio::error::access_denied) {
      error += " (" + adapters::net::listenAccessDeniedMeaning() + ")";
    }
    if (error != bind_error) {
      logger.error("http_bind_failed",
                   {{"listen", settings.listen.text},
                    {"error", error},
                    {"hint", "another program holds the port? retrying every 30 s"}});
      bind_error = error;
    }
    state = State::waiting;
    retry_timer.expires_after(kBindRetry);
    retry_timer.async_wait([self = shared_from_this()](const error_code& timer_ec) {
      if (!timer_ec) {
        self->bindAndAccept();
      }
    });
    return;
  }
  port = acceptor.local_endpoint(ec).port();
  state = State::serving;
  logger.info("http_listening", {{"listen", settings.listen.text},
                                 {"port", static_cast<int>(port.load())},
                                 {"tls", tls != nullptr},
                                 {"token", !policy.bearer_token.empty()}});
  accept();
}

HttpServer::HttpServer(asio::io_context& io, HttpSettings settings, Handler handler)
    : impl_(std::make_shared<Impl>(io, std::move(settings), std::move(handler))) {}

HttpServer::~HttpServer() { stop(); }

Status HttpServer::start() {
  Impl& d = *impl_;
  if (d.settings.tls) {
    std::string error;
    d.tls = adapters::net::makeServerTls(*d.settings.tls, error);
    if (!d.tls) {
      return Error(Errc::io, "http." + error);
    }
  }
  if (!d.settings.bearer_token_file.empty()) {
    if (auto st = os::checkSecretFile(d.settings.bearer_token_file, "http bearer token file");
        !st) {
      return st;
    }
    auto token = os::readSecretLine(d.settings.bearer_token_file);
    if (!token) {
      return Error(token.error().code, "http.bearer_token_file: " + token.error().message);
    }
    if (token->size() < kMinTokenLength) {
      return Error(
          Errc::invalid_argument,
          "http.bearer_token_file " + d.settings.bearer_token_file.string() +
              ": the token is shorter than 16 characters (openssl rand -hex 32 makes one)");
    }
    d.policy.bearer_token = std::move(token).value();
  }
  d.policy.loopback_hosts_only = adapters::net::isLoopback(d.settings.listen);
  asio::post(d.strand, [self = impl_] { self->bindAndAccept(); });
  return {};
}

void HttpServer::stop() {
  Impl& d = *impl_;
  auto close = [self = impl_] {
    self->closed = true;
    error_code ignored;
    self->acceptor.close(ignored);
    self->retry_timer.cancel();
  };
  if (d.io.stopped()) {
    close();
  } else {
    auto done = std::make_shared<std::promise<void>>();
    asio::post(d.strand, [close, done] {
      close();
      done->set_value();
    });
    if (done->get_future().wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      d.logger.error("http_stop_timeout");
    }
  }
  std::vector<std::shared_ptr<Connection>> sessions;
  {
    std::lock_guard lock(d.mu);
    for (auto& [ptr, weak] : d.open) {
      if (auto s = weak.lock()) {
        sessions.push_back(std::move(s));
      }
    }
  }
  for (auto& s : sessions) {
    s->close();
  }
  d.worker.stop();
  d.worker.join();
  d.state = State::stopped;
}

uint16_t HttpServer::port() const { return impl_->port.load(); }

std::string HttpServer::state() const {
  switch (impl_->state.load()) {
    case State::serving:
      return "serving";
    case State::waiting:
      return "waiting for the port";
    case State::stopped:
      break;
  }
  return "stopped";
}

}  // namespace psa::agent::http
