// `pms-agent service configure` on Windows: what the MSI's tables cannot express (see
// service_admin.h), run by the installer as a deferred custom action with SYSTEM rights.
#include <fstream>
#include <sstream>

#include "psa/adapters/source.h"
#include "psa/agent/config.h"
#include "psa/agent/platform_defaults.h"
#include "psa/store/os/durable_file.h"
#include "psa/store/os/utf8_path.h"
#include "psa/store/os/win32.h"
#include "psa/store/sqlite_store.h"
#include "service_admin.h"

namespace psa::agent {

namespace {

namespace fs = std::filesystem;

constexpr wchar_t kServiceName[] = L"pms-agent";
constexpr wchar_t kDescription[] =
    L"Relays practice-management data (HL7, files, FHIR/REST) to the Practice Studio cloud "
    L"through an encrypted local queue.";
constexpr wchar_t kEventLogKey[] =
    L"SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\pms-agent";

class ScHandle {
 public:
  explicit ScHandle(SC_HANDLE h) : h_(h) {}
  ~ScHandle() {
    if (h_ != nullptr) {
      ::CloseServiceHandle(h_);
    }
  }
  ScHandle(const ScHandle&) = delete;
  ScHandle& operator=(const ScHandle&) = delete;
  SC_HANDLE get() const { return h_; }
  explicit operator bool() const { return h_ != nullptr; }

