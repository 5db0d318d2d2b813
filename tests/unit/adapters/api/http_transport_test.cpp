// The HTTP transport of the API adapters against a real local server whose answers each test
// scripts byte by byte (plain TCP on 127.0.0.1 and TLS with the test PKI): streaming, short
// bodies, limits, timeouts, cancellation, keep-alive and reconnects, TLS verification reasons.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "psa/adapters/api/http.h"
#include "test_support.h"
#include "tls_material.h"

namespace psa::test {
namespace {

namespace api = psa::adapters::api;
namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

/// A request as the server read it.
struct Seen {
  std::string method;
  std::string target;
  api::Headers headers;
  std::string body;
  int connection = 0;  // 1-based, in accept order
};

/// A real HTTP/1.1 server on 127.0.0.1 (port chosen by the kernel), optionally TLS. One thread
/// accepts; each connection gets a thread that reads requests and hands each to the handler,
/// which writes the raw answer with `write` and returns false to close the connection after it
/// (without TLS close_notify). A handler that writes nothing leaves the client waiting.
class TestServer {
 public:
  using Write = std::function<bool(std::string_view)>;
  using Handler = std::function<bool(const Seen&, const Write&)>;

  explicit TestServer(Handler handler, const CertFiles* identity = nullptr)
      : handler_(std::move(handler)), acceptor_(io_, tcp::endpoint(tcp::v4(), 0)) {
    if (identity != nullptr) {
      tls_.emplace(ssl::context::tls_server);
      tls_->use_certificate_chain_file(identity->cert.string());
      tls_->use_private_key_file(identity->key.string(), ssl::context::pem);
    }
    accept_thread_ = std::thread([this] { acceptLoop(); });
  }

  ~TestServer() {
    stopping_ = true;
    {  // wake the blocking accept()
      tcp::socket poke(io_);
      error_code ec;
      poke.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port()), ec);
    }
    accept_thread_.join();
    closeConnections();
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mu_);
      threads.swap(threads_);
    }
    for (auto& t : threads) {
      t.join();
    }
  }

  int port() const { return acceptor_.local_endpoint().port(); }
  std::string url(const std::string& host, const std::string& path) const {
    return std::string(tls_ ? "https://" : "http://") + host + ":" + std::to_string(port()) + path;
  }
  std::string url(const std::string& path = "/") const { return url("127.0.0.1", path); }

  int connections() const { return accepted_; }
  int closed() const { return closed_; }
  std::vector<Seen> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }
  size_t requests() const {
    std::lock_guard lock(mu_);
    return seen_.size();
  }

  /// The server closes every open connection (idle or not), as a server's idle timeout would.
  void closeConnections() {
    std::lock_guard lock(mu_);
    for (auto& [n, sock] : open_) {
      error_code ec;
      sock->shutdown(tcp::socket::shutdown_both, ec);
    }
  }

 private:
  void acceptLoop() {
    for (;;) {
      auto sock = std::make_shared<tcp::socket>(io_);
      error_code ec;
      acceptor_.accept(*sock, ec);
      if (stopping_) {
        return;
      }
      if (ec) {
        continue;
      }
      const int n = ++accepted_;
      std::lock_guard lock(mu_);
      open_[n] = sock;
      threads_.emplace_back([this, sock, n] {
        if (tls_) {
          ssl::stream<tcp::socket&> stream(*sock, *tls_);
          error_code hec;
          stream.handshake(ssl::stream_base::server, hec);
          if (!hec) {
            serve(stream, n);
          }
        } else {
          serve(*sock, n);
        }
        std::lock_guard inner(mu_);
        open_.erase(n);
        error_code cec;
        sock->close(cec);
        ++closed_;
      });
    }
  }

  template <class Stream>
  void serve(Stream& stream, int n) {
    boost::beast::flat_buffer buffer;
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      error_code ec;
      bhttp::read(stream, buffer, parser, ec);
      if (ec) {
        return;
      }
      const auto& req = parser.get();
      Seen s;
      s.method = std::string(req.method_string());
      s.target = std::string(req.target());
      for (const auto& f : req) {
        s.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
      }
      s.body = req.body();
      s.connection = n;
      {
        std::lock_guard lock(mu_);
        seen_.push_back(s);
      }
      const Write write = [&stream](std::string_view bytes) {
        error_code wec;
        asio::write(stream, asio::buffer(bytes.data(), bytes.size()), wec);
        return !wec;
      };
      if (!handler_(s, write)) {
        return;
      }
    }
  }

  Handler handler_;
  asio::io_context io_;  // only for constructing sockets: all I/O here is synchronous
  tcp::acceptor acceptor_;
  std::optional<ssl::context> tls_;
  std::thread accept_thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::atomic<int> closed_{0};
  mutable std::mutex mu_;
  std::map<int, std::shared_ptr<tcp::socket>> open_;
  std::vector<std::thread> threads_;
  std::vector<Seen> seen_;
};

