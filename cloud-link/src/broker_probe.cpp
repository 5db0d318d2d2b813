#include "psa/cloudlink/broker_probe.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <condition_variable>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <thread>

#include "credentials.h"
#include "psa/cloudlink/broker_limits.h"
#include "psa/cloudlink/connack.h"
#include "psa/cloudlink/policy.h"
#include "psa/store/os/system_error.h"
#include "psa/store/os/tcp_probe.h"
#include "psa/store/os/utf8_path.h"
#include "tls_context.h"

namespace psa::cloudlink {
namespace {

using Clock = std::chrono::steady_clock;
using Level = ProbeStep::Level;

// A CONNACK carries a few properties; brokers that add user properties stay far below this.
constexpr size_t kMaxConnackBytes = 64 * 1024;

ProbeStep ok(std::string name, std::string text) {
  return {Level::ok, std::move(name), std::move(text)};
}
ProbeStep warn(std::string name, std::string text) {
  return {Level::warn, std::move(name), std::move(text)};
}
ProbeStep fail(std::string name, std::string text) {
  return {Level::fail, std::move(name), std::move(text)};
}

int msLeft(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}

std::string sslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    // "error:0A000086:SSL routines::certificate verify failed" -> the reason after the last ':'
    std::string s(buf);
    auto colon = s.rfind(':');
    if (colon != std::string::npos) {
      s = s.substr(colon + 1);
    }
    if (out.find(s) == std::string::npos) {
      out += (out.empty() ? "" : "; ") + s;
    }
  }
  return out;
}

std::string nameField(X509_NAME* name, int nid) {
  char buf[256] = {};
  if (name == nullptr || X509_NAME_get_text_by_NID(name, nid, buf, sizeof buf) < 0) {
    return {};
  }
  return buf;
}

std::string certLabel(X509* cert) {
  std::string cn = nameField(X509_get_subject_name(cert), NID_commonName);
  return cn.empty() ? "(no CN)" : "CN=" + cn;
}

std::string issuerLabel(X509* cert) {
  std::string cn = nameField(X509_get_issuer_name(cert), NID_commonName);
  return cn.empty() ? "(no CN)" : "CN=" + cn;
}

// Days until notAfter (negative when expired) and the date as YYYY-MM-DD.
int daysLeft(X509* cert, std::string& date) {
  const ASN1_TIME* t = X509_get0_notAfter(cert);
  std::tm tm{};
  if (ASN1_TIME_to_tm(t, &tm) == 1) {
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    date = buf;
  }
  int days = 0;
  int secs = 0;
  if (ASN1_TIME_diff(&days, &secs, nullptr, t) != 1) {
    return 0;
  }
  return days - (secs < 0 ? 1 : 0);
}

std::string verifyHint(long code) {
  switch (code) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      return "cloud.ca_file does not sign the broker's certificate";
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return "the broker's certificate has expired: the cloud operator must renew it (or this "
             "machine's clock is wrong)";
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return "the certificate is not valid yet: check this machine's clock";
    case X509_V_ERR_HOSTNAME_MISMATCH:
      return "the certificate is not for this host name: check the host in cloud.url";
    default:
      return "check cloud.ca_file and cloud.url";
  }
}

struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};

// Drives a non-blocking SSL call to completion or the deadline. Returns the call's result;
// `timed_out` when the deadline passed.
template <class Fn>
int sslWait(SSL* ssl, os::SocketHandle fd, Clock::time_point deadline, bool& timed_out, Fn&& fn) {
  timed_out = false;
  while (true) {
    ERR_clear_error();
    const int rc = fn();
    if (rc > 0) {
      return rc;
    }
    const int err = SSL_get_error(ssl, rc);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
      return rc;
    }
    if (!os::waitSocket(fd, err == SSL_ERROR_WANT_WRITE, msLeft(deadline))) {
      timed_out = true;
      return -1;
    }
  }
}

// Why a connection died right after a successful handshake. Under TLS 1.3 a broker that
// rejects the client certificate says so only now, with an alert.
std::string closedAfterHandshake(const std::string& errs) {
  if (errs.find("alert") != std::string::npos) {
    return "the broker ended TLS after the handshake (" + errs +
           ") ▸ it does not accept this agent's client certificate (cloud.cert_file): it must "
           "trust the CA that signed it";
  }
  return "the broker closed the connection without answering CONNECT" +
         (errs.empty() ? std::string() : " (" + errs + ")") +
         " ▸ it may not accept this agent's client certificate (cloud.cert_file) or the check's "
         "client id";
}