 private:
  SC_HANDLE h_;
};

// One service setting: a failure is reported, not fatal (the service runs without it).
void setting(std::ostream& log, const char* what, BOOL ok) {
  if (ok) {
    log << "OK    service       " << what << "\n";
  } else {
    log << "WARN  service       " << what << ": " << os::win::errorText(::GetLastError()) << "\n";
  }
}

void configureServiceEntry(SC_HANDLE svc, std::ostream& log) {
  SERVICE_DESCRIPTIONW description{const_cast<LPWSTR>(kDescription)};
  setting(log, "description",
          ::ChangeServiceConfig2W(svc, SERVICE_CONFIG_DESCRIPTION, &description));
  SERVICE_DELAYED_AUTO_START_INFO delayed{TRUE};
  setting(log, "automatic start (delayed)",
          ::ChangeServiceConfig2W(svc, SERVICE_CONFIG_DELAYED_AUTO_START_INFO, &delayed));
  // Restart after 5 s, then 30 s, then every 60 s; the count resets after a day without one.
  SC_ACTION actions[3] = {
      {SC_ACTION_RESTART, 5000}, {SC_ACTION_RESTART, 30000}, {SC_ACTION_RESTART, 60000}};
  SERVICE_FAILURE_ACTIONSW failure{};
  failure.dwResetPeriod = 86400;
  failure.cActions = 3;
  failure.lpsaActions = actions;
  setting(log, "recovery: restart after 5 s, 30 s, then every 60 s",
          ::ChangeServiceConfig2W(svc, SERVICE_CONFIG_FAILURE_ACTIONS, &failure));
  // A broken invariant ends the agent with a non-zero exit code: that must count as a failure.
  SERVICE_FAILURE_ACTIONS_FLAG non_crash{TRUE};
  setting(log, "recovery also after a non-zero exit",
          ::ChangeServiceConfig2W(svc, SERVICE_CONFIG_FAILURE_ACTIONS_FLAG, &non_crash));
  SERVICE_SID_INFO sid{SERVICE_SID_TYPE_UNRESTRICTED};
  setting(log, "own service SID (NT SERVICE\\pms-agent)",
          ::ChangeServiceConfig2W(svc, SERVICE_CONFIG_SERVICE_SID_INFO, &sid));
  SERVICE_PRESHUTDOWN_INFO preshutdown{30000};
  setting(log, "30 s to finish commits at system shutdown",
          ::ChangeServiceConfig2W(svc, SERVICE_CONFIG_PRESHUTDOWN_INFO, &preshutdown));
}

Status registerEventSource(std::ostream& log) {
  wchar_t exe[MAX_PATH];
  const DWORD n = ::GetModuleFileNameW(nullptr, exe, MAX_PATH);
  HKEY key = nullptr;
  LSTATUS rc = ::RegCreateKeyExW(HKEY_LOCAL_MACHINE, kEventLogKey, 0, nullptr, 0, KEY_SET_VALUE,
                                 nullptr, &key, nullptr);
  if (rc != ERROR_SUCCESS) {
    return Error(Errc::io, "cannot register the Event Log source: " +
                               os::win::errorText(static_cast<DWORD>(rc)));
  }
  // The message table compiled into pms-agent.exe (event 1 = "%1"): Event Viewer shows our line.
  rc = ::RegSetValueExW(key, L"EventMessageFile", 0, REG_EXPAND_SZ,
                        reinterpret_cast<const BYTE*>(exe), (n + 1) * sizeof(wchar_t));
  const DWORD types = EVENTLOG_ERROR_TYPE | EVENTLOG_WARNING_TYPE | EVENTLOG_INFORMATION_TYPE;
  if (rc == ERROR_SUCCESS) {
    rc = ::RegSetValueExW(key, L"TypesSupported", 0, REG_DWORD,
                          reinterpret_cast<const BYTE*>(&types), sizeof types);
  }
  ::RegCloseKey(key);
  if (rc != ERROR_SUCCESS) {
    return Error(Errc::io, "cannot register the Event Log source: " +
                               os::win::errorText(static_cast<DWORD>(rc)));
  }
  log << "OK    event log     source pms-agent (Application log)\n";
  return {};
}

// Validates `source` like `pms-agent config validate` and installs it as the service's config.
Status installConfig(const fs::path& source, const fs::path& target, std::ostream& log) {
  std::ifstream in(source, std::ios::binary);
  if (!in) {
    return Error(Errc::not_found, "cannot read the config " + os::pathToUtf8(source));
  }
  std::ostringstream text;
  text << in.rdbuf();
  adapters::SourceRegistry registry;
  adapters::registerBuiltinSources(registry);
  ConfigLoad load = parseConfig(text.str(), source, registry);
  if (!load.config) {
    std::string msg = "the config " + os::pathToUtf8(source) + " is invalid; nothing installed";
    if (!load.fatal.empty() && load.issues.empty()) {
      msg += "\n  " + load.fatal;
    }
    for (const auto& issue : load.issues) {
      msg += "\n  " + os::pathToUtf8(source) + ":" + std::to_string(issue.line) + ":" +
             std::to_string(issue.column) + ": " + (issue.path.empty() ? "" : issue.path + ": ") +
             issue.message;
    }
    return Error(Errc::invalid_input, msg);
  }
  std::error_code ec;
  if (fs::equivalent(source, target, ec)) {
    log << "OK    config        " << os::pathToUtf8(target) << " valid (in place)\n";
    return {};
  }
  PSA_TRY(os::writeFileDurably(target, text.str(), os::FileAccess::owner_only));
  log << "OK    config        " << os::pathToUtf8(source) << " valid, installed as "
      << os::pathToUtf8(target) << "\n";
  return {};
}

// Creates the data key (DPAPI-protected, ACL'd) and the queue, as `pms-agent keys init` does.
Status initStore(const fs::path& config_file, std::ostream& log) {
  adapters::SourceRegistry registry;
  adapters::registerBuiltinSources(registry);
  ConfigLoad load = loadConfig(config_file, registry);
  if (!load.config) {
    return Error(Errc::invalid_input,
                 "the installed config is invalid: " +
                     (load.fatal.empty() ? std::string("see config validate") : load.fatal));
  }
  const Config& cfg = *load.config;
  PSA_TRY(os::createServiceDirectory(cfg.state_dir));
  auto opened = store::SqliteStore::open(cfg.store);
  if (!opened) {
    return std::move(opened).error();
  }
  const bool created = (*opened)->openReport().key_created;
  (*opened)->close();
  log << "OK    keys          " << os::pathToUtf8(cfg.store.key_file)
      << (created ? " created (DPAPI, SYSTEM/Administrators/service only)" : " in place") << "\n";
  return {};
}

Status startService(SC_HANDLE svc, std::ostream& log) {
  if (!::StartServiceW(svc, 0, nullptr) && ::GetLastError() != ERROR_SERVICE_ALREADY_RUNNING) {
    return Error(Errc::unavailable,
                 "the service did not start: " + os::win::errorText(::GetLastError()));
  }
  SERVICE_STATUS st{};
  for (int i = 0; i < 300; ++i) {  // up to 30 s
    if (!::QueryServiceStatus(svc, &st) || st.dwCurrentState != SERVICE_START_PENDING) {
      break;
    }
    ::Sleep(100);
  }
  if (st.dwCurrentState != SERVICE_RUNNING) {
    return Error(Errc::unavailable,
                 "the service did not reach RUNNING (state " + std::to_string(st.dwCurrentState) +
                     "); see the log under %ProgramData%\\PracticeStudio\\Agent\\logs");
  }
  log << "OK    service       running\n";
  return {};
}

}  // namespace

Status configureService(const ServiceConfigureOptions& o, std::ostream& log) {
  const PlatformDefaults& d = platformDefaults();
  ScHandle scm(::OpenSCManagerW(nullptr, nullptr, SC_MANAGER_CONNECT));
  if (!scm) {
    return Error(Errc::unauthorized, "cannot open the Service Control Manager: " +
                                         os::win::errorText(::GetLastError()));
  }
  ScHandle svc(::OpenServiceW(scm.get(), kServiceName,
                              SERVICE_CHANGE_CONFIG | SERVICE_START | SERVICE_QUERY_STATUS));
  if (!svc) {
    return Error(Errc::not_found, "the service pms-agent is not installed (" +
                                      os::win::errorText(::GetLastError()) +
                                      "); install the MSI package");
  }
  configureServiceEntry(svc.get(), log);
  // After the service exists, so that NT SERVICE\pms-agent resolves for the ACLs.
  for (const fs::path& dir : {d.config_file.parent_path(), d.state_dir, d.log_file.parent_path()}) {
    PSA_TRY(os::createServiceDirectory(dir));
    PSA_TRY(os::restrictToOwner(dir));  // also when it existed (an upgrade)
  }
  log << "OK    folders       " << os::pathToUtf8(d.config_file.parent_path())
      << " (SYSTEM, Administrators, NT SERVICE\\pms-agent)\n";
  PSA_TRY(registerEventSource(log));
  if (!o.config_source.empty()) {
    PSA_TRY(installConfig(o.config_source, d.config_file, log));
  }
  std::error_code ec;
  if (!fs::exists(d.config_file, ec)) {
    log << "WARN  config        none at " << os::pathToUtf8(d.config_file)
        << ": the service is installed but not started ▸ put a config there (pms-agent config "
           "validate FILE), then net start pms-agent; pms-agent check says what is missing\n";
    return {};
  }
  PSA_TRY(initStore(d.config_file, log));
  if (o.start) {
    PSA_TRY(startService(svc.get(), log));
  }
  return {};
}

}  // namespace psa::agent
