// The real agent (psa::agent::Agent, same lifecycle, remote management, control socket) with one
// extra adapter type for tests of the staged apply: "test-tcp", a line-based TCP listener that
// acknowledges each line only after the store committed it — the shape of an MLLP listener
// without HL7:
//
//   sender -> "MSG <id> <text>\n"      agent -> "ACK <id>\n" after the record is durable
//   sender -> "BREAK\n"                 the adapter reports itself failed (status tests)
//
// Config: {"name","type":"test-tcp","vendor","listen":"HOST:PORT","kind":"patient",
//          "fail_start":false,"tag":"..."}  (`fail_start` makes start() fail like an
//          unreachable endpoint; `tag` is a free setting to make a config "changed").
// stop(done) stops accepting and reading, lets every pending commit finish and its ACK be
// written, then closes the connections: a sender gets the ACKs of everything it was told to
// expect before its connection closes.
//
// Usage (as pms-agent): agent_testsources run --config FILE
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <iostream>
#include <istream>
#include <mutex>
#include <set>

#include "psa/agent/agent.h"
#include "psa/agent/config.h"
#include "psa/store/log.h"

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace psa;

class TcpLineSource;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<TcpLineSource> owner);
  void start() { read(); }
  /// Stop reading; close once every pending commit has been acknowledged.
  void finish();

 private:
  void read();
  void onLine(std::string line);
  void write(std::string text);
  void doWrite();
  void maybeClose();

  tcp::socket socket_;
  asio::strand<asio::io_context::executor_type> strand_;
  std::shared_ptr<TcpLineSource> owner_;
  asio::streambuf buf_;
  size_t pending_ = 0;
  std::deque<std::string> out_;
  bool writing_ = false;
  bool finishing_ = false;
  bool closed_ = false;
};

class TcpLineSource : public adapters::Source, public std::enable_shared_from_this<TcpLineSource> {
 public:
  TcpLineSource(const json::Value& cfg, adapters::SourceContext& ctx)
      : io_(ctx.io),
        sink_(ctx.sink),
        strand_(asio::make_strand(ctx.io)),
        acceptor_(ctx.io),
        name_(cfg.getString("name")),
        vendor_(cfg.getString("vendor")),
        listen_(cfg.getString("listen")),
        kind_(store::parseKind(cfg.getString("kind", "other")).value_or(store::Kind::other)),
        fail_start_(cfg.getBool("fail_start", false)) {}

  const std::string& name() const override { return name_; }
  const std::string& type() const override { return type_; }

  Status start() override {
    if (fail_start_) {
      return Error(Errc::unavailable, "endpoint unreachable (fail_start is set)");
    }
    const auto colon = listen_.rfind(':');
    boost::system::error_code ec;
    const auto addr = asio::ip::make_address(listen_.substr(0, colon), ec);
    if (ec || colon == std::string::npos) {
      return Error(Errc::invalid_input, "listen: expected HOST:PORT");
    }
    const tcp::endpoint ep(addr, static_cast<unsigned short>(std::stoi(listen_.substr(colon + 1))));
    acceptor_.open(ep.protocol(), ec);
    if (!ec) {
      acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    }
    if (!ec) {
      acceptor_.bind(ep, ec);
    }
    if (!ec) {
      acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      return Error(Errc::unavailable, "cannot listen on " + listen_ + ": " + ec.message());
    }
    setState("listening");
    asio::post(strand_, [self = shared_from_this()] { self->accept(); });
    return {};
  }

  void stop(std::function<void()> done) override {
    asio::post(strand_, [self = shared_from_this(), done = std::move(done)]() mutable {
      if (self->stopped_) {
        if (self->sessions_.empty()) {
          done();
        } else {
          self->stop_waiters_.push_back(std::move(done));
        }
        return;
      }
      self->stopped_ = true;
      boost::system::error_code ec;
      self->acceptor_.close(ec);
      self->setState("stopped");
      self->stop_waiters_.push_back(std::move(done));
      if (self->sessions_.empty()) {
        self->notifyStopped();
        return;
      }
      for (const auto& s : self->sessions_) {
        s->finish();
      }
    });
  }