// After a failed write: read once to collect the alert the broker may have sent.
std::string closedAfterHandshake(SSL* ssl, os::SocketHandle fd) {
  std::string errs = sslErrors();
  if (errs.empty()) {
    char buf[64];
    bool timed_out = false;
    sslWait(ssl, fd, Clock::now() + std::chrono::seconds(1), timed_out,
            [&] { return SSL_read(ssl, buf, sizeof buf); });
    errs = sslErrors();
  }
  return closedAfterHandshake(errs);
}

void putVarint(std::string& out, size_t n) {
  do {
    uint8_t b = n % 128;
    n /= 128;
    if (n > 0) {
      b |= 0x80;
    }
    out.push_back(static_cast<char>(b));
  } while (n > 0);
}

void putString(std::string& out, const std::string& s) {
  out.push_back(static_cast<char>((s.size() >> 8) & 0xff));
  out.push_back(static_cast<char>(s.size() & 0xff));
  out += s;
}

std::string connectPacket(const std::string& client_id, const detail::MqttCredentials& creds) {
  std::string body;
  body += std::string("\x00\x04MQTT", 6);
  body.push_back(5);  // protocol version 5
  // Clean start, no will; user name and password flags as configured.
  char flags = 0x02;
  if (creds.username) {
    flags = static_cast<char>(flags | 0x80);
  }
  if (creds.password) {
    flags = static_cast<char>(flags | 0x40);
  }
  body.push_back(flags);
  body += std::string("\x00\x0a", 2);  // keep alive 10 s
  body.push_back(0);                   // no properties
  putString(body, client_id);
  if (creds.username) {
    putString(body, *creds.username);
  }
  if (creds.password) {
    putString(body, *creds.password);
  }
  std::string pkt(1, '\x10');
  putVarint(pkt, body.size());
  return pkt + body;
}
}  // namespace

std::string connackReasonName(int code) {
  switch (code) {
    case 0x00:
      return "success";
    case 0x80:
      return "unspecified error";
    case 0x81:
      return "malformed packet";
    case 0x82:
      return "protocol error";
    case 0x83:
      return "implementation specific error";
    case 0x84:
      return "unsupported protocol version";
    case 0x85:
      return "client identifier not valid";
    case 0x86:
      return "bad user name or password";
    case 0x87:
      return "not authorized";
    case 0x88:
      return "server unavailable";
    case 0x89:
      return "server busy";
    case 0x8A:
      return "banned";
    case 0x8C:
      return "bad authentication method";
    case 0x90:
      return "topic name invalid";
    case 0x95:
      return "packet too large";
    case 0x97:
      return "quota exceeded";
    case 0x99:
      return "payload format invalid";
    case 0x9A:
      return "retain not supported";
    case 0x9B:
      return "QoS not supported";
    case 0x9C:
      return "use another server";
    case 0x9D:
      return "server moved";
    case 0x9F:
      return "connection rate exceeded";
    default:
      return "reason code " + std::to_string(code);
  }
}