/// "HTTP/1.1 200 OK" with a Content-Length body.
std::string answer(std::string_view body, int status = 200, std::string_view extra = "") {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + std::string(extra) +
         "\r\n" + std::string(body);
}

TestServer::Handler always(std::string bytes, bool keep = true) {
  return [bytes, keep](const Seen&, const TestServer::Write& write) {
    write(bytes);
    return keep;
  };
}

api::HttpTransportPtr transport(api::TransportOptions o = {}) {
  auto t = api::makeHttpTransport(o);
  EXPECT_TRUE(t) << t.error().describe();
  return t ? *t : nullptr;
}

api::HttpRequest get(const std::string& url) {
  api::HttpRequest r;
  r.url = url;
  return r;
}

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

// ---- bodies -----------------------------------------------------------------------------------

TEST(HttpTransport, ChunkedBodyIsStreamedInPiecesAsItArrives) {
  std::atomic<bool> first_delivered{false};
  std::atomic<bool> server_saw_delivery{false};
  TestServer server([&](const Seen&, const TestServer::Write& write) {
    write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    // The rest only once the client has handed the first piece to its sink (or after the
    // deadline, which fails the test below): the body must not be held back until complete.
    server_saw_delivery = waitFor([&] { return first_delivered.load(); }, 10s);
    write("6\r\n world\r\n0\r\n\r\n");
    return true;
  });
  auto t = transport();
  std::vector<std::string> pieces;
  const api::BodySink sink = [&](std::string_view chunk) {
    pieces.emplace_back(chunk);
    first_delivered = true;
    return true;
  };
  auto r = t->sendStreaming(get(server.url("/bulk")), sink);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->body.empty());
  EXPECT_TRUE(server_saw_delivery);
  ASSERT_GE(pieces.size(), 2u);
  std::string all;
  for (const auto& p : pieces) {
    all += p;
  }
  EXPECT_EQ(all, "hello world");
  // send() collects the same chunked body whole.
  first_delivered = true;
  auto whole = t->send(get(server.url("/bulk")));
  ASSERT_TRUE(whole) << whole.error().describe();
  EXPECT_EQ(whole->body, "hello world");
  EXPECT_EQ(server.connections(), 1);
}

