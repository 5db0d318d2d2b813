// A small "agent" for crash tests: opens a real SqliteStore and runs a CloudLink that drains it
// until SIGTERM (graceful: stop the link, close the store) or SIGKILL (the test's crash).
//
//   cloudlink_child --db FILE --key-file FILE --url URL --ca FILE --cert FILE --key FILE
//                   --tenant T --agent A [--max-inflight N] [--confirm broker|receipt]
//                   [--receipt-timeout-ms N] [--status-file FILE]
//
// Writes the link status as JSON to --status-file (atomically, every 100 ms) and "ready" on
// stdout once the link is started. Exit codes: 0 clean stop, 1 failure, 2 usage.
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>

#include "psa/cloudlink/cloud_link.h"
#include "psa/store/sqlite_store.h"

namespace {

void writeAtomically(const std::filesystem::path& path, const std::string& text) {
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> args;
  for (int i = 1; i + 1 < argc; i += 2) {
    args[argv[i]] = argv[i + 1];
  }
  for (const char* required : {"--db", "--key-file", "--url", "--ca", "--cert", "--key",
                               "--tenant", "--agent"}) {
    if (args.count(required) == 0) {
      std::cerr << "cloudlink_child: missing " << required << "\n";
      return 2;
    }
  }
  psa::store::StoreOptions so;
  so.db_path = args["--db"];
  so.key_file = args["--key-file"];
  auto store = psa::store::SqliteStore::open(so);
  if (!store) {
    std::cerr << "cloudlink_child: " << store.error().describe() << "\n";
    return 1;
  }

  psa::cloudlink::CloudLinkOptions o;
  o.url = args["--url"];
  o.ca_file = args["--ca"];
  o.cert_file = args["--cert"];
  o.key_file = args["--key"];
  o.tenant = args["--tenant"];
  o.agent_id = args["--agent"];
  o.backoff_initial = std::chrono::milliseconds(200);
  o.backoff_max = std::chrono::milliseconds(1000);
  if (args.count("--max-inflight") != 0) {
    o.max_inflight = std::stoul(args["--max-inflight"]);
  }
  if (args.count("--confirm") != 0) {
    o.confirm = psa::cloudlink::parseConfirm(args["--confirm"]).value_or(o.confirm);
  }
  if (args.count("--receipt-timeout-ms") != 0) {
    o.receipt_timeout = std::chrono::milliseconds(std::stol(args["--receipt-timeout-ms"]));
  }

  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  auto link = psa::cloudlink::CloudLink::create(io, **store, o);
  if (!link) {
    std::cerr << "cloudlink_child: " << link.error().describe() << "\n";
    return 1;
  }
  const std::filesystem::path status_file = args.count("--status-file") ? args["--status-file"] : "";
  boost::asio::steady_timer timer(io);
  std::function<void()> tick = [&] {
    if (!status_file.empty()) {
      writeAtomically(status_file, (*link)->status().toJson());
    }
    timer.expires_after(std::chrono::milliseconds(100));
    timer.async_wait([&](boost::system::error_code ec) {
      if (!ec) {
        tick();
      }
    });
  };
  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](boost::system::error_code, int) {
    (*link)->stop([&] {
      timer.cancel();
      guard.reset();
    });
  });
  (*link)->start();
  // status() answers from the link's strand: the first tick runs once a thread serves `io`.
  boost::asio::post(io, tick);
  std::cout << "ready" << std::endl;
  std::thread second([&] { io.run(); });
  io.run();
  second.join();
  if (!status_file.empty()) {
    writeAtomically(status_file, (*link)->status().toJson());
  }
  link->reset();
  (*store)->close();
  return 0;
}
