#include "mosquitto_fixture.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>

namespace psa::test {
namespace fs = std::filesystem;

MosquittoBroker::MosquittoBroker(MosquittoOptions options) : options_(std::move(options)) {
  fs::create_directories(options_.dir);
  port_ = freePort();
  conf_file_ = options_.dir / "mosquitto.conf";
  log_file_ = options_.dir / "mosquitto.log";
  writeConfig();
  start();
}

std::unique_ptr<MosquittoBroker> MosquittoBroker::withMaterial(const TlsMaterial& tls,
                                                               const fs::path& dir,
                                                               MosquittoOptions overrides) {
  overrides.dir = dir;
  if (overrides.cafile.empty()) {
    overrides.cafile = tls.ca().cert;
  }
  if (overrides.certfile.empty()) {
    overrides.certfile = tls.server().cert;
    overrides.keyfile = tls.server().key;
  }
  return std::make_unique<MosquittoBroker>(std::move(overrides));
}

MosquittoBroker::~MosquittoBroker() {
  if (process_) {
    process_->kill();
  }
}

std::string MosquittoBroker::url() const { return "mqtts://localhost:" + std::to_string(port_); }

std::string MosquittoBroker::log() const { return readFile(log_file_); }

pid_t MosquittoBroker::pid() const { return process_ ? process_->pid() : -1; }

bool MosquittoBroker::running() { return process_ && process_->running(); }

void MosquittoBroker::writeConfig() {
  const fs::path acl_file = options_.dir / "acl";
  writeFile(acl_file, options_.acl.empty() ? std::string(kDefaultAcl) : options_.acl);
  ::chmod(acl_file.c_str(), 0600);
  fs::create_directories(options_.dir / "persist");

  std::ofstream conf(conf_file_, std::ios::trunc);
  if (geteuid() == 0) {
    // Started as root, mosquitto would switch to the "mosquitto" user, which cannot read the
    // test's key files (design.md toolchain notes).
    conf << "user root\n";
  }
  conf << "per_listener_settings false\n"
       << "allow_anonymous false\n"
       << "acl_file " << acl_file.string() << "\n"
       << "log_dest file " << log_file_.string() << "\n"
       << "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n";
  if (options_.verbose_log) {
    conf << "log_type debug\n";
  }
  conf << "log_timestamp_format %Y-%m-%dT%H:%M:%S\n"
       << "connection_messages true\n"
       << "max_queued_messages 0\n"
       << "max_inflight_messages 0\n";
  if (options_.persistence) {
    conf << "persistence true\n"
         << "persistence_location " << (options_.dir / "persist").string() << "/\n"
         << "autosave_interval 1800\n";
  }
  if (!options_.clientid_prefixes.empty()) {
    conf << "clientid_prefixes " << options_.clientid_prefixes << "\n";
  }
  if (!options_.passwords.empty()) {
    const fs::path password_file = options_.dir / "passwords";
    writeFile(password_file, "");
    for (const auto& [user, password] : options_.passwords) {
      const CommandResult r =
          runCommand({"mosquitto_passwd", "-b", password_file.string(), user, password});
      if (r.exit_code != 0) {
        throw std::runtime_error("mosquitto_passwd failed for " + user + ": " + r.output);
      }
    }
    ::chmod(password_file.c_str(), 0600);
    conf << "password_file " << password_file.string() << "\n";
  }
  for (const auto& line : options_.extra_conf) {
    conf << line << "\n";
  }
  conf << "\nlistener " << port_ << " 127.0.0.1\n"
       << "cafile " << options_.cafile.string() << "\n"
       << "certfile " << options_.certfile.string() << "\n"
       << "keyfile " << options_.keyfile.string() << "\n"
       << "require_certificate true\n"
       << "use_identity_as_username " << (options_.use_identity_as_username ? "true" : "false")
       << "\n"
       << "tls_version tlsv1.2\n";
  for (const auto& line : options_.listener_conf) {
    conf << line << "\n";
  }
}

void MosquittoBroker::start() {
  if (running()) {
    return;
  }
  Process::Options opts;
  opts.argv = {"mosquitto", "-c", conf_file_.string()};
  opts.stdout_file = options_.dir / "mosquitto.out";
  opts.cwd = options_.dir;
  process_ = std::make_unique<Process>(std::move(opts));
  // The listener socket exists only once TLS is configured, so TCP acceptance means ready.
  if (!waitFor([&] { return !process_->running() || canConnect("127.0.0.1", port_); },
               std::chrono::seconds(10)) ||
      !process_->running()) {
    throw std::runtime_error("mosquitto did not start; log:\n" + log() + "\nout:\n" +
                             readFile(options_.dir / "mosquitto.out"));
  }
}

void MosquittoBroker::stop() {
  if (!process_) {
    return;
  }
  process_->signal(SIGCONT);
  process_->signal(SIGTERM);
  if (!process_->wait(std::chrono::seconds(10))) {
    process_->kill();
  }
}

void MosquittoBroker::kill() {
  if (process_) {
    process_->kill();
  }
}

void MosquittoBroker::pause() {
  if (process_) {
    process_->signal(SIGSTOP);
  }
}

void MosquittoBroker::resume() {
  if (process_) {
    process_->signal(SIGCONT);
  }
}

void MosquittoBroker::reloadAcl(std::string acl) {
  options_.acl = std::move(acl);
  const fs::path acl_file = options_.dir / "acl";
  writeFile(acl_file, options_.acl.empty() ? std::string(kDefaultAcl) : options_.acl);
  if (process_) {
    process_->signal(SIGHUP);
  }
}

}  // namespace psa::test
