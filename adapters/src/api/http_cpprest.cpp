// The only file that includes cpprestsdk: keep it that way (template-heavy, slow to build).
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/ssl.hpp>
#include <cpprest/http_client.h>

#include <atomic>
#include <cctype>
#include <fstream>
#include <map>
#include <mutex>

#include "psa/adapters/api/http.h"
#include "tls_probe.h"

namespace psa::adapters::api {

namespace {

namespace http = web::http;
namespace client = web::http::client;

}  // namespace
}  // namespace psa::adapters::api

// pplx/threadpool.h needs Boost.Asio's deprecated names (io_service), which this project turns
// off (BOOST_ASIO_NO_DEPRECATED, and mixing the two settings changes Asio's vtables). Only the
// one static function is needed, so declare just that.
namespace crossplat {
class threadpool {
 public:
  static void initialize_with_threads(size_t num_threads);
};
}  // namespace crossplat

namespace psa::adapters::api {
namespace {

void initThreadPool() {
  static std::once_flag once;
  std::call_once(once, [] {
    try {
      // cpprestsdk defaults to 40 threads; the pollers block on their own threads, so a few
      // I/O threads are plenty.
      crossplat::threadpool::initialize_with_threads(4);
    } catch (const std::exception&) {
      // Already initialised by someone else: keep theirs.
    }
  });
}

bool unreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

// cpprest's uri parser refuses characters RFC 3986 does not allow (a "|" or space in a vendor's
// next link); encode those, leave everything legal (including existing %XX) untouched.
std::string legalizeTarget(std::string_view s) {
  static constexpr std::string_view kAllowed = "!$&'()*+,;=:@/?%[]";
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (unreserved(c) || kAllowed.find(ch) != std::string_view::npos) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

struct SplitUrl {
  std::string origin;  // scheme://host[:port]
  std::string target;  // /path?query
};

Result<SplitUrl> splitUrl(const std::string& url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) {
    return Error(Errc::invalid_argument, "not an absolute URL");
  }
  const std::string scheme = url.substr(0, scheme_end);
  if (scheme != "https" && scheme != "http") {
    return Error(Errc::invalid_argument, "unsupported URL scheme " + scheme);
  }
  const size_t path_start = url.find_first_of("/?#", scheme_end + 3);
  SplitUrl out;
  out.origin = url.substr(0, path_start);
  out.target = path_start == std::string::npos ? "/" : url.substr(path_start);
  if (const size_t hash = out.target.find('#'); hash != std::string::npos) {
    out.target.resize(hash);
  }
  if (out.target.empty() || out.target[0] == '?') {
    out.target.insert(0, "/");
  }
  if (out.origin.size() <= scheme_end + 3) {
    return Error(Errc::invalid_argument, "URL without host");
  }
  return out;
}

class CppRestTransport final : public HttpTransport {
 public:
  explicit CppRestTransport(TransportOptions options) : options_(std::move(options)) {}

  Result<HttpResponse> send(const HttpRequest& req) override { return run(req, nullptr); }

  Result<HttpResponse> sendStreaming(const HttpRequest& req, const BodySink& sink) override {
    return run(req, &sink);
  }

  void cancelAll() override {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    cts_.cancel();
  }

 private:
  std::shared_ptr<client::http_client> clientFor(const std::string& origin) {
    std::lock_guard lock(mu_);
    auto it = clients_.find(origin);
    if (it != clients_.end()) {
      return it->second;
    }
    client::http_client_config cfg;
    cfg.set_timeout(std::chrono::duration_cast<std::chrono::microseconds>(options_.timeout));
    cfg.set_validate_certificates(options_.verify_tls);
    const std::string ca = options_.ca_file.string();
    cfg.set_ssl_context_callback([ca](boost::asio::ssl::context& ctx) {
      SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
      if (!ca.empty()) {
        // A configured CA replaces the system store: on-prem servers use a private CA and we
        // trust exactly that.
        X509_STORE* store = X509_STORE_new();
        SSL_CTX_set_cert_store(ctx.native_handle(), store);
        ctx.load_verify_file(ca);
      }
    });
    auto c = std::make_shared<client::http_client>(web::uri(origin), cfg);
    clients_.emplace(origin, c);
    return c;
  }

