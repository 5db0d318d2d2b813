#include "fake_mqtt_broker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace psa::test {
namespace {

SSL_CTX* ctxOf(void* p) { return static_cast<SSL_CTX*>(p); }

void putVarint(std::string& out, size_t v) {
  do {
    unsigned char b = v & 0x7f;
    v >>= 7;
    if (v > 0) {
      b |= 0x80;
    }
    out.push_back(static_cast<char>(b));
  } while (v > 0);
}

/// Reads a variable byte integer at `pos`; false if incomplete/invalid.
bool getVarint(const std::string& in, size_t& pos, size_t& value) {
  value = 0;
  for (int i = 0; i < 4; ++i) {
    if (pos >= in.size()) {
      return false;
    }
    const auto b = static_cast<unsigned char>(in[pos++]);
    value |= static_cast<size_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      return true;
    }
  }
  return false;
}

bool getString(const std::string& in, size_t& pos, size_t end, std::string& out) {
  if (pos + 2 > end) {
    return false;
  }
  const size_t len = (static_cast<unsigned char>(in[pos]) << 8) | static_cast<unsigned char>(in[pos + 1]);
  pos += 2;
  if (pos + len > end) {
    return false;
  }
  out.assign(in, pos, len);
  pos += len;
  return true;
}

std::string packet(unsigned char header, const std::string& body) {
  std::string out(1, static_cast<char>(header));
  putVarint(out, body.size());
  return out + body;
}

}  // namespace

FakeMqttBroker::FakeMqttBroker(const CertFiles& server, const std::filesystem::path& ca) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx, server.cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, server.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr) != 1) {
    SSL_CTX_free(ctx);
    throw std::runtime_error("fake broker: cannot load TLS material");
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  ssl_ctx_ = ctx;

  listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listen_fd_, 16) != 0) {
    throw std::runtime_error("fake broker: cannot listen");
  }
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  if (pipe(wake_) != 0) {
    throw std::runtime_error("fake broker: pipe failed");
  }
  thread_ = std::thread([this] { run(); });
}

FakeMqttBroker::~FakeMqttBroker() {
  stop_ = true;
  char c = 0;
  (void)!write(wake_[1], &c, 1);
  thread_.join();
  close(listen_fd_);
  close(wake_[0]);
  close(wake_[1]);
  SSL_CTX_free(ctxOf(ssl_ctx_));
}

void FakeMqttBroker::setConnectAnswer(ConnectAnswer answer) {
  std::lock_guard lock(mu_);
  connect_answer_ = std::move(answer);
}

void FakeMqttBroker::setPolicy(Policy policy) {
  std::lock_guard lock(mu_);
  policy_ = std::move(policy);
}

void FakeMqttBroker::stallCurrentConnection() { stall_connection_ = connections_.load(); }

std::vector<FakePublish> FakeMqttBroker::publishes() const {
  std::lock_guard lock(mu_);
  return publishes_;
}