TEST(HttpTransport, ShortBodiesAreUnavailableEvenAfterChunksWereDelivered) {
  {
    TestServer server(
        always("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + std::string(40, 'x'), false));
    auto t = transport();
    auto r = t->send(get(server.url()));
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(Errc::unavailable)) << r.error().describe();
    EXPECT_TRUE(contains(r.error().message, "short body")) << r.error().message;
    EXPECT_TRUE(contains(r.error().message, "40 of 100 bytes")) << r.error().message;
    size_t streamed = 0;
    auto s = t->sendStreaming(get(server.url()), [&](std::string_view c) {
      streamed += c.size();
      return true;
    });
    ASSERT_FALSE(s);
    EXPECT_TRUE(s.error().is(Errc::unavailable)) << s.error().describe();
    EXPECT_EQ(streamed, 40u);
  }
  {  // chunked without the last chunk
    TestServer server(
        always("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", false));
    auto t = transport();
    std::string streamed;
    auto s = t->sendStreaming(get(server.url()), [&](std::string_view c) {
      streamed += c;
      return true;
    });
    ASSERT_FALSE(s);
    EXPECT_TRUE(s.error().is(Errc::unavailable)) << s.error().describe();
    EXPECT_TRUE(contains(s.error().message, "short body")) << s.error().message;
    EXPECT_EQ(streamed, "hello");
  }
}

TEST(HttpTransport, BodyOverMaxBodyIsLimitUnlessStreamed) {
  const std::string big(5000, 'b');
  std::string chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 5; ++i) {
    chunked += "3e8\r\n" + std::string(1000, 'c') + "\r\n";
  }
  chunked += "0\r\n\r\n";
  TestServer server([&](const Seen& s, const TestServer::Write& write) {
    write(s.target == "/chunked" ? chunked : answer(big, s.target == "/error" ? 500 : 200));
    return true;
  });
  api::TransportOptions o;
  o.max_body = 1000;
  auto t = transport(o);
  for (const char* path : {"/length", "/chunked"}) {
    auto r = t->send(get(server.url(path)));
    ASSERT_FALSE(r) << path;
    EXPECT_TRUE(r.error().is(Errc::limit)) << r.error().describe();
    EXPECT_EQ(r.error().message, "response body larger than 1000 bytes");
  }
  size_t streamed = 0;
  auto s = t->sendStreaming(get(server.url("/chunked")), [&](std::string_view c) {
    streamed += c.size();
    return true;
  });
  ASSERT_TRUE(s) << s.error().describe();
  EXPECT_EQ(streamed, 5000u);
  // A non-2xx answer is read whole, so max_body applies to it even when streaming.
  auto e = t->sendStreaming(get(server.url("/error")), [](std::string_view) { return true; });
  ASSERT_FALSE(e);
  EXPECT_TRUE(e.error().is(Errc::limit)) << e.error().describe();
}

TEST(HttpTransport, NonSuccessAnswersAreReadWholeAndTheSinkCanRefuse) {
  TestServer server([](const Seen& s, const TestServer::Write& write) {
    write(s.target == "/fail" ? answer("oops", 503, "Retry-After: 7\r\n") : answer("data"));
    return true;
  });
  auto t = transport();
  bool called = false;
  auto r = t->sendStreaming(get(server.url("/fail")), [&](std::string_view) {
    called = true;
    return true;
  });
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, "oops");
  EXPECT_EQ(r->header("retry-after"), "7");
  EXPECT_FALSE(called);
  auto refused = t->sendStreaming(get(server.url("/ok")), [](std::string_view) { return false; });
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.error().is(Errc::invalid_input));
  EXPECT_EQ(refused.error().message, "the reader refused the data");
}

TEST(HttpTransport, HeadInterimAnswersAndBodiesEndedByClose) {
  TestServer server([](const Seen& s, const TestServer::Write& write) {
    if (s.method == "HEAD") {
      return write("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n");
    }
    if (s.target == "/interim") {
      return write("HTTP/1.1 100 Continue\r\n\r\n" + answer("final"));
    }
    write("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end");
    return false;
  });
  auto t = transport();
  api::HttpRequest head = get(server.url());
  head.method = "HEAD";
  auto h = t->send(head);
  ASSERT_TRUE(h) << h.error().describe();
  EXPECT_EQ(h->status, 200);
  EXPECT_TRUE(h->body.empty());
  auto i = t->send(get(server.url("/interim")));
  ASSERT_TRUE(i) << i.error().describe();
  EXPECT_EQ(i->status, 200);
  EXPECT_EQ(i->body, "final");
  EXPECT_EQ(server.connections(), 1);  // the HEAD answer's Content-Length had no body after it
  auto e = t->send(get(server.url("/eof")));
  ASSERT_TRUE(e) << e.error().describe();
  EXPECT_EQ(e->body, "until the end");
}

