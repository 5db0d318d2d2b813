#include "tls_probe.h"

#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace psa::adapters::api {

std::string tlsFailureReason(const std::string& url, const std::filesystem::path& ca_file,
                             std::chrono::milliseconds timeout) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos || url.compare(0, scheme_end, "https") != 0) {
    return {};
  }
  const size_t host_start = scheme_end + 3;
  const size_t host_end = url.find_first_of("/?#", host_start);
  std::string hostport = url.substr(host_start, host_end - host_start);
  std::string host = hostport;
  std::string port = "443";
  if (!hostport.empty() && hostport[0] == '[') {
    const size_t close = hostport.find(']');
    host = hostport.substr(1, close - 1);
    if (close + 1 < hostport.size() && hostport[close + 1] == ':') {
      port = hostport.substr(close + 2);
    }
  } else if (const size_t colon = hostport.rfind(':'); colon != std::string::npos) {
    host = hostport.substr(0, colon);
    port = hostport.substr(colon + 1);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
    return "cannot resolve " + host;
  }
  const int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const bool connected = fd >= 0 && ::connect(fd, res->ai_addr, res->ai_addrlen) == 0;
  freeaddrinfo(res);
  if (!connected) {
    if (fd >= 0) {
      ::close(fd);
    }
    return "cannot connect to " + hostport;
  }
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  std::string reason;
  if (ctx == nullptr) {
    ::close(fd);
    return "OpenSSL context failed";
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (!ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
      reason = "ca_file " + ca_file.string() + " is not a PEM CA bundle";
    }
  } else {
    SSL_CTX_set_default_verify_paths(ctx);
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL* ssl = reason.empty() ? SSL_new(ctx) : nullptr;
  if (ssl != nullptr) {
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, host.c_str());
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1) {
      X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
    }
    if (SSL_connect(ssl) != 1) {
      const long v = SSL_get_verify_result(ssl);
      if (v != X509_V_OK) {
        reason = std::string("certificate verify failed: ") + X509_verify_cert_error_string(v);
      } else {
        const unsigned long e = ERR_peek_last_error();
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        reason = std::string("TLS handshake failed: ") + (e != 0 ? buf : "connection closed");
      }
    }
    SSL_free(ssl);
  }
  ERR_clear_error();
  SSL_CTX_free(ctx);
  ::close(fd);
  return reason;
}

}  // namespace psa::adapters::api
