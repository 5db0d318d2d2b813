// The control channel on Windows: a named pipe (\\.\pipe\pms-agent by default) whose DACL lets
// only SYSTEM, the Administrators (an elevated prompt) and the service's own account in.
// Overlapped I/O so every read, write and the accept loop honour a deadline or a stop.
#include <atomic>
#include <mutex>
#include <thread>

#include "control_transport.h"
#include "psa/store/fatal.h"
#include "psa/store/log.h"
#include "psa/store/os/process_info.h"
#include "psa/store/os/utf8_path.h"
#include "psa/store/os/win32.h"

namespace psa::agent {

namespace asio = boost::asio;
using os::win::UniqueHandle;

namespace {

constexpr DWORD kPipeBuffer = 64 * 1024;

// Waits for an overlapped operation; cancels it when `timeout` passes or `stop` is signalled.
bool finishOverlapped(HANDLE h, OVERLAPPED& ov, DWORD timeout_ms, HANDLE stop, DWORD& bytes) {
  HANDLE events[2] = {ov.hEvent, stop};
  const DWORD n = stop != nullptr ? 2 : 1;
  const DWORD w = ::WaitForMultipleObjects(n, events, FALSE, timeout_ms);
  if (w != WAIT_OBJECT_0) {
    ::CancelIoEx(h, &ov);
    ::GetOverlappedResult(h, &ov, &bytes, TRUE);
    return false;
  }
  return ::GetOverlappedResult(h, &ov, &bytes, FALSE) != 0;
}

class PipeConnection final : public ControlConnection {
 public:
  PipeConnection(UniqueHandle pipe, bool server, std::chrono::milliseconds timeout)
      : pipe_(std::move(pipe)),
        event_(::CreateEventW(nullptr, TRUE, FALSE, nullptr)),
        server_(server),
        timeout_ms_(static_cast<DWORD>(timeout.count())) {}
  ~PipeConnection() override {
    if (server_) {
      ::FlushFileBuffers(pipe_.get());
      ::DisconnectNamedPipe(pipe_.get());
    }
  }
  PipeConnection(const PipeConnection&) = delete;
  PipeConnection& operator=(const PipeConnection&) = delete;

  bool readLine(size_t limit, std::string& out) override {
    return readLineWith([this](char* buf, size_t size) { return readSome(buf, size); }, limit, out);
  }

  bool writeAll(std::string_view data) override {
    size_t off = 0;
    while (off < data.size()) {
      OVERLAPPED ov{};
      ov.hEvent = event_.get();
      ::ResetEvent(ov.hEvent);
      DWORD wrote = 0;
      const DWORD want = static_cast<DWORD>(std::min<size_t>(data.size() - off, kPipeBuffer));
      if (!::WriteFile(pipe_.get(), data.data() + off, want, &wrote, &ov)) {
        if (::GetLastError() != ERROR_IO_PENDING ||
            !finishOverlapped(pipe_.get(), ov, timeout_ms_, nullptr, wrote)) {
          return false;
        }
      }
      if (wrote == 0) {
        return false;
      }
      off += wrote;
    }
    return true;
  }

  Peer peer() override {
    Peer p;
    if (!server_) {
      return p;
    }
    ULONG pid = 0;
    if (::GetNamedPipeClientProcessId(pipe_.get(), &pid)) {
      p.pid = pid;
    }
    // Impersonation works only once something was read from the pipe.
    if (read_any_ && ::ImpersonateNamedPipeClient(pipe_.get())) {
      HANDLE token = nullptr;
      if (::OpenThreadToken(::GetCurrentThread(), TOKEN_QUERY, TRUE, &token)) {
        UniqueHandle owned(token);
        DWORD size = 0;
        ::GetTokenInformation(token, TokenUser, nullptr, 0, &size);
        std::vector<unsigned char> buf(size);
        if (size > 0 && ::GetTokenInformation(token, TokenUser, buf.data(), size, &size)) {
          os::win::LocalPtr<wchar_t*> sid;
          if (::ConvertSidToStringSidW(reinterpret_cast<TOKEN_USER*>(buf.data())->User.Sid,
                                       sid.out())) {
            p.account = os::win::accountName(os::win::narrow(sid.get()));
          }
        }
      }
      ::RevertToSelf();
    }
    return p;
  }

 private:
  // One overlapped ReadFile with the connection's deadline: bytes read, 0 at the end, -1 on an
  // error or timeout.
  long readSome(char* buf, size_t size) {
    OVERLAPPED ov{};
    ov.hEvent = event_.get();
    ::ResetEvent(ov.hEvent);
    DWORD got = 0;
    if (!::ReadFile(pipe_.get(), buf, static_cast<DWORD>(size), &got, &ov)) {
      const DWORD err = ::GetLastError();
      if (err == ERROR_MORE_DATA) {
        ::GetOverlappedResult(pipe_.get(), &ov, &got, TRUE);
      } else if (err != ERROR_IO_PENDING ||
                 !finishOverlapped(pipe_.get(), ov, timeout_ms_, nullptr, got)) {
        return -1;
      }
    }
    read_any_ = read_any_ || got > 0;
    return static_cast<long>(got);
  }

  UniqueHandle pipe_;
  UniqueHandle event_;
  bool server_;
  DWORD timeout_ms_;
  bool read_any_ = false;
};

class PipeEndpoint final : public ControlEndpoint {
 public:
  explicit PipeEndpoint(std::wstring name) : name_(std::move(name)) {}
  ~PipeEndpoint() override { close(); }
  PipeEndpoint(const PipeEndpoint&) = delete;
  PipeEndpoint& operator=(const PipeEndpoint&) = delete;