// ---- the request and response shape -----------------------------------------------------------

TEST(HttpTransport, RequestHeadersTargetAndResponseHeaderOrder) {
  TestServer server(always(answer("", 204, "X-A: 1\r\nX-B: 2\r\nX-A: 3\r\n")));
  auto t = transport();
  api::HttpRequest post;
  post.method = "POST";
  post.url = server.url("/p/a b?x=1|2&y=%41#fragment");
  post.headers = {{"Accept", "application/json"}};
  post.body = "abc";
  auto r = t->send(post);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->status, 204);
  api::Headers extra;
  for (const auto& [k, v] : r->headers) {
    if (k.rfind("X-", 0) == 0) {
      extra.emplace_back(k, v);
    }
  }
  // Duplicates are kept in their order; Beast files a repeated name next to its first one.
  EXPECT_EQ(extra, (api::Headers{{"X-A", "1"}, {"X-A", "3"}, {"X-B", "2"}}));

  api::HttpRequest custom = get(server.url("/q"));
  custom.headers = {{"User-Agent", "vendor-app/2"}, {"Content-Type", "text/plain"}};
  ASSERT_TRUE(t->send(custom));

  const auto seen = server.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/p/a%20b?x=1%7C2&y=%41");
  EXPECT_EQ(api::findHeader(seen[0].headers, "host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(api::findHeader(seen[0].headers, "user-agent"), "pms-agent");
  EXPECT_EQ(api::findHeader(seen[0].headers, "content-type"), "application/octet-stream");
  EXPECT_EQ(api::findHeader(seen[0].headers, "content-length"), "3");
  EXPECT_EQ(api::findHeader(seen[0].headers, "accept"), "application/json");
  EXPECT_EQ(seen[0].body, "abc");
  size_t agents = 0;
  for (const auto& [k, v] : seen[1].headers) {
    agents += api::iequals(k, "user-agent") ? 1 : 0;
  }
  EXPECT_EQ(agents, 1u);
  EXPECT_EQ(api::findHeader(seen[1].headers, "user-agent"), "vendor-app/2");
  EXPECT_EQ(api::findHeader(seen[1].headers, "content-type"), std::nullopt);  // GET, no body
  EXPECT_EQ(seen[1].target, "/q");

  api::HttpRequest smuggle = get(server.url());
  smuggle.headers = {{"Authorization", "Bearer x\r\nX-Evil: 1"}};
  auto bad = t->send(smuggle);
  ASSERT_FALSE(bad);
  EXPECT_TRUE(bad.error().is(Errc::invalid_argument));
  auto ftp = t->send(get("ftp://127.0.0.1/x"));
  ASSERT_FALSE(ftp);
  EXPECT_TRUE(ftp.error().is(Errc::invalid_argument));
  EXPECT_EQ(server.requests(), 2u);
}

// ---- time-outs, cancellation, connection errors ------------------------------------------------

TEST(HttpTransport, AServerThatNeverAnswersTimesOut) {
  TestServer server([](const Seen&, const TestServer::Write&) { return true; });  // silence
  api::TransportOptions o;
  o.timeout = 300ms;
  auto t = transport(o);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = t->send(get(server.url("/patients?name=SECRET")));
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::timeout)) << r.error().describe();
  EXPECT_EQ(r.error().message, "waiting for the answer of 127.0.0.1:" +
                                   std::to_string(server.port()) + ": no answer within 300 ms");
  EXPECT_FALSE(contains(r.error().message, "SECRET"));
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 10s);
}