ProbeStep checkClientCertificate(const CloudLinkOptions& cloud, int warn_days) {
  const std::string name = "client cert";
  std::unique_ptr<BIO, BioFree> cf(BIO_new_file(os::pathToUtf8(cloud.cert_file).c_str(), "r"));
  if (!cf) {
    ERR_clear_error();
    return fail(name, "cannot read cloud.cert_file " + cloud.cert_file.string() + " (" +
                          os::errnoText(errno) + ")");
  }
  std::unique_ptr<X509, X509Free> cert(PEM_read_bio_X509(cf.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    ERR_clear_error();
    return fail(name, "cloud.cert_file " + cloud.cert_file.string() + " holds no PEM certificate");
  }
  std::unique_ptr<BIO, BioFree> kf(BIO_new_file(os::pathToUtf8(cloud.key_file).c_str(), "r"));
  if (!kf) {
    ERR_clear_error();
    return fail(name, "cannot read cloud.key_file " + cloud.key_file.string() + " (" +
                          os::errnoText(errno) + ")");
  }
  EVP_PKEY* key = PEM_read_bio_PrivateKey(kf.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) {
    ERR_clear_error();
    return fail(name, "cloud.key_file " + cloud.key_file.string() +
                          " holds no unencrypted PEM private key");
  }
  const bool match = X509_check_private_key(cert.get(), key) == 1;
  EVP_PKEY_free(key);
  ERR_clear_error();
  if (!match) {
    return fail(name,
                "cloud.cert_file and cloud.key_file do not belong together ▸ install the "
                "key that was issued with this certificate");
  }
  std::string date;
  const int days = daysLeft(cert.get(), date);
  const std::string label = certLabel(cert.get()) + " issued by " + issuerLabel(cert.get());
  if (days < 0) {
    return fail(name, label + " expired on " + date + " ▸ request a new agent certificate");
  }
  if (X509_cmp_current_time(X509_get0_notBefore(cert.get())) > 0) {
    return fail(name, label + " is not valid yet ▸ check this machine's clock");
  }
  if (days < warn_days) {
    return warn(name, label + " expires on " + date + " (in " + std::to_string(days) +
                          " days) ▸ request a new agent certificate");
  }
  return ok(name, label + ", valid until " + date + " (" + std::to_string(days) + " days)");
}

std::vector<ProbeStep> probeBroker(const CloudLinkOptions& link, const ProbeOptions& o) {
  std::vector<ProbeStep> out;
  const std::string& client_id = o.client_id;
  auto parsed = parseBrokerUrl(link.url);
  if (!parsed) {
    out.push_back(fail("broker dns", parsed.error().message + " ▸ fix cloud.url"));
    for (const char* n : {"broker tcp", "broker tls", "broker auth"}) {
      out.push_back(warn(n, "skipped (the step before failed)"));
    }
    return out;
  }
  const BrokerAddress& cloud = *parsed;
  const std::string hostport = cloud.host + ":" + std::to_string(cloud.port);
  auto skipRest = [&](std::initializer_list<const char*> names) {
    for (const char* n : names) {
      out.push_back(warn(n, "skipped (the step before failed)"));
    }
  };

  // DNS
  std::vector<os::ResolvedAddress> addrs;
  std::string error;
  if (!os::resolveTcp(cloud.host, cloud.port, o.timeout, addrs, error)) {
    out.push_back(fail("broker dns", "cannot resolve " + cloud.host + ": " + error +
                                         " ▸ check the DNS servers (/etc/resolv.conf) and the "
                                         "host in cloud.url"));
    skipRest({"broker tcp", "broker tls", "broker auth"});
    return out;
  }
  std::string list;
  for (size_t i = 0; i < addrs.size() && i < 3; ++i) {
    list += (i ? ", " : "") + addrs[i].text;
  }
  out.push_back(ok("broker dns", cloud.host + " → " + list));

  // TCP: the first address that accepts.
  os::SocketHandle fd = -1;
  std::string tcp_errors;
  const auto t0 = Clock::now();
  std::string connected_to;
  for (size_t i = 0; i < addrs.size() && i < 3 && fd < 0; ++i) {
    fd = os::connectTcp(addrs[i], o.timeout, error);
    if (fd < 0) {
      tcp_errors += (tcp_errors.empty() ? "" : "; ") + addrs[i].text + ": " + error;
    } else {
      connected_to = addrs[i].text;
    }
  }
  if (fd < 0) {
    out.push_back(fail("broker tcp", "cannot connect to " + hostport + " (" + tcp_errors +
                                         ") ▸ the firewall must allow outbound TCP " +
                                         std::to_string(cloud.port) + "; is the broker up?"));
    skipRest({"broker tls", "broker auth"});
    return out;
  }
  const auto connect_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  out.push_back(ok("broker tcp", "connected to " + connected_to + ":" + std::to_string(cloud.port) +
                                     " in " + std::to_string(connect_ms) + " ms"));

  // TLS: the link's own client context (CA, our certificate and key, host name rules).
  detail::TlsDiagnostics diag;
  auto ctx = detail::buildClientContext(
      detail::TlsSettings{cloud.host, link.ca_file, link.cert_file, link.key_file}, &diag);
  if (!ctx) {
    os::closeSocket(fd);
    const std::string& why = ctx.error().message;
    out.push_back(fail("broker tls", why + (why.find("CA file") != std::string::npos
                                                ? " ▸ cloud.ca_file must be the PEM CA "
                                                  "certificate of the broker"
                                                : " ▸ see the client cert line")));
    skipRest({"broker auth"});
    return out;
  }
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx->get()));
  SSL_set_fd(ssl.get(), static_cast<int>(fd));
  in6_addr ip6{};
  in_addr ip4{};
  const bool is_ip = ::inet_pton(AF_INET, cloud.host.c_str(), &ip4) == 1 ||
                     ::inet_pton(AF_INET6, cloud.host.c_str(), &ip6) == 1;
  if (!is_ip) {
    SSL_set_tlsext_host_name(ssl.get(), cloud.host.c_str());  // SNI; the check is the context's
  }
  const auto deadline = Clock::now() + o.timeout;
  bool timed_out = false;
  const int hs =
      sslWait(ssl.get(), fd, deadline, timed_out, [&] { return SSL_connect(ssl.get()); });
  if (hs != 1) {
    const long vr = SSL_get_verify_result(ssl.get());
    std::string text;
    if (timed_out) {
      text = "no TLS handshake within " + std::to_string(o.timeout.count() / 1000) + " s ▸ is " +
             hostport + " a TLS (mqtts) port?";
    } else if (vr != X509_V_OK) {
      text = std::string("certificate verify failed: ") + X509_verify_cert_error_string(vr) +
             " ▸ " + verifyHint(vr);
      ERR_clear_error();
    } else {
      std::string errs = sslErrors();
      if (errs.empty()) {
        errs = diag.describe(cloud.host);
      }
      text = "handshake failed: " + (errs.empty() ? std::string("connection closed") : errs);
      if (errs.find("alert") != std::string::npos) {
        text +=
            " ▸ the broker refused this agent's client certificate: it must trust the CA "
            "that signed cloud.cert_file";
      } else if (errs.find("wrong version") != std::string::npos ||
                 errs.find("packet length") != std::string::npos) {
        text += " ▸ is " + hostport + " a TLS (mqtts) port?";
      }
    }
    os::closeSocket(fd);
    out.push_back(fail("broker tls", text));
    skipRest({"broker auth"});
    return out;
  }
  {
    // The chain the broker sent: the soonest expiry decides.
    STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl.get());
    std::unique_ptr<X509, X509Free> leaf(SSL_get1_peer_certificate(ssl.get()));
    std::string leaf_date;
    int leaf_days = leaf ? daysLeft(leaf.get(), leaf_date) : 0;
    std::string soon_label;
    std::string soon_date = leaf_date;
    int soon_days = leaf_days;
    for (int i = 0; chain != nullptr && i < sk_X509_num(chain); ++i) {
      X509* c = sk_X509_value(chain, i);
      std::string d;
      const int days = daysLeft(c, d);
      if (days < soon_days) {
        soon_days = days;
        soon_date = d;
        soon_label = certLabel(c);
      }
    }
    std::string text = std::string(SSL_get_version(ssl.get())) + ", " +
                       (leaf ? certLabel(leaf.get()) + " issued by " + issuerLabel(leaf.get())
                             : std::string("certificate")) +
                       ", valid until " + leaf_date + " (" + std::to_string(leaf_days) + " days)";
    if (soon_days < o.warn_days) {
      out.push_back(warn("broker tls", text + "; " + (soon_label.empty() ? "it" : soon_label) +
                                           " expires on " + soon_date + " (in " +
                                           std::to_string(soon_days) +
                                           " days) ▸ the cloud operator must renew it"));
    } else {
      out.push_back(ok("broker tls", text));
    }
  }

  // MQTT 5 authentication
  if (o.skip_mqtt) {
    out.push_back(ok("broker auth", o.mqtt_skip_reason));
    SSL_shutdown(ssl.get());
    os::closeSocket(fd);
    return out;
  }
  auto credentials = detail::loadCredentials(detail::credentialSources(link));
  if (!credentials) {
    SSL_shutdown(ssl.get());
    os::closeSocket(fd);
    out.push_back(fail("broker auth", credentials.error().message));
    return out;
  }
  const std::string identity = credentials->username
                                   ? "certificate identity and user name " + *credentials->username
                                   : std::string("certificate identity");
  const std::string pkt = connectPacket(client_id, *credentials);
  size_t off = 0;
  const auto mqtt_deadline = Clock::now() + o.timeout;
  std::string result_text;
  Level level = Level::ok;
  while (off < pkt.size()) {
    const int n = sslWait(ssl.get(), fd, mqtt_deadline, timed_out, [&] {
      return SSL_write(ssl.get(), pkt.data() + off, static_cast<int>(pkt.size() - off));
    });
    if (n <= 0) {
      level = Level::fail;
      result_text =
          timed_out ? "cannot send MQTT CONNECT (timed out)" : closedAfterHandshake(ssl.get(), fd);
      break;
    }
    off += static_cast<size_t>(n);
  }
  std::string got;  // the broker's answer, until one whole packet is in
  size_t total = 0;
  while (level == Level::ok) {
    auto length = mqttPacketLength(got);
    if (!length || (!got.empty() && static_cast<uint8_t>(got[0]) != 0x20)) {
      level = Level::fail;
      result_text = "unexpected answer to CONNECT (not an MQTT 5 CONNACK)";
      break;
    }
    total = *length;
    if (total != 0 && got.size() >= total) {
      break;
    }
    if (total > kMaxConnackBytes) {
      level = Level::fail;
      result_text = "the broker's CONNACK is " + std::to_string(total) + " bytes (more than " +
                    std::to_string(kMaxConnackBytes) + " is not a CONNACK we can use)";
      break;
    }
    char buf[512];
    const int n = sslWait(ssl.get(), fd, mqtt_deadline, timed_out,
                          [&] { return SSL_read(ssl.get(), buf, static_cast<int>(sizeof buf)); });
    if (n <= 0) {
      const std::string errs = timed_out ? std::string() : sslErrors();
      level = Level::fail;
      if (timed_out) {
        result_text = "no CONNACK within " + std::to_string(o.timeout.count() / 1000) +
                      " s ▸ is this an MQTT broker?";
      } else {
        result_text = closedAfterHandshake(errs);
      }
      break;
    }
    got.append(buf, static_cast<size_t>(n));
  }
  if (level == Level::ok) {
    auto connack = parseConnack(std::string_view(got).substr(0, total));
    if (!connack) {
      level = Level::fail;
      result_text = "unexpected answer to CONNECT (" + connack.error().message + ")";
    } else if (const int code = connack->reason_code; code == 0) {
      static const char kDisconnect[] = {'\xe0', '\x00'};
      sslWait(ssl.get(), fd, mqtt_deadline, timed_out,
              [&] { return SSL_write(ssl.get(), kDisconnect, 2); });
      result_text = "MQTT 5 CONNECT accepted (" + identity + ", client id " + client_id + ")";
      if (const std::string why = brokerUnusable(connack->limits); !why.empty()) {
        level = Level::fail;
        result_text += ", but the " + why;
      } else if (const std::string limits = brokerLimitsText(connack->limits); !limits.empty()) {
        result_text += "; broker: " + limits;
      }
    } else {
      level = Level::fail;
      result_text = "the broker refused CONNECT: 0x";
      char hex[8];
      std::snprintf(hex, sizeof hex, "%02X", static_cast<unsigned>(code) & 0xffu);
      result_text += std::string(hex) + " " + connackReasonName(code);
      if (!connack->reason_string.empty()) {
        result_text += " (\"" + connack->reason_string + "\")";
      }
      if (code == 0x84) {
        result_text += " ▸ the broker must speak MQTT 5";
      } else if ((code == 0x86 || code == 0x87) && credentials->username) {
        result_text +=
            " ▸ check cloud.username and the password in cloud.password_file, or ask the cloud "
            "operator to register this agent";
      } else if (code == 0x86 || code == 0x87 || code == 0x8A || code == 0x8C) {
        result_text +=
            " ▸ the broker does not accept this agent's certificate identity; "
            "ask the cloud operator to register it";
      } else if (code == 0x85) {
        result_text += " (the check connects as " + client_id +
                       "; the broker may allow only the agent's own id) ▸ see the CLOUD line "
                       "of pms-agent status";
      } else if ((code == 0x9C || code == 0x9D) && !connack->server_reference.empty()) {
        result_text += "; it points to " + connack->server_reference +
                       " ▸ the cloud operator should update cloud.url";
      }
    }
  }
  SSL_shutdown(ssl.get());
  os::closeSocket(fd);
  out.push_back({level, "broker auth", result_text});
  return out;
}

}  // namespace psa::cloudlink
