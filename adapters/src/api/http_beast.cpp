// HttpTransport on Boost.Beast + Boost.Asio + OpenSSL: the one transport of the API adapters,
// the same code on Linux and Windows (only system_trust_*.cpp differs; http_target.cpp parses
// URLs). The only file that includes Beast: keep it that way (template-heavy, slow to build).
//
// Threads: none of its own. A request runs on its caller's thread, which drives the private
// io_context of the connection it uses (a connection serves one request at a time, so exactly
// one thread runs that io_context at any moment). Deadlines are the connection's
// beast::tcp_stream timer. DNS is a blocking getaddrinfo on the caller's thread with the
// system resolver's own timeouts (Asio's async resolve would start a thread per io_context);
// cancelAll() takes effect when it returns.
//
// Keep-alive: finished connections go back to a per-origin cache (at most kMaxIdlePerOrigin).
// Before reuse a connection must have been idle less than kMaxIdle and its socket must have
// nothing to read (a peer that closed it, or sent anything unsolicited, fails that check).
// A request that still fails on a reused connection is retried once on a fresh connection if
// the failure was the connection going away before any byte of the answer arrived (EOF, reset,
// TLS stream truncated - never a timeout) and the request is idempotent (GET, HEAD, PUT,
// DELETE, OPTIONS, TRACE) or, for POST/PATCH, failed before a single byte of it was written:
// such a request cannot have been processed twice.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <array>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cctype>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <set>

#include "http_target.h"
#include "psa/adapters/api/http.h"
#include "system_trust.h"