  adapters::SourceStatus status() const override {
    std::lock_guard lock(mu_);
    return status_;
  }

  // Session callbacks (any thread).
  void append(std::string id, std::string line, std::function<void(bool)> done) {
    store::AppendBatch batch;
    store::Record r;
    r.source = name_;
    r.vendor = vendor_;
    r.kind = kind_;
    r.format = std::string(store::format::kBinary);
    r.payload = Sensitive<std::string>(std::move(line));
    r.dedupe_identity = Sensitive<std::string>("test-tcp:" + id);
    batch.records.push_back(std::move(r));
    sink_.append(std::move(batch), [this, self = shared_from_this(), done = std::move(done)](
                                       Result<store::AppendResult> res) {
      {
        std::lock_guard lock(mu_);
        if (res) {
          ++status_.counters["messages"];
          status_.last_message_ms = Clock::system()->nowMs();
        } else {
          ++status_.counters["refused"];
        }
      }
      done(res.ok());
    });
  }

  void sessionClosed(const std::shared_ptr<Session>& s) {
    asio::post(strand_, [self = shared_from_this(), s] {
      self->sessions_.erase(s);
      {
        std::lock_guard lock(self->mu_);
        self->status_.detail.set("connections", json::Value::integer(static_cast<int64_t>(self->sessions_.size())));
      }
      if (self->stopped_ && self->sessions_.empty()) {
        self->notifyStopped();
      }
    });
  }

  asio::io_context& io() { return io_; }

  void markBroken() {
    std::lock_guard lock(mu_);
    status_.state = "failed";
    status_.healthy = false;
    status_.last_error = "broken by the test";
    status_.last_error_ms = Clock::system()->nowMs();
  }

 private:
  void accept() {
    acceptor_.async_accept(asio::make_strand(io_), [self = shared_from_this()](
                                                       boost::system::error_code ec, tcp::socket socket) {
      asio::post(self->strand_, [self, ec, socket = std::move(socket)]() mutable {
        if (ec || self->stopped_) {
          return;
        }
        auto session = std::make_shared<Session>(std::move(socket), self);
        self->sessions_.insert(session);
        {
          std::lock_guard lock(self->mu_);
          ++self->status_.counters["connections_total"];
          self->status_.detail.set("connections", json::Value::integer(static_cast<int64_t>(self->sessions_.size())));
        }
        session->start();
        self->accept();
      });
    });
  }

  void notifyStopped() {
    auto waiters = std::move(stop_waiters_);
    stop_waiters_.clear();
    for (auto& w : waiters) {
      w();
    }
  }

  void setState(const std::string& state) {
    std::lock_guard lock(mu_);
    status_.state = state;
    status_.detail.set("listen", json::Value::string(listen_));
  }

  asio::io_context& io_;
  store::RecordSink& sink_;
  asio::strand<asio::io_context::executor_type> strand_;
  tcp::acceptor acceptor_;
  std::string name_;
  std::string type_ = "test-tcp";
  std::string vendor_;
  std::string listen_;
  store::Kind kind_;
  bool fail_start_;
  bool stopped_ = false;
  std::set<std::shared_ptr<Session>> sessions_;
  std::vector<std::function<void()>> stop_waiters_;
  mutable std::mutex mu_;
  adapters::SourceStatus status_;
};

Session::Session(tcp::socket socket, std::shared_ptr<TcpLineSource> owner)
    : socket_(std::move(socket)), strand_(asio::make_strand(owner->io())), owner_(std::move(owner)) {}

void Session::finish() {
  asio::post(strand_, [self = shared_from_this()] {
    self->finishing_ = true;
    boost::system::error_code ec;
    self->socket_.shutdown(tcp::socket::shutdown_receive, ec);
    self->maybeClose();
  });
}

