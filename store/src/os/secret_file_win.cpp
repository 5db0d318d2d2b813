#include <openssl/evp.h>

#include <set>
#include <vector>

#include "psa/store/os/secret_file.h"
#include "psa/store/os/utf8_path.h"
#include "psa/store/os/win32.h"

namespace psa::os {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kDpapiMarker = "pms-agent-dpapi-v1\n";
constexpr std::string_view kSystemSid = "S-1-5-18";
constexpr std::string_view kAdministratorsSid = "S-1-5-32-544";
constexpr std::string_view kOwnerRightsSid = "S-1-3-4";
constexpr DWORD kReadOrWrite = FILE_READ_DATA | FILE_WRITE_DATA | FILE_APPEND_DATA | GENERIC_READ |
                               GENERIC_WRITE | GENERIC_ALL | WRITE_DAC | WRITE_OWNER;

std::string sidText(PSID sid) {
  win::LocalPtr<wchar_t*> text;
  if (sid == nullptr || !::ConvertSidToStringSidW(sid, text.out())) {
    return {};
  }
  return win::narrow(text.get());
}

std::string base64(const std::vector<unsigned char>& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                                static_cast<int>(bytes.size()));
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

bool unbase64(std::string_view text, std::vector<unsigned char>& out) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  if (text.size() % 4 != 0) {
    return false;
  }
  out.assign(text.size() / 4 * 3 + 1, 0);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) {
    return false;
  }
  size_t len = static_cast<size_t>(n);
  for (size_t i = text.size(); i > 0 && text[i - 1] == '='; --i) {
    --len;  // EVP_DecodeBlock counts padding as zero bytes
  }
  out.resize(len);
  return true;
}

std::string icaclsFix(const fs::path& path) {
  return "icacls \"" + pathToUtf8(path) +
         "\" /inheritance:r /grant:r *S-1-5-18:F *S-1-5-32-544:F \"NT SERVICE\\pms-agent\":F";
}

}  // namespace

SecretFileInfo describeSecretFile(const fs::path& path) {
  SecretFileInfo info;
  WIN32_FILE_ATTRIBUTE_DATA data{};
  if (!::GetFileAttributesExW(path.c_str(), GetFileExInfoStandard, &data)) {
    const DWORD err = ::GetLastError();
    info.problem = err == ERROR_ACCESS_DENIED ? "cannot look at it (access denied)" : "missing";
    return info;
  }
  info.present = true;
  info.size = (static_cast<uint64_t>(data.nFileSizeHigh) << 32) | data.nFileSizeLow;
  if ((data.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) != 0) {
    info.problem = "not a regular file";
    return info;
  }
  PSID owner = nullptr;
  PACL dacl = nullptr;
  win::LocalPtr<PSECURITY_DESCRIPTOR> sd;
  std::wstring name = path.wstring();
  const DWORD rc = ::GetNamedSecurityInfoW(name.data(), SE_FILE_OBJECT,
                                           OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
                                           &owner, nullptr, &dacl, nullptr, sd.out());
  if (rc != ERROR_SUCCESS) {
    info.problem = "cannot read its access list: " + win::errorText(rc);
    return info;
  }
  const std::string owner_sid = sidText(owner);
  info.owner = win::accountName(owner_sid);
  // Who may hold the data key: SYSTEM, the administrators, and the account the agent runs as
  // (the service's virtual account, or the administrator who ran `keys init`).
  const std::set<std::string> allowed = {
      std::string(kSystemSid), std::string(kAdministratorsSid), std::string(kOwnerRightsSid),
      win::currentUserSid(),   win::serviceAccountSid(),        owner_sid};
  if (dacl == nullptr) {
    info.permissions = "everyone (no access list)";
    info.problem = "it has no access list, so every user may read it";
    info.fix = icaclsFix(path);
    return info;
  }
  std::string granted;
  std::string intruder;
  for (DWORD i = 0; i < dacl->AceCount; ++i) {
    void* raw = nullptr;
    if (!::GetAce(dacl, i, &raw)) {
      continue;
    }
    const auto* header = static_cast<const ACE_HEADER*>(raw);
    if (header->AceType != ACCESS_ALLOWED_ACE_TYPE || (header->AceFlags & INHERIT_ONLY_ACE) != 0) {
      continue;
    }
    const auto* ace = static_cast<const ACCESS_ALLOWED_ACE*>(raw);
    if ((ace->Mask & kReadOrWrite) == 0) {
      continue;
    }
    const std::string sid = sidText(const_cast<DWORD*>(&ace->SidStart));
    const std::string who = win::accountName(sid);
    if (granted.find(who) == std::string::npos) {
      granted += (granted.empty() ? "" : ", ") + who;
    }
    // The owner is allowed only when it is itself one of the trusted accounts.
    const bool trusted = allowed.count(sid) != 0 &&
                         (sid != owner_sid || sid == kSystemSid || sid == kAdministratorsSid ||
                          sid == win::currentUserSid() || sid == win::serviceAccountSid());
    if (!trusted && intruder.empty()) {
      intruder = who;
    }
  }
  info.permissions = granted.empty() ? "nobody" : granted;
  if (!intruder.empty()) {
    info.problem = intruder + " may read it";
    info.fix = icaclsFix(path);
  } else if (info.size == 0) {
    info.problem = "empty";
  }
  return info;
}