TEST(HttpTransport, CancelAllAbortsABlockedRequestAndLaterOnes) {
  TestServer server([](const Seen&, const TestServer::Write&) { return true; });  // silence
  auto t = transport();  // 30 s timeout: only the cancel can end the wait
  auto pending = std::async(std::launch::async, [&] { return t->send(get(server.url())); });
  ASSERT_TRUE(waitFor([&] { return server.requests() == 1; }, 10s));
  t->cancelAll();
  ASSERT_EQ(pending.wait_for(10s), std::future_status::ready);
  auto r = pending.get();
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::closed)) << r.error().describe();
  auto later = t->send(get(server.url()));
  ASSERT_FALSE(later);
  EXPECT_TRUE(later.error().is(Errc::closed)) << later.error().describe();
  EXPECT_EQ(server.requests(), 1u);
}

TEST(HttpTransport, ConnectionRefusedAndUnreadableCaFile) {
  const int port = freePort();  // nobody listens there
  auto t = transport();
  auto r = t->send(get("http://127.0.0.1:" + std::to_string(port) + "/x?y=1"));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::unavailable)) << r.error().describe();
  EXPECT_TRUE(contains(r.error().message, "connecting to 127.0.0.1:" + std::to_string(port)))
      << r.error().message;
  api::TransportOptions o;
  o.ca_file = "/nonexistent/ca.pem";
  auto missing = api::makeHttpTransport(o);
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().is(Errc::io));
}

// ---- keep-alive ---------------------------------------------------------------------------------

TEST(HttpTransport, KeepAliveReusesOneConnectionAndReconnectsAfterTheServerClosedIt) {
  TestServer server([](const Seen& s, const TestServer::Write& write) {
    if (s.target == "/close") {
      write(answer("bye", 200, "Connection: close\r\n"));
      return false;
    }
    return write(answer("ok"));
  });
  auto t = transport();
  for (int i = 0; i < 3; ++i) {
    auto r = t->send(get(server.url("/page" + std::to_string(i))));
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->body, "ok");
  }
  EXPECT_EQ(server.connections(), 1);
  if (runningUnderWine()) {
    GTEST_SKIP() << "Wine: shutdown() of a socket does not wake the test server's thread "
                    "blocked reading it (tests/windows/README.md)";
  }
  // The server drops the idle connection (its keep-alive timeout): the next request notices
  // before sending and connects again.
  server.closeConnections();
  ASSERT_TRUE(waitFor([&] { return server.closed() == 1; }, 10s));
  auto again = t->send(get(server.url("/after-close")));
  ASSERT_TRUE(again) << again.error().describe();
  EXPECT_EQ(server.connections(), 2);
  // "Connection: close" is honoured: the next request uses a new connection.
  ASSERT_TRUE(t->send(get(server.url("/close"))));
  ASSERT_TRUE(t->send(get(server.url("/next"))));
  EXPECT_EQ(server.connections(), 3);
  EXPECT_EQ(server.requests(), 6u);
}

TEST(HttpTransport, ARequestLostOnAReusedConnectionIsRetriedOnceOnlyWhenIdempotent) {
  // The second request on each connection is read and then the connection is closed without
  // an answer: what a client sees when a server closes a kept-alive connection just as the
  // request goes out.
  std::mutex mu;
  std::map<int, int> per_connection;
  TestServer server([&](const Seen& s, const TestServer::Write& write) {
    int n = 0;
    {
      std::lock_guard lock(mu);
      n = ++per_connection[s.connection];
    }
    if (n == 2) {
      return false;
    }
    return write(answer("ok"));
  });
  auto t = transport();
  ASSERT_TRUE(t->send(get(server.url("/1"))));
  auto retried = t->send(get(server.url("/2")));
  ASSERT_TRUE(retried) << retried.error().describe();
  EXPECT_EQ(server.connections(), 2);
  EXPECT_EQ(server.requests(), 3u);
  // A POST on the (reused) second connection is not repeated: the server may have acted on it.
  api::HttpRequest post = get(server.url("/submit"));
  post.method = "POST";
  post.body = "{}";
  auto r = t->send(post);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::unavailable)) << r.error().describe();
  EXPECT_EQ(server.connections(), 2);
  EXPECT_EQ(server.requests(), 4u);
}