  Status bind() {
    const std::wstring sddl =
        L"D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;" + os::win::widen(os::win::currentUserSid()) + L")";
    if (!::ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl.c_str(), SDDL_REVISION_1,
                                                                sd_.out(), nullptr)) {
      return Error(Errc::io, "cannot build the control pipe's access list: " +
                                 os::win::errorText(::GetLastError()));
    }
    stop_.reset(::CreateEventW(nullptr, TRUE, FALSE, nullptr));
    // FIRST_PIPE_INSTANCE: if another agent already serves this name, creating fails.
    auto first = createInstance(true);
    if (!first) {
      return std::move(first).error();
    }
    next_ = std::move(*first);
    return {};
  }

  void startAccepting(std::function<void(ControlConnectionPtr)> on_connection,
                      std::chrono::milliseconds io_timeout) override {
    thread_ = std::thread([this, fn = std::move(on_connection), io_timeout] {
      os::setCurrentThreadName("psa-control");
      guardInvariant("control.accept_thread", [&] { acceptLoop(fn, io_timeout); });
    });
  }

  void close() override {
    if (stop_) {
      ::SetEvent(stop_.get());
    }
    if (thread_.joinable()) {
      thread_.join();
    }
  }

 private:
  Result<UniqueHandle> createInstance(bool first) {
    SECURITY_ATTRIBUTES sa{sizeof sa, sd_.get(), FALSE};
    DWORD open_mode = PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED;
    if (first) {
      open_mode |= FILE_FLAG_FIRST_PIPE_INSTANCE;
    }
    UniqueHandle h(::CreateNamedPipeW(
        name_.c_str(), open_mode,
        PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
        PIPE_UNLIMITED_INSTANCES, kPipeBuffer, kPipeBuffer, 0, &sa));
    if (!h) {
      const DWORD err = ::GetLastError();
      const std::string where = os::win::narrow(name_);
      if (first && (err == ERROR_ACCESS_DENIED || err == ERROR_PIPE_BUSY)) {
        return Error(Errc::exists,
                     "another agent is already running (control pipe " + where + " exists)");
      }
      return Error(Errc::io,
                   "cannot create control pipe " + where + ": " + os::win::errorText(err));
    }
    return h;
  }

  void acceptLoop(const std::function<void(ControlConnectionPtr)>& on_connection,
                  std::chrono::milliseconds io_timeout) {
    UniqueHandle event(::CreateEventW(nullptr, TRUE, FALSE, nullptr));
    while (::WaitForSingleObject(stop_.get(), 0) != WAIT_OBJECT_0) {
      if (!next_) {
        auto made = createInstance(false);
        if (!made) {
          log::Logger("control").error("pipe_create_failed", {{"error", made.error().message}});
          if (::WaitForSingleObject(stop_.get(), 1000) == WAIT_OBJECT_0) {
            return;
          }
          continue;
        }
        next_ = std::move(*made);
      }
      OVERLAPPED ov{};
      ov.hEvent = event.get();
      ::ResetEvent(ov.hEvent);
      bool connected = ::ConnectNamedPipe(next_.get(), &ov) != 0;
      if (!connected) {
        const DWORD err = ::GetLastError();
        if (err == ERROR_PIPE_CONNECTED) {
          connected = true;
        } else if (err == ERROR_IO_PENDING) {
          DWORD unused = 0;
          connected = finishOverlapped(next_.get(), ov, INFINITE, stop_.get(), unused);
        }
      }
      if (!connected) {
        next_.reset();  // a client that vanished, or stop: start over with a fresh instance
        continue;
      }
      on_connection(std::make_unique<PipeConnection>(std::move(next_), true, io_timeout));
    }
  }

  std::wstring name_;
  os::win::LocalPtr<PSECURITY_DESCRIPTOR> sd_;
  UniqueHandle stop_;
  UniqueHandle next_;
  std::thread thread_;
};

}  // namespace

std::string Peer::actor() const {
  return account.empty() ? "pid:" + std::to_string(pid) : "user:" + account;
}

Peer localPeer() {
  Peer p;
  p.pid = os::currentProcessId();
  p.account = os::currentUserName();
  return p;
}

Result<ControlEndpointPtr> bindControlEndpoint(asio::io_context&,
                                               const std::filesystem::path& address) {
  auto endpoint = std::make_shared<PipeEndpoint>(address.wstring());
  PSA_TRY(endpoint->bind());
  return ControlEndpointPtr(std::move(endpoint));
}

Result<ControlConnectionPtr> connectControlEndpoint(const std::filesystem::path& address,
                                                    std::chrono::milliseconds timeout) {
  const std::string where = os::pathToUtf8(address);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    UniqueHandle h(::CreateFileW(address.c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr,
                                 OPEN_EXISTING, FILE_FLAG_OVERLAPPED, nullptr));
    if (h) {
      return ControlConnectionPtr(std::make_unique<PipeConnection>(std::move(h), false, timeout));
    }
    const DWORD err = ::GetLastError();
    if (err == ERROR_ACCESS_DENIED) {
      return Error(Errc::unauthorized,
                   "access denied on the control pipe " + where + " (" + os::privilegeHint() + ")");
    }
    if (err == ERROR_PIPE_BUSY && std::chrono::steady_clock::now() < deadline) {
      ::WaitNamedPipeW(address.c_str(), 1000);  // every instance is serving someone
      continue;
    }
    if (err == ERROR_FILE_NOT_FOUND || err == ERROR_PIPE_BUSY) {
      return Error(Errc::unavailable,
                   "the agent is not running (nothing answers on " + where + ")");
    }
    return Error(Errc::io,
                 "cannot open the control pipe " + where + ": " + os::win::errorText(err));
  }
}

}  // namespace psa::agent