  Result<HttpResponse> run(const HttpRequest& req, const BodySink* sink) {
    pplx::cancellation_token token = pplx::cancellation_token::none();
    {
      std::lock_guard lock(mu_);
      if (cancelled_) {
        return Error(Errc::closed, "HTTP transport stopped");
      }
      token = cts_.get_token();
    }
    auto split = splitUrl(req.url);
    if (!split) {
      return std::move(split).error();
    }
    try {
      auto c = clientFor(split->origin);
      http::http_request r(req.method);
      r.set_request_uri(web::uri(legalizeTarget(split->target)));
      std::string content_type;
      bool has_ua = false;
      for (const auto& [k, v] : req.headers) {
        if (iequals(k, "content-type")) {
          content_type = v;
          continue;
        }
        if (iequals(k, "user-agent")) {
          has_ua = true;
        }
        r.headers().add(k, v);
      }
      if (!has_ua) {
        r.headers().add("User-Agent", "pms-agent");
      }
      if (!req.body.empty() || req.method == "POST" || req.method == "PUT") {
        r.set_body(req.body, content_type.empty() ? std::string("application/octet-stream")
                                                  : content_type);
      }
      http::http_response resp = c->request(r, token).get();
      HttpResponse out;
      out.status = resp.status_code();
      for (const auto& [k, v] : resp.headers()) {
        out.headers.emplace_back(k, v);
      }
      const bool stream = sink != nullptr && out.status >= 200 && out.status < 300;
      auto buf = resp.body().streambuf();
      std::vector<uint8_t> chunk(64 * 1024);
      uint64_t total = 0;
      for (;;) {
        const size_t n = buf.getn(chunk.data(), chunk.size()).get();
        if (n == 0) {
          break;
        }
        total += n;
        if (stream) {
          if (!(*sink)(std::string_view(reinterpret_cast<const char*>(chunk.data()), n))) {
            return Error(Errc::invalid_input, "the reader refused the data");
          }
        } else {
          if (out.body.size() + n > options_.max_body) {
            return Error(Errc::limit, "response body larger than " +
                                          std::to_string(options_.max_body) + " bytes");
          }
          out.body.append(reinterpret_cast<const char*>(chunk.data()), n);
        }
      }
      // Surfaces a broken transfer (connection closed mid-body, chunked without the last
      // chunk) that the stream reported as a plain end of data.
      resp.content_ready().get();
      if (auto cl = out.header("content-length"); cl && req.method != "HEAD") {
        char* end = nullptr;
        const unsigned long long want = std::strtoull(cl->c_str(), &end, 10);
        if (end != cl->c_str() && want != total) {
          return Error(Errc::unavailable, "short body: " + std::to_string(total) + " of " +
                                              std::to_string(want) + " bytes");
        }
      }
      return out;
    } catch (const pplx::task_canceled&) {
      return Error(Errc::closed, "HTTP request cancelled");
    } catch (const http::http_exception& e) {
      {
        std::lock_guard lock(mu_);
        if (cancelled_) {
          return Error(Errc::closed, "HTTP request cancelled");
        }
      }
      if (e.error_code() == std::errc::timed_out) {
        return Error(Errc::timeout, "no answer within " +
                                        std::to_string(options_.timeout.count() / 1000) + " s");
      }
      std::string what = e.what();
      if (what.find("SSL") != std::string::npos && options_.verify_tls) {
        // cpprestsdk does not say why; ask OpenSSL directly (only on this failure path).
        const std::string reason = tlsFailureReason(req.url, options_.ca_file, options_.timeout);
        if (!reason.empty()) {
          what += ": " + reason;
        }
      }
      return Error(Errc::unavailable, what);
    } catch (const web::uri_exception& e) {
      return Error(Errc::invalid_argument, std::string("bad URL: ") + e.what());
    } catch (const std::exception& e) {
      return Error(Errc::unavailable, e.what());
    }
  }

  TransportOptions options_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<client::http_client>> clients_;
  pplx::cancellation_token_source cts_;
  bool cancelled_ = false;
};

}  // namespace

Result<HttpTransportPtr> makeCppRestTransport(const TransportOptions& options) {
  if (!options.ca_file.empty()) {
    std::ifstream in(options.ca_file);
    if (!in) {
      return Error(Errc::io, "cannot read CA file " + options.ca_file.string());
    }
  }
  initThreadPool();
  return HttpTransportPtr(std::make_shared<CppRestTransport>(options));
}

}  // namespace psa::adapters::api