// ---- TLS
// ------------------------------------------------------------------------------------------

class HttpTransportTls : public ::testing::Test {
 protected:
  api::TransportOptions trusting(const CertFiles& ca) {
    api::TransportOptions o;
    o.ca_file = ca.cert;
    return o;
  }
  TempDir dir_{"psa-http-tls"};
  TlsMaterial pki_{dir_.path()};
};

TEST_F(HttpTransportTls, VerifiedByNameAndAddressWithKeepAlive) {
  TestServer server(
      [](const Seen& s, const TestServer::Write& write) {
        if (s.target == "/eof") {
          write("HTTP/1.1 200 OK\r\n\r\nto the close");  // then TCP closes without close_notify
          return false;
        }
        return write(answer("secure"));
      },
      &pki_.server());
  auto t = transport(trusting(pki_.ca()));
  for (int i = 0; i < 2; ++i) {
    auto r = t->send(get(server.url("localhost", "/")));
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->body, "secure");
  }
  EXPECT_EQ(server.connections(), 1);
  auto ip = t->send(get(server.url("127.0.0.1", "/")));  // the certificate's IP SAN
  ASSERT_TRUE(ip) << ip.error().describe();
  EXPECT_EQ(server.connections(), 2);  // another origin, another connection
  auto eof = t->send(get(server.url("localhost", "/eof")));
  ASSERT_TRUE(eof) << eof.error().describe();
  EXPECT_EQ(eof->body, "to the close");
  EXPECT_EQ(api::findHeader(server.seen()[0].headers, "host"),
            "localhost:" + std::to_string(server.port()));
}

TEST_F(HttpTransportTls, AnUntrustedChainNamesTheReason) {
  TestServer server(always(answer("secure")), &pki_.server());
  auto t = transport(trusting(pki_.otherCa()));
  auto r = t->send(get(server.url("localhost", "/Patient?name=SECRET")));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::unavailable)) << r.error().describe();
  EXPECT_TRUE(contains(r.error().message,
                       "certificate verify failed: unable to get local issuer certificate"))
      << r.error().message;
  EXPECT_TRUE(contains(r.error().message, "localhost:" + std::to_string(server.port())))
      << r.error().message;
  EXPECT_FALSE(contains(r.error().message, "SECRET"));
  EXPECT_EQ(server.requests(), 0u);
  // The same server with verification off (explicit test setups only) answers.
  api::TransportOptions off = trusting(pki_.otherCa());
  off.verify_tls = false;
  auto unverified = transport(off)->send(get(server.url("localhost", "/")));
  ASSERT_TRUE(unverified) << unverified.error().describe();
}

TEST_F(HttpTransportTls, AHostNameMismatchNamesTheHost) {
  TestServer server(always(answer("secure")), &pki_.serverWrongHost());
  auto t = transport(trusting(pki_.ca()));
  auto r = t->send(get(server.url("localhost", "/")));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::unavailable)) << r.error().describe();
  EXPECT_TRUE(contains(r.error().message,
                       "certificate verify failed: hostname mismatch (the server's certificate "
                       "is not valid for localhost)"))
      << r.error().message;
  auto ip = t->send(get(server.url("127.0.0.1", "/")));
  ASSERT_FALSE(ip);
  EXPECT_TRUE(contains(ip.error().message, "certificate verify failed: IP address mismatch"))
      << ip.error().message;
}

TEST_F(HttpTransportTls, ACaFileWithoutCertificatesIsRefusedUpFront) {
  const auto junk = dir_.path() / "junk.pem";
  writeFile(junk, "not a certificate\n");
  auto t = api::makeHttpTransport(trusting(CertFiles{junk, {}}));
  ASSERT_FALSE(t);
  EXPECT_TRUE(t.error().is(Errc::io)) << t.error().describe();
}

}  // namespace
}  // namespace psa::test