void Session::read() {
  asio::async_read_until(socket_, buf_, '\n',
                         asio::bind_executor(strand_, [self = shared_from_this()](
                                                          boost::system::error_code ec, size_t) {
                           if (ec || self->finishing_) {
                             self->finishing_ = true;
                             self->maybeClose();
                             return;
                           }
                           std::istream in(&self->buf_);
                           std::string line;
                           std::getline(in, line);
                           self->onLine(std::move(line));
                           self->read();
                         }));
}

void Session::onLine(std::string line) {
  // "MSG <id> <text>"; "BREAK" marks the adapter failed (for status-change tests).
  if (line == "BREAK") {
    owner_->markBroken();
    write("OK\n");
    return;
  }
  if (line.rfind("MSG ", 0) != 0) {
    write("ERR expected MSG <id> <text>\n");
    return;
  }
  const auto sp = line.find(' ', 4);
  std::string id = line.substr(4, sp == std::string::npos ? std::string::npos : sp - 4);
  ++pending_;
  owner_->append(id, std::move(line), [self = shared_from_this(), id](bool ok) {
    asio::post(self->strand_, [self, id, ok] {
      --self->pending_;
      self->write((ok ? "ACK " : "NAK ") + id + "\n");
    });
  });
}

void Session::write(std::string text) {
  out_.push_back(std::move(text));
  if (!writing_) {
    doWrite();
  }
}

void Session::doWrite() {
  writing_ = true;
  asio::async_write(socket_, asio::buffer(out_.front()),
                    asio::bind_executor(strand_, [self = shared_from_this()](boost::system::error_code ec, size_t) {
                      self->writing_ = false;
                      self->out_.pop_front();
                      if (ec) {
                        self->out_.clear();
                        self->finishing_ = true;
                      } else if (!self->out_.empty()) {
                        self->doWrite();
                        return;
                      }
                      self->maybeClose();
                    }));
}

void Session::maybeClose() {
  if (!finishing_ || closed_ || pending_ > 0 || writing_ || !out_.empty()) {
    return;
  }
  closed_ = true;
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  owner_->sessionClosed(shared_from_this());
}

void registerTestSources(adapters::SourceRegistry& registry) {
  auto s = std::make_shared<schema::ObjectSchema>();
  s->fields = adapters::commonAdapterFields();
  s->fields.push_back(schema::Field::str("listen").req().describe("HOST:PORT"));
  s->fields.push_back(schema::Field::str("kind").def(json::Value::string("other")));
  s->fields.push_back(schema::Field::boolean("fail_start").def(json::Value::boolean(false)));
  s->fields.push_back(schema::Field::str("tag"));
  registry.add(adapters::SourceFactory{
      "test-tcp", "test line listener (ACK after commit)", s,
      [](const json::Value& cfg, adapters::SourceContext& ctx) -> Result<adapters::SourcePtr> {
        return adapters::SourcePtr(std::make_shared<TcpLineSource>(cfg, ctx));
      },
      {}});
}

}  // namespace

int main(int argc, char** argv) {
  std::string config;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--config") {
      config = argv[i + 1];
    }
  }
  if (config.empty()) {
    std::cerr << "usage: agent_testsources run --config FILE\n";
    return 2;
  }
  adapters::SourceRegistry registry;
  adapters::registerBuiltinSources(registry);
  registerTestSources(registry);
  auto load = agent::loadConfig(config, registry);
  if (!load.config) {
    std::cerr << "agent_testsources: config invalid: " << load.fatal << "\n";
    for (const auto& i : load.issues) {
      std::cerr << "  " << i.format() << "\n";
    }
    return 1;
  }
  log::setLevel(load.config->log_level);
  agent::Agent a(load.config, agent::makeForegroundHost(), registry);
  if (auto st = a.start(); !st) {
    std::cerr << "agent_testsources: " << st.error().message << "\n";
    return 1;
  }
  return a.run();
}