Status checkSecretFile(const fs::path& path, std::string_view what) {
  const SecretFileInfo info = describeSecretFile(path);
  if (info.problem.empty() || info.problem == "empty") {
    return {};
  }
  std::string msg = std::string(what) + " " + pathToUtf8(path) + ": " + info.problem;
  if (!info.fix.empty()) {
    msg += "; from an elevated prompt run: " + info.fix;
  }
  return Error(Errc::key_file, msg);
}

Result<std::string> sealSecretText(std::string_view plain) {
  DATA_BLOB in{static_cast<DWORD>(plain.size()),
               reinterpret_cast<BYTE*>(const_cast<char*>(plain.data()))};
  DATA_BLOB out{};
  if (!::CryptProtectData(&in, L"pms-agent data key", nullptr, nullptr, nullptr,
                          CRYPTPROTECT_LOCAL_MACHINE | CRYPTPROTECT_UI_FORBIDDEN, &out)) {
    return Error(Errc::crypto,
                 "DPAPI could not protect the key: " + win::errorText(::GetLastError()));
  }
  std::vector<unsigned char> blob(out.pbData, out.pbData + out.cbData);
  ::LocalFree(out.pbData);
  return std::string(kDpapiMarker) + base64(blob) + "\n";
}

Result<std::string> unsealSecretText(std::string_view stored) {
  if (stored.substr(0, kDpapiMarker.size()) != kDpapiMarker) {
    return std::string(stored);
  }
  std::vector<unsigned char> blob;
  if (!unbase64(stored.substr(kDpapiMarker.size()), blob)) {
    return Error(Errc::key_file, "the protected key is damaged (not base64)");
  }
  DATA_BLOB in{static_cast<DWORD>(blob.size()), blob.data()};
  DATA_BLOB out{};
  if (!::CryptUnprotectData(&in, nullptr, nullptr, nullptr, nullptr, CRYPTPROTECT_UI_FORBIDDEN,
                            &out)) {
    return Error(
        Errc::key_file,
        "the key is protected for another machine (DPAPI: " + win::errorText(::GetLastError()) +
            "); on the old server run `pms-agent keys export --out FILE`, then "
            "`pms-agent keys import FILE` here");
  }
  std::string text(reinterpret_cast<const char*>(out.pbData), out.cbData);
  ::SecureZeroMemory(out.pbData, out.cbData);
  ::LocalFree(out.pbData);
  return text;
}

}  // namespace psa::os