namespace psa::adapters::api {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;

constexpr uint32_t kHeaderLimit = 64 * 1024;  // all header lines of one answer
constexpr size_t kReadChunk = 64 * 1024;      // body bytes per read (and per sink call, at most)
constexpr auto kMaxIdle = std::chrono::seconds(50);  // below the common 60 s server idle timeouts
constexpr size_t kMaxIdlePerOrigin = 2;
constexpr int kMaxInterim = 8;  // 1xx answers skipped before the final one

// ---- the request -------------------------------------------------------------------------------

bool isToken(std::string_view s) {
  static constexpr std::string_view kSpecials = "!#$%&'*+-.^_`|~";
  if (s.empty()) {
    return false;
  }
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (!std::isalnum(c) && kSpecials.find(ch) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// No CR, LF or NUL: a value from outside (a token from a server's answer) cannot smuggle in
// another header or request.
bool isFieldValue(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

using Request = bhttp::request<bhttp::string_body>;

Result<Request> buildRequest(const HttpRequest& in, const HttpTarget& t) {
  if (!isToken(in.method)) {
    return Error(Errc::invalid_argument, "bad HTTP method");
  }
  Request r;
  r.version(11);
  r.method_string(in.method);
  r.target(t.path);
  std::string content_type;
  std::optional<std::string> host;
  bool has_user_agent = false;
  for (const auto& [k, v] : in.headers) {
    if (!isToken(k) || !isFieldValue(v)) {
      return Error(Errc::invalid_argument, "a request header has a bad name or value");
    }
    if (iequals(k, "host")) {
      host = v;
    }
  }
  r.set(bhttp::field::host, host.value_or(t.host_header));
  for (const auto& [k, v] : in.headers) {
    if (iequals(k, "content-type")) {
      content_type = v;
      continue;
    }
    // Framing is ours.
    if (iequals(k, "host") || iequals(k, "content-length") || iequals(k, "transfer-encoding")) {
      continue;
    }
    if (iequals(k, "user-agent")) {
      has_user_agent = true;
    }
    r.insert(k, v);
  }
  if (!has_user_agent) {
    r.set(bhttp::field::user_agent, "pms-agent");
  }
  if (!in.body.empty() || in.method == "POST" || in.method == "PUT") {
    r.set(bhttp::field::content_type,
          content_type.empty() ? std::string("application/octet-stream") : content_type);
    r.body() = in.body;
    r.content_length(in.body.size());
  }
  return r;
}

bool idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE" ||
         method == "OPTIONS" || method == "TRACE";
}

// ---- errors ------------------------------------------------------------------------------------

std::string within(std::chrono::milliseconds timeout) {
  const auto ms = timeout.count();
  return "no answer within " +
         (ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms");
}

// The peer went away (as opposed to a timeout, a refusal or a malformed answer).
bool connectionLost(const error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::connection_aborted || ec == asio::error::broken_pipe ||
         ec == asio::error::not_connected || ec == ssl::error::stream_truncated ||
         ec == bhttp::error::end_of_stream;
}

// `what` names the step and host:port, e.g. "sending the request to epic.local:443".
Error ioError(const error_code& ec, const std::string& what, std::chrono::milliseconds timeout) {
  if (ec == beast::error::timeout) {
    return Error(Errc::timeout, what + ": " + within(timeout));
  }
  if (ec == bhttp::error::header_limit) {
    return Error(Errc::limit,
                 what + ": header larger than " + std::to_string(kHeaderLimit / 1024) + " KiB");
  }
  return Error(Errc::unavailable, what + ": " + ec.message());
}

// Why a TLS handshake failed, PHI-free: the verification result when the chain or name was
// refused ("certificate verify failed: unable to get local issuer certificate"), else the
// OpenSSL reason. Empties this thread's OpenSSL error queue.
std::string tlsFailure(SSL* ssl, const error_code& ec, bool verified, const std::string& host) {
  std::string why;
  const long verify = SSL_get_verify_result(ssl);
  if (verified && verify != X509_V_OK) {
    why = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
    if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
      why += " (the server's certificate is not valid for " + host + ")";
    }
  } else if (connectionLost(ec)) {
    why = "the server closed the connection during the handshake";
  } else {
    why = ec.message();
  }
  for (unsigned long e = ERR_get_error(); e != 0; e = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(e);
    if (reason != nullptr && why.find(reason) == std::string::npos) {
      why += std::string("; ") + reason;
    }
  }
  ERR_clear_error();
  return why;
}

// ---- one connection ----------------------------------------------------------------------------

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// A TCP or TLS connection to one origin with its own io_context. Used by one request at a time.
struct Connection {
  explicit Connection(std::string origin_key) : origin(std::move(origin_key)) {}

  std::string origin;
  asio::io_context io{1};  // declared before the streams: they are destroyed first
  std::optional<PlainStream> plain;
  std::optional<TlsStream> tls;
  beast::flat_buffer buffer;             // bytes read past the last parsed answer
  std::array<char, kReadChunk> chunk{};  // body bytes of one read
  int served = 0;                        // answers read to their end on this connection
  SteadyClock::time_point idle_since{};

  PlainStream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }

  // cancelAll(): runs on the io_context, so on the thread driving the request.
  void abort() {
    if (plain || tls) {
      lowest().close();
    }
  }

  // Runs the io_context until the operation started before has completed.
  void run() {
    io.restart();
    io.run();
  }

  // True when the idle socket is open and has nothing to read: the peer has not closed it and
  // sent nothing unsolicited.
  bool idleAndOpen() {
    auto& sock = lowest().socket();
    if (!sock.is_open() || buffer.size() != 0) {
      return false;
    }
    error_code ec;
    sock.non_blocking(true, ec);
    if (ec) {
      return false;
    }
    char byte = 0;
    sock.receive(asio::buffer(&byte, 1), tcp::socket::message_peek, ec);
    error_code ignored;
    sock.non_blocking(false, ignored);
    return ec == asio::error::would_block;
  }
};

using ConnectionPtr = std::unique_ptr<Connection>;

// The outcome of one asynchronous operation.
struct Done {
  error_code ec = asio::error::operation_aborted;
  size_t bytes = 0;
  bool done = false;
  auto handler() {
    return [this](error_code e, size_t n) {
      ec = e;
      bytes = n;
      done = true;
    };
  }
};

// ---- the transport -----------------------------------------------------------------------------

class BeastTransport final : public HttpTransport {
 public:
  BeastTransport(TransportOptions options, std::unique_ptr<ssl::context> ctx)
      : options_(std::move(options)), ctx_(std::move(ctx)) {}

  Result<HttpResponse> send(const HttpRequest& req) override { return exchange(req, nullptr); }

  Result<HttpResponse> sendStreaming(const HttpRequest& req, const BodySink& sink) override {
    return exchange(req, &sink);
  }

  void cancelAll() override {
    std::map<std::string, std::vector<ConnectionPtr>> idle;
    {
      std::lock_guard lock(mu_);
      cancelled_ = true;
      idle.swap(idle_);
      for (Connection* c : busy_) {
        // Runs on the request's thread inside its next io_context run; the request deregisters
        // under mu_ before the connection is destroyed, so `c` is alive here.
        asio::post(c->io, [c] { c->abort(); });
      }
    }
  }

 private:
  // A connection checked out of the cache for one request: registered as busy (cancelAll()
  // reaches it) until it goes back to the cache or is dropped.
  class Lease {
   public:
    Lease(BeastTransport& owner, ConnectionPtr conn) : owner_(owner), conn_(std::move(conn)) {}
    ~Lease() { owner_.checkIn(std::move(conn_), keep_); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Connection& operator*() { return *conn_; }
    void keep() { keep_ = true; }

   private:
    BeastTransport& owner_;
    ConnectionPtr conn_;
    bool keep_ = false;
  };

  Error stopped() const { return Error(Errc::closed, "HTTP request cancelled"); }

  Result<HttpResponse> exchange(const HttpRequest& req, const BodySink* sink) {
    if (cancelled_) {
      return Error(Errc::closed, "HTTP transport stopped");
    }
    auto target = parseHttpTarget(req.url);
    if (!target) {
      return std::move(target).error();
    }
    auto request = buildRequest(req, *target);
    if (!request) {
      return std::move(request).error();
    }
    const bool repeatable = idempotent(req.method);
    for (int attempt = 0;; ++attempt) {
      bool reused = false;
      auto conn = checkOut(*target, attempt == 0, reused);
      if (!conn) {
        return std::move(conn).error();
      }
      Lease lease(*this, std::move(*conn));
      Connection& c = *lease;
      if (!reused) {
        if (Status st = connect(c, *target); !st) {
          ERR_clear_error();
          return std::move(st).error();
        }
      }
      bool keep = false;
      bool retryable = false;
      Result<HttpResponse> r =
          c.tls ? roundTrip(c, *c.tls, *target, *request, repeatable, sink, keep, retryable)
                : roundTrip(c, *c.plain, *target, *request, repeatable, sink, keep, retryable);
      if (r) {
        if (keep && !cancelled_) {
          lease.keep();
        }
        return r;
      }
      ERR_clear_error();  // a failed TLS read may leave reasons on this thread's queue
      if (retryable && reused && attempt == 0 && !cancelled_) {
        continue;  // the kept-alive connection had gone away: once more on a fresh one
      }
      return r;
    }
  }

  // An idle connection to t's origin that is still usable (when `reuse`), else a new
  // unconnected one; registered as busy. Errors: Errc::closed after cancelAll().
  Result<ConnectionPtr> checkOut(const HttpTarget& t, bool reuse, bool& reused) {
    std::vector<ConnectionPtr> stale;  // destroyed after the lock is released
    std::lock_guard lock(mu_);
    if (cancelled_) {
      return Error(Errc::closed, "HTTP transport stopped");
    }
    ConnectionPtr conn;
    if (auto it = idle_.find(t.origin); reuse && it != idle_.end()) {
      auto& list = it->second;
      const auto now = SteadyClock::now();
      while (!list.empty() && !conn) {
        ConnectionPtr candidate = std::move(list.back());
        list.pop_back();
        if (now - candidate->idle_since < kMaxIdle && candidate->idleAndOpen()) {
          conn = std::move(candidate);
        } else {
          stale.push_back(std::move(candidate));
        }
      }
      if (list.empty()) {
        idle_.erase(it);
      }
    }
    reused = conn != nullptr;
    if (!conn) {
      conn = std::make_unique<Connection>(t.origin);
    }
    busy_.insert(conn.get());
    return conn;
  }

  void checkIn(ConnectionPtr conn, bool keep) {
    ConnectionPtr dropped;
    std::lock_guard lock(mu_);
    busy_.erase(conn.get());
    if (!keep || cancelled_ || conn->buffer.size() != 0) {
      dropped = std::move(conn);
      return;
    }
    conn->idle_since = SteadyClock::now();
    auto& list = idle_[conn->origin];
    list.push_back(std::move(conn));
    if (list.size() > kMaxIdlePerOrigin) {
      dropped = std::move(list.front());
      list.erase(list.begin());
    }
  }

  // Resolves, connects and (for https) handshakes with host name verification.
  Status connect(Connection& c, const HttpTarget& t) {
    tcp::resolver resolver(c.io);
    error_code ec;
    const auto endpoints = resolver.resolve(t.host, t.port, tcp::resolver::numeric_service, ec);
    if (cancelled_) {
      return stopped();
    }
    if (ec) {
      return Error(Errc::unavailable, "cannot resolve " + t.host + ": " + ec.message());
    }
    if (t.tls) {
      try {
        c.tls.emplace(c.io, *ctx_);
      } catch (const boost::system::system_error&) {
        ERR_clear_error();
        return Error(Errc::internal, "OpenSSL: cannot make a TLS session");
      }
    } else {
      c.plain.emplace(c.io);
    }
    Done connected;
    c.lowest().expires_after(options_.timeout);
    c.lowest().async_connect(endpoints, [&connected](error_code e, const tcp::endpoint&) {
      connected.ec = e;
      connected.done = true;
    });
    c.run();
    if (cancelled_) {
      return stopped();
    }
    if (connected.ec) {
      return ioError(connected.ec, "connecting to " + t.authority, options_.timeout);
    }
    c.lowest().socket().set_option(tcp::no_delay(true), ec);
    if (!t.tls) {
      return {};
    }
    SSL* ssl_handle = c.tls->native_handle();
    error_code not_ip;
    asio::ip::make_address(t.host, not_ip);
    bool ok = true;
    if (not_ip) {
      // SNI (never for an IP literal, RFC 6066) and the name the certificate must carry.
      ok = SSL_set_tlsext_host_name(ssl_handle, t.host.c_str()) == 1;
      if (ok && options_.verify_tls) {
        SSL_set_hostflags(ssl_handle, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set1_host(ssl_handle, t.host.c_str()) == 1;
      }
    } else if (options_.verify_tls) {
      ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_handle), t.host.c_str()) == 1;
    }
    if (!ok) {
      ERR_clear_error();
      return Error(Errc::internal, "OpenSSL: cannot set the server name " + t.host);
    }
    Done shaken;
    c.lowest().expires_after(options_.timeout);
    c.tls->async_handshake(ssl::stream_base::client, [&shaken](error_code e) {
      shaken.ec = e;
      shaken.done = true;
    });
    c.run();
    if (cancelled_) {
      ERR_clear_error();
      return stopped();
    }
    if (shaken.ec) {
      if (shaken.ec == beast::error::timeout) {
        ERR_clear_error();
        return Error(Errc::timeout,
                     "TLS handshake with " + t.authority + ": " + within(options_.timeout));
      }
      return Error(Errc::unavailable,
                   "TLS handshake with " + t.authority + " failed: " +
                       tlsFailure(ssl_handle, shaken.ec, options_.verify_tls, t.host));
    }
    return {};
  }

  // Writes the request and reads the answer. `keep`: the connection may serve another request.
  // `retryable`: it failed because the connection went away before any byte of the answer, and
  // repeating it cannot make the server act twice.
  template <class Stream>
  Result<HttpResponse> roundTrip(Connection& c, Stream& stream, const HttpTarget& t, Request& req,
                                 bool safe_to_repeat, const BodySink* sink, bool& keep,
                                 bool& retryable) {
    const bool head = req.method() == bhttp::verb::head;
    Done wrote;
    c.lowest().expires_after(options_.timeout);
    bhttp::async_write(stream, req, wrote.handler());
    c.run();
    if (cancelled_) {
      return stopped();
    }
    if (wrote.ec) {
      retryable = connectionLost(wrote.ec) && (safe_to_repeat || wrote.bytes == 0);
      return ioError(wrote.ec, "sending the request to " + t.authority, options_.timeout);
    }

    // The header of the final answer (1xx interim answers skipped).
    std::optional<bhttp::response_parser<bhttp::buffer_body>> parser;
    for (int interim = 0;; ++interim) {
      parser.emplace();
      parser->header_limit(kHeaderLimit);
      // send() checks max_body; streamed bodies are unlimited. (Not boost::none: Boost 1.74
      // compares a Content-Length with it as "greater than none" and refuses every length.)
      parser->body_limit(std::numeric_limits<std::uint64_t>::max());
      parser->skip(head);
      while (!parser->is_header_done()) {
        Done read;
        c.lowest().expires_after(options_.timeout);
        bhttp::async_read_some(stream, c.buffer, *parser, read.handler());
        c.run();
        if (cancelled_) {
          return stopped();
        }
        if (read.ec) {
          const std::string what = "waiting for the answer of " + t.authority;
          if (!connectionLost(read.ec)) {
            return ioError(read.ec, what, options_.timeout);
          }
          retryable = interim == 0 && !parser->got_some() && c.buffer.size() == 0 && safe_to_repeat;
          return Error(Errc::unavailable,
                       what + ": the connection closed (" + read.ec.message() + ")");
        }
      }
      const unsigned status = parser->get().result_int();
      if (status < 100 || status >= 200 || status == 101 || interim >= kMaxInterim) {
        break;
      }
    }

    auto& msg = parser->get();
    HttpResponse out;
    out.status = static_cast<int>(msg.result_int());
    for (const auto& field : msg) {
      out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    const bool stream_body = sink != nullptr && out.status >= 200 && out.status < 300;
    const auto length = parser->content_length();
    if (!stream_body && length && *length > options_.max_body) {
      return Error(Errc::limit,
                   "response body larger than " + std::to_string(options_.max_body) + " bytes");
    }
    uint64_t total = 0;
    while (!parser->is_done()) {
      msg.body().data = c.chunk.data();
      msg.body().size = c.chunk.size();
      Done read;
      c.lowest().expires_after(options_.timeout);
      bhttp::async_read_some(stream, c.buffer, *parser, read.handler());
      c.run();
      if (cancelled_) {
        return stopped();
      }
      error_code ec = read.ec;
      if (ec == bhttp::error::need_buffer) {
        ec = {};
      }
      if (ec == ssl::error::stream_truncated) {
        // TCP closed without TLS close_notify: the end for a body delimited by the connection
        // closing (what Beast does for a plain EOF), a short body otherwise.
        ec = {};
        parser->put_eof(ec);
      }
      const size_t n = c.chunk.size() - msg.body().size;
      if (n > 0) {
        total += n;
        const std::string_view data(c.chunk.data(), n);
        if (stream_body) {
          if (!(*sink)(data)) {
            return Error(Errc::invalid_input, "the reader refused the data");
          }
        } else {
          if (out.body.size() + n > options_.max_body) {
            return Error(Errc::limit, "response body larger than " +
                                          std::to_string(options_.max_body) + " bytes");
          }
          out.body.append(data);
        }
      }
      if (ec == bhttp::error::partial_message || (ec && connectionLost(ec))) {
        return Error(Errc::unavailable,
                     "short body from " + t.authority + ": " + std::to_string(total) +
                         (length ? " of " + std::to_string(*length) : std::string()) +
                         " bytes, then the connection closed");
      }
      if (ec) {
        return ioError(ec, "reading the answer of " + t.authority, options_.timeout);
      }
    }
    ++c.served;
    keep = msg.keep_alive() && !parser->need_eof() && out.status != 101;
    return out;
  }

  const TransportOptions options_;
  const std::unique_ptr<ssl::context> ctx_;
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;  // guards idle_, busy_ and the posting in cancelAll()
  std::map<std::string, std::vector<ConnectionPtr>> idle_;  // by origin, oldest first
  std::set<Connection*> busy_;
};

std::string utf8(const std::filesystem::path& p) {
  const auto s = p.u8string();
  return std::string(s.begin(), s.end());
}

}  // namespace

Result<HttpTransportPtr> makeHttpTransport(const TransportOptions& options) {
  if (!options.ca_file.empty()) {
    std::ifstream in(options.ca_file);
    if (!in) {
      return Error(Errc::io, "cannot read CA file " + utf8(options.ca_file));
    }
  }
  std::unique_ptr<ssl::context> ctx;
  try {
    ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  } catch (const boost::system::system_error&) {
    ERR_clear_error();
    return Error(Errc::internal, "OpenSSL: cannot make a TLS context");
  }
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  if (options.verify_tls) {
    if (!options.ca_file.empty()) {
      // A configured CA replaces the system store: on-prem servers use a private CA and we
      // trust exactly that. (A new SSL_CTX starts with an empty store.)
      if (SSL_CTX_load_verify_locations(native, utf8(options.ca_file).c_str(), nullptr) != 1) {
        ERR_clear_error();
        return Error(Errc::io, "CA file " + utf8(options.ca_file) + " holds no PEM certificate");
      }
    } else {
      PSA_TRY(loadSystemTrust(native));
    }
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(native, SSL_VERIFY_NONE, nullptr);
  }
  return HttpTransportPtr(std::make_shared<BeastTransport>(options, std::move(ctx)));
}

}  // namespace psa::adapters::api