void FakeMqttBroker::run() {
  while (!stop_) {
    pollfd fds[2] = {{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    if (poll(fds, 2, 500) <= 0) {
      continue;
    }
    if ((fds[0].revents & POLLIN) != 0) {
      return;
    }
    if ((fds[1].revents & POLLIN) != 0) {
      const int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd >= 0) {
        serve(fd, ++connections_);
      }
    }
  }
}

/// Serves one connection until it ends, a newer connection arrives, or we are stopped.
void FakeMqttBroker::serve(int fd, int connection) {
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  SSL* ssl = SSL_new(ctxOf(ssl_ctx_));
  SSL_set_fd(ssl, fd);
  auto finish = [&] {
    SSL_free(ssl);
    close(fd);
  };
  if (SSL_accept(ssl) != 1) {
    ERR_clear_error();
    finish();
    return;
  }
  std::string in;
  std::string out;
  char buf[16384];
  while (!stop_) {
    const bool stalled = stall_connection_.load() == connection;
    pollfd fds[3] = {{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}, {fd, POLLIN, 0}};
    const int nfds = stalled ? 2 : 3;
    if (SSL_pending(ssl) == 0 && poll(fds, nfds, 500) <= 0) {
      continue;
    }
    if ((fds[0].revents & POLLIN) != 0) {
      break;
    }
    if ((fds[1].revents & POLLIN) != 0) {
      // A new client (the old one reconnected): serve the newest.
      finish();
      const int next = accept(listen_fd_, nullptr, nullptr);
      if (next >= 0) {
        serve(next, ++connections_);
      }
      return;
    }
    if (stalled) {
      continue;
    }
    const int n = SSL_read(ssl, buf, sizeof buf);
    if (n <= 0) {
      break;
    }
    in.append(buf, static_cast<size_t>(n));
    // Handle every complete packet.
    bool drop = false;
    bool close_after_write = false;
    while (!drop) {
      size_t pos = 1;
      size_t remaining = 0;
      if (in.empty() || !getVarint(in, pos, remaining) || in.size() < pos + remaining) {
        break;
      }
      const auto header = static_cast<unsigned char>(in[0]);
      const size_t body = pos;
      const size_t end = pos + remaining;
      const int type = header >> 4;
      if (type == 1) {  // CONNECT -> CONNACK (no session present; as setConnectAnswer says)
        ConnectAnswer answer;
        {
          std::lock_guard lock(mu_);
          answer = connect_answer_;
        }
        std::string props;
        if (!answer.server_reference.empty()) {
          props.push_back('\x1C');  // Server Reference
          props.push_back(static_cast<char>(answer.server_reference.size() >> 8));
          props.push_back(static_cast<char>(answer.server_reference.size() & 0xff));
          props += answer.server_reference;
        }
        std::string props_block;
        putVarint(props_block, props.size());
        props_block += props;
        if (answer.connack_reason != 0) {
          out += packet(0x20, std::string(1, '\0') +
                                  std::string(1, static_cast<char>(answer.connack_reason)) +
                                  props_block);
          close_after_write = true;
        } else {
          out += packet(0x20, std::string("\x00\x00\x00", 3));
          if (answer.disconnect_reason != 0) {
            out += packet(
                0xE0, std::string(1, static_cast<char>(answer.disconnect_reason)) + props_block);
            close_after_write = true;
          }
        }
      } else if (type == 8 && end >= body + 2) {  // SUBSCRIBE -> SUBACK granting QoS 1
        size_t p = body + 2;
        size_t props = 0;
        getVarint(in, p, props);
        p += props;
        std::string codes;
        while (p < end) {
          std::string filter;
          if (!getString(in, p, end, filter)) {
            break;
          }
          ++p;  // options
          codes.push_back('\x01');
        }
        out += packet(0x90, in.substr(body, 2) + std::string(1, '\0') + codes);
      } else if (type == 3) {  // PUBLISH
        FakePublish pub;
        pub.connection = connection;
        pub.qos = (header >> 1) & 3;
        pub.dup = (header & 0x08) != 0;
        size_t p = body;
        getString(in, p, end, pub.topic);
        std::string packet_id;
        if (pub.qos > 0) {
          packet_id = in.substr(p, 2);
          p += 2;
        }
        size_t props_len = 0;
        getVarint(in, p, props_len);
        const size_t props_end = p + props_len;
        while (p < props_end) {
          const auto id = static_cast<unsigned char>(in[p++]);
          std::string k;
          std::string v;
          if (id == 0x26) {
            getString(in, p, props_end, k);
            getString(in, p, props_end, v);
            if (k == "msg-id") {
              pub.msg_id = v;
            }
          } else if (id == 0x03) {
            getString(in, p, props_end, v);
          } else {
            break;
          }
        }
        pub.payload = in.substr(props_end, end - props_end);
        Verdict verdict;
        {
          std::lock_guard lock(mu_);
          const int seen = seen_[pub.msg_id]++;
          if (policy_ && pub.qos == 1) {
            verdict = policy_(pub, seen);
          }
          publishes_.push_back(pub);
        }
        if (pub.qos == 1) {
          if (verdict.action == Action::drop_connection) {
            drop = true;
          } else if (verdict.action == Action::puback) {
            out += packet(0x40, packet_id + std::string(1, static_cast<char>(verdict.reason)));
          }
        }
      } else if (type == 12) {  // PINGREQ
        out += packet(0xD0, {});
      } else if (type == 14) {  // DISCONNECT
        drop = true;
      }
      in.erase(0, end);
    }
    if (!out.empty() && !drop) {
      if (SSL_write(ssl, out.data(), static_cast<int>(out.size())) <= 0) {
        break;
      }
      out.clear();
    }
    if (drop || close_after_write) {
      break;
    }
  }
  finish();
}

}  // namespace psa::test
